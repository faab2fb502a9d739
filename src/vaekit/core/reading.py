"""Reading a model without changing it: eval mode for a block (``evaluating``), the RNGs kept (``kept_rng``), both
(``probing``), and the mean of any distribution (``mean_of``). Re-exported by ``core.contract``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import cast

import torch
from torch import Tensor
from torch.distributions import Distribution


def kept_rng(device: torch.device) -> AbstractContextManager:
    """``torch.random.fork_rng`` for the CPU's RNG and, for a CUDA ``device``, that device's: both as they were
    after the block."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device.index if device.index is not None else torch.cuda.current_device()])


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """``model`` in eval mode for the block (dropout off, BatchNorm's running statistics read, not moved), its
    mode as it was after it: what every entry point that reads a model (codes, samples, figures) runs under."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def probing(model: torch.nn.Module) -> Iterator[torch.device]:
    """``model`` in eval mode for the block, its mode and the RNGs (``kept_rng``) as they were after it: a look at
    the model that changes nothing. Yields the device of its parameters (the CPU where it has none)."""
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    with kept_rng(device), evaluating(model):
        yield device


MEAN_DRAWS = 64  # draws whose average is the mean of a distribution without one, 8 at a time


def mean_of(d: Distribution) -> Tensor:
    """``d.mean`` (batch + event shape), or where ``d`` has none (torch raises NotImplementedError: a flow, a
    TransformedDistribution) the average of ``MEAN_DRAWS`` draws under seed 0: the same on every call, the caller's
    RNGs (the CPU's, and CUDA's once in use) as they were. What codes, reconstructions, samples and pictures take."""
    try:
        return d.mean
    except NotImplementedError:
        pass
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []):
        torch.manual_seed(0)
        total = sum(d.sample((8,)).sum(0) for _ in range(MEAN_DRAWS // 8))
    return cast(Tensor, total) / MEAN_DRAWS
