"""Training batches: a seeded order of items cut into batches (no lone last item), read through a DataLoader
with loader processes for lazily read data, sliced for data in memory. Under N processes the batches are cut
once, as one process cuts them, and each process takes its share of every batch (``batch_items``)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..config import TrainConfig
from ..config.conflicts_zoo import batch_level
from ..errors import VaekitError
from .lazy import LazyArray
from .packed import Items


class _Batches(torch.utils.data.Dataset):
    """Loader items are whole batches: rows (B,) -> (x (B, *shape), y (B,) or None), or an error's one line."""

    def __init__(self, x: LazyArray, y: Tensor | None):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, positions: np.ndarray):
        try:
            xb = self.x.read(self.x.index[positions])
        except VaekitError as e:  # a worker's exception would come back with its traceback in the message
            return str(e)
        return xb, None if self.y is None else self.y[positions]


def batch_count(n: int, size: int) -> int:
    """Batches of ``size`` in a pass over ``n`` items: ceil(n / size), one fewer where the last would hold a lone
    item, which then joins the batch before (``size`` + 1 items). No item is dropped, and no step sees a batch
    of one, which the MMD objective (pairs of items) and a network with BatchNorm in training cannot take."""
    count = math.ceil(n / size)
    return count - 1 if count > 1 and n % size == 1 else count


def batch_rows(b: int, count: int, size: int) -> slice:
    """Positions of batch ``b`` of ``count`` (``batch_count``): ``size`` of them, the last batch all that remain."""
    return slice(b * size, None if b == count - 1 else (b + 1) * size)


def fewest(model: nn.Module, train: TrainConfig) -> int:
    """The fewest items a process's share of a training batch may hold: 2 where the objective estimates something
    from a batch's items together (``config.conflicts_zoo.batch_level``) or the model normalises over the batch
    (BatchNorm), which a lone item cannot give; else 1."""
    norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return 2 if norms or batch_level(train) else 1


def batch_items(perm: Tensor, b: int, count: int, size: int, rank: int = 0, world: int = 1, least: int = 2) -> Tensor:
    """Items of batch ``b`` of ``count`` of the permutation ``perm`` (N,) cut into ``size`` (``batch_rows``), or
    process ``rank``'s share of it out of ``world``: every world-th item from ``rank``. Every batch but the last
    splits evenly (``size`` is a multiple of ``world``); a last batch that does not, or that would leave a process
    fewer than ``least`` items (``fewest``) where whole batches give it as many, is padded first with the
    permutation's first items (wrapping around, as DistributedSampler pads), so every process takes as many."""
    items = perm[batch_rows(b, count, size)]
    if world == 1:
        return items
    each = max(-(-len(items) // world), min(least, size // world))
    pad = each * world - len(items)
    if pad:
        items = torch.cat([items, perm[torch.arange(pad, device=perm.device) % len(perm)]])
    return items[rank::world]


def batches(
    x: Items,
    y: Tensor | None,
    perm: Tensor,
    size: int,
    start: int,
    workers: int,
    device: torch.device,
    *,
    rank: int = 0,
    world: int = 1,
    least: int = 2,
) -> Iterator[tuple[int, Tensor, Tensor | None]]:
    """(b, x (B, *shape), y (B,) or None) for batches ``start``.. of ``perm`` cut into ``size`` (``batch_count``:
    a lone last item joins the batch before), or process ``rank``'s share of each out of ``world``, of ``least``
    items or more (``batch_items``): as many batches in any number of processes. Lazy data comes through a
    DataLoader with ``workers`` processes (pinned memory on CUDA), in-memory data is sliced."""
    n = batch_count(len(perm), size)
    if not isinstance(x, LazyArray):
        for b in range(start, n):
            idx = batch_items(perm, b, n, size, rank, world, least)
            yield b, x[idx], None if y is None else y[idx]
        return
    rows = perm.cpu()
    loader = torch.utils.data.DataLoader(
        _Batches(x, None if y is None else y.cpu()),
        sampler=[batch_items(rows, b, n, size, rank, world, least).numpy() for b in range(start, n)],
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(0),
    )  # its own: the training RNG stream stays untouched
    for b, item in enumerate(loader, start):
        if isinstance(item, str):
            raise VaekitError(item)
        xb, yb = item
        yield b, xb.to(device, non_blocking=True), None if yb is None else yb.to(device, non_blocking=True)
