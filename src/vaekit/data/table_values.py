"""A table's numbers as its file wrote them: each numeric column's decimal places (or a time column's step) read
off the training values, synthetic values bounded by them (clipped to the training range, rounded, clamped again,
and counted where clipped), and rows written back as CSV cells (``write_csv``) in the file's notation: numbers
positional, dates and times in their column's format."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ..errors import VaekitError
from ..io import atomic_write, csv_cell
from .images import note
from .table_times import DAY, as_times, days_of, time_text

if TYPE_CHECKING:
    from .table_schema import Column, TableSchema

MAX_DECIMALS = 15  # as SDV's rounding scheme: a column needing more decimals is not rounded
STEPS = (DAY, 3600.0, 60.0, 1.0, 1e-3, 1e-6)  # seconds: a day, hour, minute, second, ms, us (a time's step)
CLIPPED = 0.01  # the share of a column's sampled values set to a bound of its range over which a note says so
FEWEST_DRAWN = 20  # a column's values drawn below which its share clipped is not said (1 of 5 is 20%)
SHOWN = 5  # the columns a clip note names; the others it counts
_QUIET: ContextVar[bool] = ContextVar("unsaid_clips", default=False)  # True within ``unsaid_clips``


def decimals_of(values: np.ndarray) -> int | None:
    """The fewest decimal places that write every value (N,) float64 as it is (SDV's rule: 43372.34 -> 2, 67.0
    -> 0), None where more than MAX_DECIMALS would be needed (1/3)."""
    return next((d for d in range(MAX_DECIMALS + 1) if np.array_equal(np.round(values, d), values)), None)


def step_of(days: np.ndarray) -> float:
    """The coarsest of a day, an hour, a minute, a second, a millisecond and a microsecond (in seconds) that
    every time (N,) (days since the column's first midnight, ``Column.origin``) falls on."""
    us = np.rint(days * DAY * 1e6)
    return next((s for s in STEPS if np.all(us % round(s * 1e6) == 0)), 1e-6)


def bounded(columns: list[Column], rows: dict[str, np.ndarray], clipped: dict | None = None) -> dict[str, np.ndarray]:
    """Decoded rows with each numeric column of ``columns`` bounded (``bound``); dates and times as days, given
    back as datetime64. ``clipped``: {column: [values clipped, values filled]}, added to where given."""
    out = dict(rows)
    for c in columns:
        v = bound(days_of(out[c.name], c) if c.time else np.asarray(out[c.name], np.float64), c, clipped)
        out[c.name] = as_times(v, c) if c.time else v
    return out


def bound(v: np.ndarray, c: Column, clipped: dict | None = None) -> np.ndarray:
    """A numeric column's values (N,) (days for dates and times; NaN: gaps) clipped to its training range, rounded
    to its decimals or time step (whole numbers where it held them: int64, or floats where it has gaps or passes
    int64's range), and clamped again; a column without them (an older table.json) stays as it is."""
    lo, hi = (c.min, c.max) if c.min is not None and c.max is not None else (-np.inf, np.inf)
    if clipped is not None:  # beyond a bound by more than rounding would move them: set to the bound
        grid = 10.0**-c.decimals if c.decimals is not None else c.step / DAY if c.step else float(bool(c.integer))
        counts = clipped.setdefault(c.name, [0, 0])
        counts[0] += int(np.count_nonzero((v < lo - grid / 2) | (v > hi + grid / 2)))
        counts[1] += int(np.count_nonzero(~np.isnan(v)))
    v = np.clip(v, lo, hi)
    if c.step:
        v = np.rint(v * DAY / c.step) * (c.step / DAY)
    elif c.decimals is not None or c.integer:
        v = np.round(v, c.decimals or 0)
    v = np.clip(v, lo, hi)  # the bounds are training values, so on the grid: this clamps float's last bit only
    if c.integer and not c.gaps and not c.time and max(-lo, hi) < 2.0**63:
        v = v.astype(np.int64)
        v = v.astype(bool) if c.boolean and c.kind == "numeric" else v  # a data frame's bool column: 0/1
    return v


@contextmanager
def unsaid_clips() -> Iterator[None]:
    """Within it, ``clip_note`` says nothing: rows drawn for show (the report page's 10), whose shares of clipped
    values mean nothing (one value of 10 is 10%)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def clip_note(clipped: dict, coding: str) -> None:
    """One line naming the columns of which over 1% (``CLIPPED``) of the sampled values were clipped to a bound
    (``clipped`` as ``bounded`` counts), counting only columns of which ``FEWEST_DRAWN`` values or more were drawn
    (one value of 5 clipped is no share to speak of), the ``SHOWN`` most clipped by name and the rest counted
    ("... and N more"); under data.numeric=standard, the coding that models such columns closer; none within
    ``unsaid_clips``."""
    over = {k: c / n for k, (c, n) in clipped.items() if n >= FEWEST_DRAWN and c / n > CLIPPED}
    if over and not _QUIET.get():
        named = sorted(over, key=lambda k: -over[k])[:SHOWN]  # the most clipped first (a stable sort: ties in order)
        said = ", ".join(f"{k} {over[k]:.1%}" for k in named)
        more = f" (and {len(over) - len(named)} more columns)" if len(over) > len(named) else ""
        hint = "; data.numeric=modes models a skewed or many-peaked column closer" if coding == "standard" else ""
        note(f"values drawn beyond a column's training range were set to its bound: {said} of its values{more}{hint}")


def write_csv(
    columns: dict[str, np.ndarray] | Iterable[dict[str, np.ndarray]],
    path: str | Path,
    single: bool = False,
    schema: TableSchema | None = None,
) -> Path:
    """A table {column: (N,) values}, or chunks of one (each written, then let go), as a CSV file with a header
    row, cells as ``_cell`` writes them. ``schema``: the table's, whose dates and times are written in
    their file's format and whose numbers, rounded to their decimals (``bound``), as float64 text; ``single``:
    other values decoded from a model's float32 items, written to float32's precision (float32 columns always
    are), within the column's range where the schema has it."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise VaekitError(f"{path}: expected a .csv file name", key="out")
    chunks = [columns] if isinstance(columns, dict) else columns
    known = {c.name: c for c in schema.columns} if schema is not None else {}

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            writer = csv_writer(f)
            for i, chunk in enumerate(chunks):
                if i == 0:
                    writer.writerow([csv_cell(str(k)) for k in chunk])
                writer.writerows(zip(*(_cells(np.asarray(v), single, known.get(k)) for k, v in chunk.items())))

    return atomic_write(path, write)


def csv_writer(f: TextIO) -> Any:
    """A csv.writer on ``f`` whose rows end in "\\n" and which quotes a field holding "\\r" or "\\n" (csv.writer
    quotes only the characters of its own line ending: with "\\n" alone, a name holding "\\r" splits its row for
    csv.reader and pandas)."""
    return csv.writer(_LineFeed(f), lineterminator="\r\n")


class _LineFeed:
    """A text file a csv.writer writes its rows to, each ended by "\\r\\n", written ended by "\\n"."""

    def __init__(self, f: TextIO) -> None:
        self.f = f

    def write(self, row: str) -> int:
        return self.f.write(row[:-2] + "\n")  # csv.writer writes each row whole, with its line ending


def _cells(col: np.ndarray, single: bool, c: Column | None) -> list[str]:
    """A column's values (N,) as CSV cells: dates and times of a schema's column in its format, numbers it
    rounded as float64 text, other floats to float32's precision where ``single``, within its range."""
    if c is not None and c.time and col.dtype.kind == "M":
        return time_text(col, c.time).tolist()
    rounded = c is not None and (c.decimals is not None or bool(c.integer))
    bounds = (c.min, c.max) if c is not None and c.min is not None and c.max is not None else None
    single = (single and not rounded) or col.dtype == np.float32
    return [_cell(v, single, bounds) for v in col.tolist()]


def _cell(v: object, single: bool = False, bounds: tuple[float, float] | None = None) -> str:
    """A value as a CSV cell: a float as the shortest text that reads back as the same float, positional
    (12345678.91, not 1.234568e+07; an exponent only below 1e-4 or from 1e16), of float32 where ``single`` (a
    model's samples: 3266.9727, not 3266.97265625) unless that text lies outside ``bounds`` (1009933.4 for a
    range up to 1009933.36), a whole one without its ".0" (a whole-number column with gaps); a gap (NaN, None,
    NaT: None here) an empty cell, which vaekit and pandas read back as a gap; anything else as str writes it,
    text that a spreadsheet would run as a formula (=1+1) quoted (``io.csv_cell``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        if single:
            f = np.float32(v)
            text = np.format_float_positional(f, unique=True, trim="-") if 1e-4 <= abs(f) < 1e16 else str(f)
            if bounds is None or bounds[0] <= float(text) <= bounds[1]:
                return text
        return repr(v)
    return csv_cell(v) if isinstance(v, str) else str(v)
