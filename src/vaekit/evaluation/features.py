"""Feature networks for sample quality (FID, KID, precision and recall): the domain network, a small classifier
trained offline and reproducibly on a data set's labelled training split and cached by content hash; an
Inception-v3 weights file the user names; or any ``nn.Module``. Each maps items (B, *shape) to (B, F)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Dataset, Split, builtin
from ..errors import VaekitError, whole
from ..io import atomic_write_json, read_json
from ..training import distributed
from ..training.checkpoint import load_weights, save_weights
from ..training.rng import keeps_rng

CACHE_ENV = "VAEKIT_CACHE"  # where trained feature networks are kept (vaekit.data.builtin.cache_dir)
SETTINGS = {"width": 16, "features": 128, "steps": 1500, "batch_size": 128, "lr": 1e-3, "seed": 0}


class FeatureNet(nn.Module):
    """A small classifier: two conv blocks for images (C, H, W), an MLP for vectors (D,); ``forward`` gives the
    penultimate layer (B, F), ``logits`` the class scores (B, K)."""

    scale: Tensor  # a buffer: the features' RMS on the training split

    def __init__(self, shape: list[int], num_classes: int, width: int = 32, features: int = 128):
        super().__init__()
        self.num_features = features
        if len(shape) == 3:
            self.body = nn.Sequential(
                nn.Conv2d(shape[0], width, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(2 * width * 16, features),
                nn.ReLU(),
            )
        else:
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(int(np.prod(shape)), 4 * width),
                nn.ReLU(),
                nn.Linear(4 * width, features),
                nn.ReLU(),
            )
        self.head = nn.Linear(features, num_classes)
        # set after training to the features' RMS on the training split, so the features are O(1) as Inception's
        # are (KID's cubic kernel (f.g / F + 1)^3 assumes it)
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) / self.scale  # (B, F)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))  # (B, K)


def cache_dir() -> Path:
    """Where trained feature networks are kept: the vaekit cache (``vaekit.data.builtin.cache_dir``)."""
    return builtin.cache_dir()


def labelled(split: Split) -> tuple[Tensor, Tensor]:
    """(x (N, *shape) float32, y (N,) int64) of a labelled split."""
    if split.y is None:
        raise VaekitError("the domain features are trained on labels; this data has none", key="features")
    return torch.as_tensor(np.asarray(split.x), dtype=torch.float32), split.y.long()


def content_key(data: Dataset, arch: dict) -> str:
    """SHA-256 of the training split (items and labels), the architecture and the training settings."""
    h = hashlib.sha256(json.dumps(arch, sort_keys=True).encode())
    for t in labelled(data.train):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def feature_settings(settings: dict) -> dict:
    """``SETTINGS`` with ``settings`` over them; an unknown name or a bad value is one line naming it."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise VaekitError(
            f"unknown feature setting(s) {', '.join(unknown)}: the domain features take {', '.join(SETTINGS)}",
            key=unknown[0],
        )
    s = {**SETTINGS, **settings}
    for name in ("width", "features", "steps", "batch_size"):
        whole(s[name], name)
    if isinstance(s["lr"], bool) or not isinstance(s["lr"], (int, float)) or not 0 < s["lr"] < math.inf:
        raise VaekitError(f"lr must be a finite number > 0, got {s['lr']!r}", key="lr")
    if isinstance(s["seed"], bool) or not isinstance(s["seed"], int):
        raise VaekitError(f"seed must be a whole number, got {s['seed']!r}", key="seed")
    return s


