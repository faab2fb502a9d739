"""The evaluation and picture verbs: evaluate, interpolate, traverse, latent-map (curves and report: ``report``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING

from .. import files
from ..errors import VaekitError
from ..io import printable
from .examples import EXAMPLES
from .reading import SET, reading
from .verbs import arg, at_least, count, data_arg, ints, out_path, positive, seed, split_arg, unknown_arg, verb

if TYPE_CHECKING:
    from ..data import Dataset, Split
    from ..runs import LabelsLike, Run


def common(out: str | None, seed: bool = False) -> list:
    """The arguments every verb on a run's data takes (--seed: those that draw at random, the report; the others
    take split all, every item of a --data file in file order, as their default for a file not the run's own)."""
    return [
        arg("run", help="run folder"),
        data_arg("trained" if seed else "grey"),
        split_arg(),
        *([arg("--seed", type=count, default=0, help="seed of the random draws (default 0)")] if seed else []),
        *([arg("--out", help=f"output file (default: RUN/{out})")] if out else []),
        SET,
    ]


def load(args: argparse.Namespace, limit: int | None = None, run: Run | None = None):
    """(run, data, mode, split) for a command (``run``: the run folder's, loaded already); the split's items are
    checked against the model's input shape. Split all (the default for a file other than the run's own,
    ``default_split``) is every item in file order, the test split of ``every_item_data``'s Dataset."""
    import torch

    from ..data.prepare import prepare_data, same_spec
    from ..evaluation.eval_items import scored_config
    from ..evaluation.metrics import pick_split
    from ..evaluation.outputs import default_split, every_item_data, note_changed_data
    from ..runs import Run

    run = run or Run.load(args.run, args.device)
    args.split = args.split or default_split(run.config, args.data)
    if args.split == "all":  # checked and binarised as training would, labels numbered as the run numbers them
        data, mode = every_item_data(run, args.data, limit), "none"
        split = data.test
    else:
        data, mode = prepare_data(scored_config(run.config, args.data), args.data, stream=True)  # a .npy: mapped
        if args.data is None or same_spec(args.data, run.config.data.spec):  # the run's own data, read again
            note_changed_data(run, data)
        split = pick_split(data, args.split, limit)
        run.check_items(split.x)
    torch.manual_seed(getattr(args, "seed", 0))  # a verb without --seed draws nothing at random
    return run, data, mode, split


def grey_items(args: argparse.Namespace) -> tuple[Run, Split, list[str] | None]:
    """(run, the split's items as given: a binarised run's grey, in [0, 1], as ``run.encode`` takes them, no draw;
    its class names) for the picture verbs, labels numbered as the run's; a split not named is ``default_split``."""
    import torch

    from ..evaluation.outputs import default_split, prepared_split
    from ..runs import Run

    run = reading(args, Run.load(args.run, args.device), args.data)
    args.split = args.split or default_split(run.config, args.data)
    s, classes = prepared_split(run, args.data, args.split, binarized=False)
    run.check_items(s.x)
    torch.manual_seed(0)  # as ``load``: a flow posterior's means are estimated from draws
    return run, s, classes


def labels(run, split, idx):
    return None if split.y is None or not run.model.needs_labels else split.y[idx]


