"""The user's in-memory items as a plain numpy array, or one line on what cannot become one: tensors numpy cannot
hold (sparse, on the meta device, quantized; float8 and bfloat16 are widened to float32), masked arrays with
masked cells (gaps), lists of items of different shapes, an (x, y) pair where only items are taken. A list of
tensors or arrays of one shape is items (N, *shape), as ``torch.stack`` makes them (``stacked``). A data
frame's column names (all text, each once) are its items' columns, recorded as a table's (``TableSchema``)
and held to where a run takes frames later, as scikit-learn holds ``feature_names_in_``; with each column's
range, whole numbers and decimals, read as a CSV's are, so samples keep them. A frame given to a run whose items
only its table's schema encodes (categories, dates, gaps, modes) is encoded by it, as its file was."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from ..core.levels import levels_within
from ..errors import VaekitError
from .containers import frame_array, is_frame
from .images import note_once
from .item_arrays import empty_column
from .photos import note
from .table_cells import _same_columns, by_name  # a CSV run's check of the columns of other data, and its order
from .table_schema import Column, TableSchema
from .table_values import decimals_of

SOURCES = (
    "a numpy array, a torch tensor, a list of tensors or arrays of one shape, a numeric data frame, an (x, y) pair, "
    "a torch Dataset or a DataLoader"
)
RUN_ITEMS = "a numpy array, a torch tensor, a numeric data frame or a list of items of one shape"  # run methods'
NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def plain_array(x: object, where: str, takes: str = SOURCES) -> np.ndarray:
    """``x`` (a tensor, a frame, a numpy array) as a numpy array; anything else one line naming what ``takes``, a
    frame's column with no value (every cell NaN) by its index and name, as a CSV's is (``empty_column``)."""
    if isinstance(x, Tensor):
        x = tensor_array(x, where)
    elif is_frame(x):
        names = frame_names(x)
        _dated(x, where)
        x = frame_array(x, where)
        empty_column(x, where, names)
        _gapped(x, where, names)
    if isinstance(x, (str, Path)):  # a data spec: read by load_dataset
        raise VaekitError(f"{where}: {str(x)!r} is a data spec: pass vaekit.load_dataset({str(x)!r}) to read it")
    if not isinstance(x, np.ndarray):
        raise VaekitError(f"{where}: expected {takes}, got {type(x).__name__}")
    if isinstance(x, np.ma.MaskedArray):
        masked = np.ma.getmaskarray(x)
        if masked.any():
            n, first = int(masked.sum()), int(np.argmax(masked.reshape(len(x), -1).any(1)))
            raise VaekitError(
                f"{where}: {n} masked value{'s' * (n != 1)} (gaps), the first in item {first}: fill them "
                "(x.filled(value)) or leave those items out"
            )
    return np.asarray(x)  # a masked array's data, a matrix's values: a plain array


def _dated(frame: Any, where: str) -> None:
    """Refuse, in one line, a frame with datetime columns (numpy's or pandas', with a zone or not): they are dates,
    which a frame's numbers do not hold, and a CSV of it has them read as dates."""
    dated = [str(c) for c, dtype in frame.dtypes.items() if getattr(dtype, "kind", "O") == "M"]
    if dated:
        them = f"column {dated[0]!r} holds" if len(dated) == 1 else f"columns {', '.join(map(repr, dated[:5]))} hold"
        raise VaekitError(
            f"{where}: the frame's {them} dates (datetime64), and a frame is read as numbers: write it as CSV "
            "(df.to_csv(path, index=False), ISO dates) and train on that file, which reads them as dates and gives "
            "them back as dates, or pass them as numbers (days since a date of yours: (df[c] - day).dt.days)"
        )


