"""Reader for CSV files (labels found by name or given, a table's columns); returns a RawData or raises VaekitError."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np

from vaekit.data.core import RawData, encode_labels
from vaekit.data.csv_text import WHOLE, has_header, is_number, read_rows
from vaekit.data.photos import note
from vaekit.data.tables import MISSING, TableOptions, TableSchema, read_table
from vaekit.errors import VaekitError

LABEL_NAMES = ("label", "y", "class", "target")
MAX_CLASSES = 50  # a column found by its name is labels only with this many classes at most (and <= half the rows)
STRINGS = getattr(np.dtypes, "StringDType", None)  # numpy >= 2: strings as long as each is
NO_LABEL = "off"  # data.label_column=off: no label column (a column named "off" is still taken by its name)
SPLIT_ROWS = 3  # the fewest rows a table splits into train, val and test (``data.core``)
NOT_WHOLE = "numbers that are not whole"  # labels are whole numbers or names: such a column is never labels


def _labelled(
    path: Path, cells: np.ndarray, lines: list[int], label: int | None, table: TableOptions, header: list[str] | None
) -> np.ndarray | None:
    """(N,) True where a row's label cell is filled; a missing label is refused in one line naming its line
    unless ``table.missing`` is drop (a label is never filled in: it would invent a class). None (every row kept,
    the label column left out, a note says so) in its place where a run that does not condition on labels reads
    data (``table.schema`` its own): its items are scored, encoded and reconstructed without them."""
    if label is None:
        return np.ones(len(cells), bool)
    gaps = np.isin(np.char.lower(cells[:, label]), list(MISSING))
    if gaps.any() and table.missing != "drop" and table.schema is not None and table.conditional is False:
        k, name = int(gaps.sum()), header[label] if header else str(label)
        note(
            f"{path}: {k} row{'s' * (k > 1)} without a label in column {name!r}: the run does not use labels, so the "
            "column is left out and every row kept"
        )
        return None
    if gaps.any() and table.missing != "drop":
        i = int(np.argmax(gaps))
        name = header[label] if header else str(label)
        fix = (  # a run's verbs read with its settings: advice they can take
            f"this run was trained with data.missing={table.missing}, so its verbs take no row without a label: "
            "fill them, or train a run with data.missing=drop"
            if table.schema is not None
            else f"fill it, or leave such rows out of the file (a trained run reads data with its own setting, "
            f"data.missing={table.missing})"
            if table.verb
            else "fill it, or set data.missing to drop to leave such rows out"
        )
        raise VaekitError(
            f"{path}: missing label {str(cells[i, label])!r} on line {lines[i]}, column {name!r}; {fix}",
            key=None if table.verb else "data.missing",
        )
    return ~gaps


def _classes_or_why(cells: np.ndarray) -> str | None:
    """None where a column's cells (N,) look like classes (names, or whole numbers, at most MAX_CLASSES distinct
    and at most half the rows); else what they hold instead."""
    filled = np.unique(cells[~np.isin(np.char.lower(cells), list(MISSING))])
    number = [is_number(v) for v in filled]
    if all(number) and len(filled):
        values = filled.astype(np.float64)
        if not np.all(values == np.round(values)):
            return f"{NOT_WHOLE} ({filled[np.argmax(values != np.round(values))]})"
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
        advice = (
            "labels must be whole numbers or names, so naming it in data.label_column is refused"
            if why.startswith(NOT_WHOLE)
            else "name it in data.label_column to take it as labels all the same"
        )
        note(
            f"{path}: column {names[label]!r} is named like a label column but holds {why}, not classes: modelled "
            f"as a data column ({advice})"
        )
    return None if why is not None else label


def label_cells(cells: np.ndarray) -> np.ndarray:
    """A label column's cells (N,) as labels: numbers where every cell is one, as a CSV file writes them (whole
    numbers as int64, so "1" and "1.0" are one class; others as float64, which ``encode_labels`` refuses), else
    the text, class names (text given in Python is a name even where it reads as a number)."""
    values = np.unique(cells)
    if not len(values) or not all(is_number(str(v)) for v in values):
        return cells
    numbers = cells.astype(np.float64)
    whole = np.isfinite(numbers).all() and np.array_equal(numbers, np.round(numbers))
    return numbers.astype(np.int64) if whole and np.abs(numbers).max() < 2**53 else numbers


def _check_labels(path: Path, y: np.ndarray, name: str) -> None:
    """Refuse a label column's cells (N,) that are not labels (numbers that are not whole) in one line naming it."""
    try:
        encode_labels(y, str(path))
    except VaekitError as e:
        raise VaekitError(
            f"{e} in column {name!r}; set data.label_column={NO_LABEL} to keep it as a feature (or name the column "
            "of classes with data.label_column)",
            key="data.label_column",
        ) from None


