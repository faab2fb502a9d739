"""The run folder as training writes it: config.json, model.json, weights, checkpoints and metrics.csv, and how a
run's model is rebuilt from them. Every file name comes from ``vaekit.files``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn

from .. import files, logs
from ..config import FORMAT, RunConfig, load_json_config, settings_from, validate
from ..config.parse import WRITTEN_BY, recorded_progress, written_by
from ..core.contract import VAEModule, check_model
from ..data.tables import TableSchema
from ..errors import VaekitError
from ..files import checkpointed as checkpointed  # re-exported (training.fit)
from ..io import atomic_write_json, read_json, run_lock, write_error
from ..models import build_model
from ..models.spec import build, check_structure, module_classes
from ..models.spec_check import other_likelihood, rebuildable_spec, resumed_difference
from ..models.standardized import Standardized
from .checkpoint import ANOTHER_MODEL, OtherModel, load_weights, read_tensors, tensor_digest
from .describe import CUSTOM, WHOLE
from .describe import ZOO_SETTINGS as ZOO_SETTINGS  # re-exported (api)
from .resumes import RESUMES, resumed_record
from .sizes import built, check_modules, held_to_weights
from .state import refuse_damaged


def start_run(out: str | Path, resume: bool, overwrite: bool, stack: ExitStack) -> Path:
    """Check the run folder and take its lock (held until ``stack`` closes): a new run must not overwrite
    another by accident, nor a file of the user's that shares a name with one of vaekit's, a resumed one needs a
    checkpoint, and one process writes a folder at a time.

    ``overwrite`` then removes every file vaekit wrote there (``clear``); other files stay.
    """
    run = Path(out)
    afresh = refuse_out(run, resume, overwrite)
    stack.enter_context(run_lock(run))
    if resume:
        refuse_damaged(run / files.WEIGHTS)
    remove(run, list(run.glob(".*.tmp")))  # writes that a killed run left half done
    if afresh:
        clear(run)
    return run


def refuse_out(run: Path, resume: bool, overwrite: bool) -> bool:
    """Refuse a folder that training may not write (``start_run``'s checks, no lock taken: ``api.train`` makes
    them before the data is read); returns whether the run starts afresh, its vaekit files removable."""
    afresh = not resume and (overwrite or unstarted(run))
    if resume and not checkpointed(run):
        raise VaekitError(f"{run}: no {files.CHECKPOINT} to resume from", key="resume")
    if not resume and is_run(run) and not afresh:
        raise VaekitError(f"{run}: already holds a run; resume it or overwrite it", key="overwrite")
    if not resume and (run / files.SCALES).is_file():  # which the verbs would read instead of the run
        raise VaekitError(f"{run}: holds a multi-scale anomaly detector ({files.SCALES}): train elsewhere", key="out")
    if not resume:
        refuse_foreign(run)
    return afresh


def is_run(run: Path) -> bool:
    """Whether ``run`` holds vaekit's config.json (a table of data, model and train settings): a run folder, not
    a folder where a file of the user's shares that name."""
    try:
        config = read_json(run / files.CONFIG)
    except (OSError, ValueError):  # ValueError: VaekitError, not JSON (too deep, not UTF-8)
        return False
    return isinstance(config, dict) and {"data", "model", "train"} <= config.keys()


def written_by_vaekit(path: Path, in_run: bool) -> bool:
    """Whether vaekit wrote ``path``: it records the weights digest (``files.stamp``: derived files, pictures),
    or it is one of training's files in a run folder (``in_run``). Files that carry no digest (metrics.csv,
    weights, config.json) cannot be told: outside a run folder they are taken to be the user's."""
    return files.stamp(path) is not None or (in_run and path.name in files.TRAINING_FILES)


