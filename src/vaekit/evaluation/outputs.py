"""The items the verbs answer (a split, or every item in file order) with their rows and files, and anomaly scores
written to .csv; the posterior codes are written by ``codes``."""

from __future__ import annotations

import copy
import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..data import Dataset, Split, all_labelled, load_dataset
from ..data.builtin import builtin_name
from ..data.csv_text import is_table_file
from ..data.image_cache import read_skipped, row_files
from ..data.lazy import LazyArray, binarized_once, drawn_once, every_item, head, load_streamed
from ..data.photos import ImageOptions
from ..data.prepare import binarizable, note_skipped, prepare_data, same_spec, supported
from ..data.signals import model_items, signal_scale
from ..data.table_values import csv_writer
from ..data.tables import table_options
from ..errors import VaekitError
from ..io import atomic_write_text, csv_cell
from ..runs import Run
from ..training import distributed
from ..training.state import SPLITS, digest, recorded_data
from .eval_items import file_names, named_labels
from .labels import label_map, names_of, numbered_as_run
from .metrics import note_old_draw, pick_split


def items(
    cfg: RunConfig, spec: str | None, split: str, run: Run | None = None
) -> tuple[torch.Tensor | LazyArray, np.ndarray | None, torch.Tensor | None]:
    """(items of ``spec`` (default: the run's data) scaled as in training, each item's row in its file (N,) or
    None for 'all', their labels (N,) numbered as a conditional ``run`` numbers them or None): every item in file
    order ('all'), or one split of the run's seeded split (limited by the run's data.limit on its own data; a
    note where the run's own data no longer has the item counts of its ``run``'s training, ``note_changed_data``)."""
    spec, d = spec or cfg.data.spec, cfg.data
    if not spec:
        raise VaekitError("this run was trained on data passed in memory: name the data to use", key="data.spec")
    check_kind(cfg, spec)
    if split == "all":
        every, classes = every_labelled(cfg, spec)
        return every.x, None, run_labels(run, every.y, classes, spec)
    options: dict[str, Any] = dict(
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        seed=cfg.train.seed,
        images=ImageOptions.of(d),
        limit=d.limit if same_spec(spec, d.spec) else None,  # the run's split, as anomaly and evaluate take it
    )
    data = load_streamed(spec, d.in_memory, **options) or load_dataset(
        spec, label_column=d.label_column, data_dir=d.data_dir, table=table_options(cfg, spec), **options
    )
    if run is not None and same_spec(spec, d.spec):
        note_changed_data(run, data)
    note_skipped(spec, data.skipped)
    s = getattr(data, split)
    x = model_items(s.x, tuple(cfg.model.input_shape), signal_scale(data))  # the scale its reading recorded
    return x, item_rows(s), run_labels(run, s.y, data.classes, spec)


def run_labels(run: Run | None, y: torch.Tensor | None, classes: list[str] | None, where: str) -> torch.Tensor | None:
    """Labels y (N,) of data whose labels 0..K-1 name ``classes``, numbered as the conditional ``run`` numbers its
    classes (``label_map``: a class it does not know is refused in one line); None for another run or no labels."""
    if run is None or y is None or not run.model.needs_labels:
        return None
    k = int(y.max()) + 1 if len(y) else None  # the data's labels 0..K-1, named as the run names its classes
    mapped = label_map(run, file_names(run, classes, k), where)
    return y if mapped is None else mapped[0][y]