def _run_names(schema: TableSchema | None) -> list[str] | None:
    """A run's columns as its sample.csv writes them (features, the label in its place), or None."""
    if schema is None:
        return None
    names = [c.name for c in schema.columns]
    if schema.label is not None:
        names.insert(len(names) if schema.label_index is None else schema.label_index, schema.label)
    return names


def _table_rows(path: Path, table: TableOptions) -> tuple[list[str] | None, list[list[str]], list[int], np.ndarray]:
    """(header or None, data rows, their line numbers, their places among the rows after the header) of a CSV
    file whose rows all have the same width; an empty row between filled ones (a blank line, ``,,``, ``NA,NA``:
    no cell filled, each a gap) is no item: left out, counted (later rows keep their places) and said in one note."""
    rows, lines = read_rows(path)
    rows = _trailing_separator(path, rows)
    numbered = len(rows) > 1 and len(rows[0]) > 1 and rows[0] == [str(j) for j in range(len(rows[0]))]
    numbered = numbered and table.schema is None  # 0,1,..,F-1: a header, as pandas' to_csv writes a frame's numbers
    header = rows[0] if numbered or has_header(rows, _run_names(table.schema)) else None
    if header:
        rows, lines = rows[1:], lines[1:]
    elif table.schema is None and table.label_note and _years(rows[0]):  # 2019,2020,2021: a header, or data?
        note(
            f"{path}: the first row ({', '.join(rows[0][:4])}) holds only whole numbers: read as data, not as a "
            f"header (columns named 0..{len(rows[0]) - 1}); give the columns names to have it read as one"
        )
    filled = [any(v.strip().lower() not in MISSING for v in row) for row in rows]
    places = np.array([i for i, f in enumerate(filled) if f], dtype=np.int64)
    empty = [ln for f, ln in zip(filled, lines) if not f]
    if empty:
        note(f"{path}: {len(empty)} empty row{'s' * (len(empty) > 1)} left out, the first on line {empty[0]}")
    rows, lines = [rows[i] for i in places], [lines[i] for i in places]
    if not rows:
        raise VaekitError(f"{path}: has a header but no data rows")
    width = len(header or rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise VaekitError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    return header, rows, lines, places


def _trailing_separator(path: Path, rows: list[list[str]]) -> list[list[str]]:
    """``rows`` without their last cell where every row, a header too, ends in a separator (an empty last cell, as
    some spreadsheets write), said in a note; else as they are. Blank lines ([]) stay blank."""
    if not all(len(row) > 1 and not row[-1].strip() for row in rows if row):
        return rows
    note(f"{path}: every line ends in a separator: the empty column after it is left out")
    return [row[:-1] for row in rows]


def _enough_kept(path: Path, cells: np.ndarray, names: list[str], labels: bool) -> None:
    """Refuse, in one line, data.missing=drop leaving fewer rows of ``cells`` (N, C) than a split takes (3): how
    many of how many, and the column with the most gaps (the last of ``names`` is the label column if ``labels``)."""
    gaps = np.isin(np.char.lower(cells), list(MISSING))  # (N, C)
    kept = int((~gaps.any(1)).sum())
    if kept >= SPLIT_ROWS or kept == len(cells) or gaps.all(0).any():  # a column of gaps only: refused as such
        return
    j = int(gaps.sum(0).argmax())
    label = labels and j == len(names) - 1
    fix = "fill its labels (none is filled in)" if label else "leave it out of the file, or set data.missing=mean"
    raise VaekitError(
        f"{path}: data.missing=drop leaves {kept} of {len(cells)} rows ({len(cells) - kept} with a gap left out), "
        f"too few to split into train/val/test ({SPLIT_ROWS} at least); column {names[j]!r} has the most gaps "
        f"({int(gaps[:, j].sum())}): {fix}",
        key="data.missing",
    )


def _left_out(path: Path, header: list[str] | None, rows: list[list[str]]) -> list[int]:
    """The columns left out: an unnamed first column of row numbers (pandas' index), said in a note. Any other
    column without a name, or a name given twice, is refused in one line."""
    if header is None:
        return []
    first = [r[0] for r in rows]
    index = header[0] == "" and all(WHOLE.fullmatch(v) for v in first) and _rising([int(v) for v in first])
    if index:
        note(f"{path}: the first column has no name and holds row numbers (pandas' index): left out")
    unnamed = [j for j, n in enumerate(header) if not n][int(index) :]
    if unnamed:
        raise VaekitError(f"{path}: column index {unnamed[0]} has no name in the header; name it, or leave it out")
    twice = sorted(n for n, k in Counter(header[int(index) :]).items() if k > 1)
    if twice:
        raise VaekitError(
            f"{path}: column name{'s' * (len(twice) > 1)} {', '.join(map(repr, twice))} given to more than one "
            "column in the header; give each column its own name"
        )
    return [0] if index else []


def _note_dropped(path: Path, dropped: list[int], why: str) -> None:
    """One line on the rows left out (their ``lines`` in the file) and ``why``, where there are any."""
    if dropped:
        k = len(dropped)
        note(
            f"{path}: {k} row{'s' * (k > 1)} with gaps left out{why}, the first on line {min(dropped)}; items keep "
            "their rows' numbers in the file"
        )


def _rising(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values)) and values[0] >= 0


