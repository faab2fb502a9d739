"""The two sets ``vaekit anomaly-eval`` compares on a run: --in and --ood, or --data's classes split by --normal
(a table's labels read from the column --label-column names, for a run trained without labels), and the items
``vaekit anomaly`` scores, that column's values written beside their scores."""

from __future__ import annotations

import argparse

from ..errors import VaekitError
from .detectors import normal_labels, normal_rows


def eval_sets(args: argparse.Namespace, run) -> tuple:
    """((normal x, its labels or None), (anomalous x, labels)) from --in/--ood or from --data with --normal."""
    from ..evaluation.outputs import default_split, prepared_split

    def split(spec: str | None) -> str:  # every row of a file other than the run's own, else its test split
        return args.split or default_split(run.config, spec)

    if (args.data is not None or args.normal is not None) and (args.ood or args.inliers):
        raise VaekitError("anomaly-eval: use --data with --normal, or --in/--ood, not both")
    if args.normal is not None and args.data is None:
        raise VaekitError("anomaly-eval: --normal names classes of a labelled set: name it with --data")
    if args.data is not None:
        if args.normal is None:
            raise VaekitError("anomaly-eval: --data needs --normal, the labels counted as in-distribution")
        return labelled_sets(args, run, split(args.data))
    if args.ood is None:
        raise VaekitError("anomaly-eval: name the out-of-distribution set with --ood (or --data with --normal)")
    if run.model.needs_labels:
        raise VaekitError(
            "anomaly-eval: this run is conditional and scores items with their labels, which --in/--ood sets do "
            "not share: use --data SPEC --normal LABELS"
        )
    return tuple((prepared_split(run, spec, split(spec), args.limit)[0].x, None) for spec in (args.inliers, args.ood))


def labelled_sets(args: argparse.Namespace, run, split: str) -> tuple:
    """((normal x, labels), (anomalous x, labels)): the ``split`` of --data, its items parted by --normal."""
    import torch

    column = label_column(args, run)
    s, classes = labelled_split(args, labelled_rows(run), split)
    if s.y is None:
        hint = ": name a table's label column, --label-column" if column is None else ""
        raise VaekitError(f"{args.data}: has no labels for --normal{hint}")
    k = run.config.model.num_classes
    if run.model.needs_labels and bool((s.y >= k).any()):  # a cvae scores x as typical of its stated class
        raise VaekitError(
            f"anomaly-eval: label {int(s.y.max())} is none of this conditional run's classes 0..{k - 1}: its "
            "scores say how typical an item is of its own class, so --normal with anomalies of other classes "
            "needs an unconditional run"
        )
    present = torch.unique(s.y).tolist()
    normal = normal_labels(args.normal, classes, f"the {split} split of {args.data}", present)
    rows = normal_rows(s.y, normal, args.limit)  # the first N of each
    return tuple((s.x.subset(r.numpy()) if hasattr(s.x, "subset") else s.x[r], s.y[r]) for r in rows)


def labelled_rows(run):
    """``run`` for reading --data's labels: a table's rows whose label cell is a gap left out, one line says how
    many (a copy whose data.missing is drop, which ``data.readers`` applies to the labels alone where the run's
    schema, table.json, encodes the features as it trained), rather than the label column left out of every row."""
    import copy
    import dataclasses

    if run.table is None:  # no schema: data.missing would reach the features' gaps too
        return run
    cfg = copy.deepcopy(run.config)
    cfg.data.missing = "drop"
    return dataclasses.replace(run, config=cfg)


def labelled_split(args: argparse.Namespace, run, split: str, limit: int | None = None) -> tuple:
    """(the first ``limit`` items of the ``split`` of --data (default: the run's own data) as the run takes them,
    their class names or None), a table's labels read from --label-column (``label_column``): a column the run
    does not model, so not scored, where a run trained without labels would refuse it as an extra column."""
    from ..evaluation.outputs import prepared_split

    column = label_column(args, run)
    try:
        return prepared_split(run, args.data, split, limit, label_column=column)
    except VaekitError as e:  # a column the run does not model: the labels, maybe, named as it asks
        if column is None and "(extra " in str(e):
            raise VaekitError(f"{e}; to read one as the labels, name it: --label-column") from None
        raise


def label_column(args: argparse.Namespace, run) -> str | None:
    """The label column --label-column names in the table file --data (default: the run's own data), for a run
    trained without labels (a column it does not model), else None."""
    from pathlib import Path

    from ..data.csv_text import is_table_file

    column = args.label_column
    if column is None:
        return None
    if not column.strip() or not is_table_file(Path(args.data or run.config.data.spec or "")):
        raise VaekitError(f"--label-column {column!r}: names a column of a table file (.csv, .tsv) given as --data")
    if run.model.needs_labels:
        raise VaekitError(
            f"--label-column {column!r}: this run is conditional and reads its labels from its own label column"
        )
    return column.strip()
