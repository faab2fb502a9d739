"""The user's own data as a vaekit Dataset: numpy arrays, torch tensors (or lists of them: items stacked), (x, y)
pairs held in memory, and torch Datasets or DataLoaders read item by item (streamed, like a memory-mapped .npy).

In-memory data gets the checks that files get (a numeric dtype, items (N, *shape), no NaN or inf); the
likelihood's support is checked by the caller, who knows the model. Item shapes are kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from .containers import channels_last, grey_channel, is_frame, loader_refusal, moved_note
from .containers import frame_array as frame_array  # imported from here
from .core import Dataset, Split, check_finite, encode_labels, image_scale, number_labels
from .draws import VAL_PART
from .float32 import fits_float32
from .labels import plain_labels, shown
from .lazy import LazyArray
from .photos import note
from .table_schema import TableSchema
from .torch_items import TorchSource as TorchSource  # imported from here
from .torch_items import loader_settings as loader_settings  # where the API takes it
from .torch_items import own_splits
from .user_arrays import (
    RUN_ITEMS,
    SOURCES,
    frame_names,
    frame_ranges,
    frame_schema,
    items_of,
    listed_items,
    pair_of,
    plain_array,
    refuse_series,
    run_frame,
    same_columns,
)
from .user_floats import held, held_split, whole_floats

NARROW = (torch.float32, torch.float16, torch.bfloat16)  # float tensors whose every value float32 holds


def as_items(
    x: object, where: str, expected: tuple[int, ...] | None = None, takes: str = SOURCES, notes: bool = True
) -> Tensor:
    """Array-like items (N, *shape) -> float32 tensor; uint8 images (N, C, H, W) are scaled to [0, 1] as files are
    (``checked_items``, then ``user_floats.whole_floats``)."""
    return whole_floats(checked_items(x, where, expected, takes, notes))


def checked_items(
    x: object, where: str, expected: tuple[int, ...] | None = None, takes: str = SOURCES, notes: bool = True
) -> np.ndarray:
    """Array-like items (N, *shape) checked and laid out as ``as_items`` reads them, in their own dtype.

    Channels-last images (N, H, W, C) are moved to (N, C, H, W) (``containers.channels_last``; ``expected`` is
    the model's item shape when known). What cannot be read is one line (``user_arrays``; ``takes``: what the
    caller takes); values beyond float32 are refused, a table's columns below its resolution noted (``float32``;
    ``notes``: training data's, not a run method's). The user's array is never written to (``user_floats`` casts
    it into new arrays, or shares a writable float32 one)."""
    names = frame_names(x)
    arr = plain_array(x, where, takes)
    if arr.dtype.kind not in "biuf":
        raise VaekitError(f"{where}: dtype {arr.dtype} is not numeric")
    if arr.ndim < 2:
        raise VaekitError(f"{where}: expected items of shape (N, *item_shape), got shape {tuple(arr.shape)}")
    if 0 in arr.shape:
        raise VaekitError(f"{where}: array of shape {tuple(arr.shape)} holds no data")
    if channels_last(arr.shape[1:], arr.dtype, expected):
        moved_note(where, arr.shape[1:])
        arr = arr.transpose(0, 3, 1, 2)
    elif grey_channel(arr.shape[1:], expected):  # (N, H, W) grey images for a (1, H, W) model
        arr = arr[:, None]
    fits_float32(arr, where, names, notes)
    if image_scale(arr) != 1.0 and arr.max() <= 1:  # a 0/1 mask in uint8 would train as near-black images
        note(
            f"{where}: uint8 images are divided by 255, as image files are; these hold only 0 and 1: pass them "
            "as float or bool to keep them binary"
        )
    check_finite(arr, where)  # as of the float32 items: values beyond float32 were refused above
    return arr


def run_items(x: object, shape: tuple[int, ...], table: TableSchema | None) -> Tensor:
    """Items a run method takes (``Run._check``), read as ``fit`` reads them: float tensors of the model's item
    ``shape`` as they are (on their device), lists as arrays, frames held to the run's columns (``table``), and
    encoded by it where only it makes their items (``user_arrays.run_frame``)."""
    strided = isinstance(x, Tensor) and x.layout == torch.strided and not x.is_meta  # no sparse or meta tensor
    if isinstance(x, Tensor) and strided and x.dtype in NARROW and tuple(x.shape[1:]) == shape:
        return x  # kept where it is (no trip to the CPU); float64 is checked against float32's range
    x = run_frame(x, table, "data items")
    x = listed_items(x, "data items") if isinstance(x, (list, tuple)) else x
    return as_items(x, "data items", shape, RUN_ITEMS, notes=False)


def as_labels(
    y: object,
    n: int,
    where: str,
    afresh: bool = True,
    classes: list[str] | None = None,
    num_classes: int | None = None,
) -> tuple[Tensor, list[str] | None]:
    """(N,) class labels -> (int64 tensor (N,), class names, label 0 first, or None).

    ``afresh``: training data's, numbered 0..K-1 (names and numbers other than 0..K-1 renumbered in sorted order,
    their names returned); else numbered as training numbered them, by the names ``classes`` (returned as they
    are): val_data's labels are given in the form of data's.
    ``num_classes``: the model's, fixing the class numbers: 0..num_classes-1 only, kept as they are.
    """
    if not isinstance(y, (list, tuple)) and np.ndim(cast(Any, y)) == 0:  # fit(model, (x, 1))
        raise VaekitError(f"{where}: labels are one per item: got the one label {y!r} for {n} items")
    y = plain_labels(y, where)
    if len(y) != n:
        raise VaekitError(f"{where}: {len(y)} labels for {n} items")
    codes, names = encode_labels(y, where, num_classes) if afresh else (number_labels(y, where, classes), classes)
    if num_classes and len(codes) and int(codes.max()) >= num_classes:  # val_data's, numbered as training's
        raise VaekitError(f"{where}: label {int(codes.max())} is outside the model's classes 0..{num_classes - 1}")
    return torch.from_numpy(codes), names


def from_user(
    data: object,
    val_data: object = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    labels: bool = False,
    x_key: str | None = None,
    y_key: str | None = None,
    expected: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> Dataset:
    """``data`` (and ``val_data``, else a seeded ``val_fraction`` of ``data``) as train/val splits; no test split.

    ``labels``: the model conditions on labels, so they must come with the data ((x, y), or Datasets of (x, y)).
    Where the model fixes its classes (``num_classes``, as a model built in Python declares it), class numbers
    are kept as they are and one outside 0..num_classes-1 is refused; else names, and numbers other than 0..K-1,
    are numbered in sorted order and kept as the classes (label 0 first), which number val_data's.
    ``x_key``, ``y_key``: the entries of dict items (see ``containers``). ``expected``: the model's item shape,
    when known: other items are refused in one line naming both shapes.
    """
    if data is None:
        raise VaekitError(
            "data is required: pass the items to fit on (an array or tensor (N, *shape), an (x, y) pair, "
            "a torch Dataset or DataLoader, or a vaekit Dataset)"
        )
    data, val_data = own_splits(data, val_data)
    fixed = labels and isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0
    num_classes = num_classes if fixed else None  # an unconditional model's labels only name the items
    train = _splits(data, "data", labels, x_key, y_key, expected, num_classes=num_classes, keep=val_data is None)
    _note_renumbered(train.classes)
    if val_data is not None:  # its labels numbered as the training data's
        same_columns(items_of(val_data), train.table, "val_data")  # a frame's, as data's frame's
        val = _splits(val_data, "val_data", labels, x_key, y_key, expected, not labels, train.classes, num_classes)
        if val.shape != train.shape:
            raise VaekitError(f"val_data: items have shape {val.shape}, data items {train.shape}")
    else:
        n = len(train.train)
        n_val = max(1, round(n * val_fraction))
        if not 0 < val_fraction < 1 or n - n_val < 1:
            raise VaekitError(
                f"data: {n} item{'s' * (n != 1)} cannot give val_fraction {val_fraction} to validation and keep "
                "training items; pass val_data or more data"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        val, train = _take(train, perm[:n_val]), _take(train, perm[n_val:])
    table = frame_ranges(train.table, items_of(data), train.train.rows)  # a frame's, over its training rows
    k = max((int(s.y.max()) + 1 for s in (train.train, val.train) if s.y is not None and len(s.y)), default=None)
    k = num_classes if num_classes and k else k
    empty = Split(_none_of(train.train.x), None if train.train.y is None else train.train.y[:0])
    val_split = replace(val.train, part=VAL_PART) if val_data is not None else val.train  # rows of val_data
    return Dataset(train.name, train.train, val_split, empty, train.shape, train.kind, k, train.classes, table=table)


def _note_renumbered(names: list[str] | None) -> None:
    """One line where training renumbered labels that are numbers (1, 2, 3 as 0, 1, 2; ``names``: the classes,
    label 0 first): labels given to the run afterwards as integers are the new numbers."""
    numbers = [str(i) for i in range(len(names or []))]
    if names and names != numbers and all(n.lstrip("-").isdigit() for n in names):
        note(
            f"data: labels {shown(names)} are classes {shown(numbers)} (run.classes): integers given to the run "
            "later are these numbers, text its class names"
        )


def loader_dataset(data: object, where: str) -> object:
    """A DataLoader's dataset, refused in one line where the loader holds what cannot take effect (a sampler, a
    collate_fn: ``containers.loader_refusal``, fit's own rule); other data as it is."""
    if not isinstance(data, torch.utils.data.DataLoader):
        return data
    why = loader_refusal(data)
    if why is not None:
        raise VaekitError(f"{where} (a DataLoader): {why}")
    return data.dataset


