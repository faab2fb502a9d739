"""The verbs that read a run whole: curves (its metrics.csv) and report (one self-contained page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import files
from ..errors import VaekitError
from ..io import printable
from .evaluate import common
from .examples import EXAMPLES
from .reading import reading
from .verbs import arg, count, out_path, seed, verb


@verb(
    "curves",
    "loss, reconstruction and KL curves from metrics.csv",
    arg("run"),
    arg("--out", help=f"output file (default: RUN/{files.CURVES})"),
    examples=EXAMPLES["curves"],
)
def cmd_curves(args: argparse.Namespace) -> None:
    from ..run_reads import weights_digest
    from ..runs import Run
    from ..viz.curves import plot_losses
    from ..viz.plots import stamped

    metrics, out = Path(args.run) / files.METRICS, out_path(args, files.CURVES)
    if not metrics.is_file() and not (Path(args.run) / files.SCALES).is_file():  # a detector: loading says so
        started = (Path(args.run) / files.CONFIG).is_file()  # a run that has not finished its first epoch
        why = "the run has not finished an epoch yet" if started else "not a run folder?"
        raise VaekitError(f"{args.run}: no {files.METRICS} ({why})")
    digest = weights_digest(Path(args.run))  # curves.png records it, as other pictures do: no model built
    with stamped(digest if digest is not None else Run.load(args.run).digest):
        plot_losses(metrics, out)
    print(f"curves written to {printable(out)}")


@verb(
    "report",
    "one self-contained report.html in the run folder (report-DATA-SPLIT.html of other --data)",
    *common(None, seed=True),
    arg("--out", help=f"output file (default: RUN/{files.REPORT}; RUN/report-DATA-SPLIT.html of other --data)"),
    arg(
        "--iw-samples",
        type=count,
        help="K of the importance-weighted bound (default 100). RUN/eval.json (RUN/eval-DATA-SPLIT.json of other "
        "--data) is shown instead when it holds these weights, data and split: of any K, items and seed, or given "
        "K, of at least K, at least --limit items and --seed",
    ),
    arg("--limit", type=count, default=1000, help="evaluate the first N items of the split (default 1000)"),
    examples=EXAMPLES["report"],
)
def cmd_report(args: argparse.Namespace) -> None:
    from ..evaluation.outputs import default_split
    from ..runs import Run
    from ..viz.report import write_report

    out = None if args.out is None else out_path(args, files.REPORT)  # none: write_report names it
    seed(args.seed)
    run = reading(args, Run.load(args.run, args.device), args.data)
    args.split = args.split or default_split(run.config, args.data)  # every item of a file not the run's own
    # write_report checks K and the limit; --seed seeds the evaluation and the pictures
    path = write_report(run, args.data, args.split, args.iw_samples, args.limit, out, seed=args.seed)
    print(f"report written to {printable(path)}")
