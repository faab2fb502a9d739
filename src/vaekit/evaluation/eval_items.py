"""The items ``evaluate`` scores: the run's own data prepared as in training, a vaekit Dataset prepared so (or as
``prepare_data`` returned it), or the user's items as one test split, scored whole (recorded as split all); a
split's first items, checked against the model's shape and support, binarised as in training."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from torch import Tensor

from ..config import RunConfig, own_likelihood
from ..data import Dataset, Split
from ..data.labels import given_as_names, label_numbers, run_classes
from ..data.lazy import LazyArray, binarized_once, head_split
from ..data.prepare import check_and_binarize, checked, prepare_data
from ..data.signals import as_model_items
from ..data.user import users_items
from ..errors import VaekitError
from ..runs import Run
from ..training import probe
from .labels import numbered_as_run

MODES = ("dynamic", "fixed", "none")  # evaluate's mode: the binarisation prepare_data returned
Keys = tuple[str | None, str | None]  # x_key and y_key: the entries of the dict items of a Dataset given


def iw_samples_of(iw_samples: int | None, k: int | None) -> int:
    """``evaluate``'s number of importance samples K, named ``iw_samples`` (as ``train`` and ``anomaly_scores`` name
    it) or ``k`` (its older name), checked; 1000 where neither is given."""
    if iw_samples is not None and k is not None:
        raise VaekitError(f"iw_samples={iw_samples} and k={k}: k is iw_samples' older name; give one of them")
    k = next((v for v in (iw_samples, k) if v is not None), 1000)
    check_k(k)
    return k


def check_k(k: int) -> None:
    """Refuse a number of importance samples K below 1."""
    if k <= 0:
        raise VaekitError(f"the number of importance samples k must be > 0, got {k}", key="iw_samples")


def pick_split(data: Dataset, split: str, limit: int | None) -> Split:
    """The first ``limit`` items of a split; an empty one is refused."""
    if split not in ("train", "val", "test"):
        raise VaekitError(f"split {split!r}: expected train, val or test", key="split")
    if limit is not None and limit <= 0:
        raise VaekitError(f"limit must be > 0, got {limit}", key="limit")
    s = getattr(data, split)
    if len(s) == 0:
        raise VaekitError(f"{data.name}: the {split} split is empty")
    return head_split(s, limit)


def evaluated_items(
    run: Run, data: Dataset | object, split: str, limit: int | None, mode: str | None, keys: Keys = (None, None)
) -> tuple[Dataset, Split, Tensor | LazyArray, str | None]:
    """The data (the run's own, prepared as in training, when None; a vaekit Dataset, prepared so unless ``mode``
    says it was; the user's items, any container ``fit`` takes, as one test split: ``split`` test or all, and
    ``keys`` the entries x_key and y_key of dict items), the split's first ``limit`` items and those items as the
    model takes them (N, *shape), with the binarisation mode."""
    cfg = run.config
    _check_mode(data, mode)
    if keys != (None, None) and (data is None or isinstance(data, Dataset)):
        what = "the run's own data" if data is None else "a vaekit Dataset"
        raise VaekitError(f"x_key and y_key name the entries of the dict items of data given; {what} has none")
    if data is None:
        data, mode = prepare_data(scored_config(cfg), stream=True)
        from .outputs import note_changed_data  # outputs builds on metrics, which builds on this module

        note_changed_data(run, data)
        data = numbered_as_run(run, named_labels(run, data))  # its labels as the run numbered them (a reader's change)
    elif not isinstance(data, Dataset):
        if split not in ("test", "all"):
            raise VaekitError(f"split {split!r} names one of the run's own splits; items given are evaluated whole")
        data, split = users_items_for(run, data, keys), "test"  # every item, as the test split
    else:  # a 3-D array the loaders read as grey images (N, 1, C, L): a signal run's items (N, C, L)
        data = as_model_items(numbered_as_run(run, named_labels(run, data)), tuple(cfg.model.input_shape))
    if mode is None:  # binarising binary items leaves them as they are: a Dataset prepared already stays so
        mode = cfg.data.binarize
        data = check_and_binarize(_copy(data), mode, cfg.model.likelihood, cfg.train.seed)
    s = pick_split(data, split, limit)
    # refuses a shape the model was not built for; streamed data stays streamed
    x: Tensor | LazyArray = run.check_items(s.x)
    if own_likelihood(cfg.model.likelihood) and mode == "none":  # no name tells its support: the model's p(x|z)
        px, where = probe(run.model, replace(data, train=s)), f"{data.name} ({split} split)"
        x = checked(replace(x) if isinstance(x, LazyArray) else x, px, where)
    if mode == "dynamic" and split == "train":  # the train split stays grey for the trainer: binarise once
        x = binarized_once(x, run.config.train.seed, s.rows, s.part)
    return data, s, x, mode


def users_items_for(run: Run, data: object, keys: Keys = (None, None)) -> Dataset:
    """The user's items as a test split (``keys``: x_key and y_key of dict items); a conditional run's labels read
    as labels given to a run are: integers as label numbers 0..K-1, text by the run's class names (``data.labels``)."""
    shape, k = tuple(run.config.model.input_shape) or None, run.config.model.num_classes
    if not run.model.needs_labels:
        return users_items(data, False, shape, run.classes, run.table, keys)
    names = run_classes(run.classes, k) if given_as_names(data, *keys) else None  # None: numbers kept as they are
    if names is None and isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], Mapping):
        data = data if data[1] is None else (data[0], label_numbers(data[1], run.classes, k))  # (x, y): checked
    return replace(users_items(data, True, shape, names, run.table, keys), classes=run.classes)


