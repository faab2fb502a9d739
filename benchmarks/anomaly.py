"""Anomaly detection and representations with vaekit, printed as markdown tables.

1. Fashion-MNIST one-class: a VAE per class trained on that class's training images, the full test set
   scored; AUROC per class and the mean, for every score in ``vaekit.scores``, and for the multi-scale -ELBO
   of VAEAnomalyDetector (one VAE per pooling factor of --scales, default 1,2,4,7).
2. Out-of-distribution: a VAE trained on Fashion-MNIST; its test set against MNIST (mnist5k); AUROC per score.
3. Tabular: breast cancer (train on benign, malignant are the anomalies): vaekit's VAEAnomalyDetector against
   PyOD's IsolationForest and VAE (``make bench-peer-install`` puts PyOD into .venv); AUROC and fit time.
4. Representation: linear-probe and kNN accuracy on Fashion-MNIST test from raw pixels, PCA and vaekit
   posterior means (conv VAEs; --rep-net mlp for the MLP) with d = 2, 10, 20 dims.

    .venv/bin/python benchmarks/anomaly.py                      # all four tables
    .venv/bin/python benchmarks/anomaly.py --parts ood,tabular  # some of them
    .venv/bin/python benchmarks/anomaly.py --quick              # a smoke run

The tables go to JSON (``--json``, default benchmarks/results/anomaly.json) with the command, the machine, torch,
the commit and the date.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import common
import numpy as np
import runner
import torch
from anomaly_models import BATCH, HIDDEN, Part, every_item, fashion, score_all, score_note, train_vae
from anomaly_tables import oneclass_phrase, ood_phrase, rehead, tabular_phrase
from representation import representation
from torch import Tensor

from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.scores import detection_metrics

PARTS = ("oneclass", "ood", "tabular", "representation")


def multiscale_scores(x: Tensor, test: Tensor, seed: int, args: argparse.Namespace) -> np.ndarray:
    """-ELBO of VAEAnomalyDetector at ``args.scales`` (one VAE per pooling factor, scores standardised on 10% of
    the training images held out, then summed) for the test images, (N,), higher = more anomalous."""
    det = VAEAnomalyDetector("neg_elbo", scales=args.scales, image_shape=tuple(x.shape[1:]), net=args.net,
        likelihood=args.likelihood, latent_dim=args.latent_dim, hidden=tuple(HIDDEN), epochs=args.oneclass_epochs,
        batch_size=BATCH, samples=args.samples, random_state=seed)  # fmt: skip
    return -det.fit(x.flatten(1).numpy()).score_samples(test.flatten(1).numpy())


def one_class(args: argparse.Namespace) -> Part:
    """Table 1: per class c, train on class c only; anomalies are the test images of the other classes."""
    data = fashion(args)
    multi = f"neg_elbo, scales {','.join(map(str, args.scales))}"
    aurocs: dict[str, list[float]] = {}
    rows, start, test = [], time.perf_counter(), data.test.x[: args.test_limit]
    for c in args.classes:
        x = data.train.x[data.train.y == c][: args.per_class]
        s = class_scores(x, test, c, multi, args)
        normal = (data.test.y[: args.test_limit] == c).numpy()
        for name in s:
            aurocs.setdefault(name, []).append(detection_metrics(s[name][normal], s[name][~normal])["auroc"])
        rows.append([f"{c} {data.classes[c]}"] + [round(aurocs[n][-1], 3) for n in aurocs])
        print(f"  class {c}: {len(x)} images, {time.perf_counter() - start:.0f} s so far", flush=True)
    rows.append(["mean"] + [round(float(np.mean(v)), 3) for v in aurocs.values()])
    over = f" with {args.deep_settings}" if args.deep_settings else ""
    deep = f"; deep: configs/{args.deep}{over}, {args.deep_epochs} epochs" if args.deep else ""
    table = common.table(
        f"Fashion-MNIST one-class AUROC ({args.net} VAE, {args.likelihood}, z={args.latent_dim}, "
        f"{args.oneclass_epochs} epochs{deep}; on up to {args.per_class} images per class; test set of "
        f"{min(args.test_limit, len(data.test))})",
        ["class"] + list(aurocs),
        rows,
    )
    notes = [
        "One-class: a VAE per class trained on that class's training images; normal = the test images of that "
        "class, anomalies = the other classes'.",
        score_note(args),
        f"{multi}: VAEAnomalyDetector, one VAE per pooling factor, scores standardised on 10% of the training "
        "images held out, then summed.",
        "deep <likelihood> <score>: the deep preset (its model and training settings, no binarisation) trained on "
        "the class once per likelihood; llr>k: LLR^{>k} of Havtorn et al. 2021, the lowest k groups from their "
        "priors.",
    ]
    return [table], notes, oneclass_phrase(table["columns"], rows, args.net, args.likelihood)


def class_scores(x: Tensor, test: Tensor, c: int, multi: str, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Scores of the test images by the models trained on class ``c``'s images ``x``: every score of the flat VAE,
    the multi-scale -ELBO (named ``multi``) and, with --deep, every score of the deep preset per likelihood."""
    s = score_all(train_vae(x, {"train.epochs": args.oneclass_epochs}, args, seed=c), test, args)
    s[multi] = multiscale_scores(x, test, c, args)
    for lk in args.deep_likelihoods if args.deep else ():
        settings = {"train.epochs": args.deep_epochs, "model.likelihood": lk, **args.deep_settings}
        deep = score_all(train_vae(x, settings, args, c, args.deep), test, args)
        s |= {f"deep {lk} {n}": v for n, v in deep.items()}
    return s


