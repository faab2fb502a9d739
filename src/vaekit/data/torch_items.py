"""A map-style torch Dataset (or any sized, indexable container of items) read a batch of items at a time, as a
LazyArray's source: the items of ``vaekit.fit``'s data when it is no array; a DataLoader's settings, and a
vaekit Dataset's splits, as fit takes them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from .containers import (
    ITERABLE,
    as_array,
    channels_last,
    grey_channel,
    loader_note,
    loader_refusal,
    moved_note,
    split_item,
)
from .core import Dataset, image_scale
from .labels import refuse_mixed
from .photos import note
from .user_arrays import plain_array, tensor_array


class TorchSource:
    """A map-style Dataset yielding x, (x, y) or dicts (``containers.split_item``), read a batch of items at a time
    (LazyArray's source); channels-last image items are moved to channels-first."""

    def __init__(
        self,
        dataset: Any,
        where: str,
        x_key: str | None = None,
        y_key: str | None = None,
        expected: tuple[int, ...] | None = None,
    ):
        if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__"):
            raise VaekitError(f"{where}: {ITERABLE}")
        self.dataset, self.where, self.keys = dataset, where, (x_key, y_key)
        if len(dataset) == 0:
            raise VaekitError(f"{where}: the dataset holds no items")
        first = self._item(0, notes=True)  # bfloat16 items that look like 8-bit images: said once, of item 0
        self.item_shape, self.labelled = tuple(first[0].shape), first[1] is not None
        self.move = channels_last(self.item_shape, first[0].dtype, expected)
        if self.move:
            moved_note(where, self.item_shape)
        s = self.item_shape
        self.grey = not self.move and grey_channel(s, expected)  # (H, W) items for a (1, H, W) model
        self.shape = (s[2], s[0], s[1]) if self.move else (1, *s) if self.grey else s

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, i: int, notes: bool = False) -> tuple[np.ndarray, object]:
        x, y = split_item(self.dataset[i], i, self.where, *self.keys)
        where = f"{self.where}, item {i}"  # a tensor numpy cannot hold, or a masked array, is one line naming it
        if isinstance(x, Tensor):
            x = tensor_array(x, where, notes)
        elif isinstance(x, np.ndarray):
            x = plain_array(x, where)
        x = as_array(x)
        if x.dtype.kind not in "biuf":
            raise VaekitError(f"{self.where}: item {i} has dtype {x.dtype}, which is not numeric")
        return x, y

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, *shape) float32 (uint8 images scaled to [0, 1]); an item of another shape is
        one clear error. NaN and inf are LazyArray's to refuse, naming the item."""
        items = [self._item(int(i))[0] for i in rows]
        for i, x in zip(rows, items):
            if x.shape != self.item_shape:
                raise VaekitError(f"{self.where}: item {int(i)} has shape {x.shape}, item 0 has {self.item_shape}")
        x = np.stack(items)
        if self.move:  # (B, H, W, C) -> (B, C, H, W)
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        elif self.grey:  # (B, H, W) -> (B, 1, H, W)
            x = x[:, None]
        out = x.astype(np.float32)
        if image_scale(x) != 1.0:  # uint8 images (B, C, H, W) to [0, 1], as arrays and files are
            out /= np.float32(image_scale(x))
        return out

    def labels(self) -> np.ndarray:
        """Every item's label, (N,): one pass over the data (a TensorDataset's label tensor is read directly)."""
        tensors = getattr(self.dataset, "tensors", None)
        if isinstance(tensors, tuple) and len(tensors) == 2:
            return tensors[1].cpu().numpy()
        labels = [as_array(self._item(i)[1]).tolist() for i in range(len(self))]  # each as its Python value
        refuse_mixed(labels, self.where)  # numpy would make label 2 the name "2"
        return np.asarray(labels)  # object where one is None: its item named by ``labels.plain_labels``


def loader_settings(data: object, batch_size: int | None, workers: int | None) -> tuple[int, int]:
    """fit's batch size and workers (default 128 and 0), or a DataLoader's own. vaekit shuffles, batches and shards
    the loader's dataset itself: what else of the loader cannot take effect is refused in one line, what its own
    order harmlessly replaces said in one note (``containers.loader_refusal``, ``containers.loader_note``)."""
    if not isinstance(data, torch.utils.data.DataLoader):
        return 128 if batch_size is None else batch_size, workers or 0
    why = loader_refusal(data)
    if why is not None or data.batch_size is None:  # no batch size: refused, with why
        raise VaekitError(f"DataLoader: {why}")
    for name, given, own in (("batch_size", batch_size, data.batch_size), ("workers", workers, data.num_workers)):
        if given is not None and given != own:
            raise VaekitError(f"{name} {given} and the DataLoader's {own} cannot both take effect", key=name)
    loader_note(data)
    if data.batch_size == 1 and batch_size is None and _count(data.dataset) > 1:  # torch's default, seldom meant
        note(
            "DataLoader: its batch_size is 1 (torch's default), given or left so: each step trains on one item; "
            "if that was not meant, give it a batch_size (fit's own default is 128)"
        )
    return data.batch_size, data.num_workers


def _count(dataset: object) -> int:
    """Items in a map-style dataset, or 0 where it cannot say (an iterable one: refused by ``loader_refusal``)."""
    try:
        return len(dataset)  # type: ignore[arg-type]
    except TypeError:
        return 0


def own_splits(data: object, val_data: object) -> tuple[object, object]:
    """A vaekit Dataset (``load_dataset``'s) as the data it holds: its train split's (x, y), and its val split's
    as val_data where none is given (its test split is left for evaluation); other data as it is."""
    if isinstance(val_data, Dataset):
        raise VaekitError(
            "val_data: a vaekit Dataset is passed as data (its val split validates); pass (ds.val.x, ds.val.y)"
        )
    if not isinstance(data, Dataset):
        return data, val_data
    if data.table is not None:
        raise VaekitError(
            f"data: the Dataset {data.name!r} holds a table's encoded columns; fit a table from its data frame "
            "(pandas.read_csv(path)) or train on its file with vaekit.train"
        )
    train, val = (s.x if s.y is None else (s.x, s.y) for s in (data.train, data.val))
    return train, val_data if val_data is not None or not len(data.val) else val
