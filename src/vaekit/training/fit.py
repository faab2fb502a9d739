"""Fitting: the one trainer behind the Python API (``vaekit.fit``) and the config-driven path (``vaekit train``)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Distribution

from .. import files
from ..config import RunConfig, TrainConfig, load_json_config, refuse_conflicts, validate
from ..config.checks import short_runs
from ..core.contract import VAEModule, check_model, check_output, probing
from ..data import Dataset
from ..data.core import class_counts
from ..errors import VaekitError
from ..io import atomic_write_json
from ..models.standardized import Standardized
from . import distributed
from .callbacks import Callback, Callbacks, FitInfo
from .checkpoint import load_weights, prior_fitted, save_weights
from .folder import CUSTOM, check_size, checkpointed, clear, rebuild_model, start_run, write_run_files
from .from_config import allocated, settled
from .prior import fit_prior_on, two_stage
from .rng import torch_threads
from .signals import Interrupted, StopSignal
from .spawned import refuse_spawned_import
from .state import fingerprint, kept_settings
from .step import autocast_dtype, resolve_device
from .trainer import Trainer


@torch.no_grad()
def probe(model: nn.Module, data: Dataset) -> Distribution:
    """p(x|z) of ``model`` on two training items, in eval mode: it builds a model that builds itself from its
    first batch, checks the contract's shapes, and tells the likelihood. The global RNG is left as it was."""
    model = check_model(model)
    with probing(model) as device:
        x = data.train.x[:2].to(device)
        y = data.train.y[:2].to(device) if model.needs_labels and data.train.y is not None else None
        try:
            out = check_output(model, model(x, y), x)
        except RuntimeError as e:  # a layer's shape error: one line naming the items' shape, not a traceback
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise VaekitError(
                f"{type(model).__name__} cannot take items of shape {tuple(x.shape[1:])}: {first}"
            ) from None
    return out.px


@torch.no_grad()
def start_from_data(model: nn.Module, data: Dataset, seed: int, device: torch.device) -> None:
    """A model's data-dependent start (the VampPrior's pseudo-inputs): ``model.init_from_data`` gets x
    (N, *shape), N = ``model.data_init_items`` training items drawn with ``seed`` (the same on every process)."""
    n = int(getattr(model, "data_init_items", 0))
    if n > 0:
        rows = torch.randperm(len(data.train.x), generator=torch.Generator().manual_seed(seed))[:n]
        getattr(model, "init_from_data")(data.train.x[rows.sort().values].to(device))  # noqa: B009 (optional)


@dataclass
class Fitted:
    """What a fit gives back: the model with its best weights (on the CPU, as ``load_run`` gives it), the run
    folder (or None), the config as written, the metrics rows, what the folder's files keep of the data (a
    table's columns, a conditional run's class names) for a fit without one, and the longest run of steps the
    guard skipped in a row (``StepGuard.most``; 0: none)."""

    model: VAEModule
    path: Path | None
    config: RunConfig
    rows: list[dict]
    kept: dict = field(default_factory=dict)
    most_skipped: int = 0


def train_model(
    model: VAEModule,
    data: Dataset,
    cfg: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    dynamic: bool = False,
    callbacks: Iterable[Callback] = (),
    warn_skips: bool = True,
) -> Fitted:
    """Train ``model`` on ``data`` with ``cfg.train``; with ``cfg.out`` a run folder is written (config, weights,
    checkpoints, metrics) and can be resumed. ``dynamic`` draws a fresh binarisation of every training batch.
    ``warn_skips=False`` leaves out the warning of steps skipped in a row, which names train.* settings, for a
    caller that says so in its own words from ``Fitted.most_skipped``.

    SIGINT or SIGTERM finish the current step, write a checkpoint and raise ``Interrupted`` (``_stopped``). Under
    torchrun every process runs this; they train one DDP model and rank 0 writes the run folder and calls the callbacks.
    """
    refuse_spawned_import("vaekit.fit")  # before the run folder's lock, which the parent holds
    with ExitStack() as stack:  # the run folder's lock, held to the end; train.threads, the caller's given back
        stack.enter_context(torch_threads(cfg.train.threads))
        fitted = _train(model, data, cfg, resume, overwrite, dynamic, callbacks, stack, warn_skips)
    distributed.barrier()  # the group stays (another fit may follow); vaekit's own is destroyed at exit
    if fitted.path is not None and not distributed.is_main():  # rank 0 wrote the best weights before the barrier
        load_weights(fitted.model, fitted.path / files.WEIGHTS)
    return fitted