def ood(args: argparse.Namespace) -> Part:
    """Table 2: trained on Fashion-MNIST, Fashion-MNIST test (normal) against MNIST digits (anomalies).

    One model per likelihood: the Bernoulli one shows the failure of raw likelihood (Nalisnick et al. 2019).
    """
    data = fashion(args)
    x = data.train.x[torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[: args.ood_train]]
    digits = every_item("mnist5k")[: args.test_limit]  # all 5,000
    rows: dict[str, list] = {}
    start = time.perf_counter()
    for likelihood in args.ood_likelihoods:
        model = train_vae(x, {"model.likelihood": likelihood}, args)
        s_in, s_out = score_all(model, data.test.x[: args.test_limit], args), score_all(model, digits, args)
        for name in s_in:
            m = detection_metrics(s_in[name], s_out[name])
            rows.setdefault(name, [name]).extend([round(m["auroc"], 3), round(m["fpr95"], 3)])
        print(f"  {likelihood}: {time.perf_counter() - start:.0f} s so far", flush=True)
    header = ["score"] + [f"{h} ({lk})" for lk in args.ood_likelihoods for h in ("AUROC", "FPR@95%TPR")]
    table = common.table(
        f"Out-of-distribution: trained on {len(x)} Fashion-MNIST images ({args.net}, {args.epochs} "
        f"epochs); {min(args.test_limit, len(data.test))} Fashion-MNIST test (normal) vs "
        f"{len(digits)} MNIST (mnist5k)",
        header,
        list(rows.values()),
    )
    notes = [
        "Out-of-distribution: one VAE per likelihood trained on Fashion-MNIST; its test images (normal) against "
        "MNIST digits (anomalies). The Bernoulli model shows raw likelihood's failure (Nalisnick et al. 2019).",
        score_note(args),
    ]
    return [table], notes, ood_phrase(header, list(rows.values()), args.net)


def tabular(args: argparse.Namespace) -> Part:
    """Table 3: breast cancer; train on 70% of the benign rows, test on the rest and every malignant row."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)  # y: 0 malignant, 1 benign
    rng = np.random.default_rng(0)
    benign = rng.permutation(np.flatnonzero(y == 1))
    n_train = int(0.7 * len(benign))
    X_train, X_test = X[benign[:n_train]], np.r_[X[benign[n_train:]], X[y == 0]]
    is_anomaly = np.r_[np.zeros(len(benign) - n_train), np.ones((y == 0).sum())]
    detectors = tabular_detectors()
    rows = []
    from sklearn.metrics import roc_auc_score

    VAEAnomalyDetector(epochs=1).fit(X_train)  # warm-up: the first fit of a process pays torch's one-off costs
    for name, make in detectors.items():
        det, start = make(), time.perf_counter()
        det.fit(X_train)
        seconds = time.perf_counter() - start
        # PyOD: decision_function higher = more anomalous; sklearn convention: score_samples higher = normal
        s = -det.score_samples(X_test) if isinstance(det, VAEAnomalyDetector) else det.decision_function(X_test)
        rows.append([name, round(float(roc_auc_score(is_anomaly, s)), 3), round(seconds, 2)])
    table = common.table(
        f"Breast cancer: train on {n_train} benign rows; test {len(X_test)} rows ({int(is_anomaly.sum())} malignant)",
        ["detector", "AUROC", "fit s"],
        rows,
    )
    notes = [
        "Tabular: sklearn's breast cancer set; vaekit's detectors: MLP VAE, hidden 64, z 4, 30 epochs; PyOD's "
        "with their defaults (random_state 0). Fit s: after one warm-up fit in the process."
    ]
    return [table], notes, tabular_phrase(rows)


def tabular_detectors() -> dict[str, Callable[..., Any]]:
    """Table 3's detectors, name -> a fresh one: vaekit's per score, and PyOD's IForest and VAE where installed."""
    detectors = {
        f"vaekit VAEAnomalyDetector ({m})": (lambda m=m: VAEAnomalyDetector(m, epochs=30, hidden=(64,), latent_dim=4))
        for m in ("neg_elbo", "iwae_nll", "recon_error", "likelihood_regret")
    }
    from pyod.models.iforest import IForest  # checked before any training (main: common.need_peers)
    from pyod.models.vae import VAE

    detectors["PyOD IForest"] = lambda: IForest(random_state=0)
    detectors["PyOD VAE (defaults)"] = lambda: VAE(random_state=0, verbose=0)
    return detectors


