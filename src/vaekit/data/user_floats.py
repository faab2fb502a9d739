"""The user's checked array items (N, *shape), in their own dtype, as the float32 the models read: whole
(``whole_floats``: a writable float32 array kept as it is, no copy), or a split at a time (``HeldArray``): the
items ``vaekit.fit`` splits into train and val are held in their own dtype (uint8 images undivided) until split,
and each split is cast alone, so no full float32 copy of the data lives beside the split ones."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .item_arrays import float_items, image_scale
from .lazy import LazyArray


class HeldArray:
    """Checked items ``x`` (N, *shape) of any numeric dtype, a LazyArray's source until they are split
    (``held_split``): read as ``whole_floats`` reads them, divided by their dtype's scale (uint8 images: 255)."""

    def __init__(self, x: np.ndarray, where: str):
        self.x, self.where, self.shape, self.scale = x, where, tuple(x.shape[1:]), image_scale(x)

    def __len__(self) -> int:
        return len(self.x)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, *shape) float32, cast a chunk at a time (``float_items``)."""
        return float_items(self.x, rows, self.scale)


def held(x: np.ndarray, where: str) -> LazyArray:
    """Every item of ``x`` (N, *shape), held in its dtype: nothing is cast until a split is taken."""
    return LazyArray(HeldArray(x, where), np.arange(len(x)))


def held_split(x: Tensor | LazyArray) -> Tensor | LazyArray:
    """Items of a ``HeldArray`` as a float32 tensor (N, *shape), cast now; other items as they are."""
    if isinstance(x, LazyArray) and isinstance(x.source, HeldArray):
        return torch.from_numpy(x.source.read(x.index))
    return x


def whole_floats(x: np.ndarray) -> Tensor:
    """Every item of ``x`` (N, *shape) as float32 (N, *shape), divided by its dtype's scale; a writable C-ordered
    float32 array is shared, not copied."""
    out = np.ascontiguousarray(x, dtype=np.float32)
    out = out if out.flags.writeable else out.copy()  # torch warns of (and may write to) a read-only array
    if image_scale(x) != 1.0:
        out /= np.float32(image_scale(x))
    return torch.from_numpy(out)