def note_changed_data(run: Run, data: Dataset) -> None:
    """One line where the run's own ``data`` (read now) is not the data its checkpoint records (``recorded_data``):
    other item counts, or training items other than its ``sha256`` (``digest``, 16 read twice; none recorded or
    binarised once, ``fixed_draw``: counts alone): its seeded splits hold other items. The verbs only read it."""
    saved, shape = (recorded_data(run.path) or {}) if run.path else {}, tuple(run.config.model.input_shape)
    now, was = [len(s) for s in (data.train, data.val, data.test)], saved.get("items")
    said = ", ".join(f"{a} {name}" for a, name in zip(was or [], SPLITS, strict=False))  # an older record: fewer
    if was and list(was) != now:
        why = f"its checkpoint records {said} items, the data now has {', '.join(map(str, now))}"
    elif was and saved.get("sha256") and not saved.get("fixed_draw") and shape:
        if digest(data.train, shape) in ("", saved["sha256"]):
            return
        why = f"as many items as its checkpoint records ({said}), but other training items (files swapped or changed)"
    else:
        return
    distributed.warn(
        f"{run.path}: its data changed since training: {why}; the seeded splits hold other items than in training "
        "(the test split some it trained on)"
    )


def every_labelled(cfg: RunConfig, spec: str, limit: int | None = None) -> tuple[Split, list[str] | None]:
    """(every item of ``spec`` in file order with its label, numbered as training numbers them, or None; the
    class names of labels 0..K-1, or None), read as it goes where training would stream it; loaded whole, the
    first ``limit`` items alone are read (a photo folder's decoded), labelled as among every item."""
    d, shape, opts = cfg.data, tuple(cfg.model.input_shape), ImageOptions.of(cfg.data)  # shape: the model's items
    check_kind(cfg, spec)
    lazy = every_item(spec, d.in_memory, opts)
    if lazy is None:
        s, classes = all_labelled(spec, d.label_column, d.data_dir, opts, table_options(cfg, spec), shape, limit)
        skipped = read_skipped(Path(spec), opts)  # a photo folder's, as its reading left them out
    else:
        y = getattr(lazy.source, "labels", None)  # a folder's, one subfolder per class; a .npy has none
        s, classes = (
            Split(model_items(lazy, shape), None if y is None else torch.from_numpy(y)),
            getattr(lazy.source, "classes", None),
        )
        skipped = getattr(lazy.source, "skipped", None)
    note_skipped(spec, skipped)
    return s, classes


def check_kind(cfg: RunConfig, spec: str) -> None:
    """Refuse a table file for a run whose model takes images or signals (items (C, H, W) or (C, L)), before its
    rows are read with the run's table settings: their refusals (a gap, too few rows to split) would hide why."""
    shape = tuple(cfg.model.input_shape)
    if len(shape) > 1 and is_table_file(Path(spec)):
        raise VaekitError(
            f"{spec}: a table, whose items are rows (1-D); the run's model expects items of shape {shape}"
        )


def default_split(cfg: RunConfig, spec: str | None) -> str:
    """The split that anomaly and reconstruct take when none is named: 'all' (every item, in file order) of a
    file or folder other than the run's own data, which is new rows to answer one by one; else (the run's own
    data, a built-in set) its seeded 'test' split."""
    return "test" if spec is None or builtin_name(spec) is not None or same_spec(spec, cfg.data.spec) else "all"


def item_rows(s: Split) -> np.ndarray | None:
    """Each item's row in its file (N,): a split's ``rows``, a lazily read one's ``index``; None where unknown."""
    return s.rows if s.rows is not None else s.x.index if isinstance(s.x, LazyArray) else None


