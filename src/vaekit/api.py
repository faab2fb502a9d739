"""The Python API: ``vaekit.fit(model, data)`` for your own data and networks, and ``vaekit.train(...)`` for a run
described by settings. Both train with the one trainer of ``vaekit.training`` and return a ``Run``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from . import files
from .api_resume import as_own, fitted_in_memory, same_classes, unwrapped_record
from .config import (
    RunConfig,
    absolute_spec,
    keep_settings,
    load_json_config,
    refuse_conflicts,
    set_value,
    validate,
)
from .config.keys import full_keys, refuse_unfit
from .config.resume import take_derived
from .core.contract import VAEModule, check_model
from .data import Dataset
from .data.core import check_trained, class_counts
from .data.prepare import prepare_data
from .data.user import loader_settings
from .errors import VaekitError
from .fit_data import fit_likelihood, fit_split, refuse_val_fraction, user_data
from .models import MODELS
from .models.catalog import model_key
from .runs import Run
from .training import Callback, Fitted, fit_config, train_model
from .training.callbacks import check_callbacks
from .training.describe import DEEP_SETTINGS
from .training.folder import CUSTOM, ZOO_SETTINGS, refuse_out, resumes_class
from .training.rng import keeps_rng
from .training.signals import Interrupted
from .training.step import run_device
from .viz.callbacks import default_callbacks

# what fit records in config.json of a model built in Python (training.folder.describe) and of its data
DESCRIBED = (
    *["family", "net", "hidden", "channels", "likelihood", "latent_dim", "input_shape", "num_classes", "latent_dims"],
    *["prior", "posterior"],
    *ZOO_SETTINGS,
)
FIT_DATA = ("data.val_fraction", "data.binarize", "data.standardize")  # those of fit's data settings a resume keeps


@keeps_rng
def fit(
    model: nn.Module | RunConfig,
    data: object = None,
    *,
    val_data: object = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Iterable[Callback] = (),
    pictures: bool = True,
    val_fraction: float | None = None,
    binarize: str | None = None,
    standardize: str | None = None,
    workers: int | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
    **settings,
) -> Run:
    """Train ``model`` (any model meeting ``vaekit.VAEModel``) on ``data`` and return the run.

    ``data``: a numpy array or torch tensor (N, *shape), an (x, y) pair with labels y (N,), held in memory; or a
    torch Dataset yielding x, (x, y) or dicts, or a DataLoader (its dataset, batch size and workers, in vaekit's
    order; a sampler, batch sampler or collate_fn of its own is refused, as is a batch_size or workers other than
    its), read as it goes. A dict item's x is its ``x_key`` entry, else pixel_values, image, input or x; its
    label ``y_key``, else label, labels or y. Channels-last images (N, H, W, C) are moved to (N, C, H, W) with
    one line saying so; items of another shape than the model takes are refused in one line.
    ``val_data`` (the same kinds) picks the best epoch; without it a seeded ``val_fraction`` of ``data`` does.
    ``out`` writes a run folder (config, weights, checkpoints, metrics, and with ``pictures`` samples.png,
    reconstructions.png and loss.png) that ``resume=True`` continues and ``vaekit.load_run`` opens; None: none.
    A resumed fit takes a model of the class the run's model.json records (``overwrite=True``: any, for a class
    moved or renamed), and the settings its config.json records, those given over them.
    ``settings`` are any other training settings (``beta``, ``warmup_epochs``, ``free_bits``, ``patience``,
    ``device``, ``precision``, ``progress``...: the fields of ``vaekit.TrainConfig``), bare or qualified
    (``**{"train.beta": 4}``). Refused in one line: a setting given under two names, a model setting, and a data
    setting other than val_fraction, binarize, standardize and workers (``limit``...: the data is used as passed).
    ``binarize`` and ``standardize`` are as in ``DataConfig``: 'auto' standardises the columns of a table under a
    Gaussian p(x|z). ``callbacks`` (a list) get step and epoch metrics (``vaekit.Callback``). A setting left None
    takes its ``RunConfig`` default (epochs 20, lr 1e-3, seed 0, val_fraction 0.1, binarize and standardize
    'auto'), or on resume the run's.
    ``seed`` seeds the training (split, shuffling, binarisation, draws), not ``model``'s initial weights (call
    ``torch.manual_seed`` before building it); the caller's torch RNG state is as it was before the fit.
    ``model`` is trained in place: it ends on the CPU, in eval mode, with the weights the run keeps, those of
    the epoch with the lowest validation loss (their average with ``ema``), and ``run.model`` is ``model`` (or,
    for standardised columns, wraps it). To start over, build a fresh model. Ctrl-C (or SIGTERM) stops it after
    the current step with ``Interrupted`` (a KeyboardInterrupt), whose ``result`` is the Run of what was trained
    as a return would give it (its ``history``, the finished epochs'). ``val_fraction`` with a vaekit Dataset,
    whose own val split validates, is refused, as labels naming other classes than a resumed run's.

    ``fit(RunConfig(...), **settings)`` trains the run that config describes (its data spec and built-in
    networks) with the settings given over a copy of it, as ``vaekit.train(config, **settings)``.
    """
    callbacks = check_callbacks(callbacks)
    if out is not None and not isinstance(out, str | os.PathLike):  # out=3 would write a folder ./3
        raise VaekitError(f"out must be a folder path (str or os.PathLike) or None, got {type(out).__name__}")
    out = os.path.expanduser(out) if isinstance(out, str | os.PathLike) else out  # "~/runs/a": in the home folder
    named = _given(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, val_fraction=val_fraction, workers=workers)
    named |= _given(binarize=binarize, standardize=standardize)
    given = full_keys({**named, **settings})  # 'lr' and 'train.lr' name one setting, given once
    if isinstance(given.get("train.device"), torch.device):  # torch.device("cuda:0"): as load_run takes it
        given["train.device"] = str(given["train.device"])
    if isinstance(model, RunConfig):  # the settings given, over a copy of the config, as train applies them
        _config_data_only(data=data, val_data=val_data, x_key=x_key, y_key=y_key)
        given |= _given(out=out)
        keys = cast(dict[str, Any], given)  # config keys, or one of train's own keywords (networks)
        return train(model, resume=resume, overwrite=overwrite, callbacks=callbacks, pictures=pictures, **keys)
    refuse_unfit(given, model, DEEP_SETTINGS if isinstance(model, MODELS["deep"]) else None)
    if "data.val_fraction" in given:
        refuse_val_fraction(data, val_data)
    model = check_model(model)
    same = resume and resumes_class(out, model, overwrite)  # the class model.json records, or refused
    own = loader_settings(data, given.get("train.batch_size"), given.get("data.workers"))  # type: ignore[arg-type]
    resumed = _saved_config(out) if resume else None
    if resumed is None or isinstance(data, torch.utils.data.DataLoader):  # fit's defaults (128, 0), a loader's own
        given = {"train.batch_size": own[0], "data.workers": own[1], **given}
    cfg = _fit_config(out, given, resumed)
    seed, val_fraction = cfg.train.seed, cfg.data.val_fraction  # as checked (and as a resumed run had them)
    dataset = user_data(model, data, val_data, val_fraction=val_fraction, seed=seed, x_key=x_key, y_key=y_key)
    if not resume:  # val_data's class that data lacks; a model's own num_classes may name classes the data lacks
        more = "more items of those classes in the data given to fit"  # fit takes no data.limit
        check_trained(dataset, model.needs_labels and not getattr(model, "num_classes", None), more)
    else:  # the run's label numbers name its classes
        same_classes(out, dataset.classes)
    model, mode = fit_likelihood(model, dataset, cfg, seed)
    _refuse_model_conflicts(cfg, model, resume)
    saved = as_own(resumed, cfg.model.likelihood if same else "")  # the one read, not a second
    if saved is not None:  # the settings fit records, as the model and data described them then
        unwrapped_record(saved, cfg, Path(str(out)))
        keep_settings(saved, cfg, [f"model.{f}" for f in DESCRIBED] + [*FIT_DATA, "train.seed", "train.batch_size"])
    every, dynamic = [*default_callbacks(cfg, pictures), *callbacks], mode == "dynamic"
    with _handing_over(cfg, dataset):
        fitted = train_model(model, dataset, cfg, resume=resume, overwrite=overwrite, dynamic=dynamic, callbacks=every)
    return _run(fitted)


def _refuse_model_conflicts(cfg: RunConfig, model: VAEModule, resume: bool) -> None:
    """Refuse the settings a model was built with (as ``describe`` found them) that cannot take effect, alone (not
    on resume, as ``train``: a run's model may predate a check) or with the training's. The family of a model class
    of the user's is its own: the rows naming model.family are left to it (its latent groups tell kl_balance at
    training's start)."""
    custom = cfg.model.family == CUSTOM
    if not (custom or resume):
        refuse_conflicts(cfg, only=tuple(f"model.{k}" for k in ZOO_SETTINGS))
    refuse_conflicts(cfg, ("train",), unknown=("model.family",) if custom else ())


def _given(**settings: object) -> dict[str, object]:
    """The settings that are not None (None: left to the config's default)."""
    return {k: v for k, v in settings.items() if v is not None}


def _config_data_only(**given: object) -> None:
    """Refuse, in one line, data given with a RunConfig to ``fit``: the run reads it from config.data.spec."""
    for name in _given(**given):
        why = f"fit(RunConfig) reads its data from config.data.spec: {name} cannot take effect; pass the data to"
        raise VaekitError(f"{why} fit(model, data)", key=name)


def _fit_config(out: str | Path | None, given: dict[str, object], saved: RunConfig | None) -> RunConfig:
    """The RunConfig of ``fit``: the settings ``given`` (full keys) over the run resumed (``saved``: it goes on as it
    was trained, as in ``train``) or the defaults, validated; the model section comes from the model later."""
    cfg = _with_settings(saved or RunConfig(), {**given, "out": str(out) if out else ""})
    cfg.data.spec = ""  # the data came from Python
    if saved is None:  # split into train and val alone (``user_data``); a resumed run keeps its record
        cfg.data.test_fraction = 0.0
    refuse_conflicts(validate(cfg), ("data", "train"), unknown=("model",))  # the model is described later
    run_device(cfg.train.device, "train.device")
    return cfg


@keeps_rng
def train(
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Iterable[Callback] = (),
    pictures: bool = True,
    networks: str | Path | None = None,
    **settings,
) -> Run:
    """Train the run that ``config`` and ``settings`` describe and return it; ``config`` is left as it was.

    ``settings`` are config keys, qualified or bare (``lr=3e-4``, ``train.epochs=5`` as
    ``**{"train.epochs": 5}``); ``data`` sets the data spec, ``model`` the network or family. Each keeps its
    type (``epochs="5"`` is refused: only --set parses text), and one given under two names is refused.
    ``resume=True`` without ``config`` continues the run in ``out`` from its config.json, with ``settings``
    over it; a setting its checkpoint rests on (model, data, split, seed, batch size) is refused if changed.
    ``out``: the run folder (left out: the config's, default runs/run); None writes none, as ``fit`` without it.
    ``seed`` seeds the split, the initial weights and the training; the caller's torch RNG state is kept.
    ``networks``: the run folder whose model.json builds a config of ``model.net`` 'custom' (networks from
    Python), trained again into another ``out`` (default: ``out``'s own model.json). Ctrl-C: as in ``fit``.
    """
    callbacks = check_callbacks(callbacks)
    cfg = _with_settings(config or RunConfig(), settings)
    _check_networks(networks, cfg, resume)
    saved = _saved_config(cfg.out) if resume else None
    if saved is not None:
        cfg = cfg if config is not None else _with_settings(saved, settings)
        fitted_in_memory(saved, cfg)  # data in memory: resumed by fit, or on a file of its items
        keep_settings(saved, take_derived(saved, cfg))
    cfg.data.spec = absolute_spec(cfg.data.spec)  # the run reads its data from anywhere later
    sections = ("train",) if resume else ("data", "model", "train")  # a resumed run: as in fit_config
    cfg = refuse_conflicts(validate(cfg), sections)
    run_device(cfg.train.device, "train.device")  # cuda:N beyond this machine's GPUs: one line
    if cfg.out:  # None or empty: no folder
        refuse_out(Path(cfg.out), resume, overwrite)  # a taken folder refused before the data's notes print
    # the settings checked before the data is read; a run of vaekit.fit's (no test split) split as fit split it
    data, mode = prepare_data(cfg, stream=True) if cfg.data.test_fraction else fit_split(cfg)
    if resume:  # the run's label numbers name its classes, as in fit
        same_classes(cfg.out, data.classes)
    cfg.data.spec = cfg.data.spec if cfg.data.test_fraction else ""  # its items as in memory: the file carried them
    callbacks = [*default_callbacks(cfg, pictures), *callbacks]
    source = None if networks is None else Path(networks)
    with _handing_over(cfg, data):
        fitted = fit_config(
            cfg, resume=resume, overwrite=overwrite, data=data, mode=mode, callbacks=callbacks, networks=source
        )
    return _run(fitted)


def _check_networks(networks: str | Path | None, cfg: RunConfig, resume: bool) -> None:
    """``networks`` is refused where it cannot take effect: a resume (the run's own model.json builds it) or a
    config whose networks its settings build."""
    if networks is not None and (resume or cfg.model.net != CUSTOM):
        why = "a resumed run is built by its own model.json" if resume else f"model.net is {cfg.model.net!r}"
        raise VaekitError(f"networks {str(networks)!r} cannot take effect: {why}", key="networks")
    if not (resume or networks or cfg.model.net != CUSTOM or (Path(cfg.out) / files.MODEL).is_file()):
        where = f"{cfg.out}: " if cfg.out else ""  # out None: no folder, so no model.json of its own
        folder = "this folder has none" if cfg.out else "out is None (no run folder)"
        raise VaekitError(
            f"{where}model.net 'custom' (networks from Python) is built by a run's model.json, and {folder}: name "
            "that run (networks=RUN, its folder), or fit the model itself again (vaekit.fit)"
        )


def _with_settings(config: RunConfig, settings: dict) -> RunConfig:
    """A copy of ``config`` with ``settings`` (bare or qualified keys; ``model`` and ``data`` as in ``train``), each
    of its setting's type (a Python value is not parsed: "2" is no int); one setting given twice is refused."""
    cfg = RunConfig.from_dict(config.to_dict())
    cfg.given = set(config.given)  # the keys the user gave ``config`` (its TOML file's), then ``settings``
    aliases = {"model": model_key(settings.get("model")), "data": "data.spec"}
    for key, value in full_keys(settings, aliases).items():
        value = "" if key == "out" and value is None else value  # out=None: no run folder
        set_value(cfg, key, value, strict=True, given=True)
    return cfg


def _saved_config(out: str | Path | None) -> RunConfig | None:
    """The config.json of the run folder ``out``, or None where there is none yet."""
    path = Path(out or "") / files.CONFIG
    return load_json_config(path) if out and path.is_file() else None


def _run(fitted: Fitted) -> Run:
    return Run(fitted.path, fitted.config, fitted.model, fitted.rows, fitted.kept)


@contextmanager
def _handing_over(cfg: RunConfig, data: Dataset) -> Iterator[None]:
    """A fit stopped by a signal hands over what it trained as a Run, ``Interrupted.result``, as a return would
    (the model as it keeps it, the finished epochs' rows, ``cfg``'s folder or none, the data's table and classes)."""
    try:
        yield
    except Interrupted as e:
        if e.model is not None:
            fitted = Fitted(cast(VAEModule, e.model), Path(cfg.out) if cfg.out else None, cfg, e.history)
            counts = class_counts(data, cfg.model.num_classes) if fitted.model.needs_labels else None
            fitted.kept = {"table": data.table, "classes": data.classes, "counts": counts}
            e.result = _run(fitted)
        raise