def _train(
    model: VAEModule,
    data: Dataset,
    cfg: RunConfig,
    resume: bool,
    overwrite: bool,
    dynamic: bool,
    callbacks: Iterable[Callback],
    stack: ExitStack,
    warn_skips: bool = True,
) -> Fitted:
    """Set this process up (device, data-dependent start, run folder, trainer), then fit and finish."""
    if cfg.train.kl_balance and len(model.latent_dims) < 2:  # a model built in Python (settings: the table's rows)
        why = "KL balancing weighs each latent group's KL against the others': this model has one group"
        raise VaekitError(f"train.kl_balance cannot take effect: {why}", key="train.kl_balance")
    device = distributed.init(resolve_device(cfg.train.device), cfg.train.batch_size, cfg.train)
    if distributed.active():  # every process given rank 0's settings and data, or refused (one digest of the data)
        distributed.check_same(_compared(cfg, resume), fingerprint(data))
    for note in [] if resume else short_runs(cfg):  # said once (rank 0), at the run's start: a resume keeps them
        distributed.warn(note)
    t = replace(cfg.train, progress=cfg.train.progress and distributed.is_main())
    model = model.to(device)
    start_from_data(model, data, t.seed, device)  # a resumed run's checkpoint then replaces what it set
    run = Path(cfg.out) if cfg.out else None  # the disk touched only now, the input known to be good (rank 0 alone)
    if run is not None:
        distributed.on_main(lambda: start_run(cfg.out, resume, overwrite, stack), "start the run")
    settings = kept_settings(run if resume else None, cfg)  # config.json edited against its checkpoint: refused
    trainer = Trainer(
        model,
        data,
        t,
        run,
        resume=resume,
        dynamic=dynamic,
        workers=cfg.data.workers,
        dtype=autocast_dtype(t.precision, device, cfg.model.likelihood),
        callbacks=Callbacks(callbacks, enabled=distributed.is_main()),
    )
    trainer.guard.warns = warn_skips
    trainer.state.settings = settings
    return _fit_and_finish(trainer, data, cfg, resume)


def _compared(cfg: RunConfig, resume: bool) -> dict:
    """The settings every process must share, flat (``{"train.lr": 1e-3, ...}``): the model's and training's,
    less those a process may set its own way (its progress lines, its device, which init maps to its own GPU)."""
    own = {"train.progress", "train.device"}
    flat = {f"{part}.{k}": v for part in ("model", "train") for k, v in asdict(getattr(cfg, part)).items()}
    return {k: v for k, v in flat.items() if k not in own} | {"resume": resume}


def _fit_and_finish(trainer: Trainer, data: Dataset, cfg: RunConfig, resume: bool) -> Fitted:
    """Write the run files (rank 0), run the trainer's epochs (the callbacks hear of the start, an error and the
    end), then finish: the best weights, the second stage; a resume with nothing to train, the run as it stands
    (the callbacks' ``on_nothing_to_train`` do what a kill after its last checkpoint left undone)."""
    model, t, run, dynamic = trainer.model, trainer.t, trainer.run, trainer.dynamic
    counts = class_counts(data, cfg.model.num_classes) if model.needs_labels else None
    kept = {"table": data.table, "classes": data.classes, "counts": counts}
    if resume and (done := _done(trainer)) is not None:  # no training file written, no other hook called
        _finish(model, trainer, done, t, dynamic)  # reads the best weights: their prior is fitted
        saved = load_json_config(done / files.CONFIG)  # settings never used stay out of it
        # the end-of-fit work a kill after the last checkpoint left undone (pictures, an MLflow run's end), if any
        trainer.callbacks.on_nothing_to_train(model, FitInfo(done, saved, data, resume))
        return Fitted(_settled(model), done, saved, trainer.state.rows, kept, trainer.guard.most)
    info = FitInfo(run, cfg, data, resume)
    with _cleared_on_failure(None if resume else run):
        if run is not None and distributed.is_main():
            write_run_files(run, cfg, model, data.table, data.classes, counts)
            if data.skipped:  # unreadable image files the data left out (data.skip_unreadable)
                atomic_write_json(run / files.SKIPPED, {"count": len(data.skipped), "files": data.skipped})
        trainer.callbacks.on_fit_start(model, info)
        try:
            with StopSignal() as stop:
                trainer.fit(stop)
        except BaseException as e:  # the callbacks hear of it (an MLflow run is marked failed), then it goes on up
            _stopped(trainer, e) if isinstance(e, Interrupted) else None
            trainer.callbacks.on_fit_error(e, info)
            raise
    _finish(model, trainer, run, t, dynamic)
    trainer.callbacks.on_fit_end(model, info)
    return Fitted(_settled(model), run, cfg, trainer.state.rows, kept, trainer.guard.most)  # on the CPU, as loaded


def _done(trainer: Trainer) -> Path | None:
    """The folder of a resume with nothing to train (all its epochs, or stopped early by ``train.patience`` and
    not set to train on, ``Trainer.set_aside``; a second stage's prior fitted if any), else None."""
    t, s, run = trainer.t, trainer.state, trainer.run
    if s.epoch > t.epochs:  # before config.json is written again
        raise VaekitError(f"train.epochs {t.epochs}: the run has trained {s.epoch} already", key="train.epochs")
    stopped = trainer.at_patience() and not trainer.sets_aside()
    if run is None or (s.epoch < t.epochs and not stopped):
        return None
    pending = t.prior_epochs and two_stage(trainer.model) is not None and not prior_fitted(run / files.WEIGHTS)
    return None if pending else run