def refuse_foreign(run: Path) -> None:
    """Refuse a new run in ``run`` where training would write over a file vaekit did not write."""
    in_run = is_run(run)
    for path in [run / name for name in files.TRAINING_FILES]:
        if (path.exists() or path.is_symlink()) and not written_by_vaekit(path, in_run):
            raise VaekitError(
                f"{path}: not a file of a vaekit run, and training would write over it; move it or choose "
                "another folder",
                key="out",
            )


def unstarted(run: Path) -> bool:
    """Whether ``run`` holds the files of a start killed before its first checkpoint: nothing to resume, nothing
    to keep (a new run starts there afresh). Best weights without a checkpoint count as a run: a finished run
    whose checkpoints were deleted looks the same, and is never cleared but by overwrite. (A start that fails
    before its first checkpoint removes its files itself: ``fit._cleared_on_failure``.)"""
    kept = (files.CHECKPOINT, files.PREVIOUS_CHECKPOINT, files.WEIGHTS)
    return not any((run / name).is_file() for name in kept) and is_run(run)


def clear(run: Path, started: bool = False) -> None:
    """Remove every file vaekit wrote in ``run`` (``written_by_vaekit``: training's in a run folder, or in one
    this process ``started``; derived files and pictures that record a weights digest; in a run folder the
    samplers' and TensorBoard's too, and pictures of any name that record its kept weights' digest: ``vaekit
    sample --out``'s); others, a report, eval.json or a picture of the user's or of another run, stay."""
    in_run = started or is_run(run)
    paths = [run / name for name in files.TRAINING_FILES + files.DERIVED_FILES] + files.others(run)
    globs = (files.TENSORBOARD_EVENTS, *files.SAMPLER_FILES) if in_run else ()
    named = [p for p in sorted(run.glob("*.png")) if p not in paths and files.stamp(p) is not None] if in_run else []
    digest = kept_digest(run) if named else None
    pictures = [p for p in named if files.stamp(p) == digest]  # another run's pictures stay
    found = [p for p in paths if p.is_file() and written_by_vaekit(p, in_run)] + pictures  # any name: a verb's --out
    remove(run, found + [p for pattern in globs for p in run.glob(pattern)])


def kept_digest(run: Path) -> str | None:
    """The digest of ``run``'s kept weights (model.safetensors), as the pictures of them record it; None: none."""
    try:
        tensors, meta = read_tensors(run / files.WEIGHTS)
    except VaekitError:  # missing or damaged: no picture is known to be of them
        return None
    return meta.get("sha256") or tensor_digest(tensors)


def remove(run: Path, paths: list[Path]) -> None:
    """Remove ``paths``, files of the folder ``run``; a folder the disk will not let change (read-only, forbidden)
    is one line (``io.WriteError``), found before any file goes (a file made and removed there first)."""
    if not paths:
        return
    try:
        fd, probe = tempfile.mkstemp(dir=run, prefix=".vaekit.", suffix=".tmp")  # start_run removes one left
        os.close(fd)
        os.unlink(probe)
        for path in paths:
            path.unlink(missing_ok=True)
    except OSError as e:
        raise write_error(run, e) from None


