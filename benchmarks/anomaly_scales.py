"""The multi-scale one-class detector's pooling factors, picked on a validation split of Fashion-MNIST's training
images; only the pick is then read on the test set.

Per class c, VAEAnomalyDetector (-ELBO, the MLP VAE of benchmarks/anomaly.py's one-class table) is fitted with
every candidate factor of --scales to class c's training images, less the last --n-val images of each class.
Those held-out training images of all ten classes are the validation set; the official test set is only scored.
Each subset of the factors is a detector (its scales' standardised scores summed, ``scale_scores``), exactly
the one that fitting with that subset would give, except one factor alone, which trains here on 90% of the rows.
The subset with the highest mean validation AUROC is the pick.

    .venv/bin/python benchmarks/anomaly_scales.py            # 10 classes, 3 seeds, 5 factors: ~30 min, 2 cores
    .venv/bin/python benchmarks/anomaly_scales.py --quick    # a smoke run: 2 classes, 2 epochs, small sets
"""

from __future__ import annotations

import argparse
import itertools
import time

import common
import numpy as np
import runner
from anomaly_models import BATCH, HIDDEN, fashion

from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.scores import detection_metrics


def parse_args() -> argparse.Namespace:
    """The command line."""
    p = runner.parser(__doc__)
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--scales", default="1,2,4,7,14", help="candidate pooling factors (each divides 28)")
    p.add_argument("--epochs", type=int, default=50, help="epochs of each one-class VAE")
    p.add_argument("--n-val", type=int, default=1000, help="training images per class held out for validation")
    p.add_argument("--per-class", type=int, default=5000, help="training images per class that fit (at most)")
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--samples", type=int, default=2, help="S noise draws of the ELBO")
    p.add_argument("--seeds", default="0,1,2", help="one detector per class and seed (class c, seed s: c + 1000 s)")
    p.add_argument("--shown", type=int, default=10, help="subsets shown: the best by validation, then one factor")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 classes, 2 epochs, small sets")
    p.add_argument("--json", help="the result (default: benchmarks/results/anomaly_scales.json)")
    args = p.parse_args()
    common.budget(p, args, "classes", "epochs", "per_class", "test_limit", "seeds")
    if args.quick:
        args.classes, args.epochs, args.n_val, args.per_class, args.test_limit = "0,1", 2, 100, 500, 500
        args.scales, args.seeds = "1,4,7", "0"
    args.classes, args.seeds = [int(c) for c in args.classes.split(",")], [int(s) for s in args.seeds.split(",")]
    args.scales = tuple(int(k) for k in args.scales.split(","))
    return args


def class_scores(args: argparse.Namespace) -> tuple[list, list]:
    """Per seed, per class: (S, N) standardised scores of the validation and of the test images, each with its
    (N,) mask of the class's images (the normal ones)."""
    data = fashion(args)
    x, y = data.train.x, data.train.y
    held = {c: (y == c).nonzero().flatten()[-args.n_val :] for c in range(10)}
    val_x = np.concatenate([x[i].flatten(1).numpy() for i in held.values()])
    val_y = np.concatenate([np.full(len(i), c) for c, i in held.items()])
    test_x, test_y = data.test.x[: args.test_limit].flatten(1).numpy(), data.test.y[: args.test_limit].numpy()
    val, test, start = [[] for _ in args.seeds], [[] for _ in args.seeds], time.perf_counter()
    for (i, seed), c in itertools.product(enumerate(args.seeds), args.classes):
        fit = (y == c).nonzero().flatten()[: -args.n_val][: args.per_class]
        det = VAEAnomalyDetector("neg_elbo", scales=args.scales, image_shape=(1, 28, 28), likelihood="gaussian",
            latent_dim=16, hidden=tuple(HIDDEN), epochs=args.epochs, batch_size=BATCH, samples=args.samples,
            random_state=c + 1000 * seed).fit(x[fit].flatten(1).numpy())  # fmt: skip
        val[i].append((det.scale_scores(val_x).T, val_y == c))
        test[i].append((det.scale_scores(test_x).T, test_y == c))
        print(f"  seed {seed}, class {c}: {len(fit)} images, {time.perf_counter() - start:.0f} s so far", flush=True)
    return val, test


