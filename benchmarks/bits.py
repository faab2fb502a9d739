"""Bits per dimension of 8-bit images under the likelihood vaekit now picks by default (a discretized logistic
mixture), beside a Gaussian on the same images and the literature's figures for the same data.

Each set trains a conv VAE with ``likelihood`` left at auto (it resolves to discretized_logistic for 8-bit
images), and the same VAE with a Gaussian likelihood; both are scored by the IWAE bound (K samples, the first
``--n-test`` test images). A Gaussian density on values k / 255 is not a probability of the 8-bit values: its
"bits/dim" is shown shifted by log2(255) per dimension (the density on the 0..255 scale), and can still fall
below 0. Writes JSON (``--out``) with the command, the machine, torch, the commit and the date; prints a table.

    .venv/bin/python benchmarks/bits.py                # mnist5k, fashion-mnist (if installed), photos:32
    .venv/bin/python benchmarks/bits.py --quick        # 1 epoch, 100 test images, K = 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

import vaekit
from vaekit.core import iwae_bound
from vaekit.data.prepare import prepare_data

ROOT = Path(__file__).resolve().parents[1]
# quoted from the papers (not re-run here): 8-bit MNIST, test bits/dim of exact-likelihood flows, as tabulated in
# FFJORD (Grathwohl et al. 2019, Table 2); no VAE figure for 8-bit MNIST, Fashion-MNIST or these photographs
# was found to set beside ours.
LITERATURE = {"mnist5k": "MNIST (60k train): Real NVP 1.06, Glow 1.05, FFJORD 0.99 (FFJORD, Table 2)"}
SETS = {"mnist5k": 20, "fashion-mnist": 10, "photos:32": 40}  # epochs per set


def machine() -> dict:
    """Where the figures come from."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": torch.get_num_threads(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version()}


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def score(spec: str, likelihood: str, epochs: int, args: argparse.Namespace) -> dict:
    """Train a conv VAE on ``spec`` and score its test split: NLL (nats) and bits/dim."""
    start = time.perf_counter()
    run = vaekit.train(data=spec, model="conv", likelihood=likelihood, latent_dim=32, epochs=epochs,
                       batch_size=128, lr=2e-3, warmup_epochs=min(5, epochs), seed=0, progress=False,
                       pictures=False, out="")
    seconds = time.perf_counter() - start
    data, _ = prepare_data(run.config)
    x = data.test.x[: args.n_test]
    torch.manual_seed(0)
    nll = -torch.cat([iwae_bound(run.model, x[i: i + 50], args.k) for i in range(0, len(x), 50)]).mean().item()
    dims = math.prod(data.shape)
    bits = nll / (dims * math.log(2))
    if likelihood == "gaussian":  # a density on [0, 1]: on the 0..255 scale it is 255^D times smaller
        bits += math.log2(255)
    return {"data": spec, "likelihood": run.config.model.likelihood, "epochs": epochs, "train_items": len(data.train),
            "test_items": len(x), "k": args.k, "nll_nats": round(nll, 2), "bits_per_dim": round(bits, 4),
            "train_seconds": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated data specs")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--k", type=int, default=100, help="importance samples of the NLL")
    p.add_argument("--quick", action="store_true", help="1 epoch, 100 test images, K = 20")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bits.json"))
    args = p.parse_args()
    if args.quick:
        args.n_test, args.k = 100, 20
    rows = []
    for spec in args.sets.split(","):
        epochs = 1 if args.quick else SETS.get(spec, 10)
        try:
            rows += [score(spec, lik, epochs, args) for lik in ("auto", "gaussian")]
        except vaekit.VaekitError as e:  # a set that is not installed here
            print(f"{spec}: left out ({e})", flush=True)
            continue
        print(f"  {spec}: {rows[-2]['bits_per_dim']} bits/dim ({rows[-2]['likelihood']}), "
              f"{rows[-1]['bits_per_dim']} (gaussian)", flush=True)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(), "commit": commit(),
              "date": datetime.date.today().isoformat(), "rows": rows, "literature": LITERATURE}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("\n| data | likelihood | epochs | test NLL (nats) | bits/dim | literature (bits/dim) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['likelihood']} | {r['epochs']} | {r['nll_nats']} | {r['bits_per_dim']} | "
              f"{LITERATURE.get(r['data'], '-') if r['likelihood'] != 'gaussian' else '-'} |")
    print(f"\n-> {args.out}")


if __name__ == "__main__":
    main()
