"""The deep hierarchy's GPU preset (configs/deep-fashion-gpu.toml: 8-bit Fashion-MNIST, discretized logistic
mixture) trained within a wall-clock budget on one device, then evaluated: test NLL and bits/dim (IWAE bound),
training images per second, peak memory, the time the training took, and how flat the validation curve is at
its end (the convergence check). Samples at temperatures 1.0 and 0.8 go to --figure.

    python benchmarks/deep_gpu.py --epochs 30 --json benchmarks/results/deep_gpu.json   # the page, on a GPU
    python benchmarks/deep_gpu.py --minutes 4           # as many of the preset's epochs as 4 minutes hold
    python benchmarks/deep_gpu.py --quick               # a CPU smoke run

Without --epochs the preset's cosine schedule runs over as many epochs as the budget holds (at most the preset's
own): a probe, two epochs on a slice of the data with the eager step, gives the seconds an epoch takes, so the
learning rate reaches its end as the budget does rather than being cut off mid-schedule. The KL warm-up shrinks
with the epochs (the preset's 5 of 100, as it then was, had taken 5 of the 7 epochs an H200 held in 4 minutes;
it is now 2 of 30), and the step is compiled or CUDA-graphed only where the steps after the warm-up (which runs
eagerly) repay it (``train.compile`` auto).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import common
import runner
import torch
from families import test_split

from vaekit.api import train
from vaekit.config import RunConfig, TrainConfig, load_toml, set_value
from vaekit.evaluation.metrics import bits_per_dim, iwae_nll
from vaekit.runs import Run
from vaekit.training import capture
from vaekit.viz.plots import save_samples

ROOT = Path(__file__).resolve().parents[1]
PROBE_BATCHES = 30  # batches per probe epoch
MARGIN, EXTRA_S = 1.15, 1.0  # an epoch's validation, EMA and checkpoints beside its training seconds
START_S = 10.0  # the full run's start: its data and model (the probe has timed them once)


def config(args: argparse.Namespace, out: Path, epochs: int | None, **extra: object) -> RunConfig:
    """The preset with the benchmark's settings (seed 0, device, no progress bar) and ``extra`` over it;
    ``epochs`` None keeps the preset's."""
    cfg = RunConfig.from_dict(load_toml(ROOT / "configs" / args.preset))
    settings = {"train.seed": 0, "train.progress": False, "train.device": args.device, "data.limit": args.limit}
    for key, value in {**settings, **given(args), **extra}.items():
        set_value(cfg, key, value)
    cfg.train.epochs, cfg.out = epochs or cfg.train.epochs, str(out)
    return cfg


def plan(args: argparse.Namespace, out: Path) -> tuple[int, dict, str]:
    """(epochs, settings of the full run, probe facts): the epochs that fit ``args.minutes``, with the preset's
    KL warm-up shrunk in proportion (2 of its 30 epochs stay a fifteenth of a shorter run; one given by ``--set`` is
    kept) and the step mode chosen for the steps the shortened run can compile (a balanced warm-up's run
    eagerly)."""
    preset = config(args, out / "probe", None)
    n, kept = preset.data.limit or 60000, 1 - preset.data.val_fraction  # Fashion-MNIST's training images
    steps, t = int(kept * n) // preset.train.batch_size, preset.train
    epochs, probe = args.epochs or t.epochs, "not run (--epochs)"
    if not args.epochs:
        second, probe_s = probe_step(args, out, n, kept, t.batch_size)
        epoch = MARGIN * second * steps + EXTRA_S
        epochs = max(1, min(t.epochs, math.floor((args.minutes * 60 - probe_s - START_S) / epoch)))
        print(f"probe: {probe_s:.0f} s, {1000 * second:.1f} ms an eager step; {epochs} epochs of ~{epoch:.1f} s")
        probe = f"{probe_s:.0f} s, {1000 * second:.1f} ms an eager training step"
    kept_warmup = not t.warmup_epochs or "train.warmup_epochs" in given(args)
    warmup = t.warmup_epochs if kept_warmup else max(1, round(t.warmup_epochs * epochs / t.epochs))
    mode = capture.choose(
        t.compile, torch.device(args.device), capture.compilable_steps(epochs, warmup, t.kl_balance, steps)
    )
    return epochs, {"train.compile": mode, "train.warmup_epochs": warmup}, probe


