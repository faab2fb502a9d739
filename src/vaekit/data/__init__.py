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
from vaekit.data.item_arrays import check_items, float_items
from vaekit.data.npz import read_numpy
from vaekit.data.photos import FolderSource, ImageOptions
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
    said = f"{path}: unsupported file type (use .npy, .npz, .csv, .tsv, .csv.gz, .tsv.gz, IDX, or a folder)"
    if path.suffix.lower() in (".parquet", ".pq", ".feather", ".xlsx", ".xls"):  # pandas reads them: a CSV of them
        reader = {".xlsx": "read_excel", ".xls": "read_excel", ".feather": "read_feather"}.get(path.suffix.lower())
        said += f"; write it as CSV first: pandas.{reader or 'read_parquet'}(path).to_csv('table.csv', index=False)"
    raise VaekitError(said)


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
        raise _memory_error(str(path), "read", e) from None


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
        raise _memory_error(spec, "load", e) from None


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
    limit: int | None = None,
) -> tuple[Split, list[str] | None]:
    """(every item of ``spec`` in file order as ``all_items`` reads them, with its label (N,) int64 or None, and its
    row and part in its file (fixed binarisation's key, as in its split); the class names of labels 0..K-1, or
    None). Train and test labels are numbered together, as training does. ``shape``: the items a model takes,
    (C, L) for a signal model, which takes a file's (N, C, L) as it holds them (``signals.model_items``).
    ``limit``: the first ``limit`` items alone, read, checked and converted (a photo folder's alone decoded), their
    labels numbered as every item's are."""
    is_table = is_table_file(Path(spec))
    if table is not None and Path(spec).expanduser().is_dir():  # every file: no limit's draw (``read_folder``)
        table = replace(table, limit=None)
    raw = _photo_head(spec, images, limit)
    raw = raw or read_raw(spec, label_column if is_table else None, data_dir, images, table)[0]
    parts = [raw.x] if raw.x_test is None else [raw.x, raw.x_test]
    if raw.x_test is not None:  # refused as training refuses it, not numpy's concatenate
        check_split_shape(raw.where, raw.x, raw.x_test)
    try:
        x = _first_items(raw, parts, limit)
    except MemoryError as e:
        raise _memory_error(spec, "read", e) from None
    n = len(x)
    y, y_test, classes = _labels(raw)
    if y is not None and raw.x_test is not None:
        assert y_test is not None  # _labels gives test labels whenever it gives train labels
        y = np.concatenate([y, y_test])
    rows = np.concatenate([np.arange(len(p)) for p in parts])  # each item's row in its file, and that file's part
    rows = (rows if raw.rows is None else raw.rows)[:n]  # a table's kept rows
    part = 0 if raw.x_test is None else np.repeat([0, TEST_PART], [len(raw.x), len(raw.x_test)])[:n]
    items = model_items(torch.from_numpy(x), shape, signal_scale(raw))  # the scale its reading recorded
    return Split(items, None if y is None else torch.from_numpy(y[:n]), rows, part), classes


def _first_items(raw: RawData, parts: list[np.ndarray], limit: int | None) -> np.ndarray:
    """The first ``limit`` items (all for None) of ``parts`` (train file, then test file) as one float32 array
    (n, *shape) divided by ``raw.scale`` in place, checked (NaN, inf, beyond float32) before they are kept; each
    named by its place in that order. A memory-mapped file is read no further."""
    left, counts = sum(map(len, parts)) if limit is None else limit, []
    for p in parts:
        counts.append(min(len(p), left))
        left -= counts[-1]
    x, start = np.empty((sum(counts), *raw.x.shape[1:]), np.float32), 0
    for p, k in zip(parts, counts):
        check_items(p, np.arange(k), raw.where, start + np.arange(k))
        float_items(p, np.arange(k), raw.scale, x[start : start + k])
        start += k
    return x


def _photo_head(spec: str, images: ImageOptions, limit: int | None) -> RawData | None:
    """A photo folder's first ``limit`` items decoded alone, labelled as every file's labels number them; None where
    the items are read whole: no limit, another source, a cache (its rows are read), data.mode=auto over colour
    images (the mode is chosen from every item's pixels), or a file among them whose pixels do not decode (the
    files after them would take their places)."""
    path = Path(spec).expanduser()
    if limit is None or images.cache or builtin_name(spec) is not None or not path.is_dir() or idx_files(path):
        return None
    source = FolderSource(path, images)
    if limit >= len(source) or source.pixel_mode(np.zeros(1, bool)) != source.mode:
        return None
    raw = read_folder(path, images, source=source.head(limit))
    if len(raw.x) < limit:
        return None
    raw.y, raw.classes = None if source.labels is None else source.labels[:limit], source.classes
    return raw


def _memory_error(spec: str, what: str, e: MemoryError) -> VaekitError:
    """The one line for data too big to ``what`` whole in the memory free, naming data.in_memory=false where that
    streams it (a .npy file, an image folder)."""
    path = Path(spec).expanduser()
    npy = path.suffix.lower() == ".npy" and path.is_file()
    streams = builtin_name(spec) is None and (npy or (path.is_dir() and not idx_files(path)))
    return VaekitError(
        f"{spec}: too big to {what} whole in the memory free here ({e or 'MemoryError'})"
        + "; data.in_memory=false streams it" * streams,
        key="data.in_memory" if streams else None,
    )
