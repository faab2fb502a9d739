"""Reader for NumPy files: a .npy array, or a .npz archive of x/y or of official splits (x_train, x_val, x_test)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.containers import check_split_shape
from vaekit.data.core import RawData, image_scale, to_layout
from vaekit.data.float32 import fits_float32
from vaekit.data.lazy import numpy_error
from vaekit.data.readers import label_cells
from vaekit.errors import VaekitError

X_KEYS = ("x", "X", "data", "images")
Y_KEYS = ("y", "Y", "labels")
SPLIT_KEYS = ("x_train", "x_val", "x_test")  # official splits; x_val is the validation split (no val_fraction)


def read_numpy(path: Path) -> RawData:
    """A .npy array or .npz archive, loaded without pickle (object arrays are refused)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return _raw(str(path), loaded, None)
        with loaded:
            return _from_npz(path, {k: loaded[k] for k in loaded.files})
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, VaekitError):
            raise
        raise numpy_error(path, e) from e  # never numpy's advice to load unsafely


def _raw(
    where: str, x: np.ndarray, y: np.ndarray | None, x_test: np.ndarray | None = None, y_test: np.ndarray | None = None
) -> RawData:
    x = to_layout(x, where)
    fits_float32(x, where)  # beyond float32's range: refused before the cast; a table's columns below it: noted
    raw = RawData(x, _file_labels(y), where, image_scale(x))
    if x_test is not None:
        raw.x_test, raw.y_test = to_layout(x_test, f"{where} (test)"), _file_labels(y_test)
        fits_float32(raw.x_test, f"{where} (test)")
    return raw


def _file_labels(y: np.ndarray | None) -> np.ndarray | None:
    """A file's text labels (N,) read as a CSV file's are (``readers.label_cells``): numbers where every one is a number
    ('0'..'11' are labels 0..11, not names sorted as text); other labels as they are."""
    if y is None or y.dtype.kind not in "UST" or y.ndim not in (1, 2) or y.size != len(y):
        return y  # other shapes: refused as labels later
    return label_cells(np.char.strip(y.reshape(-1).astype(str)))


def _from_npz(path: Path, arrays: dict[str, np.ndarray]) -> RawData:
    """Keys x_train/x_test (and x_val, kept as the validation split; y_* for each or none) for official splits, else
    x (or X, data, images) and y; other arrays beside these, unread, are refused in one line naming them."""
    if not arrays:
        raise VaekitError(f"{path}: the .npz archive holds no arrays")
    if any(k in arrays for k in SPLIT_KEYS):
        return _npz_splits(path, arrays)
    y_key = next((k for k in Y_KEYS if k in arrays), None)
    others = [k for k in arrays if k != y_key]
    x_key = next((k for k in X_KEYS if k in arrays), others[0] if len(others) == 1 else None)
    if x_key is None and not others:
        raise VaekitError(f"{path}: no data array besides the labels {y_key!r}")
    if x_key is None:  # feats, other: which is the data?
        raise VaekitError(
            f"{path}: holds the arrays {', '.join(arrays)}, none under a key read: data under x (or X, data, images), "
            f"labels under y (or Y, labels), or splits under {', '.join(SPLIT_KEYS)} with y_train, y_val, y_test"
        )
    return _raw(str(path), arrays[x_key], None if y_key is None else arrays[y_key])


def _npz_splits(path: Path, arrays: dict[str, np.ndarray]) -> RawData:
    """x_train and x_test (+ y_train, y_test); x_val (+ y_val) joins x_train's items as the split ``fixed`` names."""
    xs, ys = [k for k in SPLIT_KEYS if k in arrays], [k for k in ("y_train", "y_val", "y_test") if k in arrays]
    if "x_train" not in xs or "x_test" not in xs:
        raise VaekitError(f"{path}: has {', '.join(xs)} but lacks {'x_test' if 'x_train' in xs else 'x_train'}")
    if ys and ys != ["y" + k[1:] for k in xs]:  # y_test without y_train, y_val without x_val, ...
        wanted = ", ".join("y" + k[1:] for k in xs)
        raise VaekitError(f"{path}: has {', '.join([*xs, *ys])}: give the labels of every split ({wanted}), or none")
    x, y, x_test = arrays["x_train"], arrays.get("y_train"), arrays["x_test"]
    if "x_val" not in xs:
        return _raw(str(path), x, y, x_test, arrays.get("y_test"))
    x, val = to_layout(x, f"{path} (train)"), to_layout(arrays["x_val"], f"{path} (val)")
    check_split_shape(str(path), x, val, "val")
    y = None if y is None else np.concatenate([y, arrays["y_val"]])
    raw = _raw(str(path), np.concatenate([x, val]), y, x_test, arrays.get("y_test"))
    n, m = len(x), len(val)  # the val split as given: no val_fraction carved from train
    raw.fixed = {"train": np.arange(n), "val": np.arange(n, n + m), "test": np.arange(len(x_test))}
    return raw
