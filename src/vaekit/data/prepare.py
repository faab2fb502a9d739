"""A run's data as its config names it: loaded, checked against the likelihood's support, binarised as set."""

from __future__ import annotations

from functools import partial

import torch
from torch.distributions import Distribution

from ..config import RunConfig
from ..core.likelihoods import check_support
from ..errors import VaekitError
from . import load_dataset
from .core import Dataset, Split
from .lazy import LazyArray, load_streamed


def resolve_binarize(binarize: str, likelihood: str, kind: str) -> str:
    """'auto' means dynamic binarisation for images under a Bernoulli likelihood, none otherwise."""
    if binarize != "auto":
        return binarize
    return "dynamic" if kind == "image" and likelihood == "bernoulli" else "none"


def prepare_data(cfg: RunConfig, spec: str | None = None, stream: bool = False) -> tuple[Dataset, str]:
    """Load ``spec`` (default: the config's), check it against the likelihood; returns (data, binarize mode).

    'fixed' binarises every split once; 'dynamic' leaves the training split grey (the trainer draws
    a new binarisation per batch) and binarises validation and test once, so their losses are stable.
    Both draw from a generator seeded by the run's seed. ``stream`` lets data.in_memory choose memory-mapped
    or lazily read splits (LazyArray), which are checked and binarised per batch as they are read.
    """
    d = cfg.data
    spec = spec or d.spec
    if not spec:
        raise VaekitError("this run was trained on data passed in memory: name the data to use", key="data.spec")
    data = load_streamed(spec, d.in_memory, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                         seed=cfg.train.seed, limit=d.limit) if stream else None
    data = data or load_dataset(spec, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                                seed=cfg.train.seed, binarize="none", label_column=d.label_column,
                                data_dir=d.data_dir, limit=d.limit)
    shape = tuple(cfg.model.input_shape)  # set once a model was built: other data must fit it
    if shape and tuple(data.shape) != shape:
        raise VaekitError(f"{data.name}: items have shape {tuple(data.shape)}, the run's model expects {shape}")
    mode = resolve_binarize(cfg.data.binarize, cfg.model.likelihood, data.kind)
    return check_and_binarize(data, mode, cfg.model.likelihood, cfg.train.seed), mode


def check_and_binarize(data: Dataset, mode: str, likelihood: str | Distribution, seed: int) -> Dataset:
    """Check every split against the likelihood's support and binarise it as ``mode`` says; returns ``data``.

    Lazily read splits (LazyArray) are given the check and the binarisation to apply per batch. The draws
    of split s come from a generator seeded by ``seed`` + s (train 0, val 1, test 2).
    """
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        # binarising needs probabilities in [0, 1]; binary data then lies in every likelihood's support
        lik = "bernoulli" if mode != "none" else likelihood
        split_seed = seed + ("train", "val", "test").index(name)
        fixed = mode == "fixed" or (mode == "dynamic" and name != "train")
        if isinstance(split.x, LazyArray):
            split.x.check = partial(check_support, lik, where=f"{data.name} ({name} split)")
            split.x.binarize_seed = split_seed if fixed else None
            continue
        check_support(lik, split.x, f"{data.name} ({name} split)")
        if fixed:
            g = torch.Generator().manual_seed(split_seed)
            setattr(data, name, Split(torch.bernoulli(split.x, generator=g), split.y))
    return data
