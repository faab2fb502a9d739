"""Items (C, L) for a run whose model takes items of two dimensions (1-D signals, as ``vaekit.fit`` trains on):
the loaders read a file's 3-D array (N, C, L) as grey images (N, 1, C, L) (``core.to_layout``), a uint8 one
divided by 255; here its items are taken as the file holds them, unscaled, as ``vaekit.fit`` takes the same
array (``data.user.as_items`` divides only uint8 images (N, C, H, W)).

The divisor undone is the one its reading recorded, never guessed again from the file: ``Dataset.scale`` (from
``RawData.scale``) for items in memory, the source's ``scale`` for lazily read ones. A uint8 file of shape
(N, C, L) and one of (N, 1, C, L) are both read as (N, 1, C, L) divided by 255 (``core.image_scale``), so a
(C, L) model gets the same items 0..255 from either; a float file (values k / 255 too) was not divided and is
not multiplied. Built-in sets and photo folders are images whose [0, 1] is their own range: their channel goes,
their values stay.

Items (H, W, C) likewise for a run whose model takes channels-last images (a user's own, which ``vaekit.fit``
trained on such arrays as given): the loaders move a file's (N, H, W, C) to (N, C, H, W) (``core.to_layout``),
and here the channels go back last (``channels_last_of``), the values as read."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar, cast

import numpy as np
import torch

from .core import Dataset, RawData
from .lazy import LazyArray, NpySource, Source
from .pixels import CHANNELS

T = TypeVar("T", bound="torch.Tensor | LazyArray")  # items: a tensor or lazily read data


def as_model_items(data: Dataset, shape: tuple[int, ...]) -> Dataset:
    """``data`` for a model that takes items ``shape`` (C, L): items (1, C, L) (a file's 3-D array read as grey
    images) as (C, L), a file's values as it holds them (``signal_scale``); for a model that takes channels-last
    images ``shape`` (H, W, C), images (C, H, W) as (H, W, C) (``channels_last_of``); other data as it is."""
    last = channels_last_of(tuple(data.shape), tuple(shape))
    if not last and (len(shape) != 2 or tuple(data.shape) != (1, *shape)):
        return data
    scale = 1.0 if last else signal_scale(data)
    train, val, test = (replace(s, x=model_items(s.x, shape, scale)) for s in (data.train, data.val, data.test))
    kind = data.kind if last else "table"  # signals: as fit takes them
    return replace(data, train=train, val=val, test=test, shape=tuple(shape), kind=kind)


def channels_last_of(have: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether items ``have`` (C, H, W) are images a model taking channels-last ``shape`` (H, W, C) takes with
    their channels moved last: exactly the items the loaders move a file's (H, W, C) to (C in ``CHANNELS``, H
    not, as ``core.to_layout`` moves them). A model taking (C, H, W), as every built-in one does, never."""
    if len(shape) != 3 or shape[2] not in CHANNELS or shape[0] in CHANNELS:
        return False
    return tuple(have) == (shape[2], shape[0], shape[1])


def signal_scale(data: Dataset | RawData) -> float:
    """What ``data``'s reading divided a file's values by (``scale``: 255 for a uint8 .npy, .npz or IDX array,
    of shape (N, C, L) or (N, 1, C, L) alike), for a signal model to undo; 1 for a built-in set or a folder of
    photos (``image_mode`` set): images in their own range."""
    return 1.0 if data.image_mode or data.builtin else data.scale


def model_items(x: T, shape: tuple[int, ...], scale: float = 1.0) -> T:
    """Items x (N, 1, C, L) as (N, C, L) for a model taking ``shape`` (C, L), times ``scale`` (``signal_scale``
    of their Dataset: a uint8 file's values back to 0..255, exactly, as k / 255 in float32 times 255 is k);
    others as they are. Lazily read items stay lazy, their own source's divisor undone (``source_scale``;
    ``scale`` is not used): the channel goes as each batch is read. Images (N, C, H, W) for a model taking
    channels-last ``shape`` (H, W, C) (``channels_last_of``) as (N, H, W, C), their values as they are."""
    if channels_last_of(tuple(x.shape[1:]), shape):
        if isinstance(x, LazyArray):
            return cast(T, replace(x, source=_ChannelsLast(x.source)))
        return cast(T, x.permute(0, 2, 3, 1).contiguous())
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


class _ChannelsLast(_Squeezed):
    """A source of images (C, H, W) read as (H, W, C); its other attributes are the source's."""

    def __init__(self, source) -> None:
        super().__init__(source)
        c, h, w = source.shape
        self.shape = (h, w, c)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.source.read(rows).transpose(0, 2, 3, 1))
