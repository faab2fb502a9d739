"""FID sanity: the domain FID (and KID, precision, recall) of test images degraded by growing Gaussian noise or a
growing Gaussian blur, against the other half of the test split. A sound measure rises monotonically with either
degradation, and the data-vs-data value (no degradation) is the smallest in the table.

The domain features are vaekit's: a small conv classifier trained (seeded) on the labelled training split,
features = its penultimate layer, cached by content hash in $VAEKIT_CACHE (default ~/.cache/vaekit). Noise is
added to the pixels in [0, 1] and clipped back to [0, 1].

    .venv/bin/python benchmarks/fid_sanity.py                   # fashion-mnist, 5,000 images per set
    .venv/bin/python benchmarks/fid_sanity.py --quick           # 300 feature steps, 1,000 images per set
"""

from __future__ import annotations

import argparse
import time

import common
import runner
import torch

from vaekit.data import Dataset, load_dataset
from vaekit.evaluation.features import SETTINGS, domain_features
from vaekit.evaluation.quality import gaussian_blur, halves, quality_benchmark

NOISE = (0.0, 0.1, 0.2, 0.4)
BLUR = (1.0, 2.0, 3.0)


def degraded(x: torch.Tensor, kind: str, level: float, seed: int) -> torch.Tensor:
    """x (N, C, H, W) with Gaussian noise of std ``level`` (clipped to [0, 1]) or blurred with std ``level``."""
    if kind == "blur":
        return gaussian_blur(x, level)
    gen = torch.Generator().manual_seed(seed)
    return (x + level * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def parse_args() -> argparse.Namespace:
    """The command line."""
    p = runner.parser(__doc__)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--quick", action="store_true", help="300 feature steps, 1,000 images per set")
    p.add_argument("--steps", type=int, default=SETTINGS["steps"], help="training steps of the domain feature network")
    p.add_argument("--n", type=int, help="images per set (default: half the test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    args = p.parse_args()
    common.budget(p, args, "steps", "n")
    return args


def measure(data: Dataset, net: torch.nn.Module, n: int | None, seed: int) -> tuple[list[list], dict]:
    """The table's rows and the FID per (kind, level): half B of the test split, degraded, against half A."""
    x = data.test.x
    _, b = halves(len(x), seed)  # half A is the reference inside quality_benchmark; B is degraded
    rows, fids = [], {}
    for kind, levels in (("noise", NOISE), ("blur", BLUR)):
        for level in levels:
            r = quality_benchmark(degraded(x[b], kind, level, seed), x, net, n, seed)
            s = r["samples"]
            label = "none (data vs data)" if level == 0 else f"{kind} {level:g}"
            fids[(kind, level)] = s["fid"]
            rows.append([label, s["fid"], s["kid"], s["precision"], s["recall"], r["n"]])
    return rows, fids


def main() -> None:
    args = parse_args()
    steps, n = (300, 1000) if args.quick else (args.steps, args.n)
    data = load_dataset(args.data)
    start = time.perf_counter()
    net, info = domain_features(data, steps=steps, seed=args.seed)
    feature_seconds = time.perf_counter() - start
    rows, fids = measure(data, net, n, args.seed)
    noise = [fids[("noise", v)] for v in NOISE]
    blur = [fids[("blur", v)] for v in BLUR]
    monotonic = noise == sorted(noise) and blur == sorted(blur) and noise[0] < min(blur)
    t = common.table(
        f"Domain FID of degraded {args.data} test images against the other half of the test split",
        ["degradation", "FID", "KID", "precision", "recall", "images per set"],
        rows,
    )
    headline = (
        f"{args.data}: domain FID {noise[0]:.3g} data vs data, noise 0.1/0.2/0.4 -> "
        f"{'/'.join(f'{v:.3g}' for v in noise[1:])}, blur 1/2/3 -> {'/'.join(f'{v:.3g}' for v in blur)}: "
        f"{'monotonic, data vs data smallest' if monotonic else 'NOT monotonic'}"
    )
    notes = [
        f"Feature network: {info['steps']} Adam steps (seed {info['seed']}) on {len(data.train)} labelled "
        f"training images, test accuracy {info['test_accuracy']:.4f}, {info['features']} features; "
        f"{feature_seconds:.0f} s to train or load.",
        "Half A of the test split (a seeded permutation) is the reference; half B, degraded, is compared with "
        "it at the same size. Noise is clipped to [0, 1]; the blur is a separable Gaussian with replicated "
        "edges.",
        f"Monotonic rise with both degradations, data vs data smallest: {monotonic}.",
    ]
    common.write(
        "fid_sanity", "FID sanity: the domain FID against growing noise and blur", headline, [t], notes, args.out
    )


if __name__ == "__main__":
    runner.entry(main)
