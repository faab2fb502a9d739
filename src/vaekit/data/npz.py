"""Reader for NumPy files: a .npy array, or a .npz archive of x/y or of official splits (x_train, x_val, x_test)."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as fmt

from vaekit.data.containers import check_split_shape
from vaekit.data.core import RawData, image_scale, to_layout
from vaekit.data.float32 import fits_float32
from vaekit.data.item_arrays import float_items
from vaekit.data.lazy import numpy_error
from vaekit.data.limits import usable_memory
from vaekit.data.photos import note
from vaekit.data.readers import label_cells
from vaekit.errors import VaekitError

X_KEYS = ("x", "X", "data", "images")
Y_KEYS = ("y", "Y", "labels")
SPLIT_KEYS = ("x_train", "x_val", "x_test")  # official splits; x_val is the validation split (no val_fraction)


def read_numpy(path: Path) -> RawData:
    """A .npy array (memory-mapped: ``build_dataset`` reads the items its splits take) or .npz archive, loaded
    without pickle (object arrays are refused). Each array's header is read first: arrays that unpack past the
    memory free (``usable_memory``; a small .npz may hold gigabytes of zeros) are refused in one line naming the
    array, before any is read."""
    try:
        _check_sizes(path)
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)  # a .npy mapped: read as its items are taken
        if isinstance(loaded, np.ndarray):
            return _raw(str(path), loaded, None)
        with loaded:
            return _from_npz(path, {k: loaded[k] for k in loaded.files})
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, VaekitError):
            raise
        raise numpy_error(path, e) from e  # never numpy's advice to load unsafely


def _check_sizes(path: Path) -> None:
    """Refuse, from their headers, the arrays of ``path`` (a .npy file, or each member of a .npz) that together
    take more bytes than the memory free; the member that passes it is named with its shape and size."""
    try:
        headers = list(_headers(path))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):  # not read here: np.load says why
        return
    free, total = usable_memory(), 0
    for name, shape, dtype, nbytes in headers:
        total += nbytes
        if total > free:
            what = f"member {name!r}" if name else "the array"
            have = f" of shape {shape} {dtype}" if shape is not None else ""
            before = f" ({total:,} with the members before it)" if total > nbytes else ""
            raise VaekitError(
                f"{path}: {what}{have} unpacks to {nbytes:,} bytes{before}, more than the {free:,} bytes free "
                f"in memory to read it whole{'; data.in_memory=false streams it' * (not name)}",
                key="data.in_memory" if not name else None,
            )


def _headers(path: Path) -> Iterator[tuple[str, tuple[int, ...] | None, str, int]]:
    """(member, shape, dtype, bytes) of each array in ``path`` from its .npy header, no data read: a .npy file's
    one (member ''), or each .npz member's (a member that is no .npy: its declared size, shape None)."""
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # np.load's test: a zip's first or end record
            f.seek(0)
            yield from _header("", f)
            return
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):  # np.load hands such a member over as its bytes
                yield info.filename, None, "bytes", info.file_size
                continue
            with z.open(info) as f:
                yield from _header(info.filename.removesuffix(".npy"), f)


def _header(name: str, f: IO[bytes]) -> Iterator[tuple[str, tuple[int, ...], str, int]]:
    """The shape, dtype and size the .npy header at ``f`` declares; nothing where its version is unknown
    (np.load then says so)."""
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0), (3, 0)):
        return
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0  # 3.0: 2.0's, utf-8
    shape, _, dtype = read(f)
    yield name, tuple(shape), str(dtype), math.prod(shape) * dtype.itemsize


def _raw(
    where: str, x: np.ndarray, y: np.ndarray | None, x_test: np.ndarray | None = None, y_test: np.ndarray | None = None
) -> RawData:
    """RawData of arrays in any numeric dtype; values beyond float32's range and NaN are refused as the items are
    taken (``build_dataset``, ``all_labelled``), so that a memory-mapped file is not read whole to check them."""
    x = to_layout(x, where)
    raw = RawData(x, _file_labels(y), where, image_scale(x))
    if x_test is not None:
        raw.x_test, raw.y_test = to_layout(x_test, f"{where} (test)"), _file_labels(y_test)
    return raw


def _own_scales(path: Path, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Splits ``xs`` {key: (N, *shape)} whose dtypes bring them to [0, 1] by different divisors (uint8 x_train,
    float x_test) each as float32 divided by its own (uint8 by 255, uint16 by 65,535, floats as given), said in
    one note; splits of one divisor as they are (scaled together later)."""
    if len({image_scale(a) for a in xs.values()}) < 2:
        return xs
    said = ", ".join(f"{k} {a.dtype}" for k, a in xs.items())
    note(f"{path}: its splits are stored as {said}: each is scaled by its own dtype (uint8 / 255, floats as given)")
    for k, a in xs.items():
        fits_float32(a, f"{path} ({k.removeprefix('x_')})", notes=False)  # before the cast makes 1e39 inf
    return {k: float_items(a, np.arange(len(a)), image_scale(a)) for k, a in xs.items()}


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
    has_val = "x_val" in xs
    where = {"x_train": f"{path} (train)" if has_val else str(path), "x_val": f"{path} (val)"}
    where["x_test"] = f"{path} (test)"
    parts = _own_scales(path, {k: to_layout(arrays[k], where[k]) for k in xs})
    x, y, x_test = parts["x_train"], arrays.get("y_train"), parts["x_test"]
    if not has_val:
        return _raw(str(path), x, y, x_test, arrays.get("y_test"))
    val = parts["x_val"]
    check_split_shape(str(path), x, val, "val")
    y = None if y is None else np.concatenate([y, arrays["y_val"]])
    raw = _raw(str(path), np.concatenate([x, val]), y, x_test, arrays.get("y_test"))
    n, m = len(x), len(val)  # the val split as given: no val_fraction carved from train
    raw.fixed = {"train": np.arange(n), "val": np.arange(n, n + m), "test": np.arange(len(x_test))}
    return raw