@keeps_rng
def train_feature_net(data: Dataset, **settings) -> tuple[FeatureNet, dict]:
    """Train a FeatureNet on ``data``'s labelled training split (seeded) -> (net, info with its test accuracy)."""
    s = feature_settings(settings)
    x, y = labelled(data.train)
    k = int(y.max()) + 1
    gen = torch.Generator().manual_seed(s["seed"])
    with torch.random.fork_rng():
        torch.manual_seed(s["seed"])
        net = FeatureNet(list(data.shape), k, s["width"], s["features"])
    opt = torch.optim.Adam(net.parameters(), lr=s["lr"])
    for _ in range(s["steps"]):
        i = torch.randint(len(x), (min(s["batch_size"], len(x)),), generator=gen)
        loss = F.cross_entropy(net.logits(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        net.scale.fill_(float(net.body(x[:5000]).pow(2).mean().sqrt().clamp_min(1e-6)))
        xt, yt = labelled(data.test if len(data.test) and data.test.y is not None else data.val)
        pred = torch.cat([net.logits(xt[i : i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
    acc = float(torch.eq(pred, yt).float().mean()) if len(xt) else None
    return net, {"data": data.name, "shape": list(data.shape), "num_classes": k, **s, "test_accuracy": acc}


def domain_features(data: Dataset, **settings) -> tuple[FeatureNet, dict]:
    """The domain feature network of ``data``: loaded from the cache when one was trained on the same content,
    architecture and settings (``SETTINGS``'s names only), else trained and cached (safetensors + JSON).
    Returns (net, info)."""
    s = feature_settings(settings)
    if data.train.y is None or len(data.train) == 0:
        raise VaekitError(
            f"{data.name}: the domain features are trained on labels; this data has none "
            "(name other features: an Inception-v3 weights file, or in Python an nn.Module)",
            key="features",
        )
    key = content_key(data, {"shape": list(data.shape), **s})[:20]
    weights, meta = cache_dir() / f"features-{key}.safetensors", cache_dir() / f"features-{key}.json"
    if weights.is_file() and meta.is_file():
        info = read_json(meta, "the cached feature network's description")  # damaged: one line naming it
        if not isinstance(info, dict):
            raise VaekitError(f"{meta}: not a cached feature network's description (a JSON object); remove it")
        net = FeatureNet(info["shape"], info["num_classes"], info["width"], info["features"])
        load_weights(net, weights)
        return net.eval(), info
    net, info = train_feature_net(data, **s)
    info["key"] = key
    try:
        save_weights(net, weights)
        atomic_write_json(meta, info)
    except (OSError, VaekitError) as e:  # a read-only or full cache: the network is trained, only not kept
        distributed.warn(f"the feature network is not cached ({e}); set VAEKIT_CACHE to a writable folder")
    return net, info


@torch.no_grad()
def class_hits(net: FeatureNet, x, y: Tensor, relabel: Tensor | None = None, batch_size: int = 1000) -> Tensor:
    """(N,) bool: whether the domain classifier assigns each item of x (N, *shape) to its class y (N,), in the
    numbers of y: ``relabel`` (K,) maps the classifier's classes to them (None: the same numbers)."""
    device = next(net.parameters()).device
    pred = torch.cat(
        [
            net.logits(torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=device))
            .argmax(1)
            .cpu()
            for i in range(0, len(x), batch_size)
        ]
        or [torch.zeros(0, dtype=torch.int64)]
    )
    return torch.eq(pred if relabel is None else relabel[pred], y.cpu())


def class_accuracy(net: FeatureNet, drawn: tuple, real: tuple, names: list[str], relabel: Tensor | None = None) -> dict:
    """The share of samples drawn for class k that the domain classifier assigns to class k, overall and per
    class, beside its accuracy on real items (the yardstick). ``drawn`` and ``real``: (x (N, *shape), y (N,))
    with y in the numbers of ``names`` (real y None: no yardstick)."""
    hits = class_hits(net, drawn[0], drawn[1], relabel)
    real_hits = None if real[1] is None else class_hits(net, real[0], real[1], relabel)
    per_class = {}
    for k, name in enumerate(names):
        mine = hits[drawn[1].cpu() == k]
        theirs = None if real_hits is None else real_hits[real[1].cpu() == k]
        per_class[name] = {"samples": _share(mine), "real": _share(theirs), "n": len(mine)}
    return {"samples": _share(hits), "real": _share(real_hits), "per_class": per_class}


def _share(hits: Tensor | None) -> float | None:
    """The share of True in ``hits`` (N,) to 4 decimals; None for none."""
    return None if hits is None or not len(hits) else round(float(hits.double().mean()), 4)


class InceptionFeatures(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> the 2048 pool features of the FID Inception-v3 (torch-fidelity's)."""

    num_features = 2048

    def __init__(self, path: str | Path):
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise VaekitError(f"{path}: no such Inception weights file", key="features")
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - whatever torch.load makes of a damaged file
            raise VaekitError(f"{path}: not a PyTorch weights file ({type(e).__name__})", key="features") from None
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.net = NoTrainInceptionV3("inception-v3-compat", ["2048"], str(path))
        except ModuleNotFoundError:
            raise VaekitError(
                "Inception features need torch-fidelity: pip install 'vaekit[quality]'", key="features"
            ) from None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise VaekitError(f"Inception features need images (B, 1 or 3, H, W), got {tuple(x.shape)}")
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        return self.net(x).reshape(len(x), -1)


def class_accuracy_line(result: dict) -> str | None:
    """The line a quality ``result`` (quality.json) gives of a conditional run's class accuracy, or of why it was
    not measured; None where it has neither (an unconditional run)."""
    acc = result.get("class_accuracy")
    if isinstance(acc, dict) and isinstance(acc.get("samples"), (int, float)):
        real = f"{acc['real']:.3f}" if isinstance(acc.get("real"), (int, float)) else "-"
        return (
            f"class accuracy: {acc['samples']:.3f} of the samples drawn for a class are classified as it "
            f"(the classifier on the real {result.get('split')} split: {real})"
        )
    note = result.get("class_accuracy_note")
    return note if isinstance(note, str) else None
