"""Data: a built-in set, a file or a folder -> seeded train/val/test float32 tensors.

Sources: mnist5k, digits, mnist, fashion-mnist, dsprites[:SIZE][:n=N], photos[:SIZE]; .npy/.npz arrays; IDX files
(raw or .gz) or a folder of them; .csv/.tsv tables (gzipped too); a folder of images, flat or with one subfolder
per class.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import torch

from vaekit.data.builtin import BUILTINS, builtin_name, load_builtin
from vaekit.data.containers import check_split_shape
from vaekit.data.core import (
    Dataset,
    RawData,
    Split,
    _labels,
    build_dataset,
    check_finite,
    check_options,
)
from vaekit.data.csv_text import is_table_file
from vaekit.data.download import download
from vaekit.data.draws import TEST_PART, binarize_dynamic
from vaekit.data.idx import idx_files, read_idx, read_idx_folder, read_idx_set
from vaekit.data.image_cache import read_folder
from vaekit.data.npz import read_numpy
from vaekit.data.photos import ImageOptions
from vaekit.data.readers import read_csv
from vaekit.data.signals import model_items, signal_scale
from vaekit.data.tables import TableOptions
from vaekit.errors import VaekitError

__all__ = [
    "BUILTINS",
    "Dataset",
    "Split",
    "all_items",
    "all_labelled",
    "binarize_dynamic",
    "check_finite",
    "download",
    "load_dataset",
    "read_idx",
    "read_raw",
]


def _is_idx_name(path: Path) -> bool:
    low = path.name.lower()
    return "idx" in low or "ubyte" in low or path.suffix.lower() in (".idx", ".gz")


def _read_path(
    path: Path, label_column: str | int | None, images: ImageOptions, table: TableOptions | None = None
) -> RawData:
    """Dispatch a file or folder to its reader by suffix, name or contents."""
    if not path.exists():
        raise VaekitError(f"{path}: no such file or folder, and not a built-in data set ({', '.join(BUILTINS)})")
    if not (path.is_file() or path.is_dir()):  # a pipe would block the read forever, a device never end
        raise VaekitError(f"{path}: neither a regular file nor a folder (a pipe, socket or device is not read)")
    suffix = path.suffix.lower()
    if label_column is not None and not is_table_file(path):
        raise VaekitError(f"{path}: label_column applies only to .csv/.tsv files")
    if path.is_dir():
        return read_idx_folder(path) if idx_files(path) else read_folder(path, images, table)
    if suffix in (".npy", ".npz"):
        return read_numpy(path)
    if is_table_file(path):
        return read_csv(path, label_column, table)
    if _is_idx_name(path):
        return read_idx_set(str(path), path)
    raise VaekitError(f"{path}: unsupported file type (use .npy, .npz, .csv, .tsv, .csv.gz, IDX, or a folder)")


def read_raw(
    spec: str,
    label_column: str | int | None = None,
    data_dir: str | Path | None = None,
    images: ImageOptions = ImageOptions(),
    table: TableOptions | None = None,
    split: TableOptions | None = None,
) -> tuple[RawData, str]:
    """(RawData, name) of ``spec``: a built-in name (dsprites with its options) or a path, unsplit. ``split``:
    the split options of a load that takes only its splits' items (dsprites then renders only those)."""
    key = builtin_name(spec)  # dsprites takes options: dsprites:32:n=50000
    if key is not None:
        if label_column is not None:
            raise VaekitError(f"{key}: label_column applies only to .csv/.tsv files")
        return load_builtin(key, data_dir, split), key
    path = Path(spec).expanduser()
    try:
        return _read_path(path, label_column, images, table), path.name
    except MemoryError as e:
        raise VaekitError(f"{path}: too big to read whole in the memory free here ({e or 'MemoryError'})") from None


