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
import math
import time

import common
import runner
import torch

import vaekit
from vaekit.core import iwae_bound
from vaekit.data.prepare import prepare_data

# quoted from the papers (not re-run here): 8-bit MNIST, test bits/dim of exact-likelihood flows, as tabulated in
# FFJORD (Grathwohl et al. 2019, Table 2); no VAE figure for 8-bit MNIST, Fashion-MNIST or these photographs
# was found to set beside ours.
LITERATURE = {"mnist5k": "8-bit MNIST (60k train): Real NVP 1.06, Glow 1.05, FFJORD 0.99"}
LITERATURE_NOTE = (
    "Literature: exact-likelihood flows on 8-bit MNIST, as tabulated in FFJORD (Grathwohl et al. 2019, "
    "Table 2), trained on all 60,000 training images; mnist5k trains on 4,000. No VAE figure for "
    "8-bit MNIST, Fashion-MNIST or these photographs was found to set beside ours."
)
SETS = {"mnist5k": 20, "fashion-mnist": 10, "photos:32": 40}  # epochs per set
GAUSSIAN_NOTE = (
    "Gaussian rows: test NLL (nats) is of the density of the values k / 255 on [0, 1], as trained; bits/dim is "
    "of the density on the 0..255 scale ((NLL + D ln 255) / (D ln 2)), so their two columns are on different "
    "scales (the discretized logistic rows both measure one probability of the 8-bit values)."
)


def score(spec: str, likelihood: str, epochs: int, args: argparse.Namespace) -> dict:
    """Train a conv VAE on ``spec`` and score its test split: NLL (nats) and bits/dim."""
    start = time.perf_counter()
    run = vaekit.train(
        data=spec,
        model="conv",
        likelihood=likelihood,
        latent_dim=32,
        epochs=epochs,
        batch_size=128,
        lr=2e-3,
        warmup_epochs=min(5, epochs),
        seed=0,
        progress=False,
        pictures=False,
        out="",
    )
    seconds = time.perf_counter() - start
    data, _ = prepare_data(run.config)
    x = data.test.x[: args.n_test]
    torch.manual_seed(0)
    nll = -torch.cat([iwae_bound(run.model, x[i : i + 50], args.k) for i in range(0, len(x), 50)]).mean().item()
    dims = math.prod(data.shape)
    bits = nll / (dims * math.log(2))
    if likelihood == "gaussian":  # a density on [0, 1]: on the 0..255 scale it is 255^D times smaller
        bits += math.log2(255)
    return {
        "data": spec,
        "likelihood": run.config.model.likelihood,
        "epochs": epochs,
        "train_items": len(data.train),
        "test_items": len(x),
        "k": args.k,
        "nll_nats": round(nll, 2),
        "bits_per_dim": round(bits, 4),
        "train_seconds": round(seconds, 1),
    }


def write_result(rows: list[dict], args: argparse.Namespace) -> None:
    """The table of ``score``'s ``rows`` beside the literature's figures, its headline and note, as JSON (``--out``)."""
    rows_md = [
        [
            r["data"],
            r["likelihood"],
            r["epochs"],
            r["test_items"],
            r["nll_nats"],
            r["bits_per_dim"],
            LITERATURE.get(r["data"], "-") if r["likelihood"] != "gaussian" else "-",
        ]
        for r in rows
    ]
    dl = {r["data"]: r["bits_per_dim"] for r in rows if r["likelihood"] == "discretized_logistic"}
    headline = "; ".join(f"{spec} {v:.2f}" for spec, v in dl.items()) + " bits/dim (discretized logistic)"
    common.write(
        "bits",
        "Bits per dimension of 8-bit images",
        headline,
        [
            common.table(
                f"Conv VAE, z 32, IWAE K = {args.k} on the test split (Gaussian rows: NLL of the density on [0, 1], "
                "bits/dim of the density on the 0..255 scale)",
                ["data", "likelihood", "epochs", "test items", "test NLL (nats)", "bits/dim", "literature (bits/dim)"],
                rows_md,
            )
        ],
        notes=[LITERATURE_NOTE, GAUSSIAN_NOTE],
        out=args.out,
    )


def parse_args() -> argparse.Namespace:
    """The command line, with ``--quick``'s settings."""
    p = runner.parser(__doc__)
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated data specs (built-in sets or paths)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--k", type=int, default=100, help="importance samples of the NLL")
    p.add_argument("--quick", action="store_true", help="1 epoch, 100 test images, K = 20")
    p.add_argument("--out", help="the JSON (default: benchmarks/results/bits.json)")
    args = p.parse_args()
    args.sets = common.data_specs(p, "--sets", args.sets)
    common.budget(p, args, "n_test", "k")
    if args.quick:
        args.n_test, args.k = 100, 20
    return args


def main() -> None:
    args = parse_args()
    rows = []
    for spec in args.sets:
        epochs = 1 if args.quick else SETS.get(spec, 10)
        try:
            rows += [score(spec, lik, epochs, args) for lik in ("auto", "gaussian")]
        except vaekit.VaekitError as e:  # a set that is not installed here
            print(f"{spec}: left out ({e})", flush=True)
            continue
        print(
            f"  {spec}: {rows[-2]['bits_per_dim']} bits/dim ({rows[-2]['likelihood']}), "
            f"{rows[-1]['bits_per_dim']} (gaussian)",
            flush=True,
        )
    write_result(rows, args)


if __name__ == "__main__":
    runner.entry(main)