def aurocs(scored: list, subset: tuple[int, ...]) -> np.ndarray:
    """(seeds, classes) AUROC of the subset's summed scores."""
    return np.array([[detection_metrics(z[list(subset)].sum(0)[normal], z[list(subset)].sum(0)[~normal])["auroc"]
        for z, normal in per_class] for per_class in scored])  # fmt: skip


def ranked(val: list, test: list, scales: tuple[int, ...]) -> list[dict]:
    """Every non-empty subset of the factors with its AUROCs (seeds, classes), best mean validation AUROC first."""
    subsets = [s for r in range(1, len(scales) + 1) for s in itertools.combinations(range(len(scales)), r)]
    rows = [{"scales": [scales[i] for i in s], "val": aurocs(val, s), "test": aurocs(test, s)} for s in subsets]
    return sorted(rows, key=lambda row: -row["val"].mean())


def headline(rows: list[list]) -> str:
    """The pick (first row, best by validation) and one factor, from table 1's stored rows (mean of the seeds)."""
    pick, one = rows[0], next(r for r in rows if r[0] == "1")
    return (
        f"one-class Fashion-MNIST: scales {pick[0]} picked on validation (mean AUROC {pick[1]:.3f}) give "
        f"{pick[2]:.3f} on the test set (per seed {pick[3]}), against {one[2]:.3f} for one scale (validation "
        f"{one[1]:.3f})"
    )


def main() -> None:
    args = parse_args()
    val, test = class_scores(args)
    found = ranked(val, test, args.scales)
    shown = found[: args.shown] + [r for r in found[args.shown :] if len(r["scales"]) == 1]
    name = lambda r: ",".join(map(str, r["scales"]))  # noqa: E731
    per_seed = lambda a: "/".join(f"{v:.3f}" for v in a.mean(1))  # noqa: E731
    rows = [[name(r), round(r["val"].mean(), 4), round(r["test"].mean(), 4), per_seed(r["test"])] for r in shown]
    n_fit = min(6000 - args.n_val, args.per_class)
    t1 = common.table(
        f"Mean AUROC over classes {','.join(map(str, args.classes))} per set of pooling factors, best by "
        f"validation first (MLP VAE, gaussian, z=16, {args.epochs} epochs on {n_fit} images per class; mean of "
        f"{len(args.seeds)} seeds)",
        ["scales", "validation AUROC", "test AUROC", f"test AUROC, seed {'/'.join(map(str, args.seeds))}"],
        rows,
    )
    pick, one = found[0], next(r for r in found if r["scales"] == [1])
    t2 = common.table(
        "Per class, mean of the seeds: the pick and one scale",
        ["class", f"validation {name(pick)}", f"test {name(pick)}", "validation 1", "test 1"],
        [[c] + [round(float(v), 3) for v in vals] for c, *vals in
            zip(args.classes, *(r[k].mean(0) for r in (pick, one) for k in ("val", "test")))],
    )  # fmt: skip
    notes = [
        f"Validation: the last {args.n_val} training images of each class (all ten classes); the class's other "
        f"training images fit its detector. Test: the first {args.test_limit} official test images.",
        "A set of factors is VAEAnomalyDetector with those scales: each scale's -ELBO standardised on 10% of the "
        "fitting images held out, then summed. One factor alone trains here on 90% of them (the detector with "
        "scales=(1,) trains on all).",
        f"The pick is the set with the best mean validation AUROC of all {len(found)}; the test column is shown "
        "for every row, but only the pick's is the result.",
    ]
    common.write("anomaly_scales", "Pooling factors of the one-class detector", headline(rows), [t1, t2], notes,
        args.json)  # fmt: skip


if __name__ == "__main__":
    runner.entry(main)
