"""The parts of benchmarks/deep.py that use its trained Fashion-MNIST models (flat conv, conv ladder, deep): the
out-of-distribution table, the sample-quality table and the samples figure."""

from __future__ import annotations

import argparse
from pathlib import Path

import common
import torch
from families import test_split

from vaekit.data import load_dataset
from vaekit.evaluation.quality_run import quality
from vaekit.evaluation.scores import anomaly_scores, detection_metrics
from vaekit.runs import Run
from vaekit.viz.plots import save_samples


def ood_part(runs: dict[str, Run], args: argparse.Namespace, tables: list) -> None:
    """Table: AUROC of MNIST test digits against Fashion-MNIST test images, LLR^{>k} for each k, and NLL."""
    fashion, _ = test_split(runs["deep"], args.n_test)
    mnist = load_dataset("mnist5k", binarize="fixed").test.x[: args.n_test]
    rows = []
    for name in ("conv ladder VAE", "deep"):
        model = runs[name].model
        ks = range(1, len(model.latent_dims))  # LLR^{>k} for k below the number of groups (check_llr_k)
        s = [anomaly_scores(model, x, ["iwae_nll"], iw_samples=args.k_ood)["iwae_nll"] for x in (fashion, mnist)]
        rows.append([name, "IWAE NLL", round(detection_metrics(*s)["auroc"], 3)])
        for k in ks:
            s = [anomaly_scores(model, x, ["llr"], samples=args.s_ood, llr_k=k)["llr"] for x in (fashion, mnist)]
            rows.append([name, f"LLR^>{k}", round(detection_metrics(*s)["auroc"], 3)])
    tables.append(
        common.table(
            f"Trained on Fashion-MNIST, MNIST digits as out-of-distribution ({args.n_test} each): AUROC",
            ["model", "score", "AUROC"],
            rows,
        )
    )


def quality_part(runs: dict[str, Run], tables: list, notes: list) -> None:
    """Table: FID, KID, precision and recall of each model's prior samples, beside the data-vs-data yardstick."""
    rows, q = [], {}
    for name in runs:
        q = quality(runs[name])  # the domain classifier's features; RUN/quality.json keeps the result
        s = q["samples"]["prior"]
        rows.append([name, s["fid"], s["kid"], s["precision"], s["recall"]])
    d = q["data_vs_data"]
    rows.append(["data vs data (yardstick)", d["fid"], d["kid"], d["precision"], d["recall"]])
    fids = ", ".join(f"{r[0]} {r[1]:.2f}" for r in rows)
    notes.append(f"Sample quality, FID on the domain classifier's features (lower is better): {fids}.")
    tables.append(
        common.table(
            f"Sample quality of the samples figure's models: {q['n']} samples from each prior (temperature 1, "
            f"the mean of p(x|z) as pictured) against {q['n']} Fashion-MNIST test images, on the features of "
            "vaekit's domain classifier (vaekit.quality); the yardstick compares two halves of the test split. "
            "Lower FID and KID, higher precision and recall are better.",
            ["model", "FID", "KID", "precision", "recall"],
            rows,
        )
    )


def samples_figure(runs: dict[str, Run], path: Path) -> None:
    """16 samples of each model, one row each: flat conv, conv ladder, deep."""
    torch.manual_seed(0)
    save_samples(torch.cat([runs[name].sample(16) for name in runs]), path, nrow=16)
    print(f"samples -> {path}")
