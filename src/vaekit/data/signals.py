"""Items (C, L) for a run whose model takes items of two dimensions (1-D signals, as ``vaekit.fit`` trains on):
the loaders read a file's 3-D array (N, C, L) as grey images (N, 1, C, L) (``core.to_layout``), a uint8 one
divided by 255; here its items are taken as the file holds them, unscaled, as ``vaekit.fit`` takes the same
array (``data.user.as_items`` divides only uint8 images (N, C, H, W))."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import torch

from .core import Dataset
from .lazy import LazyArray, NpySource

T = TypeVar("T", bound="torch.Tensor | LazyArray")  # items: a tensor or lazily read data
X_KEYS, Y_KEYS = ("x", "X", "data", "images"), ("y", "Y", "labels")  # as readers._from_npz picks them


def as_model_items(
    data: Dataset, shape: tuple[int, ...], spec: str | None = None, scale: float | None = None
) -> Dataset:
    """``data`` (read from ``spec``) for a model that takes items ``shape`` (C, L): a 3-D array (N, C, L) read
    as grey images (N, 1, C, L) has its items taken as the file holds them; other data as it is. ``scale``: what
    its reading divided items in memory by, where known (else ``file_scale`` of ``spec``)."""
    if len(shape) != 2 or tuple(data.shape) != (1, *shape):
        return data
    train, val, test = (replace(s, x=model_items(s.x, shape, spec, scale)) for s in (data.train, data.val, data.test))
    return replace(data, train=train, val=val, test=test, shape=tuple(shape), kind="table")  # as fit takes them


def dataset_items(data: Dataset, shape: tuple[int, ...]) -> Dataset:
    """``as_model_items`` for a vaekit Dataset given without its spec (``evaluate(run, load_dataset(...))``): the
    divisor of a uint8 file is the one its reading recorded (``Dataset.scale``); lazily read items keep their
    source's."""
    return as_model_items(data, shape, scale=data.scale)


def model_items(x: T, shape: tuple[int, ...], spec: str | None = None, scale: float | None = None) -> T:
    """Items x (N, 1, C, L) read from ``spec`` as (N, C, L) for a model taking ``shape`` (C, L) (see
    ``as_model_items``): a uint8 file's values back to 0..255 (exactly: k / 255 in float32, times 255, is k;
    ``scale``: the divisor of items in memory, where known, else ``file_scale(spec)``); others as they are.
    Lazily read items stay lazy: the channel goes as each batch is read."""
    if len(shape) != 2 or tuple(x.shape[1:]) != (1, *shape):
        return x
    if isinstance(x, LazyArray):  # a .npy file's, whose own scale says what its reading divided by
        src = x.source
        scale = src.scale if isinstance(src, NpySource) and src.raw.ndim == 3 else 1.0
        return cast(T, replace(x, source=_Squeezed(src, scale)))
    scale = file_scale(spec) if scale is None else scale
    return cast(T, x[:, 0] * scale if scale != 1.0 else x[:, 0])


def file_scale(spec: str | None) -> float:
    """255 where ``spec`` is a .npy or .npz file whose data array (x_train, else x, X, data, images, else the
    first that is not labels) is 3-D uint8, which its loading divided by 255; else 1. Only the headers are read."""
    path = Path(spec).expanduser() if spec else None
    if path is None or not path.is_file() or path.suffix.lower() not in (".npy", ".npz"):
        return 1.0
    try:
        if path.suffix.lower() == ".npy":
            head = np.load(path, mmap_mode="r", allow_pickle=False)
            kind = (head.dtype, head.ndim)
        else:
            kind = _npz_kind(path)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile):  # read whole, its loading said why
        return 1.0
    return 255.0 if kind == (np.dtype(np.uint8), 3) else 1.0


def _npz_kind(path: Path) -> tuple[np.dtype, int]:
    """(dtype, ndim) of the data array of a .npz archive, from its header."""
    with zipfile.ZipFile(path) as z:
        names = [n.removesuffix(".npy") for n in z.namelist()]
        y = next((k for k in Y_KEYS if k in names), None)
        key = "x_train" if "x_train" in names else next(k for k in (*X_KEYS, *names) if k in names and k != y)
        with z.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    return np.dtype(dtype), len(shape)


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
