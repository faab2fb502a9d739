"""Readers for NumPy (.npy/.npz) and CSV files; each returns a RawData or raises VaekitError."""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.core import RawData, image_scale, to_layout
from vaekit.data.tables import TableOptions, read_table
from vaekit.errors import VaekitError

X_KEYS = ("x", "X", "data", "images")
Y_KEYS = ("y", "Y", "labels")
LABEL_NAMES = ("label", "y", "class", "target")


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
        raise VaekitError(f"{path}: cannot read NumPy file ({' '.join(str(e).split())})") from e


def _raw(
    where: str, x: np.ndarray, y: np.ndarray | None, x_test: np.ndarray | None = None, y_test: np.ndarray | None = None
) -> RawData:
    x = to_layout(x, where)
    raw = RawData(x, y, where, image_scale(x))
    if x_test is not None:
        raw.x_test, raw.y_test = to_layout(x_test, f"{where} (test)"), y_test
    return raw


def _from_npz(path: Path, arrays: dict[str, np.ndarray]) -> RawData:
    """Keys x_train/x_test (+ y_train/y_test) for an official split, else x (or X, data, images) and y."""
    if not arrays:
        raise VaekitError(f"{path}: the .npz archive holds no arrays")
    if "x_train" in arrays or "x_test" in arrays:
        missing = [k for k in ("x_train", "x_test") if k not in arrays]
        if missing:
            raise VaekitError(f"{path}: has x_train/x_test but lacks {missing[0]}")
        return _raw(str(path), arrays["x_train"], arrays.get("y_train"), arrays["x_test"], arrays.get("y_test"))
    y_key = next((k for k in Y_KEYS if k in arrays), None)
    x_key = next((k for k in X_KEYS if k in arrays), None)
    x_key = x_key or next((k for k in arrays if k != y_key), None)
    if x_key is None:
        raise VaekitError(f"{path}: no data array besides the labels {y_key!r}")
    return _raw(str(path), arrays[x_key], None if y_key is None else arrays[y_key])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """Non-blank rows of a CSV (TSV for .tsv) file and their 1-based line numbers."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if any(c.strip() for c in row):
                    rows.append([c.strip() for c in row])
                    lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VaekitError(f"{path}: cannot read CSV file ({e})") from e
    if not rows:
        raise VaekitError(f"{path}: the CSV file is empty")
    return rows, lines


def _has_header(rows: list[list[str]]) -> bool:
    """A first row is a header if a cell is text where the next row is numeric (or nothing follows), or if all
    its cells are text that no later row repeats in the same column (a table of categories only)."""
    first = rows[0]
    if len(rows) == 1:
        return not all(_is_number(c) for c in first)
    second = rows[1]
    if any(not _is_number(a) and _is_number(b) for a, b in zip(first, second)):
        return True
    return not any(_is_number(a) for a in first) and all(
        a not in {row[j] for row in rows[1:] if j < len(row)} for j, a in enumerate(first)
    )


def _label_index(path: Path, header: list[str] | None, width: int, label_column: str | int | None) -> int | None:
    """The label column: chosen by name or index, else one named label/y/class/target, else none."""
    names = header or [str(i) for i in range(width)]
    if label_column is None:
        low = [n.lower() for n in names] if header else []
        return next((low.index(n) for n in LABEL_NAMES if n in low), None)
    if header and str(label_column) in header:
        return header.index(str(label_column))
    try:
        i = int(label_column)
    except ValueError:
        raise VaekitError(f"{path}: no column named {label_column!r} (columns: {', '.join(names)})") from None
    if not -width <= i < width:
        raise VaekitError(f"{path}: label column {i} out of range for {width} columns")
    return i % width


def read_csv(path: Path, label_column: str | int | None = None, table: TableOptions | None = None) -> RawData:
    """CSV (N rows, a header row optional) -> table RawData with its ``TableSchema`` (``data.tables``): numeric
    columns, categorical ones (text, or listed in ``table``) one-hot, and gaps handled as ``table`` says."""
    rows, lines = _read_rows(path)
    header = rows[0] if _has_header(rows) else None
    if header:
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise VaekitError(f"{path}: has a header but no data rows")
    width = len(header or rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise VaekitError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    label = _label_index(path, header, width, label_column)
    features = [j for j in range(width) if j != label]
    if not features:
        raise VaekitError(f"{path}: no feature columns besides the label column")
    cells = np.array(rows, dtype=str)  # (N, width)
    names = [header[j] if header else str(j) for j in features]
    x, keep, schema = read_table(cells[:, features], names, lines, table or TableOptions(), str(path), features)
    raw = RawData(x, None if label is None else cells[keep, label], str(path))
    raw.table = schema
    return raw
