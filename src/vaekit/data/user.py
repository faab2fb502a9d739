"""The user's own data as a vaekit Dataset: numpy arrays, torch tensors, (x, y) pairs held in memory, and torch
Datasets or DataLoaders read item by item (streamed, like a memory-mapped .npy).

In-memory data gets the checks that files get (a numeric dtype, items (N, *shape), no NaN or inf); the
likelihood's support is checked by the caller, who knows the model. Item shapes are kept as given.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from .core import Dataset, Split, check_finite, encode_labels, image_scale
from .lazy import LazyArray

SOURCES = "a numpy array, a torch tensor, an (x, y) pair, a torch Dataset or a DataLoader"


def as_items(x: object, where: str) -> Tensor:
    """Array-like items (N, *shape) -> float32 tensor; uint8 images (N, C, H, W) are scaled to [0, 1] as files are."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise VaekitError(f"{where}: expected {SOURCES}, got {type(x).__name__}")
    if x.dtype.kind not in "biuf":
        raise VaekitError(f"{where}: dtype {x.dtype} is not numeric")
    if x.ndim < 2:
        raise VaekitError(f"{where}: expected items of shape (N, *item_shape), got shape {tuple(x.shape)}")
    if 0 in x.shape:
        raise VaekitError(f"{where}: array of shape {tuple(x.shape)} holds no data")
    out = x.astype(np.float32)
    if image_scale(x) != 1.0:
        out /= np.float32(image_scale(x))
    check_finite(out, where)
    return torch.from_numpy(out)


def as_labels(y: object, n: int, where: str) -> Tensor:
    """(N,) class labels -> int64 tensor numbered 0..K-1 (names and negative numbers are renumbered)."""
    y = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if len(y) != n:
        raise VaekitError(f"{where}: {len(y)} labels for {n} items")
    return torch.from_numpy(encode_labels(y, where)[0])


class TorchSource:
    """A map-style torch Dataset yielding x or (x, y), read a batch of items at a time (LazyArray's source)."""

    def __init__(self, dataset: torch.utils.data.Dataset, where: str):
        if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__"):
            raise VaekitError(f"{where}: an iterable dataset cannot be split, shuffled or resumed; "
                              "give a map-style Dataset (with len and indexing)")
        self.dataset, self.where = dataset, where
        if len(dataset) == 0:
            raise VaekitError(f"{where}: the dataset holds no items")
        first = self._item(0)
        self.shape, self.labelled = tuple(first[0].shape), first[1] is not None

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, i: int) -> tuple[np.ndarray, object]:
        item = self.dataset[i]
        if isinstance(item, (tuple, list)) and len(item) == 1:  # TensorDataset(x) yields (x_i,)
            item = item[0]
        x, y = item if isinstance(item, (tuple, list)) and len(item) == 2 else (item, None)
        x = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x)
        if x.dtype.kind not in "biuf":
            raise VaekitError(f"{self.where}: item {i} has dtype {x.dtype}, which is not numeric")
        return x, y

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, *shape) float32 (uint8 images scaled to [0, 1]); an item of another shape is
        one clear error."""
        items = [self._item(int(i))[0] for i in rows]
        for i, x in zip(rows, items):
            if x.shape != self.shape:
                raise VaekitError(f"{self.where}: item {int(i)} has shape {x.shape}, item 0 has {self.shape}")
        x = np.stack(items)
        out = x.astype(np.float32)
        if image_scale(x) != 1.0:  # uint8 images (B, C, H, W) to [0, 1], as arrays and files are
            out /= np.float32(image_scale(x))
        return out

    def labels(self) -> np.ndarray:
        """Every item's label, (N,): one pass over the data (a TensorDataset's label tensor is read directly)."""
        tensors = getattr(self.dataset, "tensors", None)
        if isinstance(tensors, tuple) and len(tensors) == 2:
            return tensors[1].cpu().numpy()
        return np.asarray([self._item(i)[1] for i in range(len(self))])


def from_user(data: object, val_data: object = None, *, val_fraction: float = 0.1, seed: int = 0,
              labels: bool = False) -> Dataset:
    """``data`` (and ``val_data``, else a seeded ``val_fraction`` of ``data``) as train/val splits; no test split.

    ``labels``: the model conditions on labels, so they must come with the data ((x, y), or Datasets of (x, y)).
    """
    train = _splits(data, "data", labels)
    if val_data is not None:
        val = _splits(val_data, "val_data", labels)
        if val.shape != train.shape:
            raise VaekitError(f"val_data: items have shape {val.shape}, data items {train.shape}")
    else:
        n = len(train.train)
        n_val = max(1, round(n * val_fraction))
        if not 0 < val_fraction < 1 or n - n_val < 1:
            raise VaekitError(f"data: {n} items cannot give val_fraction {val_fraction} to validation and keep "
                              "training items; pass val_data or more data")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        val, train = _take(train, perm[:n_val]), _take(train, perm[n_val:])
    k = max((int(s.y.max()) + 1 for s in (train.train, val.train) if s.y is not None and len(s.y)), default=None)
    empty = Split(_none_of(train.train.x), None if train.train.y is None else train.train.y[:0])
    return Dataset(train.name, train.train, val.train, empty, train.shape, train.kind, k)


def _splits(data: object, where: str, labels: bool) -> Dataset:
    """One container as a Dataset whose train split holds every item."""
    if isinstance(data, torch.utils.data.DataLoader):
        data = data.dataset
    if isinstance(data, torch.utils.data.Dataset):
        source = TorchSource(data, where)
        x = LazyArray(source, np.arange(len(source)))
        y = torch.from_numpy(encode_labels(source.labels(), where)[0]) if labels and source.labelled else None
        shape = source.shape
    else:
        x_raw, y_raw = data if isinstance(data, (tuple, list)) and len(data) == 2 else (data, None)
        x = as_items(x_raw, where)
        y, shape = None if y_raw is None else as_labels(y_raw, len(x), where), tuple(x.shape[1:])
    if labels and y is None:
        raise VaekitError(f"{where}: this model conditions on labels; pass (x, y) or a Dataset of (x, y) pairs")
    kind = "image" if len(shape) == 3 else "table"
    return Dataset(where, Split(x, y), Split(_none_of(x), None), Split(_none_of(x), None), shape, kind, None)


def _none_of(x: Tensor | LazyArray) -> Tensor | LazyArray:
    """An empty split of the same kind and item shape."""
    return x.subset(slice(0, 0)) if isinstance(x, LazyArray) else x[:0]


def _take(data: Dataset, idx: Tensor) -> Dataset:
    x = data.train.x.subset(idx.numpy()) if isinstance(data.train.x, LazyArray) else data.train.x[idx]
    return Dataset(data.name, Split(x, None if data.train.y is None else data.train.y[idx]),
                   data.val, data.test, data.shape, data.kind, None)
