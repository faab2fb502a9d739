"""What vaekit would read of a user's file or folder (``vaekit data PATH``), without training: its items, an item's
shape, the dtype and the scaling applied, classes with their counts, a table's columns and their kinds, the files
a folder's scan leaves out and why, and the likelihood data.likelihood=auto would choose.

Everything is found by what training uses: its data settings' defaults (``RunConfig``), its load
(``prepare.load_spec``) and its choice (``prepare.auto_settings``). A .npy file is memory-mapped (its header, and
the items auto's choice reads); a photo folder is scanned and, where it fits in memory, decoded as training decodes
it; other files are read whole. Where training would refuse the data for a setting (unreadable photos, gaps in a
table, photos of several sizes), the description says so and goes on as far as it can. The readers' notes are said
as in training (on stderr), once each (a table refused for its gaps is read twice), less those a line shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..config.keys import full_keys
from ..config.parse import set_value
from ..errors import VaekitError
from .builtin import _standard_files, builtin_name
from .catalog import ENTRIES, BuiltinSet
from .core import Dataset, Split
from .csv_text import is_table_file
from .images import held_notes
from .lazy import LazyArray, NpySource
from .npz import _headers
from .photos import FolderSource, ImageOptions
from .pixels import flat_images
from .prepare import auto_settings, load_spec
from .table_schema import Column, TableSchema
from .table_times import as_times, time_text

Line = tuple[str, str]  # (what, what vaekit finds): one line of the description
CHOICE_ITEMS = 10_000  # the training items ``auto_settings`` reads
SHOWN = 20  # a wide table's columns, a folder's skipped files: the first SHOWN listed, the rest counted


def describe(spec: str, settings: Iterable[tuple[str, object]] = ()) -> list[Line]:
    """The description of ``spec`` (a file, a folder, or a built-in set: read as these where it loads offline, else
    its ``catalog`` row; never downloaded), line by line, read with the data ``settings`` given ((key, value) pairs:
    data.image_size, data.limit, ...) and training's defaults for the others; what cannot be read at all is one
    VaekitError line, as training says it."""
    with held_notes() as shown:  # a .npy's rows of pixels: a line, not a note besides
        lines = _description(spec, settings)
        shown.update(found.split(": ", 1)[-1] for _, found in lines)
    return lines


def _description(spec: str, settings: Iterable[tuple[str, object]]) -> list[Line]:
    """``describe``'s lines (the readers' notes held by ``describe``, said once each as it ends)."""
    key = builtin_name(spec)
    entry = ENTRIES[key.split(":")[0]]() if key is not None else None
    cfg, path = _config(spec, settings), Path(spec).expanduser()
    if key is not None and entry is not None and not _offline(entry, cfg):  # read only what is here: no download
        return _catalog_row(key, entry)
    said, data = _loaded(cfg, spec, path)
    if data is None:  # photos of several sizes, or too few to split: what the scan found
        return [*_read_as(path, None), *said, *_scanned(path, cfg, sized=said[0][0] != "item shape")]
    likelihood, standardized, halted = _likelihood(data)
    read_as = [("read as", f"the built-in set {key}, {entry.source}")] if entry else _read_as(path, data)
    lines = [*read_as, *said, *_items(data), *_values(data, path, standardized)]
    lines += _classes(data) + _columns(data.table) + _skipped(data.skipped, _skips(cfg)) + _halted(halted)
    return lines + [("likelihood (auto)", likelihood)]


def _offline(entry: BuiltinSet, cfg: RunConfig) -> bool:
    """Whether the built-in set loads here without a download: ready offline, or its IDX files in data.data_dir."""
    folder = Path(cfg.data.data_dir).expanduser() if cfg.data.data_dir else None
    return entry.ready.startswith("yes") or (folder is not None and _standard_files(folder) is not None)


def _catalog_row(key: str, entry: BuiltinSet) -> list[Line]:
    """A built-in set not here to read: its ``catalog`` row, saying so (nothing is downloaded to describe it)."""
    return [
        ("built-in set", entry.spec),
        ("not read", f"{key} is not in the offline cache here, and describing it downloads nothing"),
        ("item shape", entry.shape),
        ("items", entry.items),
        ("classes", entry.classes),
        ("source", entry.source),
        ("ready offline here", entry.ready),
    ]


def _config(spec: str, settings: Iterable[tuple[str, object]]) -> RunConfig:
    """Training's data settings for ``spec`` with ``settings`` (data ones only); unless given, unreadable photos are
    listed, not refused, and a .npy file is memory-mapped (its header, and the items auto's choice reads)."""
    cfg = RunConfig(out="")  # no run folder: no saved table schema
    cfg.data.spec = spec
    for key, value in full_keys(settings).items():
        if not key.startswith("data.") or key == "data.spec":
            raise VaekitError(f"{key}: only data settings (data.image_size, data.missing, ...) say how data is read")
        set_value(cfg, key, value, given=True)
    cfg.model.family = "cvae"  # no model here: a table's labels are not said unseen by one (``table_options``)
    if "data.skip_unreadable" not in cfg.given:
        cfg.data.skip_unreadable = True
    if "data.in_memory" not in cfg.given and (p := Path(spec).expanduser()).is_file() and p.suffix.lower() == ".npy":
        cfg.data.in_memory = "false"
    return cfg


def _loaded(cfg: RunConfig, spec: str, path: Path) -> tuple[list[Line], Dataset | None]:
    """(lines on what training would refuse, the data as training loads it, as far as it can be read): a table's
    gaps described as read with data.missing=mean; photos of several sizes not loaded (None)."""
    try:
        return [], load_spec(cfg, spec, stream=True)
    except VaekitError as e:
        if e.key == "data.missing" and cfg.data.missing == "refuse":
            cfg.data.missing = "mean"
            said = f"training refuses them as data.missing=refuse: {e}; described as read with data.missing=mean"
            return [("gaps", said)], load_spec(cfg, spec, stream=True)
        if path.is_dir() and not cfg.data.image_size and "data.image_size" in str(e):
            return [("item shape", f"none yet: {e}")], None
        if path.is_dir() and "need at least 3 to split" in str(e):  # 1 or 2 photos: described, not trained on
            return [("training", f"refused: {e}")], None
        raise


def _read_as(path: Path, data: Dataset | None) -> list[Line]:
    """How the file or folder is read: its kind, and what of it."""
    if path.is_dir() and (data is None or data.image_mode):
        x = None if data is None else data.train.x
        how = "headers scanned, pixels decoded as training decodes them whole"
        how = "headers scanned, nothing decoded" if data is None else how
        streamed = "streamed: headers scanned, the items the likelihood's choice reads decoded"
        how = streamed if isinstance(x, LazyArray) else how
        return [("read as", f"a folder of images ({how})")]
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return [("read as", "a NumPy array, memory-mapped: its header, and the items the likelihood's choice reads")]
    if suffix == ".npz":
        headers = [(name, shape, dtype) for name, shape, dtype, _ in _headers(path)]
        arrays = "; ".join(f"{name} {dtype} {shape}" for name, shape, dtype in headers)
        flat = [flat_images(shape, dtype, f"{path} ({name})") for name, shape, dtype in headers if shape is not None]
        return [("read as", "a NumPy archive, read whole"), ("arrays", arrays), *[("note", f) for f in flat if f]]
    return [("read as", "a table, read whole" if is_table_file(path) else "IDX files, read whole")]


def _items(data: Dataset) -> list[Line]:
    """The items by split (seeded as training splits them, an official test split kept) and one item's shape."""
    n = {k: len(getattr(data, k)) for k in ("train", "val", "test")}
    split = f"{n['train']:,} train, {n['val']:,} val, {n['test']:,} test"
    kind = "an image: channels x height x width" if data.kind == "image" else "a row of numbers"
    return [("items", f"{sum(n.values()):,} ({split})"), ("item shape", f"{'x'.join(map(str, data.shape))} ({kind})")]


def _values(data: Dataset, path: Path, standardized: bool) -> list[Line]:
    """The dtype read and the scaling applied; for a .npy file, the note on rows of pixels read as a table."""
    source = data.train.x.source if isinstance(data.train.x, LazyArray) else None
    if isinstance(source, NpySource):
        dtype, scale = str(source.raw.dtype), source.scale
    elif isinstance(source, FolderSource):
        dtype, scale = ("uint16", 65535.0) if source.deep else ("uint8", 255.0)  # its ``read``'s divisor
    else:
        dtype, scale = {255.0: "uint8", 65535.0: "uint16"}.get(data.scale, ""), data.scale
    if is_table_file(path):
        dtype = "text cells, read as numbers (one-hot codes for categories)"
    scaled = f"divided by {scale:,.0f}, to [0, 1]" if scale != 1.0 else "none: values as they are"
    if standardized:  # only tables (``auto_settings``), read as they are
        scaled = "numeric columns standardised by the training split's mean and sd (data.standardize=auto)"
    lines = [("dtype", dtype)] * bool(dtype) + [("scaling", scaled)]
    if data.image_mode:
        lines.append(("mode", f"{data.image_mode} ({'one channel, grey' if data.image_mode == 'L' else 'colour'})"))
    flat = flat_images(source.raw.shape, source.raw.dtype, str(path)) if isinstance(source, NpySource) else ""
    return lines + [("note", flat)] * bool(flat)


def _classes(data: Dataset) -> list[Line]:
    """Each class with its items, in every split (the labels a conditional model takes); or none."""
    ys = [s.y for s in (data.train, data.val, data.test) if s.y is not None]
    if not ys:
        return [("classes", "none (no labels)")]
    counts = torch.bincount(torch.cat(ys).long(), minlength=data.num_classes or 0).tolist()
    names = data.classes or [str(i) for i in range(len(counts))]
    label = f"labels in column {data.table.label!r}; " if data.table is not None and data.table.label else ""
    return [("classes", f"{label}{len(counts)}: " + ", ".join(f"{c} {k:,}" for c, k in zip(names, counts)))]


def _columns(table: TableSchema | None) -> list[Line]:
    """A table's feature columns, each with its kind, in file order."""
    if table is None:
        return []
    lines = [(f"column {c.name!r}", _kind(c)) for c in table.columns[:SHOWN]]
    more = len(table.columns) - SHOWN
    return [("columns", table.summary()), *lines] + [("columns", f"... and {more:,} more")] * (more > 0)


def _kind(c: Column) -> str:
    """A column's kind as its reading found it: numbers (whole, decimals, a unit, dates) or categories."""
    gaps, k = ", with gaps" * bool(c.gaps), len(c.categories)
    if c.kind == "categorical":
        first = ", ".join(map(repr, c.categories[:5])) + ", ..." * (k > 5)
        if c.boolean:
            return "true/false (a boolean category)" + gaps
        return f"categorical, {k:,} categor{'y' if k == 1 else 'ies'} ({first}){gaps}"
    what = f"dates or times ({c.time})" if c.time else "whole numbers" if c.integer else "numbers"
    what += {None: "", "": " written with thousands commas"}.get(c.unit, f" written with {c.unit}")
    if c.min is not None and c.max is not None:  # dates and times in their own format: a 9999-12-31 shows
        ends = time_text(as_times(np.array([c.min, c.max]), c), c.time) if c.time else [f"{c.min:g}", f"{c.max:g}"]
        what += f", {ends[0]}..{ends[1]} in the training split"
    return f"numeric: {what}" + ", constant" * (c.constant is not None) + gaps


def _skips(cfg: RunConfig) -> bool:
    """Whether data.skip_unreadable=true was given (else describing skips unreadable files, training would not)."""
    return "data.skip_unreadable" in cfg.given and cfg.data.skip_unreadable


def _skipped(skipped: list[dict] | None, given: bool = False) -> list[Line]:
    """The files left out as unreadable, each with why (training refuses them unless data.skip_unreadable=true,
    ``given``: then said left out alone)."""
    if not skipped:
        return []
    n = len(skipped)
    how = "left out with data.skip_unreadable=true" + ("" if given else ", else training refuses")
    head = f"{n:,} unreadable file{'s' * (n != 1)}: {how}"
    more = [("skipped", f"... and {n - SHOWN:,} more")] * (n > SHOWN)
    return [("skipped", head), *[("skipped", f"{s['file']}: {s['error']}") for s in skipped[:SHOWN]], *more]


def _halted(files: list[dict]) -> list[Line]:
    """The files of a streamed folder whose headers read but whose pixels do not, found among the items the
    likelihood's choice decodes: training stops at the first (streamed without a cache, it decodes none before)."""
    if not files:
        return []
    n = len(files)
    head = (
        f"{n:,} file{'s' * (n != 1)} whose header reads but whose pixels do not, among the items the likelihood's "
        "choice decodes: streamed without a cache, training stops at the first; data.cache=true (or "
        "data.in_memory=true) decodes every file before training and skips them"
    )
    return [("unreadable", head), *[("unreadable", f"{s['file']}: {s['error']}") for s in files[:SHOWN]]]


def _scanned(path: Path, cfg: RunConfig, sized: bool) -> list[Line]:
    """What the scan of a folder of photos finds (nothing decoded): of one size (``sized``: too few to split), with
    the shape of its items; else of several sizes (read at any size: none is refused)."""
    opts = ImageOptions.of(cfg.data)
    source = FolderSource(path, opts if sized else replace(opts, size=(1, 1)))
    counts = [] if source.labels is None else torch.bincount(torch.from_numpy(source.labels)).tolist()
    classes = ", ".join(f"{c} {k:,}" for c, k in zip(source.classes or [], counts)) or "none (a flat folder)"
    shape = f"{'x'.join(map(str, source.shape))} (an image: channels x height x width)"
    once = "there are 3 items or more to split" if sized else "data.image_size makes the photos one size"
    return [
        ("items", f"{len(source):,}"),
        *[("item shape", shape)] * sized,
        ("dtype", "uint16 (16-bit grey)" if source.deep else "uint8"),
        ("mode", f"{source.mode} (from the headers)"),
        ("classes", classes),
        *_skipped(source.skipped, _skips(cfg)),
        ("likelihood (auto)", f"chosen from the training split's pixels once {once}"),
    ]


def _likelihood(data: Dataset) -> tuple[str, bool, list[dict]]:
    """(what model.likelihood=auto chooses for the data (``prepare.auto_settings``, from the training split's first
    items), with the binarisation that goes with it; whether data.standardize=auto standardises the columns; the
    files of a streamed folder whose pixels cannot be read among those items, left out of the choice here)."""
    source = data.train.x.source if isinstance(data.train.x, LazyArray) else None
    scale = getattr(source, "scale", data.scale)  # a streamed .npy's own divisor: 65,535 marks 16-bit images
    try:
        settings = auto_settings(replace(data, scale=scale), "auto", "auto", "auto")
        halted: list[dict] = []
    except VaekitError as e:
        if not isinstance(source, FolderSource) or "cannot read image" not in str(e):
            raise
        train, halted = _readable(data.train, source)
        settings = auto_settings(replace(data, train=train, scale=scale), "auto", "auto", "auto")
    likelihood, binarize, standardize = settings
    if data.table is not None and data.table.categories:
        likelihood += " on the numbers, a softmax over each one-hot code (the tabular p(x|z))"
    elif binarize == "dynamic":
        likelihood += ", the items binarised afresh at each step (data.binarize=auto)"
    return likelihood, standardize == "true", halted


def _readable(s: Split, source: FolderSource) -> tuple[Split, list[dict]]:
    """The items of a streamed folder's split ``s`` that the likelihood's choice reads (``CHOICE_ITEMS``) whose
    pixels decode, one by one, and the files {file, error} of those that do not."""
    x = s.x
    assert isinstance(x, LazyArray)
    good, bad = [], []
    for i, row in enumerate(x.index[:CHOICE_ITEMS].tolist()):
        try:
            source.read_raw(np.array([row]))
        except VaekitError as e:
            if "cannot read image" not in str(e):
                raise
            bad.append({"file": str(source.files[row]), "error": str(e)[len(str(source.files[row])) + 2 :]})
        else:
            good.append(i)
    keep = np.array(good, dtype=np.int64)
    return Split(x.subset(keep), None if s.y is None else s.y[torch.from_numpy(keep)]), bad