@verb(
    "evaluate",
    "ELBO, IWAE NLL, bits/dim, KL per dim, active units, probe -> RUN/eval.json",
    arg("run", help="run folder"),
    data_arg("trained", "; the figures of other data go to RUN/eval-DATA-SPLIT.json: eval.json keeps the run's own"),
    split_arg(),
    arg("--seed", type=count, default=0, help="seed of the random draws (default 0)"),
    arg("--iw-samples", type=count, default=1000, help="K of the importance-weighted bound"),
    arg("--limit", type=count, help="evaluate only the first N items of the split"),
    arg("--json", action="store_true", help="print eval.json"),
    unknown_arg(),
    SET,
    examples=EXAMPLES["evaluate"],
)
def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..data.table_cells import unknown_categories
    from ..evaluation.eval_files import data_path
    from ..evaluation.metrics import evaluate, write_eval

    seed(args.seed)
    with unknown_categories(args.unknown):  # a table's category the run never saw: refused, or read as a gap
        run, data, mode, own = evaluated_data(args)  # evaluate refuses a K below 1 (--iw-samples)
    whole = args.split == "all"  # every item: the test split of ``data``, its limit applied already
    with run.writing(), unknown_categories(args.unknown):  # a folder being written: refused before the work
        limit = None if whole else args.limit
        if sys.stderr.isatty():  # a terminal is told what the silent minutes are for
            n = len(getattr(data, "test" if whole else args.split))
            print(
                f"evaluating {min(n, limit or n)} items, the IWAE bound with K = {args.iw_samples} each ...",
                file=sys.stderr,
                flush=True,
            )
        where = f"{data.name} ({args.split} split)"  # split all: every item, evaluate's test split
        split = "test" if whole else args.split
        result = evaluate(run, data, split, args.iw_samples, limit, args.seed, mode, where=where)
        result = {**result, "split": args.split} | ({} if own else {"path": data_path(args.data)})  # whose figures
        path = write_eval(run, result, own)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    probe, au = result["probe_accuracy"], result["active_units"]["total"]
    probe = f"n/a ({no_probe(data, args.split, result['n'])})" if probe is None else probe
    codes = (  # a codebook's (VQ) usage beside its active units
        f"  codes used {result['codes_used']} of {result['codebook_size']} (perplexity "
        f"{result['codebook_perplexity']:.3g})"
        if "codes_used" in result
        else ""
    )
    print(
        f"{result['data']} ({result['split']} split): n {result['n']}  elbo {result['elbo']:.3f}  nll(K="
        f"{result['k']}) {result['nll']:.3f}  bits/dim {result['bits_per_dim']:.4f}  active units "
        f"{'n/a (one item)' if au is None else au}{codes}  probe {probe}  -> {printable(path)}"
    )


def no_probe(data: Dataset, split: str, n: int) -> str:
    """Why ``evaluate`` has no probe accuracy on ``split`` (n items) of ``data``: one item, no labels, labels of
    one class (nothing for a probe to tell apart), or split all (the probe's training items among those scored)."""
    y = data.test.y if split == "all" else getattr(data, split).y
    if n < 2:
        return "one item"
    if y is None or (split != "all" and data.train.y is None):
        return "no labels"
    return "split all" if split == "all" and len(y.unique()) > 1 else "one class"


def evaluated_data(args: argparse.Namespace) -> tuple[Run, Dataset, str, bool]:
    """(run, the data ``evaluate`` scores, its binarisation mode, whether it is the run's own data); a split not
    named is set (``default_split``); split all is ``outputs.every_item_data``."""
    from ..data.prepare import same_spec
    from ..evaluation.outputs import default_split, every_item_data
    from ..runs import Run

    run = reading(args, Run.load(args.run, args.device), args.data)
    own = args.data is None or same_spec(args.data, run.config.data.spec)
    args.split = args.split or default_split(run.config, args.data)
    if args.split != "all":
        return (*load(args, args.limit, run)[:3], own)
    data = every_item_data(run, args.data, args.limit)
    return run, data, "none", own  # "none": prepared already, drawn once as in training


@verb(
    "interpolate",
    "decode lerp and slerp paths between two items' posterior means (items as given: a binarised run's grey)",
    *common(files.INTERPOLATION),
    arg("--items", default="0,1", help="two indices in the split (all: places in file order), e.g. 3,17"),
    arg(
        "--steps",
        type=count,
        default=10,
        help="points on each path, both end points included; a gumbel or vq run's points are snapped to codes "
        "(one-hots of the most probable categories, the nearest codebook vectors)",
    ),
    examples=EXAMPLES["interpolate"],
)
def cmd_interpolate(args: argparse.Namespace) -> None:
    from ..viz.figures import interpolate, save_interpolation
    from ..viz.plots import check_line, stamped, table_columns

    out, steps = out_path(args, files.INTERPOLATION), at_least(args.steps, 2, "--steps", "the two end points")
    check_line(steps, "--steps")
    run, split, _ = grey_items(args)  # grey, as vaekit.interpolate takes them
    items = ints(args.items, "--items")
    if len(items) != 2 or any(not 0 <= i < len(split) for i in items):
        raise VaekitError(f"--items {args.items}: expected two indices in 0..{len(split) - 1}")
    x = split.x[items]
    with stamped(run.digest):
        save_interpolation(x, interpolate(run, x, steps, labels(run, split, items)), out, table_columns(run))
    print(f"interpolation written to {printable(out)}")