def write_run_files(
    run: Path,
    cfg: RunConfig,
    model: nn.Module,
    table: TableSchema | None = None,
    classes: list[str] | None = None,
    counts: list[int] | None = None,
) -> None:
    """config.json, and model.json for a model whose networks came from Python (``cfg.model.net == 'custom'``):
    its class and init arguments where they rebuild it, outputs too (``spec_check``), else why not, said at once
    where a spec builds another model (then it loads into a skeleton with the classes ``modules`` lists). A table's
    schema (``table``) goes to table.json with the numeric columns' loc and scale; a conditional run's class names
    (``classes``, label 0 first) to classes.json, its training items of each (``counts``) to class_counts.json.
    A resume's changed settings: ``resumes.resumed_record``."""
    if isinstance(model, Standardized):
        atomic_write_json(run / files.STANDARDIZE, {"loc": model.loc.tolist(), "scale": model.scale.tolist()})
    if table is not None:
        loc, scale = (model.loc.tolist(), model.scale.tolist()) if isinstance(model, Standardized) else ([], [])
        table.with_units(loc, scale).save(run / files.TABLE)
    if cfg.model.net == CUSTOM:  # model_class: the class of the model given (the one Standardized wraps)
        spec, reason, rebuilt = rebuildable_spec(model, cfg.model.input_shape, cfg.model.num_classes)
        if rebuilt:  # a spec that builds another model: the folder loads only into an instance of this one
            logs.warning(f"{run}: {reason}; the run then loads only as vaekit.load_run(path, model=...)")
        cls = type(model)
        record = {"class": f"{cls.__module__}:{cls.__qualname__}", "model_class": model_class(model), "spec": spec}
        atomic_write_json(run / files.MODEL, record | {"reason": reason, "modules": module_classes(model)})
    if classes:  # a conditional run's labels, or those of data an unconditional run was trained on
        atomic_write_json(run / files.CLASSES, {"classes": list(classes)})
    if counts:  # a conditional run's, named or not: its table rows draw their classes so
        atomic_write_json(run / files.COUNTS, {"counts": counts})
    settings = cfg.to_dict() | {"out": os.path.abspath(run)}  # the folder, from anywhere
    settings["train"]["progress"] = recorded_progress(run, cfg.train.progress)
    changes = {RESUMES: found} if (found := resumed_record(run, settings)) else {}  # a resume's, said in a line
    atomic_write_json(run / files.CONFIG, {"format": FORMAT, **settings, WRITTEN_BY: written_by() | changes})


def model_class(model: nn.Module) -> str:
    """'module:QualName' of ``model``'s class, or of the model a Standardized wraps."""
    cls = type(model.model if isinstance(model, Standardized) else model)
    return f"{cls.__module__}:{cls.__qualname__}"


def recorded_class(run: Path) -> str | None:
    """The class of the model a run was trained with, as its model.json records it; None where there is none."""
    try:
        saved: Any = read_json(run / files.MODEL)  # not a dict: AttributeError or TypeError below
        name = saved.get("model_class") or saved["class"]
        if name == f"{Standardized.__module__}:{Standardized.__qualname__}":  # written before model_class
            name = saved["spec"]["args"]["model"]["module"]["class"]  # the wrapped model's, where it rebuilds
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def resumes_class(run: str | Path | None, model: nn.Module, overwrite: bool) -> bool:
    """Whether ``model`` resumes the run in ``run`` as the class model.json records; a model of another class, or
    of other classes of submodules (``modules``: its encoder or decoder) is refused in one line naming both,
    unless ``overwrite`` (the same model, a class moved or renamed)."""
    saved, given = recorded_class(Path(run)) if run else None, model_class(model)
    if saved is not None and not overwrite and saved != given:
        why = f"its model.json records the class {saved}, and the model given is a {given}"
    elif saved is not None and not overwrite and (found := resumed_difference(model, Path(str(run)) / files.MODEL)):
        why = f"model.json records its networks, and {found}"  # its encoder or decoder is of another class
    else:
        return saved is not None
    also = "overwrite=True resumes it with this one (a class moved)"
    raise VaekitError(f"{run}: {why}: resume it with a model of its classes, or train a new run; {also}", key="resume")


class LazilyBuilt(Protocol):
    """A vaekit family whose layers are made on first use (``input_shape`` None until then)."""

    def build(self, shape: Sequence[int]) -> object: ...