def _map_style(data: object) -> bool:
    """A Dataset to read item by item: a torch one, a list of dicts, or any other sized indexable container that
    is not an array (a Hugging Face dataset)."""
    if isinstance(data, torch.utils.data.Dataset):
        return True
    if isinstance(data, (list, tuple)):
        return len(data) > 0 and isinstance(data[0], Mapping)
    return (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, (np.ndarray, Tensor, str, bytes, Mapping))
        and not is_frame(data)
    )


def users_items(
    data: object,
    labels: bool,
    expected: tuple[int, ...] | None = None,
    classes: list[str] | None = None,
    table: TableSchema | None = None,
    keys: tuple[str | None, str | None] = (None, None),
) -> Dataset:
    """The user's items (any container ``fit`` takes) as the test split of a Dataset with empty train and val
    splits, to be evaluated whole; ``labels``: a conditional model's, which must come with them, numbered as
    training numbered them (by the run's class names ``classes``, else as class numbers); others number afresh.
    ``table``: the run's columns, which a data frame must have, in order (and by which it is encoded, as
    ``run_items`` encodes one). ``keys``: x_key and y_key, the entries of dict items."""
    x = items_of(data)
    items = run_frame(x, table, "data")
    if items is not x:  # a frame encoded by the run's table
        data = items if x is data else (items, data[1])  # type: ignore[index]
    items = _splits(data, "data", labels, *keys, expected=expected, afresh=not labels, classes=classes)
    empty = Split(_none_of(items.train.x), None)
    return replace(items, train=empty, val=empty, test=items.train, table=None)


