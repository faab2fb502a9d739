"""Readers for NumPy (.npy/.npz) and CSV files; each returns a RawData or raises VaekitError."""

from __future__ import annotations

import csv
import io
import itertools
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.core import RawData, image_scale, to_layout
from vaekit.data.lazy import numpy_error
from vaekit.data.photos import note
from vaekit.data.tables import MISSING, TableOptions, read_table
from vaekit.errors import VaekitError

X_KEYS = ("x", "X", "data", "images")
Y_KEYS = ("y", "Y", "labels")
LABEL_NAMES = ("label", "y", "class", "target")
MAX_CLASSES = 50  # a column found by its name is labels only with this many classes at most (and <= half the rows)
NO_LABEL = "off"  # data.label_column=off: no label column (a column named "off" is still taken by its name)
DELIMITERS = (",", ";", "\t", "|")  # between a CSV file's cells: whichever splits its first lines alike
ENCODINGS = ("cp1252", "latin-1")  # tried in turn when a CSV file is not UTF-8
# a decimal-comma number, its thousands grouped by points or not ("0,5", "1.234,5"), and a grouped whole number
DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+(?:[eE][+-]?\d+)?")
GROUPED = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")  # "1.513": 1513 in a file of decimal commas


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


def _delimiter(path: Path, head: list[str]) -> str:
    """The cells' separator: a tab for .tsv; ; when it splits the first non-blank lines ``head`` the same way and
    some cells are decimal-comma numbers; else the one of , ; tab | that splits them into the most columns, the
    same number on each line (ties: the earlier in , ; tab |)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    semi = list(csv.reader(head, delimiter=";"))
    if (
        len({len(r) for r in semi}) == 1
        and len(semi[0]) > 1
        and any(DECIMAL_COMMA.fullmatch(c.strip()) for r in semi for c in r)
    ):
        return ";"  # cells with decimal commas between semicolons: "9,30;3,29" is two numbers, not three cells
    best, most = ",", 1
    for d in DELIMITERS:
        widths = {len(row) for row in csv.reader(head, delimiter=d)}
        if len(widths) == 1 and (n := widths.pop()) > most:
            best, most = d, n
    return best


def _cell(cell: str, delimiter: str, commas: bool) -> str:
    """A cell, stripped; with ; between cells, a decimal comma ("0,5", "1.234,5") read as a point; in a file of
    decimal commas (``commas``), points group thousands ("1.513" is 1513)."""
    cell = cell.strip()
    if (delimiter == ";" and DECIMAL_COMMA.fullmatch(cell)) or (commas and GROUPED.fullmatch(cell)):
        return cell.replace(".", "").replace(",", ".", 1)
    return cell


def _commas(head: list[str], delimiter: str) -> bool:
    """Whether the first lines ``head``, split by ``delimiter``, hold decimal-comma numbers (only with ;)."""
    rows = csv.reader(head, delimiter=delimiter)
    return delimiter == ";" and any(DECIMAL_COMMA.fullmatch(c.strip()) for r in rows for c in r)


def _text(path: Path) -> str:
    """A CSV file's text: UTF-8 (a byte-order mark dropped), else, as spreadsheets on Windows save it,
    Windows-1252, else Latin-1 (which reads any bytes), said in one note."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        for encoding in ENCODINGS:
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                continue
            note(f"{path}: not UTF-8 (byte 0x{raw[e.start]:02x} on line {line}); read as {encoding}")
            return text
        raise  # pragma: no cover - Latin-1 decodes every byte


def _read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """Non-blank rows of a CSV file (cells split by ``_delimiter``) and their 1-based line numbers."""
    rows, lines = [], []
    try:
        f = io.StringIO(_text(path), newline="")
        head = [line for line in itertools.islice(f, 200) if line.strip()][:20]
        f.seek(0)
        delimiter = _delimiter(path, head)
        commas = _commas(head, delimiter)
        reader = csv.reader(f, delimiter=delimiter)
        for row in reader:
            if any(c.strip() for c in row):
                rows.append([_cell(c, delimiter, commas) for c in row])
                lines.append(reader.line_num)
    except (OSError, csv.Error) as e:
        raise VaekitError(f"{path}: cannot read CSV file ({e})") from e
    if not rows:
        raise VaekitError(f"{path}: the CSV file is empty")
    return rows, lines


def _has_header(rows: list[list[str]]) -> bool:
    """A first row is a header if a cell is text (not a gap) where the next row is numeric (or nothing follows),
    or if all its cells are text that no later row repeats in the same column (a table of categories only)."""
    first = rows[0]
    if len(rows) == 1:
        return not all(_is_number(c) for c in first)
    second = rows[1]
    if any(not _is_number(a) and a.lower() not in MISSING and _is_number(b) for a, b in zip(first, second)):
        return True
    return not any(_is_number(a) for a in first) and all(
        a not in {row[j] for row in rows[1:] if j < len(row)} for j, a in enumerate(first)
    )


