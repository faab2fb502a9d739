"""Tables as they come: numeric and categorical columns, with gaps.

A table's item is one flat float vector: the numeric columns first (in file order), then each categorical
column as a one-hot code of its categories (sorted). ``TableSchema`` records the columns (names, kinds,
categories, the values that fill gaps, and after training the numeric columns' loc and scale), is saved in the
run folder as ``files.TABLE``, and turns items back into the table: decoded columns keep their names,
categories and units. Under ``numeric="modes"`` numbers are coded by TVAE's modes instead (``data.modes``).

Missing cells (empty, ``?``, ``NA``, ``N/A``, ``NaN``, ``null``) are refused by default, in one line naming the
row and column; ``missing="drop"`` drops their rows, ``missing="mean"`` fills a numeric gap with the column's
mean and a categorical one with its most frequent category, both from the training split.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import files
from ..errors import VaekitError
from ..io import atomic_write_json, atomic_write_text
from .core import RawData, _split_indices
from .modes import Modes, fitted_codes, from_modes, mode_counts, to_modes

MISSING = frozenset({"", "?", "na", "n/a", "nan", "null"})
MISSING_MODES = ("refuse", "drop", "mean")


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

    def __post_init__(self) -> None:
        self.modes = Modes(**self.modes) if isinstance(self.modes, dict) else self.modes


@dataclass
class TableSchema:
    """The feature columns of a table in file order, and how gaps were handled."""

    columns: list[Column]
    missing: str = "refuse"
    coding: str = "standard"  # data.numeric: numbers as they are (standard) or TVAE's mode codes (modes)

    @property
    def numeric(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "numeric"]

    @property
    def categorical(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "categorical"]

    @property
    def categories(self) -> list[int]:
        """K_j of each one-hot code, in their order: the numeric columns' modes (data.numeric=modes), then the
        categorical columns' categories."""
        modes = mode_counts(self.numeric) if self.coding == "modes" else []
        return modes + [len(c.categories) for c in self.categorical]

    @property
    def width(self) -> int:
        """D, the length of an item: numeric columns plus every one-hot slot."""
        return len(self.numeric) + sum(self.categories)

    def to_dict(self) -> dict:
        return {"missing": self.missing, "numeric": self.coding, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        return cls([Column(**c) for c in d["columns"]], d.get("missing", "refuse"), d.get("numeric", "standard"))

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
        parts = [self._numbers(cells[:, at[c.name]], gaps[:, at[c.name]], c) for c in self.numeric]
        for c in self.categorical:
            j = at[c.name]
            parts.append(self._onehot(cells[:, j], gaps[:, j], c, [lines, where, self._at(j, index)]))
        x = np.concatenate(parts, 1)
        return (to_modes(x, self.numeric) if self.coding == "modes" else x).astype(np.float32), keep

    def _at(self, j: int, index: list[int] | None) -> str:
        """Column j named as the file has it: its index there (``index``: the file's index of each column)."""
        return f"column index {j if index is None else index[j]} ({self.columns[j].name!r})"

    @staticmethod
    def _numbers(col: np.ndarray, gap: np.ndarray, c: Column) -> np.ndarray:
        x = np.where(gap, "nan", col).astype(np.float64)  # the columns were checked to parse
        return np.where(gap, c.fill if c.fill is not None else np.nan, x)[:, None]

    @staticmethod
    def _onehot(col: np.ndarray, gap: np.ndarray, c: Column, at: list) -> np.ndarray:
        col = np.where(gap, str(c.fill), col)
        code = {k: i for i, k in enumerate(c.categories)}
        unknown = [i for i, v in enumerate(col) if v not in code]
        if unknown:
            lines, where, column = at
            i = unknown[0]
            known = ", ".join(c.categories[:8]) + (", ..." if len(code) > 8 else "")
            raise VaekitError(
                f"{where}: category {str(col[i])!r} on line {lines[i]}, {column}, is not one of the "
                f"run's {len(c.categories)} ({known})"
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
        out: dict[str, np.ndarray] = {c.name: x[:, i] for i, c in enumerate(self.numeric)}
        start = len(self.numeric)
        for c in self.categorical:
            k = len(c.categories)
            out[c.name] = np.asarray(c.categories, dtype=object)[x[:, start : start + k].argmax(1)]
            start += k
        return {c.name: out[c.name] for c in self.columns}


def write_csv(columns: dict[str, np.ndarray], path: str | Path) -> Path:
    """A table {column: (N,) values} as a CSV file with a header row (numbers to 7 significant digits)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise VaekitError(f"{path}: expected a .csv file name", key="out")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns))
    values = [[f"{v:.7g}" if isinstance(v, float) else str(v) for v in col.tolist()] for col in columns.values()]
    writer.writerows(zip(*values))
    atomic_write_text(path, buf.getvalue())
    return path


@dataclass
class TableOptions:
    """How a CSV becomes items: gaps, categorical columns, or a run's own schema to encode other data as it
    did. The split options say which rows are the training split (whose statistics fill gaps)."""

    missing: str = "refuse"
    categorical: list[str] = field(default_factory=list)
    schema: TableSchema | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    numeric: str = "standard"  # or modes: TVAE's mode-specific normalisation (data.modes)


def _gaps(cells: np.ndarray) -> np.ndarray:
    """(N, C) bool: the cells that hold no value."""
    return np.isin(np.char.lower(cells), list(MISSING))


def _is_number(cells: np.ndarray) -> np.ndarray:
    out = np.empty(len(cells), bool)
    for i, v in enumerate(cells):
        try:
            float(v)
            out[i] = True
        except ValueError:
            out[i] = False
    return out


def read_table(
    cells: np.ndarray, names: list[str], lines: list[int], options: TableOptions, where: str, index: list[int]
) -> tuple[np.ndarray, np.ndarray, TableSchema]:
    """Feature cells (N, C) -> (items (N', D) float32, kept rows (N,), schema): the run's schema if given,
    else one fitted here (kinds, categories, and the training split's fills). ``index``: each column's index in
    the file (for messages), ``lines`` each row's line."""
    schema = options.schema
    if schema is not None:
        if [c.name for c in schema.columns] != names:
            raise VaekitError(
                f"{where}: columns {', '.join(names)} differ from the run's {', '.join(c.name for c in schema.columns)}"
            )
        return (*schema.encode(cells, lines, where, index), schema)
    if options.missing not in MISSING_MODES:
        raise VaekitError(
            f"data.missing must be one of {', '.join(MISSING_MODES)}, got {options.missing!r}", key="data.missing"
        )
    unknown = sorted(set(options.categorical) - set(names))
    if unknown:
        raise VaekitError(
            f"{where}: data.categorical names {unknown[0]!r}, which is not a feature column ({', '.join(names)})",
            key="data.categorical",
        )
    gaps = _gaps(cells)
    columns = [
        _column(cells[:, j], gaps[:, j], name, name in options.categorical, lines, f"{where}: ", index[j])
        for j, name in enumerate(names)
    ]
    schema = TableSchema(columns, options.missing)
    if options.missing == "mean":
        _fill(schema, cells, gaps, options, where)
    x, keep = schema.encode(cells, lines, where, index)
    if options.numeric != "standard":  # TVAE's modes, fitted on the training split's numbers
        x = fitted_codes(options.numeric, schema.numeric, x, _train(len(x), options, where), options.seed)
        schema.coding = options.numeric
    return x, keep, schema


def _column(col: np.ndarray, gap: np.ndarray, name: str, listed: bool, lines: list[int], where: str, j: int) -> Column:
    """A column's kind (listed, or text in every filled cell: categorical) and its sorted categories."""
    filled = col[~gap]
    if listed:
        return Column(name, "categorical", sorted(set(filled.tolist())))
    number = _is_number(filled)
    if number.all():
        return Column(name, "numeric")
    if not number.any():
        return Column(name, "categorical", sorted(set(filled.tolist())))
    i = int(np.flatnonzero(~gap)[np.argmin(number)])
    raise VaekitError(
        f"{where}non-numeric value {str(col[i])!r} on line {lines[i]}, column index {j} ({name!r}), "
        "among numbers; list the column in data.categorical if it holds categories",
        key="data.categorical",
    )


def _fill(schema: TableSchema, cells: np.ndarray, gaps: np.ndarray, options: TableOptions, where: str) -> None:
    """Each column's fill from the training split's rows: the mean of a numeric one, the mode of a categorical."""
    train = _train(len(cells), options, where)
    for j, c in enumerate(schema.columns):
        values = cells[train, j][~gaps[train, j]]
        if not len(values):
            raise VaekitError(f"{where}: column {c.name!r} has no value in the training split to fill its gaps")
        if c.kind == "numeric":
            c.fill = float(values.astype(np.float64).mean())
        else:
            names, counts = np.unique(values, return_counts=True)
            c.fill = str(names[counts.argmax()])


def _train(n: int, options: TableOptions, where: str) -> np.ndarray:
    """The rows of the training split among n items, as ``data.core`` splits them."""
    raw = RawData(np.empty((n, 0)), None, where)
    return _split_indices(raw, n, n, options.val_fraction, options.test_fraction, options.seed, options.limit)["train"]


def table_options(cfg, spec: str) -> TableOptions:
    """The TableOptions of a run's config (``cfg``: a RunConfig) for ``spec``: other data than the run's own is
    encoded with the run's saved schema (``files.TABLE`` in ``cfg.out``), so its codes mean what they meant."""
    d = cfg.data
    if spec == d.spec and Path(spec).suffix.lower() not in (".csv", ".tsv"):
        for key, default in (("missing", "refuse"), ("categorical", []), ("numeric", "standard")):
            if getattr(d, key) != default:
                raise VaekitError(f"data.{key} applies to .csv/.tsv tables, and {spec} is not one", key=f"data.{key}")
    saved = Path(cfg.out) / files.TABLE if cfg.out else None
    schema = TableSchema.load(saved) if spec != d.spec and saved is not None and saved.is_file() else None
    return TableOptions(
        d.missing,
        list(d.categorical),
        schema,
        d.val_fraction,
        d.test_fraction,
        cfg.train.seed,
        d.limit if spec == d.spec else None,
        d.numeric,
    )
