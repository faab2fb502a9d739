"""A run folder as an object: its config, its model, and what users ask of it (samples, reconstructions, codes)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from .checkpoint import load_weights
from .config import RunConfig, load_json_config, settings_from, validate
from .data import Dataset, Split, load_dataset
from .data.lazy import LazyArray, load_streamed
from .errors import VaekitError
from .models import build_model
from .nets import check_support

CONFIG, WEIGHTS, CHECKPOINT, METRICS = "config.json", "model.safetensors", "checkpoint.safetensors", "metrics.csv"


def resolve_binarize(cfg: RunConfig, kind: str) -> str:
    """'auto' means dynamic binarisation for images under a Bernoulli likelihood, none otherwise."""
    if cfg.data.binarize != "auto":
        return cfg.data.binarize
    return "dynamic" if kind == "image" and cfg.model.likelihood == "bernoulli" else "none"


def prepare_data(cfg: RunConfig, spec: str | None = None, stream: bool = False) -> tuple[Dataset, str]:
    """Load ``spec`` (default: the config's), check it against the likelihood; returns (data, binarize mode).

    'fixed' binarises every split once; 'dynamic' leaves the training split grey (the trainer draws
    a new binarisation per batch) and binarises validation and test once, so their losses are stable.
    Both draw from a generator seeded by the run's seed. ``stream`` lets data.in_memory choose memory-mapped
    or lazily read splits (LazyArray), which are checked and binarised per batch as they are read.
    """
    d = cfg.data
    data = load_streamed(spec or d.spec, d.in_memory, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                         seed=cfg.train.seed, limit=d.limit) if stream else None
    data = data or load_dataset(spec or d.spec, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                                seed=cfg.train.seed, binarize="none", label_column=d.label_column,
                                data_dir=d.data_dir, limit=d.limit)
    shape = tuple(cfg.model.input_shape)  # set once a model was built: other data must fit it
    if shape and tuple(data.shape) != shape:
        raise VaekitError(f"{data.name}: items have shape {tuple(data.shape)}, the run's model expects {shape}")
    mode = resolve_binarize(cfg, data.kind)
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        # binarising needs probabilities in [0, 1]; binary data then lies in every likelihood's support
        support = "bernoulli" if mode != "none" else cfg.model.likelihood
        seed = cfg.train.seed + ("train", "val", "test").index(name)
        fixed = mode == "fixed" or (mode == "dynamic" and name != "train")
        if isinstance(split.x, LazyArray):
            split.x.check = partial(check_support, support, where=f"{data.name} ({name} split)")
            split.x.binarize_seed = seed if fixed else None
            continue
        check_support(support, split.x, f"{data.name} ({name} split)")
        if fixed:
            g = torch.Generator().manual_seed(seed)
            setattr(data, name, Split(torch.bernoulli(split.x, generator=g), split.y))
    return data, mode


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaekitError("--device cuda: no CUDA device is available")
    return torch.device(name)


@dataclass
class Run:
    """A trained run: ``Run.load('runs/demo').sample(16)``."""

    path: Path
    config: RunConfig
    model: nn.Module

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", weights: str = WEIGHTS) -> "Run":
        """Rebuild the model from ``config.json`` and load ``model.safetensors``."""
        path = Path(path)
        if not path.is_dir():
            raise VaekitError(f"{path}: run folder not found")
        cfg = load_json_config(path / CONFIG)
        with settings_from(path / CONFIG):
            validate(cfg)
        model = build_model(cfg.model)
        load_weights(model, path / weights)
        return cls(path, cfg, model.to(resolve_device(device)).eval())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, x: Tensor) -> Tensor:
        shape = tuple(self.config.model.input_shape)
        if tuple(x.shape[1:]) != shape:
            raise VaekitError(f"data items have shape {tuple(x.shape[1:])}, the run's model expects {shape}")
        return x.to(self.device, torch.float32)

    def labels(self, y: Tensor | int | None, n: int) -> Tensor | None:
        """(n,) int64 labels on the model's device for a conditional model, None for the others.

        ``y`` is one label (an int or a 1-item tensor, repeated n times) or at least n labels (the first n).
        """
        if not self.model.needs_labels:
            return None
        if y is None:
            raise VaekitError("this model is conditional: it needs labels (label=K, or data with labels)")
        y = torch.as_tensor(y).reshape(-1)
        return (y.repeat(n) if len(y) == 1 else y[:n]).to(self.device, torch.long)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, label: int | Tensor | None = None) -> Tensor:
        """(n, *shape) means of p(x|z) for z drawn from the prior (scaled by ``temperature``)."""
        return self.model.generate(n, temperature, self.labels(label, n)).mean.cpu()

    @torch.no_grad()
    def sample_classes(self, per_class: int, temperature: float = 1.0) -> Tensor:
        """(K * per_class, *shape) samples of a conditional run, class by class (K = model.num_classes)."""
        k = self.config.model.num_classes
        y = torch.arange(k, device=self.device).repeat_interleave(per_class)  # (K * per_class,)
        return self.model.generate(len(y), temperature, y).mean.cpu()

    @torch.no_grad()
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z|x) for (B, *shape) inputs: ``.mean`` (B, D) are the embeddings, ``.stddev`` their scales."""
        return self.model.encode(self._check(x), self.labels(y, len(x)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """(B, *shape) means of p(x|z) at z = the posterior mean of each input (labels ``y`` (B,) if conditional)."""
        y = self.labels(y, len(x))
        return self.model.decode(self.model.encode(self._check(x), y).mean, y).mean.cpu()


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Open a run folder written by ``vaekit train``."""
    return Run.load(path, device)