def rebuild_model(run: Path, cfg: RunConfig, skeleton: nn.Module | None = None) -> VAEModule:
    """The run's model with fresh weights: ``skeleton`` (built for the run's item shape if it builds lazily), else
    model.json's spec for Python-built networks, else the built-in networks ``cfg.model`` names: also a family its
    settings build whole (``describe.WHOLE``) without model.json (a fit run trained anew: ``vaekit train --config``)."""
    if skeleton is not None:
        model = check_model(skeleton)
        if getattr(model, "input_shape", ()) is None:  # a lazily built vaekit family
            cast(LazilyBuilt, model).build(cfg.model.input_shape)
        model = standardized(model, cfg, run)
        if note := check_structure(model, run / files.MODEL):  # model.json's classes, in order; one moved: said
            logs.note(note)
        return model
    if cfg.model.net != CUSTOM or (cfg.model.family in WHOLE and not (run / files.MODEL).exists()):
        with settings_from(run / files.CONFIG):
            return standardized(build_model(cfg.model), cfg, run)
    try:
        saved = read_json(run / files.MODEL, "the model's description")
    except OSError as e:
        why = "missing" if isinstance(e, FileNotFoundError) else f"cannot read the model's description ({e})"
        raise VaekitError(f"{run / files.MODEL}: {why}") from None
    if not isinstance(saved, dict) or "spec" not in saved:
        raise VaekitError(f"{run / files.MODEL}: malformed (not an object of the model's class, spec and reason)")
    if not saved["spec"]:
        what, why = saved.get("class", "its class"), saved.get("reason", "")
        raise VaekitError(
            f"{run}: the model ({what}) cannot be rebuilt from the run folder ({why}); load it into "
            "an instance of the same architecture: vaekit.load_run(path, model=...)"
        )
    check_modules(saved["spec"], str(run / files.MODEL))  # at most MAX_MODULES, before any is built
    return check_model(build(saved["spec"], str(run / files.MODEL)))


def standardized(model: VAEModule, cfg: RunConfig, run: Path | None = None) -> VAEModule:
    """``model`` inside the Standardized wrapper its run was trained in (loc and scale come with the weights;
    a table's categories from its table.json in ``run``)."""
    if cfg.data.standardize != "true" or isinstance(model, Standardized):
        return model
    shape = tuple(cfg.model.input_shape)
    table = run / files.TABLE if run is not None else None
    categories = TableSchema.load(table).categories if table is not None and table.is_file() else ()
    return cast(VAEModule, Standardized(model, torch.zeros(shape), torch.ones(shape), categories))  # meets the contract


def load_run_model(
    run: Path, weights: str = files.WEIGHTS, skeleton: nn.Module | None = None
) -> tuple[RunConfig, VAEModule]:
    """(config, model with ``weights`` loaded) of a run folder."""
    run = Path(run)
    if not run.is_dir():
        raise VaekitError(f"{run}: " + ("a file, not a run folder" if run.exists() else "run folder not found"))
    cfg = load_json_config(run / files.CONFIG)
    unfinished = checkpointed(run) and not (run / files.METRICS).exists()  # stopped in epoch 1: no epoch's row
    if weights == files.WEIGHTS and not (run / weights).exists() and unfinished:  # else: the weights went missing
        raise VaekitError(f"{run}: the run has not finished an epoch yet; resume its training", key="resume")
    with settings_from(run / files.CONFIG):
        validate(cfg)
    if skeleton is None:
        check_size(run, cfg, run / weights)
    names = "the model given" if skeleton else "model.json" if cfg.model.net == CUSTOM else ""
    model = built(run, names, lambda: rebuild_model(run, cfg, skeleton))  # a fault: one line naming the files
    try:
        load_weights(model, run / weights)
    except OtherModel as e:  # of the model config.json builds; a skeleton's as it is, unless of another likelihood
        why = other_likelihood(model, cfg.model.likelihood) if skeleton is not None else None
        if skeleton is not None and not why:
            raise
        why = why or f"the weights are of another model than the one config.json builds ({e.detail}): {ANOTHER_MODEL}"
        raise VaekitError(f"{run / weights}: {why}") from None
    return cfg, model


def check_size(run: Path, cfg: RunConfig, weights: Path) -> None:
    """Refuse, before anything is allocated, a config.json (or model.json) that builds a model larger than the
    weights saved beside it (``sizes.held_to_weights``: built on the meta device first), or weights that cannot be
    read as safetensors."""
    held_to_weights(run, weights, lambda: rebuild_model(run, cfg))