@verb(
    "traverse",
    "latent traversals: dims x values around a base code (items as given: a binarised run's grey)",
    *common(files.TRAVERSALS),
    arg("--dims", help="e.g. 0,3,5 (default: the --n-dims most active)"),
    arg("--n-dims", type=count, help="how many dims to traverse (default: 8, at most the latent size)"),
    arg("--range", type=float, default=3.0, help="values from -R to R"),
    arg("--steps", type=count, default=9, help="values from -R to R, both included"),
    arg(
        "--item",
        type=count,
        help="base code: the posterior mean of this item, any index of the split (default: zeros; a deep run: "
        "item 0, as zeros mean nothing in its conditional hierarchy)",
    ),
    arg(
        "--label",
        help="conditional runs: the class decoded (its prior's, without --item), by its name as vaekit sample takes "
        "it (default: the label of --item, else of the split's first item)",
    ),
    examples=EXAMPLES["traverse"],
)
def cmd_traverse(args: argparse.Namespace) -> None:
    from ..viz.figures import save_traversal, traversals
    from ..viz.latent_walks import ranked_dims
    from ..viz.plots import check_line, stamped, table_columns

    out, steps = out_path(args, files.TRAVERSALS), at_least(args.steps, 2, "--steps", "-R and R")
    check_line(steps, "--steps")
    if not (math.isfinite(args.range) and args.range > 0):
        raise VaekitError(f"--range must be a finite number > 0, got {args.range}")
    dims = ints(args.dims, "--dims") if args.dims else None
    n_dims = None if args.n_dims is None else check_line(positive(args.n_dims, "--n-dims"), "--n-dims")
    check_line(len(dims or []), "--dims")
    run, split, _ = grey_items(args)  # grey; --item: any item of the split; the dims are ranked on its first 2000
    if args.label is not None and not run.model.needs_labels:
        raise VaekitError("--label: this run is not conditional: its traversals take no label")
    item = 0 if args.item is None and run.config.model.family == "deep" else args.item
    y = labels(run, split, slice(None))
    dims = dims or ranked_dims(run, split, y, n_dims, args.data, args.split)  # as evaluate and the report rank them
    xs, dims, values = traversals(run, split.x, y, dims, n_dims, args.range, steps, item, 2000, args.label)
    with stamped(run.digest):
        save_traversal(xs, dims, values, out, table_columns(run))  # a table's lines named by its columns
    said = "" if y is None else decoded_as(run, y[item or 0] if args.label is None else args.label)
    print(f"traversals of dims {dims}{said} written to {printable(out)}")


def decoded_as(run: Run, label: LabelsLike) -> str:
    """The words ", decoded as class NAME" of a conditional run's ``label`` (a number, name or (1,) tensor)."""
    number = int(y[0]) if (y := run.labels(label, 1)) is not None else 0
    return f", decoded as class {run.classes[number] if run.classes else number}"


@verb(
    "latent-map",
    "posterior means of items as given (a binarised run's grey) coloured by label (+ decoded manifold for 2-D latents)",
    *common(files.LATENT_MAP),
    arg(
        "--limit",
        type=count,
        default=2000,
        help="N items drawn at random from the split, seeded by the run's train.seed (the same each time; default "
        "2000)",
    ),
    arg("--grid", type=count, default=15, help="decoded manifold: GRID x GRID codes (2-D latents)"),
    examples=EXAMPLES["latent-map"],
)
def cmd_latent_map(args: argparse.Namespace) -> None:
    from ..evaluation.outputs import seeded_subset
    from ..viz.latent_maps import latent_map
    from ..viz.plots import check_line, stamped

    out = out_path(args, files.LATENT_MAP)
    at_least(args.grid, 2, "--grid", "a manifold spans its corners")  # before the data is read
    check_line(args.grid, "--grid")  # a row of the decoded manifold, as interpolate's and traverse's steps
    positive(args.limit, "--limit")
    run, s, classes = grey_items(args)  # grey, as run.encode takes them
    shown = seeded_subset(s, args.limit, run.config.train.seed)  # not the first N: a file sorted by class
    with stamped(run.digest):
        latent_map(run, shown.x, shown.y, out, args.grid, classes)
    print(f"latent map of {len(shown)} of {len(s)} items ({args.split} split) written to {printable(out)}")