def _splits(
    data: object,
    where: str,
    labels: bool,
    x_key: str | None = None,
    y_key: str | None = None,
    expected: tuple[int, ...] | None = None,
    afresh: bool = True,
    classes: list[str] | None = None,
    num_classes: int | None = None,
    keep: bool = False,
) -> Dataset:
    """One container as a Dataset whose train split holds every item; ``expected``: the model's item shape;
    ``afresh``, ``classes``, ``num_classes``: how its labels are numbered (``as_labels``), their names kept as
    its classes. ``keep``: an array's items are held in their own dtype, to be split (``_take``): each split is
    then cast alone, and no float32 copy of them all is made (``user_floats``)."""
    data = loader_dataset(data, where)
    refuse_series(items_of(data), where)
    if _map_style(data):
        source = TorchSource(data, where, x_key, y_key, expected)
        x: Tensor | LazyArray = LazyArray(source, np.arange(len(source)))
        y, names, shape, table = None, None, source.shape, None
        if labels and source.labelled:
            y, names = as_labels(source.labels(), len(source), where, afresh, classes, num_classes)
    else:
        if x_key is not None or y_key is not None:
            raise VaekitError(
                f"{where}: x_key and y_key name the entries of dict items; the data is a {type(data).__name__}"
            )
        x_raw, y_raw = pair_of(data, where)  # a list of tensors or arrays of one shape: stacked (N, *shape)
        arr, table = checked_items(x_raw, where, expected), frame_schema(x_raw)  # a frame's columns: its run's
        x = held(arr, where) if keep else whole_floats(arr)
        y, names = (None, None) if y_raw is None else as_labels(y_raw, len(x), where, afresh, classes, num_classes)
        shape = tuple(x.shape[1:])
    if expected is not None and tuple(shape) != tuple(expected):
        raise VaekitError(f"{where}: items have shape {tuple(shape)}, the model takes items of shape {tuple(expected)}")
    if labels and y is None:
        raise VaekitError(
            f"{where}: this model conditions on labels; pass (x, y), or a Dataset of (x, y) pairs "
            "or of dicts with a label (y_key)"
        )
    kind = "image" if len(shape) == 3 else "table"
    empty = Split(_none_of(x), None)
    return Dataset(where, Split(x, y), empty, empty, shape, kind, None, names, table=table)


def _none_of(x: Tensor | LazyArray) -> Tensor | LazyArray:
    """An empty split of the same kind and item shape."""
    return x.subset(slice(0, 0)) if isinstance(x, LazyArray) else x[:0]


def _take(data: Dataset, idx: Tensor) -> Dataset:
    """The items ``idx`` of ``data``'s train split as its train split, knowing their rows (class names kept)."""
    s = data.train
    x = held_split(s.x.subset(idx.numpy()) if isinstance(s.x, LazyArray) else s.x[idx])  # held items: cast now
    return replace(data, train=Split(x, None if s.y is None else s.y[idx], idx.numpy()), num_classes=None)
