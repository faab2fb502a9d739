"""A table's cells as values: which hold none (``MISSING``), and a numeric column's cells as float64 numbers,
their unit read off (``unit_of`` finds it) or as days since the column's first date, checked to fit float32, and
the float32 array their items are written into (``table_schema``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VaekitError
from .limits import usable_memory
from .table_times import days_since

if TYPE_CHECKING:
    from .table_schema import Column

MISSING = frozenset({"", "?", "na", "n/a", "nan", "null"})
UNIT = re.compile(r"[+-]?([$€£¥]?)\s*[+-]?(\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?\s*(%?)")  # $1,200.50  12%  1,200


def numbers(cells: np.ndarray, c: Column) -> np.ndarray:
    """A numeric column's filled cells (N,) as float64: as written, with their unit read off (``$1,200``: 1200,
    ``12%``: 12), or as days since ``c.origin`` (dates and times); ValueError where a cell is none of these (as
    ``csv_text.is_number`` has it, a cell with an underscore is not a number: 10_1 is a code); a data frame's bool
    column (``c.boolean``) takes true/false in any case, as its sampled rows write them (True, False), as 1 and 0."""
    cells = np.asarray(cells)
    cells = np.char.strip(cells if cells.dtype.kind in "UT" else cells.astype(str))  # T: numpy 2's StringDType
    if c.boolean:
        low = np.char.lower(cells)
        cells = np.where(low == "true", "1", np.where(low == "false", "0", cells))
    if (np.char.find(cells, "_") >= 0).any():  # float() and numpy take 1_000; a cell so written is a code (10_1)
        raise ValueError("digit separators")
    if c.time:
        return days_since(cells, c.time, c.origin)
    if c.unit is not None:
        for sign in (c.unit, ","):
            cells = np.char.replace(cells, sign, "") if sign else cells
    return cells.astype(np.float64)


def item_array(n: int, width: int, categorical: list[Column], where: str) -> np.ndarray:
    """(n, width) float32 zeros for n items; refused in one line naming the widest of the ``categorical`` columns
    where they would take over half the memory free here (the splits copy them) or cannot be had."""
    need = 4 * n * width
    try:
        if need > usable_memory() // 2:
            raise MemoryError
        return np.zeros((n, width), np.float32)
    except MemoryError:
        wide = max(categorical, key=lambda c: len(c.categories), default=None)
        k = len(wide.categories) if wide else 0
        said = f"; the widest categorical column, {wide.name!r}, adds {k:,}: leave it out of the file" if wide else ""
        raise VaekitError(
            f"{where}: {n:,} rows of {width:,} slots take {need / 1e9:,.2f} GB as float32 items, over half the "
            f"memory free here{said}"
        ) from None


def unit_of(values: list[str]) -> str | None:
    """The one sign ($, euro, pound, yen or %) every value carries, or "" where values are numbers written with
    thousands commas (1,200); else None."""
    found = set()
    for v in values:
        m = UNIT.fullmatch(v)
        if m is None or not any(ch.isdigit() for ch in v) or (m.group(1) and m.group(3)):
            return None
        found.add(m.group(1) + m.group(3))
    unit = found.pop() if len(found) == 1 else None
    return None if unit == "" and not any("," in v for v in values) else unit


def _check_float32(values: np.ndarray, lines: list[int], where: str, columns: list[str]) -> None:
    """Refuse, in one line, a number of ``values`` (N, n) float64 that float32 cannot hold: nan, inf or beyond its
    range (``columns``: each column as messages name it)."""
    bad = ~(np.abs(values) <= np.finfo(np.float32).max)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise VaekitError(f"{where}: value {values[i, j]:g} on line {lines[i]}, {columns[j]}, is not finite in float32")


def gap_hint(cell: object) -> str:
    """The advice where one text among numbers may mark gaps (None, -, n.a.): how a gap is written."""
    return f"; if {str(cell)!r} marks a gap, write an empty cell (gaps: empty, ?, NA, N/A, NaN, null)"


def not_numbers(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> VaekitError:
    """One line naming the first of a numeric column's filled cells (N,) that is no number (no date or time where
    ``c.time``) by its line and column (``at``: lines, where, column), with ``gap_hint`` where every such cell
    holds the same text, as training says it."""
    lines, where, column = at
    bad = [int(i) for i in np.flatnonzero(~gap) if not _parses(col[i], c)]
    kind = f"a date or time ({c.time})" if c.time else "a number"
    hint = gap_hint(col[bad[0]]) if len({str(col[i]) for i in bad}) == 1 else ""
    return VaekitError(f"{where}: value {str(col[bad[0]])!r} on line {lines[bad[0]]}, {column}, is not {kind}{hint}")


def _parses(cell: str, c: Column) -> bool:
    try:
        numbers(np.array([cell]), c)
    except ValueError:
        return False
    return True


def _gaps(cells: np.ndarray) -> np.ndarray:
    """(N, C) bool: the cells that hold no value."""
    return np.isin(np.char.lower(cells), list(MISSING))
