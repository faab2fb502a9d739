"""Disentanglement on dSprites-style shapes: a conv VAE with beta = 1, beta = 4 and beta-TCVAE (tc_beta = 6),
three seeds each under one budget (epochs, batch, Adam, lr), scored by `vaekit disentangle`; a markdown table of
MIG, FactorVAE, beta-VAE, DCI, SAP and reconstruction, then the medians and the issue's target.

    .venv/bin/python benchmarks/disentangle.py                   # 32x32, 9 runs, 2 at a time: 70 min on 2 cores
    .venv/bin/python benchmarks/disentangle.py --quick           # a smoke run of a couple of minutes
    .venv/bin/python benchmarks/disentangle.py --size 64 --device cuda   # the 64x64 version on a GPU

Each run is a `vaekit train` process (one thread each) followed by `vaekit disentangle --json`; folders go to --out.
The tables go to JSON (``--json``, default benchmarks/results/disentangle.json) with the command, the machine,
torch, the commit and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
import runner

from vaekit.config import load_toml

ROOT = Path(__file__).resolve().parents[1]
OFF = ["train.tc_beta=0", "train.dimwise_warmup_epochs=0"]  # beta-TCVAE off, and its warm-up with it
SETTINGS = {
    "beta=1": ["train.beta=1", *OFF],
    "beta=4": ["train.beta=4", *OFF],
    "beta-TCVAE (6)": ["train.beta=1", "train.tc_beta=6"],
}  # over configs/dsprites-tcvae.toml
SHORT = {name: name.split()[0] for name in SETTINGS}  # beta=1, beta=4, beta-TCVAE: --settings and folder names
COLUMNS = ["mig", "factorvae", "betavae", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"]


def vaekit(*argv: str, threads: int) -> str:
    """Run the CLI in a child process with ``threads`` CPU threads; its stdout, or exit on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    r = subprocess.run([sys.executable, "-m", "vaekit", *argv], capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"vaekit {' '.join(argv[:2])} failed: {r.stderr.strip()}")
    return r.stdout