def load_dataset(
    spec: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    binarize: str = "none",
    label_column: str | int | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    images: ImageOptions = ImageOptions(),
    table: TableOptions | None = None,
) -> Dataset:
    """Load ``spec`` (a built-in name or a path) and split it into train/val/test.

    An official test split is kept (val is carved from train); otherwise a permutation seeded
    by ``seed`` takes test_fraction and val_fraction (at least one item each). ``limit`` caps
    the items taken per source, after shuffling. ``images``: how a folder's images are sized, cropped, moded
    and cached (``ImageOptions``); ``table`` how a CSV's gaps and categories are read (``TableOptions``).
    ``binarize``: "none", "fixed" (Bernoulli draw once, seeded) or "dynamic" (left to the trainer; values are
    checked to be in [0, 1]).
    """
    if not isinstance(spec, (str, os.PathLike)):  # data in memory: fit's
        raise VaekitError(
            f"load_dataset reads a data spec (a built-in name or a file or folder path), got a {type(spec).__name__}: "
            "pass data in memory (an array, a tensor, a numeric data frame) to vaekit.fit(model, data), or write a "
            "frame with text columns or gaps as CSV (df.to_csv('table.csv', index=False)) and load that file"
        )
    check_options(val_fraction, test_fraction, seed, binarize, limit)
    table = replace(
        table or TableOptions(), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, limit=limit
    )  # the training split, whose statistics fill a table's gaps
    raw, name = read_raw(spec, label_column, data_dir, images, table, split=table)
    try:
        return build_dataset(
            name, raw, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, binarize=binarize, limit=limit
        )
    except MemoryError as e:  # its items as float32: 4 bytes a value, 4x a uint8 file
        raise VaekitError(f"{spec}: too big to load whole in the memory free here ({e or 'MemoryError'})") from None


def all_items(
    spec: str,
    label_column: str | int | None = None,
    data_dir: str | Path | None = None,
    images: ImageOptions = ImageOptions(),
    table: TableOptions | None = None,
) -> torch.Tensor:
    """Every item of ``spec`` in file order (train then test file), scaled as in training, (N, *shape) float32."""
    return cast(torch.Tensor, all_labelled(spec, label_column, data_dir, images, table)[0].x)


def all_labelled(
    spec: str,
    label_column: str | int | None = None,
    data_dir: str | Path | None = None,
    images: ImageOptions = ImageOptions(),
    table: TableOptions | None = None,
    shape: tuple[int, ...] = (),
) -> tuple[Split, list[str] | None]:
    """(every item of ``spec`` in file order as ``all_items`` reads them, with its label (N,) int64 or None, and its
    row and part in its file (fixed binarisation's key, as in its split); the class names of labels 0..K-1, or
    None). Train and test labels are numbered together, as training does. ``shape``: the items a model takes,
    (C, L) for a signal model, which takes a file's (N, C, L) as it holds them (``signals.model_items``)."""
    is_table = is_table_file(Path(spec))
    raw = read_raw(spec, label_column if is_table else None, data_dir, images, table)[0]
    parts = [raw.x] if raw.x_test is None else [raw.x, raw.x_test]
    if raw.x_test is not None:  # refused as training refuses it, not numpy's concatenate
        check_split_shape(raw.where, raw.x, raw.x_test)
    x = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]) / np.float32(raw.scale)
    check_finite(x, raw.where)
    y, y_test, classes = _labels(raw)
    if y is not None and raw.x_test is not None:
        assert y_test is not None  # _labels gives test labels whenever it gives train labels
        y = np.concatenate([y, y_test])
    rows = np.concatenate([np.arange(len(p)) for p in parts])  # each item's row in its file, and that file's part
    rows = rows if raw.rows is None else raw.rows  # a table's kept rows
    part = 0 if raw.x_test is None else np.repeat([0, TEST_PART], [len(raw.x), len(raw.x_test)])
    items = model_items(torch.from_numpy(x), shape, signal_scale(raw))  # the scale its reading recorded
    return Split(items, None if y is None else torch.from_numpy(y), rows, part), classes
