"""What the parts of benchmarks/anomaly.py share: the image VAEs they train in memory and score, and the
Fashion-MNIST they load."""

from __future__ import annotations

import argparse
from dataclasses import replace

import common
import numpy as np
import torch
from torch import Tensor, nn

from vaekit.config import RunConfig, load_toml, set_value
from vaekit.data import Dataset, Split, load_dataset
from vaekit.evaluation.scores import DESCRIPTIONS, SCORES, anomaly_scores, scores_that_apply, settings_for
from vaekit.training import fit_config

HIDDEN, BATCH = [512, 256], 128  # the image VAEs: MLP widths and batch size, for train_vae and the detector
Part = tuple[list[dict], list[str], str]  # a part's tables, notes and headline phrase


def score_note(args: argparse.Namespace) -> str:
    """What the scores of tables 1 and 2 are (higher = more anomalous)."""
    return (
        f"Scores (higher = more anomalous; S = {args.samples}, K = {args.iw_samples}, {args.steps} regret steps): "
        + "; ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items() if name in SCORES)
    )


def train_vae(
    x: Tensor, settings: dict, args: argparse.Namespace, seed: int = 0, preset: str | None = None
) -> nn.Module:
    """A VAE trained on images x (N, C, H, W) in [0, 1] (no binarisation); 500 of them pick the best epoch.

    ``preset`` (a file of configs/) gives the model and training settings instead of the flat VAE's."""
    if preset:
        cfg = RunConfig.from_dict(load_toml(common.ROOT / "configs" / preset))
        return fit_in_memory(cfg, x, {"data.binarize": "none", **settings}, seed)
    cfg = RunConfig()
    net = settings.get("model.net", args.net)  # table 4 picks its own (--rep-net): the widths follow it
    widths = {"model.hidden": HIDDEN} if net == "mlp" else {"model.channels": [32, 64]}
    base = {
        "model.net": net,
        "model.likelihood": args.likelihood,
        **widths,
        "model.latent_dim": args.latent_dim,
        "train.epochs": args.epochs,
        "train.batch_size": BATCH,
        "train.lr": 1e-3,
    }
    return fit_in_memory(cfg, x, {**base, **settings}, seed)


def fit_in_memory(cfg: RunConfig, x: Tensor, settings: dict, seed: int) -> nn.Module:
    """``cfg`` with ``settings`` trained on x (N, C, H, W) in memory (no run folder); 500 items pick the best epoch."""
    settings = {"train.seed": seed, "train.progress": False, "train.checkpoint_minutes": 0.0, **settings}
    for key, value in settings.items():
        set_value(cfg, key, value)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    data = Dataset(
        "x", Split(x, None), Split(x[perm[:500]], None), Split(x[:0], None), tuple(x.shape[1:]), "image", None
    )
    cfg.out = ""  # trained in memory: no run folder
    return fit_config(cfg, data=data).model.cpu().eval()


def score_all(model: nn.Module, x: Tensor, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Every score of ``vaekit.evaluation.scores`` that applies to the model, for x, higher = more anomalous;
    for a hierarchy, the LLR once per k of ``args.llr_ks`` (named llr>k)."""
    names = scores_that_apply(model, True, x[:1])
    flat = [n for n in names if n != "llr"]
    shaping = settings_for(flat, samples=args.samples, iw_samples=args.iw_samples, steps=args.steps)
    s = anomaly_scores(model, x, flat, **shaping)
    for k in args.llr_ks if "llr" in names else ():
        s[f"llr>{k}"] = anomaly_scores(model, x, ["llr"], args.samples, llr_k=k)["llr"]
    return s


def fashion(args: argparse.Namespace) -> Dataset:
    """Fashion-MNIST with its official test set; all 60,000 training images train (the val split loaded
    carved from them is put back: none is held out)."""
    data = load_dataset("fashion-mnist")
    val = Split(data.val.x[:0], None if data.val.y is None else data.val.y[:0])
    return replace(data, train=joined(data.train, data.val), val=val)


def joined(*splits: Split) -> Split:
    """The items of ``splits`` as one in-memory split, x (N, *shape) and y (N,) (None when a split has none)."""
    ys = [s.y for s in splits]
    y = None if any(v is None for v in ys) else torch.cat(ys)
    return Split(torch.cat([s.x for s in splits]), y)


def every_item(spec: str) -> Tensor:
    """Every item of ``spec``, (N, *shape): its train, val and test splits (default fractions) concatenated."""
    data = load_dataset(spec)
    return joined(data.train, data.val, data.test).x
