"""Training batches: a seeded order of items cut into batches (no lone last item), read through a DataLoader
with loader processes for lazily read data, sliced for data in memory."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

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


def batches(
    x: Items,
    y: Tensor | None,
    perm: Tensor,
    size: int,
    start: int,
    workers: int,
    device: torch.device,
) -> Iterator[tuple[int, Tensor, Tensor | None]]:
    """(b, x (B, *shape), y (B,) or None) for batches ``start``.. of ``perm`` cut into ``size`` (``batch_count``:
    a lone last item joins the batch before); lazy data comes through a DataLoader with ``workers`` processes
    (pinned memory on CUDA), in-memory data is sliced."""
    n = batch_count(len(perm), size)
    if not isinstance(x, LazyArray):
        for b in range(start, n):
            idx = perm[batch_rows(b, n, size)]
            yield b, x[idx], None if y is None else y[idx]
        return
    rows = perm.cpu().numpy()
    loader = torch.utils.data.DataLoader(
        _Batches(x, None if y is None else y.cpu()),
        sampler=[rows[batch_rows(b, n, size)] for b in range(start, n)],
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
