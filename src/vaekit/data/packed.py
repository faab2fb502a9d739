"""In-memory training data on a GPU at a quarter of float32's size: 8-bit images (values k / 255) and binary data
are held there as uint8 and turned back, batch by batch, into the very float32 values they were."""

from __future__ import annotations

from typing import TypeAlias

import torch
from torch import Tensor

from .lazy import LazyArray

LEVELS = 255.0
CHUNK = 4096  # items checked at a time, so the check's temporaries stay small


class Packed:
    """Items (N, *shape) kept as uint8 levels ``q``; ``x[idx]`` gives float32 ``q[idx] / 255``, equal bit for bit
    to the float32 data they came from (which ``pack`` checks). Indexed as a tensor is, by rows."""

    def __init__(self, q: Tensor) -> None:
        self.q = q

    def __len__(self) -> int:
        return len(self.q)

    def __getitem__(self, idx: Tensor | slice | int) -> Tensor:
        return self.q[idx].to(torch.float32).div_(LEVELS)

    @property
    def device(self) -> torch.device:
        return self.q.device

    def to(self, device: torch.device) -> Packed:
        return Packed(self.q.to(device))


Items: TypeAlias = Tensor | LazyArray | Packed  # a split's items (N, *shape) as the training loops index them


def pack(x: Tensor) -> Packed | None:
    """``x`` (N, *shape) float32 as ``Packed`` (on x's device) if every value is some k / 255 exactly, else None."""
    if x.dtype != torch.float32 or x.numel() == 0:
        return None
    q = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
    for i in range(0, len(x), CHUNK):
        part = x[i : i + CHUNK]
        levels = (part * LEVELS).round_()
        if not bool(((levels >= 0) & (levels <= LEVELS)).all()):
            return None
        q[i : i + CHUNK] = levels.to(torch.uint8)
        if not torch.equal(q[i : i + CHUNK].to(torch.float32).div_(LEVELS), part):
            return None
    return Packed(q)


def to_device(x: Tensor | LazyArray, device: torch.device) -> Items:
    """A split (N, *shape), for training or validation, on ``device``: on a GPU, 8-bit or binary data in memory as
    ``Packed`` (a quarter of the memory; the batches are the same float32 values). On the CPU the data stays the
    tensor it is (packing would add a copy beside it), and lazily read data is read batch by batch as before."""
    if device.type != "cuda" or isinstance(x, LazyArray):
        return x.to(device)
    packed = pack(x)
    return x.to(device) if packed is None else packed.to(device)
