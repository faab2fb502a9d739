"""Table 4 of benchmarks/anomaly.py: linear-probe and kNN accuracy on Fashion-MNIST test from raw pixels, PCA
and vaekit posterior means."""

from __future__ import annotations

import argparse

import common
import numpy as np
import torch
from anomaly_models import Part, fashion, train_vae


def representation(args: argparse.Namespace) -> Part:
    """Table 4: linear probe and kNN accuracy on Fashion-MNIST test from pixels, PCA-d and vaekit-d features."""
    from sklearn.decomposition import PCA

    data = fashion(args)
    perm = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[: args.rep_train]
    x_tr, y_tr = data.train.x[perm], data.train.y[perm].numpy()
    x_te, y_te = data.test.x[: args.test_limit], data.test.y[: args.test_limit].numpy()
    flat_tr, flat_te = x_tr.flatten(1).numpy(), x_te.flatten(1).numpy()
    rows = [["raw pixels", 784, *probe(flat_tr, y_tr, flat_te, y_te)]]
    for d in args.dims:
        pca = PCA(d, random_state=0).fit(flat_tr)
        rows.append(["PCA", d, *probe(pca.transform(flat_tr), y_tr, pca.transform(flat_te), y_te)])
        model = train_vae(
            x_tr,
            {
                "model.net": args.rep_net,
                "model.latent_dim": d,
                "model.likelihood": args.rep_likelihood,
                "train.epochs": args.rep_epochs,
            },
            args,
        )
        z_tr, z_te = posterior_means(model, x_tr), posterior_means(model, x_te)
        rows.append(["vaekit VAE", d, *probe(z_tr, y_tr, z_te, y_te)])
    table = common.table(
        f"Representation: features of {len(x_tr)} training images, accuracy on {len(x_te)} test "
        f"images ({args.rep_net} VAE, {args.rep_likelihood}, {args.rep_epochs} epochs)",
        ["features", "d", "linear probe", "kNN (k=5)"],
        rows,
    )
    pca, ours = rows[-2], rows[-1]
    notes = [
        "Representation: vaekit features are posterior means; linear probe: logistic regression on standardised "
        "features; kNN (k = 5) on the features as they are."
    ]
    return [table], notes, f"linear probe at d = {ours[1]}: {ours[2]:.3f} (vaekit) vs {pca[2]:.3f} (PCA)"


def posterior_means(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The posterior means of images x (N, C, H, W), encoded 1,000 at a time: (N, d)."""
    with torch.no_grad():
        return torch.cat([model.encode(x[i : i + 1000]).mean for i in range(0, len(x), 1000)]).numpy()


def probe(f_tr: np.ndarray, y_tr: np.ndarray, f_te: np.ndarray, y_te: np.ndarray) -> list[float]:
    """[linear probe accuracy on standardised features, kNN accuracy on the features as they are].

    kNN keeps each representation's own geometry: standardising would blow up the near-constant
    posterior means of a VAE's inactive units (and whiten PCA) into noise dimensions.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lin = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(f_tr, y_tr)
    knn = KNeighborsClassifier(5).fit(f_tr, y_tr)
    return [round(float(lin.score(f_te, y_te)), 3), round(float(knn.score(f_te, y_te)), 3)]