def _gapped(x: np.ndarray, where: str, names: list[str] | None) -> None:
    """Refuse, in one line naming its column and counting them, the gaps (NaN, pandas' NA) of a frame whose columns
    are named (``names``; an unnamed one's are counted by item, as an array's): a frame is read as numbers; a CSV of
    it has its gaps read as a table's (``data.missing``)."""
    if names is None or x.dtype.kind != "f" or not (gaps := np.isnan(x)).any():
        return
    i, j = np.argwhere(gaps)[0]
    raise VaekitError(
        f"{where}: the frame holds {int(gaps.sum())} gap(s) (NaN or NA), the first in row {i}, column {names[j]!r}: a "
        "frame is read as numbers, without gaps; fill them (df.fillna) or leave those rows out (df.dropna()), or write "
        "it as CSV (df.to_csv(path, index=False)) and train on that file, whose reader takes gaps (data.missing=drop "
        "or mean)"
    )


def tensor_array(t: Tensor, where: str, notes: bool = True) -> np.ndarray:
    """A tensor's values as a CPU numpy array (float8 and bfloat16 as float32); a tensor that holds no plain
    values (sparse, meta, quantized) is one line saying what to pass instead. ``notes``: whether bfloat16 values
    that look like 8-bit images are said (once per data set: a Dataset's first item, not each item)."""
    if t.is_meta:
        raise VaekitError(f"{where}: a tensor on the meta device holds no data (only its shape {tuple(t.shape)})")
    if t.layout != torch.strided:
        raise VaekitError(f"{where}: a sparse tensor ({str(t.layout).removeprefix('torch.')}): pass x.to_dense()")
    if t.is_quantized:
        raise VaekitError(f"{where}: a quantized tensor ({str(t.dtype).removeprefix('torch.')}): pass x.dequantize()")
    t = t.detach().cpu()
    if t.is_floating_point() and t.dtype not in NUMPY_FLOATS:  # numpy has no bfloat16 nor float8
        narrow, t = t.dtype, t.float()
        if notes and narrow == torch.bfloat16:
            _note_bfloat16(t, where)
    return t.numpy()


def _note_bfloat16(x: Tensor, where: str) -> None:
    """One line where bfloat16 values (as float32) look like 8-bit images: bfloat16 cannot hold their levels."""
    binary = bool(((x == 0) | (x == 1)).all())
    if x.numel() and not binary and bool(((x >= 0) & (x <= 1)).all()) and bool(levels_within(x, torch.bfloat16).all()):
        note(
            f"{where}: bfloat16 holds 8 significant bits, too few for the 256 levels k / 255 of 8-bit images (near 1 "
            "its values lie 1/256 apart): read as values in [0, 1], not as 8-bit images; pass uint8 or float32 for that"
        )


def stacked(data: object) -> bool:
    """Whether ``data`` is a list (or tuple) of items to stack (N, *shape), as ``torch.stack`` would: tensors or
    arrays, not an (x, y) pair. Two of one shape are items, unless that shape is (n, 1), which labels may have (the
    pair of a one-column table and its labels); other pairs differ in shape (labels (N,) beside items (N, *shape))."""
    if not isinstance(data, (list, tuple)) or not data or not all(isinstance(v, (Tensor, np.ndarray)) for v in data):
        return False
    if len(data) != 2:
        return True
    shape = tuple(data[0].shape)
    return tuple(data[1].shape) == shape and not (len(shape) == 2 and shape[1] == 1)  # (n, 1): labels' too


def is_pair(data: object) -> bool:
    """Whether ``data`` is an (x, y) pair: a list or tuple of two entries, not two items of one shape (``stacked``)."""
    return isinstance(data, (list, tuple)) and len(data) == 2 and not stacked(data)


def items_of(data: object) -> object:
    """The items of ``data``, which may be an (x, y) pair (``is_pair``)."""
    return cast(tuple, data)[0] if is_pair(data) else data


def refuse_series(x: object, where: str) -> None:
    """A one-dimensional object with ``to_numpy`` (a pandas or polars Series) is one column, not N items: refused
    in one line rather than read item by item as a torch Dataset."""
    one_dim = len(getattr(x, "shape", ())) == 1 and callable(getattr(x, "to_numpy", None))
    if one_dim and not isinstance(x, (np.ndarray, Tensor)) and not is_frame(x):
        raise VaekitError(f"{where}: a Series is one column; pass series.to_frame() or series.to_numpy()[:, None]")


