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
SPREAD_DRAWS = 256  # draws whose spread is the standard deviation of a distribution without one, 64 at a time


def _seeded_draws(d: Distribution, n: int, each: int) -> Iterator[Tensor]:
    """``n`` draws of ``d`` under seed 0, ``each`` at a time ((each, *batch, *event) apiece, one held at once; read
    them all): the same on every call, the caller's RNGs (the CPU's, and CUDA's once in use) as they were after."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []):
        torch.manual_seed(0)
        for _ in range(n // each):
            yield d.sample((each,))


def mean_of(d: Distribution) -> Tensor:
    """``d.mean`` (batch + event shape), or where ``d`` has none (torch raises NotImplementedError: a flow, a
    TransformedDistribution) the average of ``MEAN_DRAWS`` seeded draws (``_seeded_draws``). What codes,
    reconstructions, samples and pictures take."""
    try:
        return d.mean
    except NotImplementedError:
        pass
    return cast(Tensor, sum(s.sum(0) for s in _seeded_draws(d, MEAN_DRAWS, 8))) / MEAN_DRAWS


def stddev_of(d: Distribution, loc: Tensor) -> Tensor:
    """``d.stddev`` (batch + event shape), or where ``d`` has none (a user's own distribution) the standard
    deviation about ``loc`` (``mean_of(d)``) of ``SPREAD_DRAWS`` seeded draws (``_seeded_draws``), in float64."""
    try:
        return d.stddev
    except NotImplementedError:
        pass
    shift, n = loc.double(), SPREAD_DRAWS
    s1, s2 = torch.zeros_like(shift), torch.zeros_like(shift)  # sums of the draws' deviations and their squares
    for s in _seeded_draws(d, n, 64):
        dev = s.double() - shift
        s1, s2 = s1 + dev.sum(0), s2 + dev.pow(2).sum(0)
    return ((s2 - s1 * s1 / n) / (n - 1)).clamp_min(0).sqrt().to(loc.dtype)
