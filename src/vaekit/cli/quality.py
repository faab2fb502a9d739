"""The sample-quality verb: FID, KID, precision and recall of a run's samples, beside the data-vs-data values."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import VaekitError
from ..io import printable
from .verbs import arg, positive, seed, verb


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
        type=int,
        help="items per set (default: half the split); table runs: rows drawn (default: as many as the training "
        "split, no cap)",
    ),
    arg("--data", help="data spec (default: the run's own data)"),
    arg("--split", default="test", choices=["val", "test"]),
    arg(
        "--seed",
        type=int,
        default=0,
        help="seed of the samples, the halves of the split and the KID subsets (default 0)",
    ),
    arg(
        "--target",
        help="table runs: the column train-on-synthetic predicts (default: the last categorical; none: skip it)",
    ),
    arg("--feature-steps", type=int, help="training steps of the domain feature network (default 1500)"),
    arg("--json", action="store_true", help="print the result as JSON"),
)
def cmd_quality(args: argparse.Namespace) -> None:
    from .. import files
    from ..evaluation.features import class_accuracy_line
    from ..evaluation.quality_run import quality, quality_rows
    from ..runs import Run
    from ..samplers import fit_sampler, sampler_for

    steps: dict[str, Any] = {}
    run: str | Run = args.run
    seed(args.seed)  # before the domain network's minutes
    if args.refit:
        if args.sampler is None:
            raise VaekitError(
                "--refit fits a --sampler again, and none was given: add --sampler gmm, two-stage or flow"
            )
        run = Run.load(args.run)
        sampler_for(run, args.sampler)  # a sampler that cannot draw for this run is named before minutes of fitting
        fit_sampler(run, args.sampler, refit=True)
    if args.feature_steps is not None:
        steps["steps"] = positive(args.feature_steps, "--feature-steps")
    result = quality(
        run,
        features=args.features,
        sampler=args.sampler,
        n=None if args.n is None else positive(args.n, "--n"),
        data=args.data,
        split=args.split,
        seed=args.seed,
        target=args.target,
        **steps,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if result.get("kind") == "table":  # a table's own measures
        from ..evaluation.table_quality import table_quality_lines, table_quality_rows

        first, *rest = table_quality_lines(result)
        print(first, "| column | kind | distance | score |\n|---|---|---|---|", sep="\n")
        for row in table_quality_rows(result):
            print(f"| {row['column']} | {row['kind']} | {row['distance']} | {row['score']:.3f} |")
        print(*rest, f"-> {printable(args.run)}/{files.QUALITY}", sep="\n")
        return
    print(
        f"{result['data']} {result['split']} split, {result['n']} items per set, {result['features']['kind']} features"
    )
    print("| samples | FID | KID | precision | recall |\n|---|---|---|---|---|")
    for row in quality_rows(result):
        print(
            f"| {row['samples']} | {row['fid']:.4g} | {row['kid']:.4g} | {row['precision']:.3f} | {row['recall']:.3f} |"
        )
    if line := class_accuracy_line(result):  # a conditional run's samples on the domain classifier
        print(line)
    print(f"-> {printable(args.run)}/{files.QUALITY}")