def pair_of(data: object, where: str) -> tuple[object, object]:
    """(items, labels) of ``data``: an (x, y) pair's, else (``data``, None); items listed as tensors or arrays of
    one shape stacked (N, *shape) (``stacked``, ``listed_items``), an (x, y) pair's x too."""
    x, y = cast(tuple, data) if is_pair(data) else (data, None)
    return listed_items(x, where) if stacked(x) else x, y


def listed_items(x: list | tuple, where: str) -> np.ndarray:
    """A list of items (each (*shape): arrays, tensors of any float width, with grad or not, or nested lists) as
    one array (B, *shape); an (x, y) pair, a None, or items of different shapes, is one line."""
    none = next((i for i, v in enumerate(x) if v is None), None)
    if none is not None:
        raise VaekitError(f"{where}: item {none} is None")
    x = type(x)(
        tensor_array(v, f"{where}, item {i}", notes=False) if isinstance(v, Tensor) else v for i, v in enumerate(x)
    )
    try:
        return np.asarray(x)
    except ValueError:  # items of different shapes (numpy: "inhomogeneous shape")
        pass
    shapes = [tuple(np.shape(v)) if not isinstance(v, (list, tuple)) else None for v in x]
    if isinstance(x, tuple) and len(x) == 2 and None not in shapes and len(shapes[0] or ()) > len(shapes[1] or ()):
        raise VaekitError(f"{where}: an (x, y) pair is not taken here: pass the items x, and their labels as y=")
    i = next((i for i, s in enumerate(shapes) if s != shapes[0]), 1)
    raise VaekitError(f"{where}: the items have different shapes: item {i} {shapes[i] or 'nested'}, item 0 {shapes[0]}")


def frame_names(x: Any) -> list[str] | None:
    """A data frame's column names when each is text and none repeats (as scikit-learn records them), else None."""
    names = list(x.columns) if is_frame(x) else []
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return names


def frame_schema(x: Any) -> TableSchema | None:
    """A frame's columns as a table of numeric columns (its run's table.json), or None (see ``frame_names``)."""
    names = frame_names(x)
    return None if names is None else TableSchema([Column(n, "numeric") for n in names])


def frame_ranges(table: TableSchema | None, x: Any, rows: np.ndarray | None) -> TableSchema | None:
    """``table`` (the frame ``x``'s, ``frame_schema``) with what a CSV's training split records of each column
    (``tables._ranges``) over the training rows ``rows`` (None: all), read by the frame's dtypes: its range, and
    whole numbers for int and bool columns (bool ones marked ``boolean``), else the fewest decimals writing every
    value (float32 ones as they print). Samples are clipped and rounded to them (``TableSchema.bounded``)."""
    if table is None or not is_frame(x):
        return table
    values = frame_array(x, "data")  # (N, D), numeric: read so before
    values = values if rows is None else values[rows]
    dtypes = {str(c): dtype for c, dtype in x.dtypes.items()}
    for j, c in enumerate(table.columns):
        kind, size = getattr(dtypes[c.name], "kind", "f"), getattr(dtypes[c.name], "itemsize", 8)
        v = values[:, j].astype(np.float64)
        if kind == "f" and size < 8:  # float32 0.1 is 0.10000000149 as float64: its shortest text, as CSV writes it
            v = values[:, j].astype(f"f{size}").astype(str).astype(np.float64)
        c.integer, c.boolean, c.min, c.max = kind in "biu", kind == "b" or None, float(v.min()), float(v.max())
        c.decimals = 0 if c.integer else decimals_of(v)
    return table


