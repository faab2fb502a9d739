"""A table's cells as values: which hold none (``MISSING``), and a numeric column's cells as float64 numbers,
their unit read off (``unit_of`` finds it) or as days since the column's first date, checked to fit float32, and
the float32 array their items are written into (``table_schema``); within ``unknown_categories("gap")``, a
category its run never saw is read as a gap of its column (``unseen_gaps``), where the run models that column's
gaps; a file's columns are held to its run's by name (``by_name``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VaekitError
from .images import note, note_once
from .limits import usable_memory
from .table_times import days_since

if TYPE_CHECKING:
    from .table_schema import Column

MISSING = frozenset({"", "?", "na", "n/a", "nan", "null"})
UNKNOWN = ("refuse", "gap")  # how a category its run never saw is read (``unknown_categories``)
_UNKNOWN: ContextVar[str] = ContextVar("vaekit_unknown", default="refuse")  # set within ``unknown_categories``
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


def boolean_cells(col: np.ndarray) -> np.ndarray:
    """A boolean column's text cells (N,) as its categories name them: true/false in any case and 1/0 (1.0/0.0, as
    pandas writes a bool column with gaps) as True and False, as a data frame's bools are read; others capitalised
    (true/false read so: a cell none of these is no category of the column)."""
    low = np.char.lower(col)
    yes, no = np.isin(low, ("true", "1", "1.0")), np.isin(low, ("false", "0", "0.0"))
    return np.where(yes, "True", np.where(no, "False", np.char.capitalize(low)))


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


def check_unknown(how: object) -> str:
    """``how`` if it is one of ``UNKNOWN``, else one line naming the setting ``unknown``."""
    if how not in UNKNOWN:
        raise VaekitError(f"unknown must be one of {', '.join(UNKNOWN)}, got {how!r}", key="unknown")
    return str(how)


@contextmanager
def unknown_categories(how: str = "gap") -> Iterator[None]:
    """Within it, a table's schema reads a category its run never saw as ``how`` says: "refuse" (as outside it: one
    line naming its line and column) or "gap": a gap of its column, coded as the run codes a gap there (its fill
    and its gap indicator, so the score weighs a gap where gaps are rare), said in one note (``unseen_gaps``);
    refused as before in a column whose gaps the run does not model (no gap indicator: its fill would hide it)."""
    token = _UNKNOWN.set(check_unknown(how))
    try:
        yield
    finally:
        _UNKNOWN.reset(token)


def unseen_gaps(cells: np.ndarray, columns: list[Column], where: str) -> np.ndarray:
    """(N, C) bool: the cells of ``cells`` (N, C) that hold no value (``_gaps``), with, within
    ``unknown_categories("gap")``, each filled cell in a categorical column with a gap indicator that is none of its
    categories a gap too, and one note counting them in each such column."""
    gaps = _gaps(cells)
    if _UNKNOWN.get() != "gap":
        return gaps
    counts: dict[str, int] = {}
    for j, c in enumerate(columns):
        if c.kind == "categorical" and c.gaps:
            col = boolean_cells(cells[:, j]) if c.boolean else cells[:, j]  # as _onehot reads it
            new = ~gaps[:, j] & ~np.isin(col, c.categories)  # (N,)
            gaps[:, j] |= new
            counts.update({c.name: int(new.sum())} if new.any() else {})
    if counts:
        them = ", ".join(f"{name!r} ({k})" for name, k in counts.items())
        note(
            f"{where}: {sum(counts.values())} cell(s) of categories the run was not trained on read as gaps "
            f"(unknown=gap) in column(s) {them}: coded as the run codes a gap there"
        )
    return gaps


def unseen_hint(c: Column) -> str:
    """The advice on a category that categorical column ``c``'s run never saw: within ``unknown_categories("gap")``
    why it is refused all the same, else, where the run models the column's gaps, that unknown=gap reads it as one."""
    if _UNKNOWN.get() == "gap":
        return (
            "; unknown=gap reads one as a gap only in a column whose gaps the run models (trained with "
            "data.missing=mean and gaps in its training split), and this one has none"
        )
    return "; unknown=gap reads it as a gap of this column, whose gaps the run models" if c.gaps else ""


def by_name(names: list[str], run: list[str], where: str) -> list[int]:
    """Where each of the run's feature columns ``run`` is among ``names`` (a file's, in its order): the run's
    columns in another order are taken by name, said in one note (once, as a frame's are); other columns are
    refused in one line (``_same_columns``: those missing, those extra)."""
    if names != run and sorted(names) == sorted(run):
        note_once(f"{where}: the run's columns in another order: taken by name, in the run's order")
        return [names.index(n) for n in run]
    _same_columns(names, run, where)
    return list(range(len(names)))


def _same_columns(names: list[str], run: list[str], where: str) -> None:
    """Refuse, in one line, feature columns ``names`` other than the run's ``run``: which are missing, which are
    extra, or the same in another order."""
    if names == run:
        return
    missing, extra = [n for n in run if n not in names], [n for n in names if n not in run]
    how = "; ".join(
        f"{what} {', '.join(map(repr, these))}" for what, these in (("missing", missing), ("extra", extra)) if these
    )
    raise VaekitError(
        f"{where}: the columns differ from the run's ({how or 'the same columns in another order'}); the run's "
        f"are {', '.join(run)}"
    )