def indexed_rows(run: Run, s: Split, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """A table run's rows {column: (N,) values} of items x (N, D) (answers to the first N items of ``s``, labels
    y (N,) for a conditional run), an ``index`` column first: each item's row in its file (``row_index`` where
    the table has a column named index)."""
    rows, index = run.table_rows(x, y), item_rows(s)
    index = np.arange(len(x)) if index is None else np.asarray(index)[: len(x)]
    return {"index" if "index" not in rows else "row_index": index, **rows}


def prepared_split(
    run: Run,
    spec: str | None,
    split: str,
    limit: int | None = None,
    binarized: bool = True,
    label_column: str | None = None,
) -> tuple[Split, list[str] | None]:
    """(the chosen split of ``spec`` prepared as in training (binarised where the run was), with each item's row
    in its file (``rows``; the test file's for a set that has one), its class names or None); an empty split is
    refused. ``binarized`` False: a binarised run's items as given, grey (the probabilities its draws take, still
    checked to lie in [0, 1]), as ``Run.encode`` takes them: codes of no random draw. ``label_column``: a table's
    column read as its labels instead of the run's (data.label_column), as for a run trained without labels.

    ``split`` 'all' is every item in file order (train file, then test file), with its label where the data has
    labels, each drawn as in its own split (keyed by its row and part in its file; ``rows`` kept for one file,
    a table's rows as the file numbers them, else left None: the items are numbered by their place in that order).
    """
    if limit is not None and limit <= 0:
        raise VaekitError(f"limit must be > 0, got {limit}", key="limit")
    own = spec is None or same_spec(spec, run.config.data.spec)
    check_kind(run.config, spec or run.config.data.spec)  # before any split of a file the model cannot take
    if own and binarized:  # its own items, drawn otherwise when it trained
        note_old_draw(run, run.config.data.binarize)
    if split != "all":  # labels numbered as the run numbered them, named as it names them
        raw, mode = prepared_data(run, spec, binarized, label_column)
        if own:
            note_changed_data(run, raw)
        named = named_labels(run, raw)  # a file's labels 0..K-1 are names too
        data = numbered_as_run(run, named)
        s = pick_split(data, split, limit)  # a dynamic run's train split, grey for the trainer, drawn once as 'all'
        names = names_of(run, spec, named.classes)  # another built-in set's own names, not the run's
        return (drawn_once(s, run.config.train.seed) if mode == "dynamic" and not s.fixed else s), names
    spec = spec or run.config.data.spec
    if not spec:
        raise VaekitError("this run was trained on data passed in memory: name the data to use", key="data.spec")
    s, classes = every_labelled(labelled_by(run.config, label_column), spec, limit)  # no more read than taken
    k = None if s.y is None or not len(s.y) else int(s.y.max()) + 1  # the file's labels 0..K-1
    read = file_names(run, classes, k)
    mapped = label_map(run, read, spec)
    if mapped is not None and s.y is not None:
        s, classes = replace(s, y=mapped[0][s.y]), names_of(run, spec, read)
    d = run.config.data  # the file named, as a split's reading names it
    x = supported(run.check_items(s.x, f"{spec}:"), d.binarize, run.config.model.likelihood, spec)
    if binarized and d.binarize in ("dynamic", "fixed"):  # as validation and test were: drawn once,
        x = binarized_once(x, run.config.train.seed, s.rows, s.part)  # seeded, each item as in its own split
    y = None if s.y is None else s.y[:limit]
    rows = s.rows[:limit] if s.rows is not None and np.ndim(s.part) == 0 else None  # one file's: a table's kept rows
    return Split(head(x, limit), y, rows), classes


def labelled_by(cfg: RunConfig, column: str | None) -> RunConfig:
    """``cfg`` whose data.label_column is ``column`` (a copy), or ``cfg`` itself where ``column`` is None."""
    if column is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.data.label_column = column
    return cfg


def prepared_data(
    run: Run, spec: str | None, binarized: bool = True, label_column: str | None = None
) -> tuple[Dataset, str]:
    """(``spec`` prepared as ``prepare_data`` prepares the run's data, with labels from ``label_column`` where
    given, its binarisation mode); ``binarized`` False: a binarised run's splits left grey (mode "none"), each
    checked to lie in [0, 1] as binarising does."""
    mode, cfg = run.config.data.binarize, labelled_by(run.config, label_column)
    if binarized or mode not in ("dynamic", "fixed"):
        return prepare_data(cfg, spec, stream=True)
    cfg = copy.deepcopy(cfg)  # prepare_data resolves settings in the config it is given
    cfg.data.binarize = "none"
    data, _ = prepare_data(cfg, spec, stream=True)
    for name in ("train", "val", "test"):  # a lazily read split checks each batch as it is read
        s = getattr(data, name)
        setattr(data, name, replace(s, x=binarizable(s.x, mode, f"{data.name} ({name} split)")))
    return data, "none"


def seeded_subset(s: Split, n: int, seed: int) -> Split:
    """``n`` items of ``s`` drawn at random without replacement, seeded (the same ``seed``, the same items), kept
    in their order in ``s``, with their labels and rows; all of ``s`` where it holds no more than ``n``."""
    if len(s) <= n:
        return s
    idx = np.sort(np.random.default_rng(seed).choice(len(s), n, replace=False))  # (n,)
    x = s.x.subset(idx) if isinstance(s.x, LazyArray) else s.x[torch.from_numpy(idx)]
    part = s.part[idx] if isinstance(s.part, np.ndarray) else s.part
    rows = None if s.rows is None else np.asarray(s.rows)[idx]
    return replace(s, x=x, y=None if s.y is None else s.y[torch.from_numpy(idx)], rows=rows, part=part)


def every_item_data(run: Run, spec: str | None, limit: int | None = None) -> Dataset:
    """Every item of ``spec`` (default: the run's data) in file order, prepared as ``prepared_split`` prepares
    split all (binarised as in training), as the test split of a Dataset with empty train and val splits (so
    ``evaluate`` fits no probe on items it scores)."""
    s, classes = prepared_split(run, spec, "all", limit)  # a note where its own were drawn otherwise
    empty, shape = Split(head(s.x, 0), None), tuple(run.config.model.input_shape)
    name = Path(spec or run.config.data.spec).name
    return Dataset(name, empty, empty, s, shape, "image" if len(shape) == 3 else "table", None, classes)


def item_files(cfg: RunConfig, spec: str | None, rows: np.ndarray | None = None) -> list[str] | None:
    """The files of a photo folder's items in the order of ``split='all'`` (relative to the folder), or of the
    items at ``rows`` (a split's), else None: after the items were read, the files that read skipped (their
    headers or pixels unreadable) have no item."""
    folder = Path(spec or cfg.data.spec)
    if not folder.is_dir():
        return None
    try:
        names = row_files(folder, ImageOptions.of(cfg.data))[0]
    except VaekitError:  # not a folder of images (IDX files)
        return None
    return names if rows is None else [names[int(r)] for r in rows]


def shown(name: str) -> str:
    """A file or class name as a UTF-8 file can hold it: the bytes of a name that is not UTF-8 (an old zip's
    Latin-1, held as surrogates) written as \\xNN escapes ('caf\\xe9.png')."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def write_scores(
    out: str | Path,
    scores: dict[str, np.ndarray],
    y: torch.Tensor | None = None,
    classes: list[str] | None = None,
    files: list[str] | None = None,
    rows: np.ndarray | None = None,
) -> int:
    """A .csv of index (each item's row in its file, ``rows``; default 0..N-1), label (if any), one column per
    score (numbers to 7 digits; a column of text, such as a table column's name, as it is) and, where ``classes``
    names the labels, the class name, then each item's ``file`` where given (last, so the columns before stay where
    they were); returns the number of rows. Names a spreadsheet would take for a formula are written as text
    (``io.csv_cell``)."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise VaekitError(f"{out}: expected a .csv file name", key="out")
    n = len(next(iter(scores.values())))
    names = [csv_cell(shown(c)) for c in classes] if y is not None and classes else None
    header = ["index"] + (["label"] if y is not None else []) + list(scores) + (["class_name"] if names else [])
    header += ["file"] if files else []
    buf = io.StringIO()
    w = csv_writer(buf)  # quotes a class name holding a comma, "\r" or "\n"
    w.writerow(header)
    for i in range(n):
        label = [] if y is None else [int(y[i])]
        name = [names[label[0]]] if names else []
        index, file = i if rows is None else int(rows[i]), [csv_cell(shown(files[i]))] if files else []
        cells = (csv_cell(v) if isinstance(v := scores[k][i], str) else f"{v:.7g}" for k in scores)  # text as text
        w.writerow([index, *label, *cells, *name, *file])
    atomic_write_text(out, buf.getvalue())
    return n
