"""``vaekit anomaly`` and ``vaekit anomaly-eval`` on a multi-scale detector's folder (``VAEAnomalyDetector``'s
``out``: scales.json beside a run per scale), and the pieces both scoring verbs share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import VaekitError, is_seed
from ..evaluation.score_names import SETTINGS
from ..io import printable
from .verbs import in_run

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

# vaekit anomaly's --out, its columns in order (evaluation.outputs.write_scores)
SCORES_CSV = (
    "scores .csv: index (each item's row in its file), label (labelled data), a column per score, outlier "
    "(--contamination), col:<name> per table column and worst_column (--columns), class_name (where the labels have "
    "names), file (a photo folder's)"
)


def normal_labels(text: str, classes: list[str] | None, where: str, present: list[int]) -> Tensor:
    """The labels --normal lists (comma-separated class names of the data ``where``, or numbers) as a tensor: each a
    class of the data (named in ``classes``, else one of the labels ``present``), some of them ``present``."""
    import torch

    from ..data.core import label_number

    labels, known = [], range(len(classes)) if classes else present
    names = ", ".join(classes[k] if classes else str(k) for k in known)
    for v in (v.strip() for v in text.split(",") if v.strip()):
        label = label_number(v, classes)
        if label is None or label not in known:
            raise VaekitError(f"--normal {v!r}: not a class of {where}; its classes are {names}")
        labels.append(label)
    if not labels:
        raise VaekitError(f"--normal {text!r}: name at least one class")
    if not set(labels) & set(present):
        raise VaekitError(f"--normal {text}: no item of {where} is of these classes")
    return torch.tensor(labels)


def normal_rows(y: Tensor, normal: Tensor, limit: int | None) -> list[Tensor]:
    """The positions of the first ``limit`` items whose label y (N,) is one of ``normal``, then of the others'."""
    import torch

    mask = torch.isin(y, normal)
    return [torch.nonzero(m).flatten()[:limit] for m in (mask, ~mask)]


def print_metrics(s_in: dict[str, np.ndarray], s_out: dict[str, np.ndarray], as_json: bool = False) -> None:
    """The table of AUROC, AUPRC and FPR at 95% TPR of each score, in-distribution items against anomalous ones;
    ``as_json``: {"n_in", "n_out", "scores": {score: {"auroc", "auprc", "fpr95"}}} instead."""
    import json

    from ..evaluation.scores import detection_metrics

    n_in, n_out = (len(next(iter(s.values()))) for s in (s_in, s_out))
    metrics = {name: detection_metrics(s_in[name], s_out[name]) for name in s_in}
    if as_json:
        print(json.dumps({"n_in": n_in, "n_out": n_out, "scores": metrics}, indent=2))
        return
    print(f"{n_in} in-distribution vs {n_out} out-of-distribution items (higher score = anomalous)")
    print("| score | AUROC | AUPRC | FPR@95%TPR |\n|---|---|---|---|")
    for name, m in metrics.items():
        print(f"| {name} | {m['auroc']:.4f} | {m['auprc']:.4f} | {m['fpr95']:.4f} |")


def scored(args: argparse.Namespace, *xs: Tensor) -> list[dict[str, np.ndarray]]:
    """The folder's scores of each set of items in ``xs`` (N, C, H, W) by the method and settings it was fitted
    with: --score and each setting given must agree with them."""
    from ..evaluation.detector_folder import folder_scores, record

    if not is_seed(args.seed):  # the detector's random_state
        raise VaekitError(f"--seed must be in [0, 2**32), got {args.seed}")
    method, fitted = (record(args.run)[k] for k in ("method", "settings"))
    file = in_run(args.run, "scales.json")
    score = ",".join(v.strip() for v in args.score.split(",") if v.strip()) if args.score else method
    if score != method:
        raise VaekitError(f"--score {score}: {file} standardises {method} scores; score by --score {method}")
    for key, s in SETTINGS.items():
        value = getattr(args, key)  # None: not given
        if value not in (None, fitted.get(key, s.default)):
            said = f"of {key}={fitted[key]}" if key in fitted else f"that do not read {key}"
            raise VaekitError(f"--{key.replace('_', '-')} {value}: {file} standardises {method} scores {said}")
    return folder_scores(args.run, xs, args.seed, args.batch_size)


def no_label_column(args: argparse.Namespace) -> None:
    """Refuse --label-column for a detector's folder: it reads a table's columns as it fitted them (folder_items)."""
    if args.label_column is not None:
        raise VaekitError(
            f"--label-column {args.label_column}: {args.run} holds a multi-scale detector, which "
            "reads a table's columns as it was fitted on them: leave it out"
        )


def detector_anomaly(args: argparse.Namespace) -> None:
    """``vaekit anomaly DIR --data SPEC`` for a detector's folder: every item of SPEC in file order -> --out."""
    from ..evaluation.detector_folder import folder_items
    from ..evaluation.outputs import write_scores

    said = f"{args.run} holds a multi-scale detector (scales.json), trained on data passed in memory"
    if args.contamination is not None:
        raise VaekitError(f"--contamination: {said}, so no training items here set a threshold; leave it out")
    if args.split not in (None, "all"):
        raise VaekitError(f"--split {args.split}: {said}, with no split of its own; score --split all")
    no_label_column(args)
    s = folder_items(args.run, args.data, args.limit)
    scores = scored(args, s.x)[0]
    n = write_scores(args.out, scores, s.y, s.classes, s.files, s.rows)
    how = f"{', '.join(scores)}; higher = more anomalous"
    print(f"{n} items of {printable(args.data)} scored ({how}) -> {printable(args.out)}")


def detector_eval(args: argparse.Namespace) -> None:
    """``vaekit anomaly-eval DIR`` for a detector's folder: --in and --ood, or --data with --normal."""
    import torch

    from ..evaluation.detector_folder import folder_items

    if args.split not in (None, "all"):
        raise VaekitError(f"--split {args.split}: {args.run} holds a multi-scale detector, with no split of its own")
    no_label_column(args)
    if args.data is not None and args.normal is not None and not (args.inliers or args.ood):
        s = folder_items(args.run, args.data)
        if s.y is None:
            raise VaekitError(f"{args.data}: has no labels for --normal")
        normal = normal_labels(args.normal, s.classes, args.data, torch.unique(s.y).tolist())
        x_in, x_out = (s.x[r] for r in normal_rows(s.y, normal, args.limit))
    elif args.inliers and args.ood and args.data is None and args.normal is None:
        x_in, x_out = (folder_items(args.run, spec, args.limit).x for spec in (args.inliers, args.ood))
    else:
        raise VaekitError(
            f"anomaly-eval: {args.run} holds a multi-scale detector: name --in and --ood, or --data with --normal"
        )
    if len(x_in) == 0 or len(x_out) == 0:
        raise VaekitError(f"anomaly-eval: {len(x_in)} in-distribution and {len(x_out)} anomalous items; need both")
    s_in, s_out = scored(args, x_in, x_out)
    print_metrics(s_in, s_out, args.json)