@contextmanager
def _cleared_on_failure(run: Path | None) -> Iterator[None]:
    """A new run (``run``; None: none, or a resumed one) that fails before its first checkpoint holds nothing to
    resume: every file it wrote is removed (rank 0), so a later start there begins afresh. Its config.json and
    best weights are written before that checkpoint, so the folder's state, not ``unstarted``, tells."""
    try:
        yield
    except BaseException:
        if run is not None and distributed.is_main() and not checkpointed(run):
            clear(run, started=True)  # its training files are this start's: start_run refused any other
        raise


def _settled(model: VAEModule) -> VAEModule:
    """``model`` as a fit leaves it: in eval mode, on the CPU (as ``load_run`` gives it), no gradients held."""
    model.eval().zero_grad(set_to_none=True)
    return model.cpu()


def _stopped(trainer: Trainer, e: Interrupted) -> None:
    """A fit stopped by a signal (its checkpoint written): the model as ``_finish`` leaves it, without a second
    stage: the best epoch's weights where an epoch finished (this fit's, or a resumed run's), else the last
    step's; ``e`` given it and the finished epochs' metrics rows."""
    model, run, ended = trainer.model, trainer.run, trainer.state.best_val != math.inf
    if ended and (best := trainer.best_weights()) is not None:
        model.load_state_dict(best)
    elif ended and run is not None and distributed.is_main():
        load_weights(model, run / files.WEIGHTS)
    e.keep(_settled(model), list(trainer.state.rows))


def _finish(model: VAEModule, trainer: Trainer, run: Path | None, t: TrainConfig, dynamic: bool) -> None:
    """After the epochs: the best weights into ``model`` (eval mode), then the VQ-VAE's second stage, its
    PixelCNN prior fitted on the final codes and saved with the weights."""
    best = trainer.best_weights()  # kept in memory without a run folder, else in it
    if best is not None:
        model.load_state_dict(best)
    elif distributed.is_main() and run is not None:
        load_weights(model, run / files.WEIGHTS)
    model.eval()
    if t.prior_epochs and two_stage(model) is not None and distributed.is_main():
        if run is not None and prior_fitted(run / files.WEIGHTS):
            return  # these best weights had their prior fitted already: a resume that found no better epoch
        shown = t.progress and not trainer.muted  # not on a stdout that failed the epochs' lines
        fit_prior_on(  # its validation NLL on this process's share of the val split (all of it in one process)
            model,
            trainer.x,
            t.prior_epochs,
            t.batch_size,
            t.lr,
            dynamic=dynamic,
            seed=t.seed,
            progress=shown,
            val=trainer.x_val,
            run=run,
        )
        save_weights(model, run / files.WEIGHTS, prior_fitted=True) if run is not None else None


@contextmanager
def default_dtype(dtype: torch.dtype = torch.float32) -> Iterator[None]:
    """torch's default dtype ``dtype`` inside (vaekit builds its own models in float32), the caller's restored on
    the way out."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def fit_config(
    cfg: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data: Dataset | None = None,
    mode: str = "none",
    callbacks: Iterable[Callback] = (),
    wrap: Callable[[VAEModule], VAEModule] | None = None,
    networks: Path | None = None,
) -> Fitted:
    """Train the run ``cfg`` describes (its data spec, or ``data`` already prepared with binarisation ``mode``,
    and its built-in networks); ``cfg`` itself is left as it was. ``wrap`` takes the model just built (seeded,
    before data.standardize acts) and gives the one to train: a wrapper that is a ``Standardized`` already is
    not standardised again. ``networks``: the folder whose model.json builds a ``custom`` net (default: out)."""
    refuse_spawned_import("vaekit.train")
    # a resumed run is held to the objective's settings: its model was built before a model check was added
    cfg = refuse_conflicts(validate(copy.deepcopy(cfg)), ("train",) if resume else ("data", "model", "train"))
    data, mode = settled(cfg, data, mode, resume)
    torch.manual_seed(cfg.train.seed)
    if resume:  # a received folder's sizes, held to its checkpoint's before anything is allocated
        saved = [Path(cfg.out) / n for n in (files.CHECKPOINT, files.PREVIOUS_CHECKPOINT)]
        check_size(Path(cfg.out), cfg, next((p for p in saved if p.is_file()), saved[0]))
    with default_dtype():  # vaekit's data is float32: its own models are too, whatever the default dtype
        model = rebuild_model(networks or Path(cfg.out), cfg) if cfg.model.net == CUSTOM else allocated(cfg)
    model = model if wrap is None else wrap(model)
    if cfg.data.standardize == "true" and not isinstance(model, Standardized):
        table = data.table  # TVAE's alphas (data.numeric=modes) are on a unit scale already: not standardised
        numbers = getattr(table, "coding", "standard") == "standard"
        model = Standardized.fitted(model, data.train.x, getattr(table, "categories", ()), numbers)
    return train_model(
        model, data, cfg, resume=resume, overwrite=overwrite, dynamic=mode == "dynamic", callbacks=callbacks
    )