def probe_step(args: argparse.Namespace, out: Path, n: int, kept: float, batch_size: int) -> tuple[float, float]:
    """(seconds a training step takes, seconds the probe took): two eager epochs of ``PROBE_BATCHES`` batches."""
    start = time.perf_counter()
    limit = min(n, PROBE_BATCHES * batch_size * 10 // 9 + 1)
    probed = train(
        config(args, out / "probe", 2, **{"data.limit": limit, "train.compile": "off"}), overwrite=True, pictures=False
    )
    second = probed.history[-1]["seconds"] / max(1, int(kept * limit) // batch_size)
    return second, time.perf_counter() - start


def curve_note(rows: list[dict], shape: tuple[int, ...]) -> str:
    """The validation bits/dim at a quarter, half, three quarters and the end of the run (EMA weights)."""
    marks = sorted({max(0, math.ceil(f * len(rows)) - 1) for f in (0.25, 0.5, 0.75, 1.0)})
    parts = [f"epoch {i + 1}: {bits_per_dim(float(rows[i]['val_loss']), shape):.4f}" for i in marks]
    tail = rows[-max(2, len(rows) // 10) :]
    drop = bits_per_dim(float(tail[0]["val_loss"]) - float(tail[-1]["val_loss"]), shape)
    return (
        f"Validation bits/dim (-ELBO, EMA weights) {', '.join(parts)}; over the last {len(tail)} epochs it fell "
        f"by {drop:.4f} bits/dim (the convergence check: the cosine schedule ends at learning rate 0)."
    )


def epochs_table(rows: list[dict], shape: tuple[int, ...]) -> dict:
    """Each epoch's training seconds (the first holds the step's compile or capture), images/s and validation
    bits/dim: where the time went and how the curve flattens."""
    return common.table(
        "each epoch: training seconds, training images/s, validation bits/dim (-ELBO, EMA weights)",
        ["epoch", "seconds", "images/s", "val bits/dim"],
        [
            [
                i + 1,
                round(float(r["seconds"]), 1),
                round(float(r["samples_per_s"])),
                round(bits_per_dim(float(r["val_loss"]), shape), 4),
            ]
            for i, r in enumerate(rows)
        ],
    )


def parse_args() -> argparse.Namespace:
    """The command line, with ``--quick``'s settings and the figure's path (beside the JSON unless given)."""
    p = runner.parser(__doc__)
    p.add_argument("--preset", default="deep-fashion-gpu.toml", help="a file in configs/")
    p.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget of the training, probe included")
    p.add_argument("--epochs", type=int, help="train this many epochs, no probe")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting over the preset")
    p.add_argument("--k", type=int, default=100, help="importance samples (docs/benchmarks/bits.md's K)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--limit", type=int, help="only the first N items of the data")
    p.add_argument("--quick", action="store_true", help="2 epochs of 1,000 items, batch 32, K = 10, 100 test images")
    p.add_argument("--out", default="runs/bench-deep-gpu")
    p.add_argument("--figure", help="the samples figure (default: beside the JSON; the pages': docs/img/benchmarks/)")
    p.add_argument("--json")
    args = p.parse_args()
    epochs = RunConfig.from_dict(load_toml(ROOT / "configs" / args.preset)).train.epochs  # the preset's
    common.budget(p, args, "epochs" if args.epochs else "minutes", "limit", "k", "n_test", epochs=epochs)
    if args.quick:
        args.epochs, args.limit, args.k, args.n_test = 2, 1000, 10, 100
        args.set.append("train.batch_size=32")
    args.figure = Path(args.figure or common.beside("deep_gpu", args.json, "samples.png"))
    return args


def main() -> None:
    args = parse_args()
    out, start = Path(args.out), time.perf_counter()
    epochs, settings, probe = plan(args, out)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cfg = config(args, out / "run", epochs, **settings)
    rows = train(cfg, overwrite=True, pictures=False).history
    facts = {"mode": settings["train.compile"], "probe": probe, "wall_s": time.perf_counter() - start}
    facts["peak"] = common.peak_mib(args.device)
    report(args, cfg, rows, facts)


def result_row(args: argparse.Namespace, rows: list[dict], facts: dict, nats: float, shape: tuple[int, ...]) -> list:
    """The result table's row: preset, step mode, epochs, training and wall minutes, median images/s (of the epochs
    after the first, which holds the compile or capture, if any), peak MiB, test NLL (``nats``) and bits/dim."""
    return [
        args.preset,
        facts["mode"],
        len(rows),
        round(sum(float(r["seconds"]) for r in rows) / 60, 2),
        round(facts["wall_s"] / 60, 2),
        round(statistics.median_high(float(r["samples_per_s"]) for r in rows[1:] or rows)),
        round(facts["peak"]),
        round(nats, 2),
        round(bits_per_dim(nats, shape), 4),
    ]


def given(args: argparse.Namespace) -> dict[str, str]:
    """The settings ``--set`` gives, key -> value."""
    return dict(s.split("=", 1) for s in args.set)


def epochs_rule(args: argparse.Namespace, preset: TrainConfig, warmup: float) -> str:
    """How the run's epochs and its KL warm-up of ``warmup`` epochs were chosen (``preset``: the preset's
    training settings, ``--set`` included)."""
    budget = f"as many as the budget ({args.minutes:g} minutes, probe included) holds, at most {preset.epochs}"
    epochs = f"{args.epochs} (--epochs)" if args.epochs else budget
    if "train.warmup_epochs" in given(args):
        return f"{epochs}, with a KL warm-up of {warmup:g} epochs (--set)"
    return f"{epochs}, with a KL warm-up of {warmup:g} (the preset's {preset.warmup_epochs:g} of its {preset.epochs})"


def report(args: argparse.Namespace, cfg: RunConfig, rows: list[dict], facts: dict) -> None:
    """The test NLL, bits/dim and samples of the trained run, with the training's ``facts`` (step mode, probe,
    wall seconds, peak MiB), as tables and notes in the result's JSON."""
    run = Run.load(cfg.out, device=args.device)
    x, _ = test_split(run, args.n_test)
    torch.manual_seed(0)  # the estimate's and the samples' draws: the same run gives the same figures
    t = time.perf_counter()
    nats = iwae_nll(run, x, None, args.k).mean().item()
    eval_s, shape = time.perf_counter() - t, tuple(x.shape[1:])
    save_samples(torch.cat([run.sample(16, temperature) for temperature in (1.0, 0.8)]), args.figure, nrow=16)
    row = result_row(args, rows, facts, nats, shape)
    table = common.table(
        f"{args.device}: {cfg.data.spec}, 8-bit, test NLL by the IWAE bound (K = {args.k}, {len(x)} test images)",
        ["preset", "step", "epochs", "training minutes", "wall minutes", "images/s", "peak MiB", "NLL", "bits/dim"],
        [row],
    )
    headline = (
        f"deep ({args.preset}) on {common.machine()['gpu'] or 'the CPU'}: {row[-1]} bits/dim on 8-bit "
        f"{cfg.data.spec} after {row[4]} minutes ({row[2]} epochs, {row[5]} images/s, peak {row[6]} MiB)"
    )
    preset = config(args, Path(cfg.out), None).train
    notes = [
        headline,
        curve_note(rows, shape),
        f"Epochs: {epochs_rule(args, preset, cfg.train.warmup_epochs)}; probe: {facts['probe']}. images/s: the median "
        "epoch's training images per second; peak MiB: the GPU's peak allocation (on a CPU: the process's peak "
        "resident set); training minutes: the epochs' training time; wall minutes: probe, data, validation and "
        "checkpoints too.",
        f"Test NLL: {eval_s:.1f} s for {len(x)} images at K = {args.k}. Samples at temperatures 1.0 and 0.8 "
        f"(a row each): {common.figure_name(args.figure)}",
    ]
    common.write(
        "deep_gpu", "The deep hierarchy's GPU preset", headline, [table, epochs_table(rows, shape)], notes, args.json
    )


if __name__ == "__main__":
    runner.entry(main)