RUNS = {"oneclass": one_class, "ood": ood, "tabular": tabular, "representation": representation}  # PARTS' functions
BUDGET = ("oneclass_epochs", "deep_epochs", "epochs", "per_class", "ood_train", "rep_train", "rep_epochs", "test_limit")


def parser() -> argparse.ArgumentParser:
    """The command line; lists are comma-separated strings, turned into lists by ``parse_args``."""
    p = runner.parser(__doc__)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--net", default="mlp", choices=["mlp", "conv"])
    p.add_argument("--likelihood", default="gaussian", choices=["bernoulli", "cbernoulli", "gaussian"])
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--oneclass-epochs", type=int, default=50, help="epochs of each one-class model")
    p.add_argument("--deep", default="deep-fashion.toml", help="table 1: a configs/ preset beside the flat VAE ('')")
    p.add_argument("--deep-epochs", type=int, default=20, help="epochs of each one-class deep model")
    lks = "table 1: a deep model per likelihood (bernoulli ranks grey images badly: mean AUROC 0.70 by -ELBO)"
    p.add_argument("--deep-likelihoods", default="gaussian", help=lks)
    p.add_argument("--deep-set", action="append", default=[], help="table 1: KEY=JSON over the deep preset (repeat)")
    p.add_argument("--llr-ks", default="1,2", help="LLR^{>k} scores of a hierarchy: the k to score")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the OOD models")
    p.add_argument("--per-class", type=int, default=6000, help="training images per one-class model")
    p.add_argument("--scales", default="1,2,4,7", help="table 1: pooling factors of the multi-scale detector")
    p.add_argument("--ood-train", type=int, default=20000, help="Fashion-MNIST training images for table 2")
    p.add_argument("--ood-likelihoods", default="bernoulli,gaussian", help="one table-2 model per likelihood")
    p.add_argument("--rep-train", type=int, default=20000, help="training images for table 4")
    p.add_argument("--rep-epochs", type=int, default=15)
    p.add_argument("--rep-net", default="conv", choices=["mlp", "conv"], help="network of table 4's VAEs")
    p.add_argument("--dims", default="2,10,20")
    p.add_argument("--rep-likelihood", default="bernoulli", choices=["bernoulli", "cbernoulli", "gaussian"])
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--samples", type=int, default=2, help="S noise draws of the ELBO and the regret")
    p.add_argument("--iw-samples", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="Adam steps of the likelihood regret")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 classes, 2 epochs, small sets")
    p.add_argument("--json", help="the result (default: benchmarks/results/anomaly.json)")
    p.add_argument("--rehead", metavar="JSON", help="recompute a written result's headline (tables 1-3); no run")
    return p


def parse_args() -> argparse.Namespace:
    """The command line's options, lists parsed and ``--quick``'s small settings applied."""
    p = parser()
    args = p.parse_args()
    args.parts = common.choices(p, "--parts", args.parts, PARTS)
    common.budget(p, args, *BUDGET)
    args.classes = [int(c) for c in args.classes.split(",")]
    args.dims = [int(d) for d in args.dims.split(",")]
    args.scales = tuple(int(k) for k in args.scales.split(","))
    args.ood_likelihoods = args.ood_likelihoods.split(",")
    args.llr_ks = [int(k) for k in args.llr_ks.split(",") if k]
    args.deep_likelihoods = [lk for lk in args.deep_likelihoods.split(",") if lk]
    args.deep_settings = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.deep_set)}
    if args.quick:
        args.classes, args.per_class, args.ood_train, args.rep_train = [0, 1], 1000, 2000, 2000
        args.epochs = args.oneclass_epochs = args.rep_epochs = args.deep_epochs = 2
        args.test_limit, args.dims, args.steps = 1000, [2], 5
    return args


def main() -> None:
    args = parse_args()
    if args.rehead:
        return rehead(args.rehead)
    if "tabular" in args.parts:
        runner.need_peers("anomaly", "pyod", skip="leave tabular out of --parts")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tables, notes, phrases = [], [], []
    for part in args.parts:
        t, n, h = RUNS[part](args)
        tables, notes, phrases = tables + t, notes + n, phrases + [h]
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    headline, notes = "; ".join(phrases), list(dict.fromkeys(notes))
    common.write("anomaly", "Anomaly detection and representations", headline, tables, notes, out=args.json)


if __name__ == "__main__":
    runner.entry(main)