def _labelled(
    path: Path, cells: np.ndarray, lines: list[int], label: int | None, missing: str, header: list[str] | None
) -> np.ndarray:
    """(N,) True where a row's label cell is filled; a missing label is refused in one line naming its line
    unless ``missing`` is drop (a label is never filled in: it would invent a class)."""
    if label is None:
        return np.ones(len(cells), bool)
    gaps = np.isin(np.char.lower(cells[:, label]), list(MISSING))
    if gaps.any() and missing != "drop":
        i = int(np.argmax(gaps))
        name = header[label] if header else str(label)
        raise VaekitError(
            f"{path}: missing label {str(cells[i, label])!r} on line {lines[i]}, column {name!r}; fill it, or set "
            "data.missing to drop to leave such rows out",
            key="data.missing",
        )
    return ~gaps


def _classes_or_why(cells: np.ndarray) -> str | None:
    """None where a column's cells (N,) look like classes (names, or whole numbers, at most MAX_CLASSES distinct
    and at most half the rows); else what they hold instead."""
    filled = np.unique(cells[~np.isin(np.char.lower(cells), list(MISSING))])
    number = [_is_number(v) for v in filled]
    if all(number) and len(filled):
        values = filled.astype(np.float64)
        if not np.all(values == np.round(values)):
            return f"numbers that are not whole ({filled[np.argmax(values != np.round(values))]})"
    if len(filled) > max(2, min(MAX_CLASSES, len(cells) // 2)):
        return f"{len(filled)} different values in {len(cells)} rows"
    return None


def _label_index(path: Path, header: list[str] | None, width: int, label_column: str | int | None) -> int | None:
    """The label column: chosen by name or index, none for ``off``, else one named label/y/class/target."""
    names = header or [str(i) for i in range(width)]
    if label_column is None:
        low = [n.lower() for n in names] if header else []
        return next((low.index(n) for n in LABEL_NAMES if n in low), None)
    if header and str(label_column) in header:
        return header.index(str(label_column))
    if str(label_column).lower() == NO_LABEL:
        return None
    try:
        i = int(label_column)
    except ValueError:
        raise VaekitError(f"{path}: no column named {label_column!r} (columns: {', '.join(names)})") from None
    if not -width <= i < width:
        raise VaekitError(f"{path}: label column {i} out of range for {width} columns")
    return i % width


def _label(
    path: Path, header: list[str] | None, cells: np.ndarray, label_column: str | int | None, table: TableOptions
) -> int | None:
    """The label column's index (``_label_index``): a run's saved schema keeps the one it found; a column found by
    its name only that does not hold classes is a data column, said in a note."""
    names = header or [str(j) for j in range(cells.shape[1])]
    if table.schema is not None and label_column is None:  # the label column as the run found it, if any
        return names.index(table.schema.label) if table.schema.label in names else None
    label = _label_index(path, header, cells.shape[1], label_column)
    why = None if label is None or label_column is not None else _classes_or_why(cells[:, label])
    if why is not None and label is not None and table.label_note:  # named like labels, but not classes: a data column
        note(
            f"{path}: column {names[label]!r} is named like a label column but holds {why}, not classes: modelled "
            "as a data column (name it in data.label_column to take it as labels all the same)"
        )
    return None if why is not None else label


def _table_rows(path: Path) -> tuple[list[str] | None, list[list[str]], list[int]]:
    """(header or None, data rows, their line numbers) of a CSV file whose rows all have the same width."""
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
    return header, rows, lines


def read_csv(path: Path, label_column: str | int | None = None, table: TableOptions | None = None) -> RawData:
    """CSV (N rows, a header row optional) -> table RawData with its ``TableSchema`` (``data.tables``): numeric
    columns, categorical ones (text, or listed in ``table``) one-hot, and gaps handled as ``table`` says."""
    header, rows, lines = _table_rows(path)
    width = len(header or rows[0])
    cells = np.array(rows, dtype=str)  # (N, width)
    column_names = header or [str(j) for j in range(width)]
    table = table or TableOptions()
    label = _label(path, header, cells, label_column, table)
    features = [j for j in range(width) if j != label]
    if not features:
        raise VaekitError(f"{path}: no feature columns besides the label column")
    names = [column_names[j] for j in features]
    labelled = _labelled(path, cells, lines, label, table.missing, header)  # (N,) rows whose label is there
    kept_lines = [ln for ln, k in zip(lines, labelled) if k]
    x, keep, schema = read_table(cells[labelled][:, features], names, kept_lines, table, str(path), features)
    dropped = [ln for ln, k in zip(lines, labelled) if not k] + [ln for ln, k in zip(kept_lines, keep) if not k]
    if dropped:
        note(
            f"{path}: {len(dropped)} row{'s' * (len(dropped) > 1)} with gaps left out (data.missing=drop), the first "
            f"on line {min(dropped)}; items are numbered among the rows kept"
        )
    cells = cells[labelled]
    raw = RawData(x, None if label is None else cells[keep, label], str(path))
    raw.table = schema
    if label is not None:  # synthetic rows of a conditional run give the label column back, named and placed so
        schema.label, schema.label_index = column_names[label], label
    if label is not None and table.label_note and (label_column is None or table.conditional is False):
        unmodelled = "; the model is not conditional: it does not see the column, and sampled rows will not have it"
        note(
            f"{path}: column {column_names[label]!r} holds the labels, not a feature (set data.label_column={NO_LABEL} "
            f"to keep it as a feature){unmodelled * (table.conditional is False)}"
        )
    return raw
