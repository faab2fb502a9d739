"""Items (C, L) for a run whose model takes items of two dimensions (1-D signals, as ``vaekit.fit`` trains on):
the loaders read a file's 3-D array (N, C, L) as grey images (N, 1, C, L) (``core.to_layout``), a uint8 one
divided by 255; here its items are taken as the file holds them, unscaled, as ``vaekit.fit`` takes the same
array (``data.user.as_items`` divides only uint8 images (N, C, H, W)).

The divisor undone is the one its reading recorded, never guessed again from the file: ``Dataset.scale`` (from
``RawData.scale``) for items in memory, the source's ``scale`` for lazily read ones. A uint8 file of shape
(N, C, L) and one of (N, 1, C, L) are both read as (N, 1, C, L) divided by 255 (``core.image_scale``), so a
(C, L) model gets the same items 0..255 from either; a float file (values k / 255 too) was not divided and is
not multiplied. Built-in sets and photo folders are images whose [0, 1] is their own range: their channel goes,
their values stay."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar, cast

import numpy as np
import torch

from .core import Dataset, RawData
from .lazy import LazyArray, NpySource, Source

T = TypeVar("T", bound="torch.Tensor | LazyArray")  # items: a tensor or lazily read data


def as_model_items(data: Dataset, shape: tuple[int, ...]) -> Dataset:
    """``data`` for a model that takes items ``shape`` (C, L): items (1, C, L) (a file's 3-D array read as grey
    images) as (C, L), a file's values as it holds them (``signal_scale``); other data as it is."""
    if len(shape) != 2 or tuple(data.shape) != (1, *shape):
        return data
    scale = signal_scale(data)
    train, val, test = (replace(s, x=model_items(s.x, shape, scale)) for s in (data.train, data.val, data.test))
    return replace(data, train=train, val=val, test=test, shape=tuple(shape), kind="table")  # as fit takes them


def signal_scale(data: Dataset | RawData) -> float:
    """What ``data``'s reading divided a file's values by (``scale``: 255 for a uint8 .npy, .npz or IDX array,
    of shape (N, C, L) or (N, 1, C, L) alike), for a signal model to undo; 1 for a built-in set or a folder of
    photos (``image_mode`` set): images in their own range."""
    return 1.0 if data.image_mode or data.builtin else data.scale


def model_items(x: T, shape: tuple[int, ...], scale: float = 1.0) -> T:
    """Items x (N, 1, C, L) as (N, C, L) for a model taking ``shape`` (C, L), times ``scale`` (``signal_scale``
    of their Dataset: a uint8 file's values back to 0..255, exactly, as k / 255 in float32 times 255 is k);
    others as they are. Lazily read items stay lazy, their own source's divisor undone (``source_scale``;
    ``scale`` is not used): the channel goes as each batch is read."""
    if len(shape) != 2 or tuple(x.shape[1:]) != (1, *shape):
        return x
    if isinstance(x, LazyArray):
        return cast(T, replace(x, source=_Squeezed(x.source, source_scale(x.source))))
    return cast(T, x[:, 0] * scale if scale != 1.0 else x[:, 0])


def source_scale(source: Source) -> float:
    """``signal_scale`` of lazily read items: what a .npy file's reading divides by (``NpySource.scale``: 255 for
    uint8), 1 for others: a folder of photos' (its cache, an NpySource too, has a ``mode``, L or RGB)."""
    return source.scale if isinstance(source, NpySource) and not getattr(source, "mode", None) else 1.0


class _Squeezed:
    """A source (``lazy.Source``) of items (1, *shape) read as (*shape), times ``scale`` (the source's divisor
    undone); its other attributes are the source's."""

    def __init__(self, source, scale: float = 1.0) -> None:
        self.source, self.where, self.shape = source, source.where, tuple(source.shape[1:])
        self.scale = scale

    def __len__(self) -> int:
        return len(self.source)

    def read(self, rows: np.ndarray) -> np.ndarray:
        x = self.source.read(rows)[:, 0]
        return x * np.float32(self.scale) if self.scale != 1.0 else x

    def __getattr__(self, name: str):  # labels, classes, files; "source" itself only once set (unpickling)
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)