def one_run(name: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one setting with one seed, score it; returns the metrics plus val reconstruction and KL."""
    out = Path(args.out) / f"{SHORT[name]}-s{seed}"
    start = time.perf_counter()
    if args.reuse and (out / "disentangle.json").is_file():  # a finished run of the same budget: read it again
        return read_row(name, seed, out, json.loads((out / "disentangle.json").read_text()), 0.0, 0.0)
    train(name, seed, out, args)
    trained = time.perf_counter() - start
    scores = ["--json", "--n", str(args.metric_n), "--votes", str(args.votes)]
    result = json.loads(vaekit("disentangle", str(out), *scores, threads=args.threads))
    row = read_row(name, seed, out, result, trained, time.perf_counter() - start - trained)
    print(
        f"  {name} seed {seed}: MIG {row['mig']:.3f} FactorVAE {shown(row['factorvae'])} rec {row['val_rec']:.1f} "
        f"({trained:.0f} s training, {row['score_s']:.0f} s scoring)",
        flush=True,
    )
    return row


def train(name: str, seed: int, out: Path, args: argparse.Namespace) -> None:
    """``vaekit train`` of configs/dsprites-tcvae.toml with setting ``name``, ``seed`` and the budget over it."""
    sets = [
        *SETTINGS[name],
        f"train.seed={seed}",
        f"train.epochs={args.epochs}",
        f"train.device={args.device}",
        f"data.spec=dsprites:{args.size}:n={args.n}",
    ]
    config = ["--config", str(ROOT / "configs" / "dsprites-tcvae.toml")]
    argv = [*config, *(a for s in sets for a in ("--set", s)), "--out", str(out), "--overwrite", "--quiet"]
    vaekit("train", *argv, threads=args.threads)


def read_row(name: str, seed: int, out: Path, result: dict, train_s: float, score_s: float) -> dict:
    """One table row: the run's metrics and the last epoch's validation reconstruction and KL (metrics.csv)."""
    last = common.metrics_rows(out)[-1]
    return {
        "setting": name,
        "seed": seed,
        **result["metrics"],
        "val_rec": float(last["val_rec"]),
        "val_kl": float(last["val_kl"]),
        "train_s": train_s,
        "score_s": score_s,
    }


def table(caption: str, rows: list[dict], keys: list[str]) -> dict:
    """Setting, seed and ``keys`` of each row (3 decimals, 1 from 100 up), printed and returned for the JSON."""
    cells = [[r["setting"], r["seed"], *(shown(r[k]) for k in keys)] for r in rows]
    return common.table(caption, ["setting", "seed", *keys], cells)


def shown(v: float | None) -> float | str:
    """A score rounded (3 decimals, 1 from 100 up), or "n/a" where there is none (FactorVAE with no active dim)."""
    return "n/a" if v is None else round(v, 3 if abs(v) < 100 else 1)


def median(values: list[float | None]) -> float | None:
    """The median of the scores there are, None if there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def main() -> None:
    p = runner.parser(__doc__)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--n", default="all", help="dsprites images rendered (80%% train); all: the 737,280 combinations")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--settings", default=",".join(SHORT.values()), help=f"a subset of {', '.join(SHORT.values())}")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    p.add_argument("--metric-n", type=int, default=10000)
    p.add_argument("--votes", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/bench-disentangle")
    p.add_argument("--reuse", action="store_true", help="read runs in --out that were already scored")
    p.add_argument("--quick", action="store_true", help="1 epoch on 3000 images, 1 seed, small metric samples")
    p.add_argument("--json", help="the result (default: benchmarks/results/disentangle.json)")
    args = p.parse_args()
    common.budget(p, args, "n", "epochs", "seeds", "metric_n", "votes")
    if args.quick:
        args.n, args.epochs, args.seeds, args.metric_n, args.votes = "3000", 1, "0", 2000, 100
    chosen = args.settings.split(",")
    if not set(chosen) <= set(SHORT.values()):
        p.error(f"--settings: choose from {', '.join(SHORT.values())}")
    names = [name for name, short in SHORT.items() if short in chosen]
    jobs = [(name, int(s)) for s in args.seeds.split(",") for name in names]  # seed by seed
    preset = load_toml(ROOT / "configs" / "dsprites-tcvae.toml")
    setup = (
        f"dsprites {args.size}x{args.size}, {args.n} images, {args.epochs} epochs, batch "
        f"{preset['train']['batch_size']}, lr {preset['train']['lr']:g}, latent {preset['model']['latent_dim']}, "
        f"{len(jobs)} runs, {args.jobs} at a time"
    )
    print(setup, flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: one_run(*job, args), jobs))
    print(f"\nall runs: {time.perf_counter() - start:.0f} s")
    rows.sort(key=lambda r: (list(SETTINGS).index(r["setting"]), r["seed"]))
    report(rows, names, setup, args)


def report(rows: list[dict], names: list[str], setup: str, args: argparse.Namespace) -> None:
    """The tables of every run and of the medians per setting, the target; printed and written."""
    keys = [*COLUMNS, "val_rec", "val_kl"]
    medians = [
        {
            "setting": name,
            "seed": "median",
            **{k: median([r[k] for r in rows if r["setting"] == name]) for k in keys},
        }
        for name in names
    ]
    what = f"dsprites {args.size}x{args.size}, {args.epochs} epochs"
    tables = [table(f"Every run ({what})", rows, keys), table(f"Medians over seeds ({what})", medians, keys)]
    notes = [
        f"Conv VAE of configs/dsprites-tcvae.toml: {setup}; scored by `vaekit disentangle` on {args.metric_n} "
        f"items ({args.votes} votes); val_rec and val_kl: the last epoch's validation reconstruction and KL.",
        "beta=1 and beta=4: beta-TCVAE off; beta-TCVAE (6): beta 1, tc_beta 6.",
    ]
    mig = {m["setting"]: m["mig"] for m in medians}
    if {"beta=1", "beta-TCVAE (6)"} <= set(mig):
        notes.append(report_target(mig["beta-TCVAE (6)"], mig["beta=1"]))
    headline = "median MIG over seeds: " + ", ".join(f"{name} {value:.3f}" for name, value in mig.items())
    common.write("disentangle", "Disentanglement on dSprites", headline, tables, notes, out=args.json)


def report_target(tc: float, vae: float) -> str:
    """The issue's target: beta-TCVAE's median MIG >= 0.25 and above beta = 1's by >= 0.1; printed and returned."""
    line = (
        f"target: beta-TCVAE median MIG {tc:.3f} >= 0.25: {'met' if tc >= 0.25 else 'NOT met'}; "
        f"above beta=1's {vae:.3f} by >= 0.1: {'met' if tc - vae >= 0.1 else 'NOT met'}"
    )
    print("\n" + line)
    return line


if __name__ == "__main__":
    runner.entry(main)
