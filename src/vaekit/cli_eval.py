"""The evaluation and picture verbs of the command line: evaluate, interpolate, traverse, latent-map, curves, report."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .errors import VaekitError


def _common(p: argparse.ArgumentParser, out: str | None) -> None:
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="data spec (default: the run's own data, prepared as in training)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--seed", type=int, default=0)
    if out:
        p.add_argument("--out", help=f"output file (default: RUN/{out})")


def add_parsers(sub) -> None:
    """Add the evaluation and picture sub-commands to the ``vaekit`` sub-parsers."""
    e = sub.add_parser("evaluate", help="ELBO, IWAE NLL, bits/dim, KL per dim, active units, probe -> RUN/eval.json")
    _common(e, None)
    e.add_argument("--iw-samples", type=int, default=1000, help="K of the importance-weighted bound")
    e.add_argument("--limit", type=int, help="evaluate only the first N items of the split")
    e.add_argument("--json", action="store_true", help="print eval.json")
    i = sub.add_parser("interpolate", help="decode lerp and slerp paths between two items' posterior means")
    _common(i, "interpolation.png")
    i.add_argument("--items", default="0,1", help="two indices in the split, e.g. 3,17")
    i.add_argument("--steps", type=int, default=10)
    t = sub.add_parser("traverse", help="latent traversals: dims x values around a base code")
    _common(t, "traversals.png")
    t.add_argument("--dims", help="e.g. 0,3,5 (default: the --n-dims most active)")
    t.add_argument("--n-dims", type=int, default=8)
    t.add_argument("--range", type=float, default=3.0, help="values from -R to R")
    t.add_argument("--steps", type=int, default=9)
    t.add_argument("--item", type=int, help="base code: this item's posterior mean (default: zeros)")
    m = sub.add_parser("latent-map", help="posterior means coloured by label (+ decoded manifold for 2-D latents)")
    _common(m, "latent-map.png")
    m.add_argument("--limit", type=int, default=2000)
    m.add_argument("--grid", type=int, default=15)
    c = sub.add_parser("curves", help="loss, reconstruction and KL curves from metrics.csv")
    c.add_argument("run")
    c.add_argument("--out", help="output file (default: RUN/curves.png)")
    r = sub.add_parser("report", help="one self-contained report.html in the run folder")
    _common(r, "report.html")
    r.add_argument("--iw-samples", type=int, default=100, help="K when the run has no eval.json yet")
    r.add_argument("--limit", type=int, default=1000)


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VaekitError(f"{flag} {text!r}: expected integers separated by commas") from None


def _positive(n: int, flag: str) -> int:
    if n <= 0:
        raise VaekitError(f"{flag} must be > 0, got {n}")
    return n


def _load(args: argparse.Namespace, limit: int | None = None):
    """(run, data, mode, split) for a command; the split's items are checked against the model's input shape."""
    import torch

    from .data import Split
    from .evaluate import _pick
    from .run import Run, prepare_data

    run = Run.load(args.run)
    data, mode = prepare_data(run.config, args.data)
    split = _pick(data, args.split, limit)
    run._check(split.x[:1])
    torch.manual_seed(args.seed)
    return run, data, mode, Split(split.x, split.y)


def _out(args: argparse.Namespace, default: str) -> Path:
    out = Path(args.out) if args.out else Path(args.run) / default
    if out.suffix.lower() != Path(default).suffix:
        raise VaekitError(f"--out {out}: expected a {Path(default).suffix} file name")
    return out


def _y(run, split, idx):
    return None if split.y is None or not run.model.needs_labels else split.y[idx]


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate, write_eval

    _positive(args.iw_samples, "--iw-samples")
    run, data, mode, _ = _load(args, args.limit)
    result = evaluate(run, data, args.split, args.iw_samples, args.limit, args.seed, mode)
    path = write_eval(run, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['split']}: n {result['n']}  elbo {result['elbo']:.3f}  nll(K={result['k']}) "
              f"{result['nll']:.3f}  bits/dim {result['bits_per_dim']:.4f}  active units "
              f"{result['active_units']['total']}  probe {result['probe_accuracy']}  -> {path}")


def cmd_interpolate(args: argparse.Namespace) -> None:
    from .figures import interpolate, save_interpolation

    out, steps = _out(args, "interpolation.png"), _positive(args.steps, "--steps")
    run, _, _, split = _load(args)
    items = _ints(args.items, "--items")
    if len(items) != 2 or any(not 0 <= i < len(split) for i in items):
        raise VaekitError(f"--items {args.items}: expected two indices in 0..{len(split) - 1}")
    x = split.x[items]
    save_interpolation(x, interpolate(run, x, max(2, steps), _y(run, split, items)), out)
    print(f"interpolation written to {out}")


def cmd_traverse(args: argparse.Namespace) -> None:
    import torch

    from .figures import encode_means, save_traversal, top_dims, traverse

    out, steps = _out(args, "traversals.png"), _positive(args.steps, "--steps")
    if not math.isfinite(args.range):
        raise VaekitError(f"--range must be a finite number, got {args.range}")
    run, _, _, split = _load(args, 2000)
    y = _y(run, split, slice(None))
    loc = encode_means(run, split.x, y)  # (N, D)
    dims = _ints(args.dims, "--dims") if args.dims else top_dims(loc.var(0), _positive(args.n_dims, "--n-dims"))
    if args.item is not None and not 0 <= args.item < len(split):
        raise VaekitError(f"--item {args.item}: expected an index in 0..{len(split) - 1}")
    base = loc[args.item] if args.item is not None else torch.zeros(loc.shape[1])
    values = torch.linspace(-args.range, args.range, steps)
    xs = traverse(run, base, dims, values, None if y is None else y[args.item or 0: (args.item or 0) + 1])
    save_traversal(xs, dims, values, out)
    print(f"traversals of dims {dims} written to {out}")


def cmd_latent_map(args: argparse.Namespace) -> None:
    from .figures import latent_map

    out = _out(args, "latent-map.png")
    _positive(args.grid, "--grid")
    run, data, _, split = _load(args, _positive(args.limit, "--limit"))
    latent_map(run, split.x, split.y, out, args.grid, data.classes)
    print(f"latent map written to {out}")


def cmd_curves(args: argparse.Namespace) -> None:
    from .plots import plot_losses
    from .run import METRICS

    metrics, out = Path(args.run) / METRICS, _out(args, "curves.png")
    if not metrics.is_file():
        raise VaekitError(f"{args.run}: no {METRICS} (not a run folder?)")
    plot_losses(metrics, out)
    print(f"curves written to {out}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report
    from .run import Run

    out = _out(args, "report.html")
    run = Run.load(args.run)
    path = write_report(run, args.data, args.split, _positive(args.iw_samples, "--iw-samples"),
                        _positive(args.limit, "--limit"), out)
    print(f"report written to {path}")


COMMANDS = {"evaluate": cmd_evaluate, "interpolate": cmd_interpolate, "traverse": cmd_traverse,
            "latent-map": cmd_latent_map, "curves": cmd_curves, "report": cmd_report}
