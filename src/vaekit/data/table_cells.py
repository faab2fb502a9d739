"""A table's cells as values: which hold none (``MISSING``), and a numeric column's cells as float64 numbers,
their unit read off or as days since the column's first date, checked to fit float32 (``table_schema``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import VaekitError
from .table_times import days_since

if TYPE_CHECKING:
    from .table_schema import Column

MISSING = frozenset({"", "?", "na", "n/a", "nan", "null"})


def numbers(cells: np.ndarray, c: Column) -> np.ndarray:
    """A numeric column's filled cells (N,) as float64: as written, with their unit read off (``$1,200``: 1200,
    ``12%``: 12), or as days since ``c.origin`` (dates and times); ValueError where a cell is none of these (as
    ``csv_text.is_number`` has it, a cell with an underscore is not a number: 10_1 is a code)."""
    cells = np.asarray(cells)
    cells = np.char.strip(cells if cells.dtype.kind in "UT" else cells.astype(str))  # T: numpy 2's StringDType
    if (np.char.find(cells, "_") >= 0).any():  # float() and numpy take 1_000; a cell so written is a code (10_1)
        raise ValueError("digit separators")
    if c.time:
        return days_since(cells, c.time, c.origin)
    if c.unit is not None:
        for sign in (c.unit, ","):
            cells = np.char.replace(cells, sign, "") if sign else cells
    return cells.astype(np.float64)


def _check_float32(values: np.ndarray, lines: list[int], where: str, columns: list[str]) -> None:
    """Refuse, in one line, a number of ``values`` (N, n) float64 that float32 cannot hold: nan, inf or beyond its
    range (``columns``: each column as messages name it)."""
    bad = ~(np.abs(values) <= np.finfo(np.float32).max)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise VaekitError(f"{where}: value {values[i, j]:g} on line {lines[i]}, {columns[j]}, is not finite in float32")


def _parses(cell: str, c: Column) -> bool:
    try:
        numbers(np.array([cell]), c)
    except ValueError:
        return False
    return True


def _gaps(cells: np.ndarray) -> np.ndarray:
    """(N, C) bool: the cells that hold no value."""
    return np.isin(np.char.lower(cells), list(MISSING))
