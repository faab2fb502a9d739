"""Tables as they come: numeric and categorical columns, with gaps.

Cells become items by a ``TableSchema`` (``data.table_schema``: the item layout, the saved schema, decoding
items back to columns): one fitted here on the table's own cells, or a run's saved one for other data.

Missing cells (empty, ``?``, ``NA``, ``N/A``, ``NaN``, ``null``, in any case) are refused by default, in one line
naming the row and column; ``missing="drop"`` drops their rows, ``missing="mean"`` fills a numeric gap with the
column's mean and a categorical one with its most frequent category, both from the training split, and models
where the gaps are (a gap indicator per column with gaps), so synthetic rows have gaps as often.

Columns are read as what they hold, each change said in one note: ISO dates and times, and months (2021-06), are
numbers (days since the first date) given back as dates (YYYYMMDD numbers stay numbers, said to look like dates);
``$1,200``, ``12%`` and ``1,200`` are numbers; digit strings with leading zeros (zip codes) are categories;
true/false in any case is one boolean category each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import files
from ..errors import VaekitError
from .core import RawData, _split_indices
from .csv_text import is_number, is_table_file
from .float32 import below_float32 as _below_float32  # shared with arrays, frames and .npy tables
from .modes import fitted_codes
from .photos import note
from .table_cells import MISSING as MISSING  # re-exported: imported from here
from .table_cells import _gaps, by_name, gap_hint, numbers, unit_of
from .table_schema import Column, TableSchema  # imported from here too
from .table_times import TIME_CELLS as TIME_CELLS  # imported from here (evaluation)
from .table_times import compact_note, looks_timed, time_format, timed_refusal
from .table_values import decimals_of, step_of
from .table_values import write_csv as write_csv  # imported from here too

MISSING_MODES = ("refuse", "drop", "mean")


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
    label_note: bool = True  # say which column was taken as the labels (at training, not at each later read)
    conditional: bool | None = None  # the run's model conditions on the labels (None: no run, not known)
    verb: bool = False  # other data than a trained run's own, for its verbs (read so where it has no table.json)


IDENTIFIER_ROWS = 50  # a text column with more rows than this, each value distinct, names its rows
LEVELS = 0.5  # ... or more different values than this share of its rows (each seen < 2 times): no categories
LEADING_ZERO = re.compile(r"[+-]?0\d+")  # 02139: a code (zip, ID), not the number 2139


def _is_number(cells: np.ndarray) -> np.ndarray:
    """(N,) bool: the cells that are numbers as written (``csv_text.is_number``: 10_1 is a code)."""
    return np.array([is_number(str(v)) for v in cells], bool)


def read_table(
    cells: np.ndarray, names: list[str], lines: list[int], options: TableOptions, where: str, index: list[int]
) -> tuple[np.ndarray, np.ndarray, TableSchema]:
    """Feature cells (N, C) -> (items (N', D) float32, kept rows (N,), schema): the run's schema if given,
    else one fitted here (kinds, categories, and the training split's fills). ``index``: each column's index in
    the file (for messages), ``lines`` each row's line."""
    schema = options.schema
    if schema is not None:  # the run's columns, by name: a file's as a frame's (``user_arrays.run_columns``)
        order = by_name(names, [c.name for c in schema.columns], where)
        cells, index = cells[:, order], [index[j] for j in order]
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
    schema.trained = options.verb  # a verb takes no settings: its refusals advise what it can take
    if options.missing == "mean":
        _fill(schema, cells, gaps, options, where)
    x, keep = schema.encode(cells, lines, where, index)
    _ranges(schema, cells[keep], _train(len(x), options, where))
    if options.numeric != "standard":  # TVAE's modes, fitted on the training split's numbers, not their fills
        numeric = [j for j, c in enumerate(schema.columns) if c.kind == "numeric"]
        filled = gaps[keep][:, numeric]  # (N', n)
        x = fitted_codes(options.numeric, schema.numeric, x, _train(len(x), options, where), options.seed, filled)
        schema.coding = options.numeric
    return x, keep, schema


def _identifier(values: np.ndarray, rows: int, name: str, where: str) -> None:
    """One line when a numeric column's values (sorted, distinct) are whole numbers, a different one in each of
    more than IDENTIFIER_ROWS rows, in a run (spanning under 10 per row: 100001..103000): an identifier, which
    as a number is learned as a spread of values and comes back repeated (a text one is refused: ``_categorical``)."""
    run = len(values) == rows > IDENTIFIER_ROWS and values[-1] - values[0] < 10 * rows
    if run and np.all(values == np.round(values)):
        note(
            f"{where}column {name!r} holds a different whole number in each of its {rows} rows "
            f"({values[0]:.0f}..{values[-1]:.0f}): an identifier, modelled as a number, comes back repeated in "
            "synthetic rows; leave it out of the file"
        )


def _column(col: np.ndarray, gap: np.ndarray, name: str, listed: bool, lines: list[int], where: str, j: int) -> Column:
    """A column's kind (listed, or text in every filled cell: categorical) and its sorted categories; numbers
    with a unit and ISO dates are numeric, codes with leading zeros and true/false categorical (said in a note)."""
    filled = col[~gap]
    if not len(filled):
        raise VaekitError(
            f"{where}column index {j} ({name!r}) has no values, every cell a gap: nothing to model; leave it out"
        )
    if listed:
        return Column(name, "categorical", sorted(set(filled.tolist())))
    number = _is_number(filled)
    if number.all() and not any(LEADING_ZERO.fullmatch(v) for v in filled):
        values = np.unique(filled.astype(np.float64))
        _below_float32(values, name, where)
        _identifier(values, len(filled), name, where)
        compact_note(values, name, where)  # 20210315: said to look like dates, modelled as numbers
        return Column(name, "numeric", constant=float(values[0]) if len(values) == 1 else None)
    read = _read_as(filled, name, where)
    if read is not None:
        return read
    if not number.any() or number.all():  # text, or codes with leading zeros
        if number.all():
            code = next(v for v in filled if LEADING_ZERO.fullmatch(v))
            note(f"{where}column {name!r} holds codes with leading zeros ({code}): read as categories, not numbers")
        return _categorical(filled, name, where)
    i = int(np.flatnonzero(~gap)[np.argmin(number)])
    one = len(set(filled[~number].tolist())) == 1  # one text among numbers: None, -, n.a. may mark gaps
    gap_advice = gap_hint(col[i]) if one else ""
    raise VaekitError(
        f"{where}non-numeric value {str(col[i])!r} on line {lines[i]}, column index {j} ({name!r}), "
        f"among numbers; list the column in data.categorical if it holds categories{gap_advice}",
        key="data.categorical",
    )


def _read_as(filled: np.ndarray, name: str, where: str) -> Column | None:
    """A column of true/false (booleans), ISO dates or times (``table_times``), or numbers with a unit ($, %,
    thousands commas), as such, said in a note; else None."""
    values = sorted(set(filled.tolist()))
    if {v.lower() for v in values} <= {"true", "false"}:
        note(f"{where}column {name!r} holds true/false ({', '.join(values)}): read as booleans, given back as bools")
        return Column(name, "categorical", sorted({v.capitalize() for v in values}), boolean=True)
    time = time_format(values)
    unit = None if time else unit_of(values)
    if time is None and unit is None:
        return None
    c = Column(name, "numeric", time=time, unit=unit)
    try:
        days = numbers(np.asarray(values), c)
    except ValueError:  # 2023-02-30
        return None
    if time:  # counted from the first date's midnight: float32 items keep their seconds
        c.origin = float(np.floor(days.min()))
        days -= c.origin
    _below_float32(np.unique(days), name, where)
    c.constant = float(days[0]) if len(values) == 1 else None
    since = np.datetime64(int(c.origin or 0), "D")  # the first date's midnight on the format's clock (UTC: mixed)
    how = f"dates ({time}): modelled as days since {since}, given back as dates" if time else ""
    shown = next((v for v in reversed(values) if "," in v), values[-1])  # a cell with its comma: 1,234.50
    how = how or f"numbers with {unit or 'thousands commas'} ({shown}): read as numbers, given back without it"
    note(f"{where}column {name!r} holds {how}")
    return c


def _categorical(filled: np.ndarray, name: str, where: str) -> Column:
    """A column of text or codes as categories; one of a different text in each of many rows is refused, as is one
    of more texts than LEVELS of its rows (most seen once: a one-hot code as wide as half the table is long learns
    little of them), as dates or times in a format not read as times where they look like them."""
    categories = sorted(set(filled.tolist()))
    rows, k = len(filled), len(categories)
    if rows > IDENTIFIER_ROWS and k > LEVELS * rows and looks_timed(categories):
        raise timed_refusal(name, filled[0], f"{k:,} different texts in its {rows:,} rows", where)
    if k == rows > IDENTIFIER_ROWS:
        raise VaekitError(
            f"{where}column {name!r} holds a different text in each of its {rows} rows: an identifier, "
            "not a category (one-hot, it would be as wide as the table is long); leave it out of the file, or "
            "list it in data.categorical to model it all the same",
            key="data.categorical",
        )
    if rows > IDENTIFIER_ROWS and k > LEVELS * rows:  # the label column's rule too: classes at most half the rows
        raise VaekitError(
            f"{where}column {name!r} holds {k:,} different texts in its {rows:,} rows (over half as many): one-hot, "
            f"it would add {k:,} slots to each row ({4 * k * rows / 1e9:,.2f} GB of float32 items), most categories "
            "seen once; leave it out of the file, or list it in data.categorical to model it all the same",
            key="data.categorical",
        )
    return Column(name, "categorical", categories)


def _fill(schema: TableSchema, cells: np.ndarray, gaps: np.ndarray, options: TableOptions, where: str) -> None:
    """Each column's fill from the training split's rows: the mean of a numeric one, the mode of a categorical;
    and a gap indicator for each column with gaps there (where they are is modelled too)."""
    train = _train(len(cells), options, where)
    for j, c in enumerate(schema.columns):
        values, c.gaps = cells[train, j][~gaps[train, j]], bool(gaps[train, j].any()) or None
        if not len(values):
            raise VaekitError(f"{where}: column {c.name!r} has no value in the training split to fill its gaps")
        if c.kind == "numeric":
            c.fill = float(numbers(values, c).mean())
        else:
            values = np.char.capitalize(np.char.lower(values)) if c.boolean else values
            names, counts = np.unique(values, return_counts=True)
            c.fill = str(names[counts.argmax()])


def _ranges(schema: TableSchema, cells: np.ndarray, train: np.ndarray) -> None:
    """Each numeric column's range over the training rows ``train`` of the kept cells (N, C), and whether its
    values there are all whole numbers, their decimals (dates and times: their step): synthetic rows are clipped
    and rounded to them (``TableSchema.bounded``)."""
    at = {c.name: j for j, c in enumerate(schema.columns)}
    for c in schema.numeric:
        col = cells[train, at[c.name]]
        v = numbers(col[~_gaps(col)], c)
        if len(v):
            c.integer, c.min, c.max = bool(np.all(v == np.round(v))), float(v.min()), float(v.max())
            c.step, c.decimals = (step_of(v), None) if c.time else (None, decimals_of(v))


def _train(n: int, options: TableOptions, where: str) -> np.ndarray:
    """The rows of the training split among n items, as ``data.core`` splits them; every row where a trained run's
    verb reads the file (``verb``): it is scored, not trained on, and need not split (under split 'all')."""
    if options.verb:
        return np.arange(n)
    raw = RawData(np.empty((n, 0)), None, where)
    return _split_indices(raw, n, n, options.val_fraction, options.test_fraction, options.seed, options.limit)["train"]


def table_options(cfg, spec: str) -> TableOptions:
    """The TableOptions of a run's config (``cfg``: a RunConfig) for ``spec``: other data than the run's own, and
    its own once its model is built (a resumed run, evaluation), is encoded with the run's saved schema
    (``files.TABLE`` in ``cfg.out``), so its codes mean what they meant (and a run's table.json keeps it readable
    as it was read, whatever later versions would infer)."""
    from ..models import family_needs_labels  # the family's class says whether it conditions on labels
    from .prepare import same_spec  # prepare reads tables: imported here, not at the top

    d = cfg.data
    own = same_spec(spec, d.spec)  # the run's own data, however the path is written
    if own and not is_table_file(Path(spec)):
        for key, default in (("missing", "refuse"), ("categorical", []), ("numeric", "standard")):
            if getattr(d, key) != default:
                raise VaekitError(f"data.{key} applies to .csv/.tsv tables, and {spec} is not one", key=f"data.{key}")
    saved = Path(cfg.out) / files.TABLE if cfg.out else None
    built = bool(cfg.model.input_shape)  # else the run is being trained: its schema is fitted
    schema = TableSchema.load(saved) if (not own or built) and saved is not None and saved.is_file() else None
    conditional = family_needs_labels(cfg.model)
    schema = schema.knowing(Path(cfg.out) / files.CLASSES) if schema is not None and conditional else schema
    return TableOptions(
        d.missing,
        list(d.categorical),
        schema,
        d.val_fraction,
        d.test_fraction,
        cfg.train.seed,
        d.limit if own else None,
        d.numeric,
        label_note=not built,
        conditional=conditional,
        verb=built and not own,
    )
