"""The sample-quality verb: FID, KID, precision and recall of a run's samples, beside the data-vs-data values."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..errors import VaekitError
from ..io import printable
from .reading import SET, reading
from .verbs import arg, count, data_arg, in_run, positive, seed, temperatures, unknown_arg, verb

if TYPE_CHECKING:
    from ..runs import Run


@verb(
    "quality",
    "FID, KID, precision and recall of the samples, with the data-vs-data yardstick -> RUN/quality.json",
    arg("run", help="run folder"),
    arg(
        "--features",
        default="domain",
        help="domain (a classifier trained on the data's labelled training split, cached in $VAEKIT_CACHE or "
        "~/.cache/vaekit) or the path of an Inception-v3 weights file (torch-fidelity's); the domain network and "
        "the real items follow the run's split (its --seed and --limit): compare runs trained alike, or pass one "
        "FILE to all; table runs use none",
    ),
    arg(
        "--sampler",
        help="draw codes from a post-hoc sampler (gmm, two-stage, flow) instead of the prior, with its default "
        "settings or the one saved in RUN (vaekit.fit_sampler in Python for others; the flow's 3000 steps can "
        "take minutes on a CPU)",
    ),
    arg("--refit", action="store_true", help="fit the --sampler again even if RUN holds one"),
    arg(
        "--n",
        type=count,
        help="items per set (default: half the split); table runs: rows drawn (default: as many as the real rows "
        "compared, the training split's or every row of other --data; no cap)",
    ),
    data_arg(
        "grey",
        "; figures of other data go to RUN/quality-DATA-SPLIT.json: quality.json keeps the run's own; a table run "
        "compares its rows with every row of another file (split all)",
    ),
    arg(
        "--split",
        default="test",
        choices=["val", "test"],
        help="the held-out items compared with the samples (not train or all: the domain features are fitted on the "
        "training split); a table run: the rows train-on-synthetic is tested on (other --data: a seeded 30%% of it)",
    ),
    arg(
        "--seed",
        type=count,
        default=0,
        help="seed of the samples, the halves of the split and the KID subsets (default 0)",
    ),
    arg(
        "--target",
        help="table runs: the column train-on-synthetic predicts (default: a conditional run's labels, else the last "
        "categorical column of 2 to 20 classes; none: skip it)",
    ),
    arg(
        "--temperature",
        type=temperatures,
        default=1.0,
        help="scales the prior's spread of the samples measured: a number, or for a deep run one per resolution, "
        "top first (recorded in quality.json; not with --sampler or a table run)",
    ),
    arg("--feature-steps", type=count, help="training steps of the domain feature network (default 1500)"),
    unknown_arg(),
    SET,
    arg("--json", action="store_true", help="print the result as JSON"),
)
def cmd_quality(args: argparse.Namespace) -> None:
    from .. import files
    from ..data.table_cells import unknown_categories
    from ..evaluation.features import class_accuracy_line
    from ..evaluation.quality_run import quality, quality_rows, write_quality
    from ..evaluation.table_quality import own_data, write_table_quality
    from ..runs import Run
    from ..samplers import fit_sampler, sampler_for

    steps: dict[str, Any] = {}
    run = reading(args, Run.load(args.run, args.device), args.data)
    seed(args.seed)  # before the domain network's minutes
    if args.refit:
        if args.sampler is None:
            raise VaekitError(
                "--refit fits a --sampler again, and none was given: add --sampler gmm, two-stage or flow"
            )
        sampler_for(run, args.sampler)  # a sampler that cannot draw for this run is named before minutes of fitting
        fit_sampler(run, args.sampler, refit=True)
    if args.feature_steps is not None:
        steps["steps"] = positive(args.feature_steps, "--feature-steps")
    other = args.data is not None and not own_data(run, None, args.data)  # other data's figures: their own file
    with unknown_categories(args.unknown):  # a table's other --data: a category the run never saw
        result = quality(
            run,
            features=args.features,
            sampler=args.sampler,
            n=None if args.n is None else positive(args.n, "--n"),
            data=args.data,
            split=args.split,
            seed=args.seed,
            target=args.target,
            temperature=args.temperature,
            write=not other,  # figures of other data (their "path" in them): their own file, written below
            **steps,
        )
    where = in_run(args.run, files.QUALITY)
    if other:  # quality.json keeps the run's own figures
        write = write_table_quality if result.get("kind") == "table" else write_quality
        where = printable(write(run, result, own=False))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if result.get("kind") == "table":  # a table's own measures
        print_table_quality(run, result, args.target is None, where)
        return
    print(
        f"{result['data']} {result['split']} split, {result['n']} items per set, {result['features']['kind']} features"
        + ("" if result.get("temperature", 1.0) == 1.0 else f", samples at temperature {result['temperature']}")
    )
    print("| samples | FID | KID | precision | recall |\n|---|---|---|---|---|")
    for row in quality_rows(result):
        print(
            f"| {row['samples']} | {row['fid']:.4g} | {row['kid']:.4g} | {row['precision']:.3f} | {row['recall']:.3f} |"
        )
    if line := class_accuracy_line(result):  # a conditional run's samples on the domain classifier
        print(line)
    print(f"-> {where}")


def print_table_quality(run: Run, result: dict, picked: bool, where: str) -> None:
    """A table run's figures: each column's distance and score, the overall ones, train-on-synthetic and, where
    its target was ``picked`` (no --target), which column it took and why, then the file written (``where``)."""
    from ..evaluation.table_quality import table_quality_lines, table_quality_rows

    first, *rest = table_quality_lines(result)
    print(first, "| column | kind | distance | score |\n|---|---|---|---|", sep="\n")
    for row in table_quality_rows(result):
        print(f"| {row['column']} | {row['kind']} | {row['distance']} | {row['score']:.3f} |")
    tstr = result.get("tstr") or {}
    if picked and tstr.get("target") is not None:
        why = _why_target(run, tstr.get("passed_over", {}))
        rest.append(f"TSTR target {tstr['target']!r}: {why} (--target names another, none leaves TSTR out)")
    elif picked and result.get("tstr_left_out"):
        rest[-1] += " (--target names a column)"
    print(*rest, f"-> {where}", sep="\n")


def _why_target(run: Run, passed_over: dict[str, int]) -> str:
    """Why train-on-synthetic took its default target: a conditional run's label column, else the last categorical
    column holding more than one value (a label column the run does not model said to be left aside) and at most
    ``MAX_CLASSES``, the columns of more (``passed_over``: {column: classes}) named."""
    from ..evaluation.table_quality import MAX_CLASSES

    if run.model.needs_labels:
        return "the run's label column"
    label = run.table.label if run.table is not None else None
    aside = f", the label column {label!r} not being modelled by this run" if label else ""
    many = ", ".join(f"{k!r} ({n})" for k, n in passed_over.items())
    more = f"; passed over for more than {MAX_CLASSES} classes (an accuracy near chance): {many}" if many else ""
    return f"the last categorical column holding more than one value{aside}{more}"
