"""A table's schema: its feature columns, and how cells become items and items the table again.

A table's item is one flat float vector: the numeric columns first (in file order), then each categorical
column as a one-hot code of its categories (sorted), then, for each column that had gaps in training under
``missing="mean"``, a two-slot one-hot gap indicator (filled, gap), so synthetic rows have gaps where it says.
Numeric cells may carry a unit (``$1,200``, ``12%``: numbers) or be ISO dates and times (``data.table_times``:
coded as days since its first date, given back as ``datetime64``); true/false cells in any case are one boolean
category each.
``TableSchema`` records the columns (names, kinds, categories, the values that fill gaps, and after training the
numeric columns' loc and scale), is saved in the run folder as ``files.TABLE``, and turns items back into the
table: decoded columns keep their names, categories and units. Under ``numeric="modes"`` numbers are coded by
TVAE's modes instead (``data.modes``). ``data.tables`` fits a schema on a table's cells, and re-exports these
names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from ..io import atomic_write_json
from .images import note
from .modes import Modes, from_modes, mode_counts, to_modes
from .run_json import read_classes, read_schema
from .table_cells import _check_float32, boolean_cells, item_array, not_numbers, numbers, unseen_gaps, unseen_hint
from .table_times import as_times
from .table_values import bounded


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
    decimals: int | None = None  # numeric: the fewest decimal places writing every training value (samples too)
    step: float | None = None  # dates and times: seconds (a day, hour, minute, second) every training time is on
    min: float | None = None  # numeric: the training values' range (samples are clipped to it)
    max: float | None = None
    unit: str | None = None  # numeric: the sign its cells carry ($, %; "": only thousands commas), read off
    time: str | None = None  # numeric: its cells' date or time format (table_times), as days since ``origin``
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
    trained: bool = field(default=False, compare=False)  # read from a run's table.json (not saved: said in errors)
    lines: list[int] | None = field(default=None, repr=False, compare=False)  # the last encode's items' file lines
    classes: list[str] | None = field(default=None, compare=False)  # a conditional run's classes (not saved here)

    def summary(self) -> str:
        """Its columns by kind and its gap handling, in a few words (a wide table's columns would fill a page)."""
        return f"{len(self.numeric)} numeric, {len(self.categorical)} categorical, missing={self.missing!r}"

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"TableSchema({len(self.columns)} columns: {self.summary()}, coding={self.coding!r}{label})"

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
            schema = cls.from_dict(read_schema(path))  # each field's type checked: one line naming it
        except (KeyError, TypeError) as e:
            raise VaekitError(f"{path}: cannot read the table's schema ({e})") from None
        schema.trained = True
        return schema

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_dict())

    def knowing(self, classes: str | Path) -> TableSchema:
        """This (a conditional run's) schema with the classes its labels name (its ``classes.json``, ``classes``;
        none where it has none or it cannot be read: the run's loading says why), which other data must keep to."""
        try:
            self.classes = read_classes(classes)
        except VaekitError:
            self.classes = None
        return self

    def check_classes(self, names: list[str], y: np.ndarray, where: str) -> None:
        """Refuse, in one line naming its line and label column, a class of the labels ``y`` (N,) (0..K-1,
        ``names`` theirs) that is none of a conditional run's ``classes`` (by name: a file's labels are names, digits
        too), where the last encode kept the items' lines."""
        bad = [n for n in names if self.classes and n not in self.classes]
        if bad and self.classes and self.lines is not None and len(self.lines) == len(y):
            line = self.lines[int(np.argmax(y == names.index(bad[0])))]
            shown = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
            raise VaekitError(
                f"{where}: label {bad[0]!r} on line {line}, column {self.label!r}, is none of the classes the run "
                f"was trained on ({shown}): a conditional run generates and scores only those"
            )

    def with_units(self, loc: list[float], scale: list[float]) -> TableSchema:
        """This schema with the numeric columns' loc and scale (the first len(numeric) of the model's)."""
        for c, m, s in zip(self.numeric, loc, scale):
            c.loc, c.scale = float(m), float(s)
        return self

    def encode(
        self, cells: np.ndarray, lines: list[int], where: str, index: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cells (N, C) as strings -> (items (N', D) float32, the kept rows (N,) bool), gaps handled as set.

        The items are written into one (N', D) float32 array, column by column (a column of thousands of
        categories costs its one-hot slots once)."""
        if not len(cells):  # not for want of gap handling: there is nothing to encode
            raise VaekitError(f"{where} has no rows")
        gaps = unseen_gaps(cells, self.columns, where)  # the gaps, and a new category as one where so read
        keep = np.asarray(~gaps.any(1) if self.missing == "drop" else np.ones(len(cells), bool))
        if self.missing == "refuse" and gaps.any():
            i, j = np.argwhere(gaps)[0]
            said = f"{where}: missing value {str(cells[i, j])!r} on line {lines[i]}, {self._at(j, index)}"
            self._refuse_gaps(said)
        cells, gaps, lines = cells[keep], gaps[keep], [ln for ln, k in zip(lines, keep) if k]
        self.lines = lines  # each item's line, for messages about its label (``data.core``)
        if not len(cells):
            self._refuse_gaps(f"{where}: every row has a missing value")
        if self.missing == "mean" and self.trained:  # a run's schema: data read after training
            self._new_gaps(gaps, where)
        at = {c.name: j for j, c in enumerate(self.columns)}
        x = item_array(len(cells), self.width, self.categorical, where)
        n = len(self.numeric)
        values = np.empty((len(cells), n))  # the numbers in float64, checked before they become float32
        for k, c in enumerate(self.numeric):
            j = at[c.name]
            values[:, k] = self._numbers(cells[:, j], gaps[:, j], c, [lines, where, self._at(j, index)])
        _check_float32(values, lines, where, [self._at(at[c.name], index) for c in self.numeric])
        start = n + (sum(mode_counts(self.numeric)) if self.coding == "modes" else 0)  # alphas and modes first
        coded = values.astype(np.float32)  # as training coded them: from the float32 items (``tables.fitted_codes``)
        x[:, :start] = to_modes(coded, self.numeric) if self.coding == "modes" else values
        for c in self.categorical:
            j = at[c.name]
            hot = self._onehot(cells[:, j], gaps[:, j], c, [lines, where, self._at(j, index)])
            x[np.arange(len(cells)), start + hot] = 1.0
            start += len(c.categories)
        for c in self.gapped:  # (N, 2): filled, gap
            x[np.arange(len(cells)), start + gaps[:, at[c.name]]] = 1.0
            start += 2
        return x, keep

    def _new_gaps(self, gaps: np.ndarray, where: str) -> None:
        """One note naming the columns with gaps among ``gaps`` (N, C) that had none in the training split (no gap
        indicator), and how many cells were filled: filled as missing=mean fills, not modelled as gaps."""
        counts = {c.name: int(k) for c, k in zip(self.columns, gaps.sum(0)) if k and not c.gaps}
        if counts:
            them = ", ".join(f"{name!r} ({k})" for name, k in counts.items())
            note(
                f"{where}: {sum(counts.values())} gap(s) filled in column(s) {them}, which had none in the training "
                "split: filled as data.missing=mean fills (its fill in table.json), not modelled as gaps"
            )

    def _refuse_gaps(self, said: str) -> None:
        """Refuse gaps the setting does not take, saying what can be done: in training, the setting to change; with
        a trained run's schema (other data for its verbs, which take no settings), data without them, or a run
        trained to take them."""
        if not self.trained and self.missing == "refuse":
            fix = "set data.missing to drop (rows with gaps) or mean (train split means and modes)"
            raise VaekitError(f"{said}; {fix}", key="data.missing")
        if not self.trained:
            raise VaekitError(f"{said}; data.missing=mean fills them", key="data.missing")
        how = "data.missing=mean (which fills gaps)" + " or drop (which leaves such rows out)" * (
            self.missing == "refuse"
        )
        raise VaekitError(
            f"{said}; this run was trained with data.missing={self.missing}, so its verbs take no "
            f"{'gaps' if self.missing == 'refuse' else 'data whose every row has one'}: remove or fill them, or "
            f"train a run with {how}"
        )

    def _at(self, j: int, index: list[int] | None) -> str:
        """Column j named as the file has it: its index there (``index``: the file's index of each column)."""
        return f"column index {j if index is None else index[j]} ({self.columns[j].name!r})"

    @staticmethod
    def _numbers(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> np.ndarray:
        """A numeric column's cells (N,) -> (N,) float64 (its fill where a cell is a gap)."""
        x = np.full(len(col), c.fill if c.fill is not None else np.nan)
        try:
            x[~gap] = numbers(col[~gap], c)
        except ValueError:
            raise not_numbers(col, gap, c, at) from None
        return x

    @staticmethod
    def _onehot(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> np.ndarray:
        """A categorical column's cells (N,) -> (N,) int64, each one's category (its fill where a gap)."""
        raw, col = col, np.where(gap, str(c.fill), boolean_cells(col) if c.boolean else col)  # 1/0 too
        code = {k: i for i, k in enumerate(c.categories)}
        unknown = [i for i, v in enumerate(col) if v not in code]
        if unknown:
            lines, where, column = at
            i = unknown[0]
            known = ", ".join(c.categories[:8]) + (", ..." if len(code) > 8 else "")
            raise VaekitError(
                f"{where}: category {str(raw[i])!r} on line {lines[i]}, {column}, is not one of the "
                f"run's {len(c.categories)} ({known}): a run keeps the categories it was trained on{unseen_hint(c)}",
                key="unknown" if unseen_hint(c) else None,
            )
        return np.fromiter((code[v] for v in col), np.int64, len(col))

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

    def bounded(self, rows: dict[str, np.ndarray], clipped: dict | None = None) -> dict[str, np.ndarray]:
        """Decoded rows with each numeric column clipped to its training range and rounded to its decimals (dates
        and times: to the step their training values fall on; int64 where they were whole numbers, floats where it
        has gaps), as SDV does by default; a column without them (an older table.json) stays as it is.
        ``clipped``: {column: [values clipped, values]}, counted on (``table_values.bounded``)."""
        return bounded(self.numeric, rows, clipped)

    def with_labels(
        self, rows: dict[str, np.ndarray], y: np.ndarray, classes: list[str] | None, name: str
    ) -> dict[str, np.ndarray]:
        """Rows with a label column of labels ``y`` (N,), as class names (``classes``, label 0 first) or numbers,
        named and placed as in the file (``label``, ``label_index``; else named ``name``, placed last)."""
        values = np.asarray(classes, dtype=object)[y] if classes else np.asarray(y)
        items = list(rows.items())
        at = len(items) if self.label_index is None else min(self.label_index, len(items))
        return dict([*items[:at], (self.label or name, values), *items[at:]])
