"""A table's schema: its feature columns, and how cells become items and items the table again.

A table's item is one flat float vector: the numeric columns first (in file order), then each categorical
column as a one-hot code of its categories (sorted), then, for each column that had gaps in training under
``missing="mean"``, a two-slot one-hot gap indicator (filled, gap), so synthetic rows have gaps where it says.
Numeric cells may carry a unit (``$1,200``, ``12%``: numbers) or be ISO dates and times (coded as days since
its first date, given back as ``datetime64``); true/false cells in any case are one boolean category each.
``TableSchema`` records the columns (names, kinds, categories, the values that fill gaps, and after training the
numeric columns' loc and scale), is saved in the run folder as ``files.TABLE``, and turns items back into the
table: decoded columns keep their names, categories and units. Under ``numeric="modes"`` numbers are coded by
TVAE's modes instead (``data.modes``). ``data.tables`` fits a schema on a table's cells, and re-exports these
names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from ..io import atomic_write_json
from .modes import Modes, from_modes, mode_counts, to_modes

MISSING = frozenset({"", "?", "na", "n/a", "nan", "null"})
DAY = 86400.0  # seconds in a day: a date or time column holds days (since its first date, ``Column.origin``)
TIMES = {  # the ISO date and time formats read as times (strftime), and the numpy unit they are given back in
    "%Y-%m-%d": "D",
    "%Y-%m-%d %H:%M": "m",
    "%Y-%m-%dT%H:%M": "m",
    "%Y-%m-%d %H:%M:%S": "s",
    "%Y-%m-%dT%H:%M:%S": "s",
}


@dataclass
class Column:
    """One feature column: ``kind`` numeric or categorical; ``fill`` replaces its gaps under missing='mean'."""

    name: str
    kind: str
    categories: list[str] = field(default_factory=list)
    fill: float | str | None = None
    loc: float | None = None  # numeric: the mean and standard deviation the model standardised it by
    scale: float | None = None
    modes: Modes | None = None  # numeric, under data.numeric=modes: TVAE's modes (data.modes)
    constant: float | None = None  # numeric: the one value of a column that holds only it (decoded as it is)
    integer: bool | None = None  # numeric: the training values are all whole numbers (samples are rounded)
    min: float | None = None  # numeric: the training values' range (samples are clipped to it)
    max: float | None = None
    unit: str | None = None  # numeric: the sign its cells carry ($, %; "": only thousands commas), read off
    time: str | None = None  # numeric: its cells' date or time format (TIMES), coded as days since ``origin``
    origin: float | None = None  # numeric, dates: its first date (days since 1970-01-01; float32 keeps seconds)
    boolean: bool | None = None  # categorical: true/false cells in any case (categories False, True), as bools
    gaps: bool | None = None  # it had gaps in training (missing='mean'): a gap indicator is modelled beside it

    def __post_init__(self) -> None:
        self.modes = Modes(**self.modes) if isinstance(self.modes, dict) else self.modes


@dataclass
class TableSchema:
    """The feature columns of a table in file order, and how gaps were handled."""

    columns: list[Column]
    missing: str = "refuse"
    coding: str = "standard"  # data.numeric: numbers as they are (standard) or TVAE's mode codes (modes)
    label: str | None = None  # the label column's name, and its index among the file's columns
    label_index: int | None = None

    @property
    def numeric(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "numeric"]

    @property
    def categorical(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "categorical"]

    @property
    def gapped(self) -> list[Column]:
        """The columns with a gap indicator, in file order."""
        return [c for c in self.columns if c.gaps]

    @property
    def categories(self) -> list[int]:
        """K_j of each one-hot code, in their order: the numeric columns' modes (data.numeric=modes), then the
        categorical columns' categories, then the gap indicators (2 each)."""
        modes = mode_counts(self.numeric) if self.coding == "modes" else []
        return modes + [len(c.categories) for c in self.categorical] + [2] * len(self.gapped)

    @property
    def width(self) -> int:
        """D, the length of an item: numeric columns plus every one-hot slot."""
        return len(self.numeric) + sum(self.categories)

    def to_dict(self) -> dict:
        label = {"label": self.label, "label_index": self.label_index}
        return {"missing": self.missing, "numeric": self.coding, **label, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        columns = [Column(**c) for c in d["columns"]]
        return cls(
            columns, d.get("missing", "refuse"), d.get("numeric", "standard"), d.get("label"), d.get("label_index")
        )

    @classmethod
    def load(cls, path: str | Path) -> TableSchema:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise VaekitError(f"{path}: cannot read the table's schema ({e})") from None

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_dict())

    def with_units(self, loc: list[float], scale: list[float]) -> TableSchema:
        """This schema with the numeric columns' loc and scale (the first len(numeric) of the model's)."""
        for c, m, s in zip(self.numeric, loc, scale):
            c.loc, c.scale = float(m), float(s)
        return self

    def encode(
        self, cells: np.ndarray, lines: list[int], where: str, index: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cells (N, C) as strings -> (items (N', D) float32, the kept rows (N,) bool), gaps handled as set."""
        gaps = _gaps(cells)
        keep = np.asarray(~gaps.any(1) if self.missing == "drop" else np.ones(len(cells), bool))
        if self.missing == "refuse" and gaps.any():
            i, j = np.argwhere(gaps)[0]
            raise VaekitError(
                f"{where}: missing value {str(cells[i, j])!r} on line {lines[i]}, {self._at(j, index)}; set "
                "data.missing to drop (rows with gaps) or mean (train split means and modes)",
                key="data.missing",
            )
        cells, gaps, lines = cells[keep], gaps[keep], [ln for ln, k in zip(lines, keep) if k]
        if not len(cells):
            raise VaekitError(f"{where}: every row has a missing value; data.missing=mean fills them")
        at = {c.name: j for j, c in enumerate(self.columns)}
        parts = []
        for c in self.numeric:
            j = at[c.name]
            parts.append(self._numbers(cells[:, j], gaps[:, j], c, [lines, where, self._at(j, index)]))
        for c in self.categorical:
            j = at[c.name]
            parts.append(self._onehot(cells[:, j], gaps[:, j], c, [lines, where, self._at(j, index)]))
        parts += [np.eye(2)[gaps[:, at[c.name]].astype(int)] for c in self.gapped]  # (N, 2): filled, gap
        x = np.concatenate(parts, 1)
        bad = ~(np.abs(x) <= np.finfo(np.float32).max)  # nan, inf, or beyond float32's range
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise VaekitError(
                f"{where}: value {x[i, j]:g} on line {lines[i]}, {self._at(j, index)}, is not finite in float32"
            )
        return (to_modes(x, self.numeric) if self.coding == "modes" else x).astype(np.float32), keep

    def _at(self, j: int, index: list[int] | None) -> str:
        """Column j named as the file has it: its index there (``index``: the file's index of each column)."""
        return f"column index {j if index is None else index[j]} ({self.columns[j].name!r})"

    @staticmethod
    def _numbers(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> np.ndarray:
        x = np.full(len(col), c.fill if c.fill is not None else np.nan)
        try:
            x[~gap] = numbers(col[~gap], c)
        except ValueError:
            lines, where, column = at
            i = int(np.flatnonzero(~gap)[np.argmin([_parses(v, c) for v in col[~gap]])])
            kind = f"a date or time ({c.time})" if c.time else "a number"
            raise VaekitError(f"{where}: value {str(col[i])!r} on line {lines[i]}, {column}, is not {kind}") from None
        return x[:, None]

    @staticmethod
    def _onehot(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> np.ndarray:
        col = np.where(gap, str(c.fill), np.char.capitalize(np.char.lower(col)) if c.boolean else col)
        code = {k: i for i, k in enumerate(c.categories)}
        unknown = [i for i, v in enumerate(col) if v not in code]
        if unknown:
            lines, where, column = at
            i = unknown[0]
            known = ", ".join(c.categories[:8]) + (", ..." if len(code) > 8 else "")
            raise VaekitError(
                f"{where}: category {str(col[i])!r} on line {lines[i]}, {column}, is not one of the "
                f"run's {len(c.categories)} ({known}): a run keeps the categories it was trained on"
            )
        out = np.zeros((len(col), len(code)))
        out[np.arange(len(col)), [code[v] for v in col]] = 1.0
        return out

    def decode(self, x) -> dict[str, np.ndarray]:
        """Items (N, D) (a tensor or array: one-hot codes, probabilities or logits) -> {column: (N,) values}
        in file order: numbers in the table's units, categories by name (the largest slot of each code)."""
        x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.width:
            raise VaekitError(f"items of shape {x.shape[1:]} do not fit this table's {self.width} slots")
        x = from_modes(x, self.numeric) if self.coding == "modes" else x  # numbers first, in the table's units
        out: dict[str, np.ndarray] = {
            c.name: x[:, i] if c.constant is None else np.full(len(x), c.constant) for i, c in enumerate(self.numeric)
        }
        start = len(self.numeric)
        for c in self.categorical:
            k = len(c.categories)
            out[c.name] = np.asarray(c.categories, dtype=object)[x[:, start : start + k].argmax(1)]
            out[c.name] = out[c.name] == "True" if c.boolean else out[c.name]
            start += k
        for c in self.gapped:  # NaN where the indicator says gap (an object column for categories and bools)
            gap, start = x[:, start + 1] > x[:, start], start + 2
            v = out[c.name].astype(object) if c.kind == "categorical" else out[c.name].astype(np.float64)
            out[c.name] = np.where(gap, np.nan, v).astype(v.dtype)
        return {c.name: as_times(out[c.name], c) if c.time else out[c.name] for c in self.columns}

    def bounded(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Decoded rows with each numeric column clipped to its training range, and rounded (int64; floats where
        it has gaps) where the training values were all whole numbers (dates: whole days), as SDV does by default;
        a column without them (a table.json written before they were kept) stays as it is."""
        out = dict(rows)
        for c in self.numeric:  # dates and times as days: clipped alike, and whole days where they were
            v = days_of(out[c.name], c) if c.time else out[c.name]
            v = v if c.min is None or c.max is None else np.clip(v, c.min, c.max)
            if c.integer:  # int64, or rounded floats where NaN marks a gap
                v = np.rint(v) if c.gaps or c.time else np.rint(v).astype(np.int64)
            out[c.name] = as_times(v, c) if c.time else v
        return out

    def with_labels(
        self, rows: dict[str, np.ndarray], y: np.ndarray, classes: list[str] | None, name: str
    ) -> dict[str, np.ndarray]:
        """Rows with a label column of labels ``y`` (N,), as class names (``classes``, label 0 first) or numbers,
        named and placed as in the file (``label``, ``label_index``; else named ``name``, placed last)."""
        values = np.asarray(classes, dtype=object)[y] if classes else np.asarray(y)
        items = list(rows.items())
        at = len(items) if self.label_index is None else min(self.label_index, len(items))
        return dict([*items[:at], (self.label or name, values), *items[at:]])


def numbers(cells: np.ndarray, c: Column) -> np.ndarray:
    """A numeric column's filled cells (N,) as float64: as written, with their unit read off (``$1,200``: 1200,
    ``12%``: 12), or as days since ``c.origin`` (dates and times); ValueError where a cell is none of these."""
    cells = np.char.strip(np.asarray(cells, dtype=str))
    if c.time:
        return np.asarray(cells, dtype="datetime64[s]").astype(np.int64) / DAY - (c.origin or 0.0)
    if c.unit is not None:
        for sign in (c.unit, ","):
            cells = np.char.replace(cells, sign, "") if sign else cells
    return cells.astype(np.float64)


def _parses(cell: str, c: Column) -> bool:
    try:
        numbers(np.array([cell]), c)
    except ValueError:
        return False
    return True


def as_times(days: np.ndarray, c: Column) -> np.ndarray:
    """Days since ``c.origin`` (N,) (NaN: a gap) -> datetime64 in the unit of its format (NaT: a gap)."""
    days, unit = np.asarray(days, dtype=np.float64) + (c.origin or 0.0), TIMES[str(c.time)]
    steps = np.rint(np.nan_to_num(days) * DAY / {"D": DAY, "m": 60.0, "s": 1.0}[unit]).astype(np.int64)
    times = steps.astype(f"datetime64[{unit}]")
    return np.where(np.isnan(days), np.array("NaT", dtype=times.dtype), times)


def days_of(times: np.ndarray, c: Column) -> np.ndarray:
    """datetime64 (N,) (NaT: a gap) -> days since ``c.origin`` (N,) float64 (NaN: a gap)."""
    seconds = np.asarray(times).astype("datetime64[s]")
    return np.where(np.isnat(seconds), np.nan, seconds.astype(np.int64) / DAY - (c.origin or 0.0))


def _gaps(cells: np.ndarray) -> np.ndarray:
    """(N, C) bool: the cells that hold no value."""
    return np.isin(np.char.lower(cells), list(MISSING))