def named_labels(run: Run, data: Dataset) -> Dataset:
    """``data`` with its labels named as ``file_names`` names them (its classes, else "0".."K-1")."""
    names = file_names(run, data.classes, data.num_classes)
    return data if names == data.classes else replace(data, classes=names)


def file_names(run: Run, classes: list[str] | None, k: int | None) -> list[str] | None:
    """The names of other data's labels 0..K-1 (``k`` = K): its ``classes``, else, where a conditional run names
    its classes, their numbers as text, read by name as the run read its own (file label 1 is no class of a run of
    labels 0, 2, 5: not label 1, class 2; nor of a run of classes "zero".."nine")."""
    if classes or not k or run.classes is None or not run.model.needs_labels:
        return classes
    return [str(i) for i in range(k)]


def scored_config(cfg: RunConfig, spec: str | None = None) -> RunConfig:
    """The config to prepare ``spec`` (default: the run's data) by for scoring one split of it: a .npy file that
    data.in_memory=auto would load whole (every split cast to float32) is memory-mapped instead, so that only the
    items scored are read, to the same values (a copy of ``cfg``, set to false); other data: ``cfg`` itself."""
    path = Path(spec or cfg.data.spec or "").expanduser()
    if cfg.data.in_memory != "auto" or path.suffix.lower() != ".npy" or not path.is_file():
        return cfg
    cfg = copy.deepcopy(cfg)  # prepare_data resolves settings in the config it is given
    cfg.data.in_memory = "false"
    return cfg


def _check_mode(data: Dataset | object, mode: str | None) -> None:
    """Refuse, in one line, a ``mode`` that ``prepare_data`` never returns, or one with data it cannot apply to."""
    if mode is not None and mode not in MODES:
        raise VaekitError(f"mode must be one of {', '.join(MODES)} (as prepare_data returned it), got {mode!r}")
    if mode is not None and not isinstance(data, Dataset):
        what = "the run's own data is" if data is None else "items given are"
        raise VaekitError(f"mode says how a vaekit Dataset passed was prepared: {what} prepared by data.binarize")


def _copy(data: Dataset) -> Dataset:
    """``data`` with splits of its own, for ``check_and_binarize`` to set (the caller's stay as they were)."""

    def own(s: Split) -> Split:
        return replace(s, x=replace(s.x) if isinstance(s.x, LazyArray) else s.x)  # its rows key the fixed draw

    return replace(data, train=own(data.train), val=own(data.val), test=own(data.test))