def _years(row: list[str]) -> bool:
    """Whether a first row might be a header of numbers: distinct whole numbers, two at least."""
    return len(set(row)) == len(row) > 1 and all(WHOLE.fullmatch(c) for c in row)


def _cells(rows: list[list[str]]) -> np.ndarray:
    """Rows as an (N, width) array of strings, each as long as it is (numpy 2's StringDType; fixed width, by the
    longest cell, before it)."""
    return np.array(rows, dtype=STRINGS() if STRINGS is not None else str)


def read_csv(path: Path, label_column: str | int | None = None, table: TableOptions | None = None) -> RawData:
    """CSV (N rows, a header row optional) -> table RawData with its ``TableSchema`` (``data.tables``): numeric
    columns, categorical ones (text, or listed in ``table``) one-hot, and gaps handled as ``table`` says; each
    item's ``rows``: its row in the file (0: the first after the header; empty rows, left out, counted)."""
    table = table or TableOptions()
    header, rows, lines, places = _table_rows(path, table)
    width, skip = len(header or rows[0]), _left_out(path, header, rows)
    cells = _cells(rows)  # (N, width)
    column_names = header or [str(j) for j in range(width)]
    label = _label(path, header, cells, label_column, table)
    features = [j for j in range(width) if j != label and j not in skip]
    if not features:
        raise VaekitError(f"{path}: no feature columns besides the label column")
    names = [column_names[j] for j in features]
    modelled = features + ([] if label is None else [label])
    if table.schema is None and table.missing == "drop":  # the rows left must split (a run's own reads do not)
        _enough_kept(path, cells[:, modelled], [column_names[j] for j in modelled], label is not None)
    labelled = _labelled(path, cells, lines, label, table, header)  # (N,) rows whose label is there
    if labelled is None:  # labels a run that does not use them lacks: left out, every row kept
        label, labelled = None, np.ones(len(cells), bool)
    kept_lines = [ln for ln, k in zip(lines, labelled) if k]
    x, keep, schema = read_table(cells[labelled][:, features], names, kept_lines, table, str(path), features)
    unlabelled = [ln for ln, k in zip(lines, labelled) if not k]
    gappy = [ln for ln, k in zip(kept_lines, keep) if not k]  # a feature's gap
    if table.schema is not None and unlabelled and label is not None:  # a verb: no class, not data.missing
        _note_dropped(path, unlabelled, f": no label in column {column_names[label]!r} (a gap is no class)")
        unlabelled = []
    _note_dropped(path, unlabelled + gappy, " (data.missing=drop)")
    y = None if label is None else label_cells(np.asarray(cells[labelled][keep, label].tolist(), dtype=str))
    raw = RawData(x, y, str(path), rows=places[labelled][keep])
    raw.table = schema
    if label is not None:  # synthetic rows of a conditional run give the label column back, named and placed so
        schema.label, schema.label_index = column_names[label], label - sum(j < label for j in skip)
    if label is not None and y is not None:  # labels it cannot take: refused before any note calls them labels
        _check_labels(path, y, column_names[label])
    if label is not None and table.label_note and (label_column is None or table.conditional is False):
        unmodelled = "; the model is not conditional: it does not see the column, and sampled rows will not have it"
        note(
            f"{path}: column {column_names[label]!r} holds the labels, not a feature (set data.label_column={NO_LABEL} "
            f"to keep it as a feature){unmodelled * (table.conditional is False)}"
        )
    return raw