def same_columns(x: Any, table: TableSchema | None, where: str) -> None:
    """Refuse, in one line, a frame ``x`` whose columns are not ``table``'s (a run's, or the training frame's), in
    its order: those missing, those extra, or the same in another order. Plain arrays, frames whose columns are
    not named by text (as scikit-learn checks only frames that carry names), or no table: no check."""
    if table is None or not is_frame(x) or not all(isinstance(c, str) for c in x.columns):
        return  # a frame without names (pd.DataFrame(values): columns 0, 1, 2) is read as its array is
    _same_columns([str(c) for c in x.columns], [c.name for c in table.columns], where)


def run_columns(x: Any, table: TableSchema | None, where: str) -> Any:
    """A frame ``x`` held to a run's columns as the anomaly detector holds it (by name) and a CSV's reading holds
    a file (its label column apart): the run's label column left out (the labels are no feature: a conditional
    run takes them as y), the run's columns given in another order taken by name, in its order, each said in one
    note (once); other columns refused in one line (``same_columns``'s). Plain arrays, and frames whose columns
    are not named by text, as they are."""
    if table is None or not is_frame(x) or not all(isinstance(c, str) for c in x.columns):
        return x
    names, run = [str(c) for c in x.columns], [c.name for c in table.columns]
    label = table.label if table.label in names and table.label not in run else None
    if label is not None:
        note_once(
            f"{where}: column {label!r} is the run's label column, not a feature: left out of the items (pass the "
            "labels as y where the run is conditional)"
        )
        x, names = x.drop(columns=label), [n for n in names if n != label]
    return x.iloc[:, by_name(names, run, where)]


def needs_schema(table: TableSchema | None) -> bool:
    """Whether a table run's items are no plain row of numbers: categorical columns, gap indicators, TVAE's
    modes or dates, which only its schema encodes (from a DataFrame)."""
    return table is not None and bool(table.categories or any(c.time for c in table.numeric))


def run_frame(x: Any, table: TableSchema | None, where: str) -> Any:
    """``x`` held to a run's columns (``run_columns``: its label column left out, its columns taken by name); a
    frame (named as ``table``) given to a run whose items no plain row of numbers makes (categories, gap
    indicators, modes, dates, filled gaps), or that holds columns of text, as its items (N, D) float32, encoded by
    ``table`` as training read its file's cells; else ``x`` (so held)."""
    x = run_columns(x, table, where)
    if table is None or frame_names(x) is None:
        return x
    plain = all(getattr(dtype, "kind", "O") in "biuf" for dtype in x.dtypes)
    gapped = table.missing != "refuse" and bool(x.isna().to_numpy().any())  # filled, or rows left out
    if plain and not (needs_schema(table) or gapped):
        return x  # read as its array
    if not len(x):
        raise VaekitError(f"{where}: the frame holds no rows")
    return encoded_frame(x, table, where, "its methods take")


def encoded_frame(frame: Any, table: TableSchema, where: str, takes: str) -> np.ndarray:
    """A frame's rows as ``table`` encodes its file's cells (gaps as empty cells): items (N, D) float32, or one line
    naming the row of a cell it cannot read, or of a gap in a row the run leaves out (``takes`` every row: who).
    Cells are stripped of leading and trailing spaces, as a file's are (" Gov", as pandas reads adult.data)."""
    cells = np.char.strip(frame.astype(object).where(frame.notna(), "").to_numpy().astype(str))  # (N, C)
    try:
        items, keep = table.encode(cells, list(range(len(cells))), where)
    except VaekitError as e:  # a frame's rows, not a file's lines; its gaps NaN (None, NA), not empty cells
        said = str(e).replace("missing value '' on line ", "missing value (NaN) on line ")
        said = said.replace("marks a gap, write an empty cell", "marks a gap, make it NaN")
        raise VaekitError(said.replace(" on line ", " in row ")) from None
    if not keep.all():
        raise VaekitError(
            f"{where}: row {int(np.argmin(keep))} has a missing value, which this run leaves out (data.missing="
            f"{table.missing}); {takes} every row: fill it or leave the row out"
        )
    return items
