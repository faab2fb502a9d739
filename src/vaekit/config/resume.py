"""What a resumed run may change: the one rule the CLI (``--resume``) and the Python API (``resume=True``) share."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields

from ..errors import VaekitError
from .checks import given
from .conflicts import refuse_conflicts
from .formats import note
from .schema import RunConfig

# how a resumed run's data is read may change (the files moved, more workers), and how its model spends memory
# (recomputing activations: the same weights, bit for bit); nothing else of its model, its items and their split,
# its batches and its seed may: the checkpoint's weights and position rest on them
MEMORY = ("model.checkpoint_cells",)
RESUME_MAY_CHANGE = frozenset({"data.spec", "data.data_dir", "data.in_memory", "data.workers", "data.cache", *MEMORY})
# schedules counted from a run's first epoch, whose epochs so far trained on the old one: a change on resume
# would act as if the run had followed it from the start (a longer warm-up cuts the KL weight back), or not at
# all (a warm-up over before the resume), so it is refused
SCHEDULES = {
    "train.warmup_epochs": "KL warm-up",
    "train.dimwise_warmup_epochs": "dimension-wise warm-up",
    "train.capacity_epochs": "capacity schedule",
}


def resume_keys(cfg: RunConfig) -> list[str]:
    """The settings a resumed run keeps: its model and data sections (but RESUME_MAY_CHANGE), seed, batch size."""
    kept = [f"{s}.{f.name}" for s in ("model", "data") for f in fields(getattr(cfg, s))]
    return [k for k in [*kept, "train.seed", "train.batch_size"] if k not in RESUME_MAY_CHANGE]


def keep_settings(saved: RunConfig, asked: RunConfig, keys: Iterable[str] | None = None) -> None:
    """Refuse, in one line, a resumed run's setting (of ``keys``, default ``resume_keys``, and ``SCHEDULES``) that
    ``asked`` changes.

    A setting ``asked`` leaves to the data ('auto', no input shape or class count) takes what it settled on; a
    model setting that may change (``MEMORY``) is held to the conflicts table (checkpoint_cells: family deep)."""
    for key in resume_keys(saved) if keys is None else keys:
        section, name = key.split(".")
        old, new = (getattr(getattr(c, section), name) for c in (saved, asked))
        if old != new and not _unresolved(key, new):
            raise VaekitError(
                f"{key}: a resumed run keeps what its checkpoint rests on ({note(key, old, saved.stored)}, {new!r} "
                "asked); train a new run (another out folder) to change it",
                key=key,
            )
    for key in SCHEDULES:  # config.json's, for a checkpoint that records none (``keep_recorded``)
        name = key.removeprefix("train.")
        keep_schedule(key, getattr(saved.train, name), getattr(asked.train, name))
    refuse_conflicts(asked, only=MEMORY)  # a resume checks the train section only: these are the model's


def take_derived(saved: RunConfig, asked: RunConfig) -> RunConfig:
    """``asked`` with the model sizes training derives left to the run: the deep hierarchy's latent size and
    (empty) widths, which training records from its deep_* settings; a config (its preset) that does not give
    them takes ``saved``'s, so a resume from the config it was trained with keeps them. Edits ``asked``."""
    if asked.model.family == saved.model.family == "deep" and asked.model.net != "custom":
        for name in ("latent_dim", "hidden", "channels"):
            if not given(asked, f"model.{name}"):
                setattr(asked.model, name, getattr(saved.model, name))
    return asked


def keep_schedule(key: str, old: object, new: object) -> None:
    """Refuse, in one line, a resumed run's schedule (``SCHEDULES``) ``key`` changed from ``old`` to ``new``."""
    if old != new:
        raise VaekitError(
            f"{key}: a resumed run keeps its {SCHEDULES[key]} ({old!r} epochs, {new!r} asked): it counts from the "
            "run's first epoch, and the epochs trained so far followed the old one, so the new one would not act as "
            "asked; train a new run (another out folder) to change it",
            key=key,
        )


def recorded(cfg: RunConfig) -> dict:
    """The values (as JSON) of the settings a resumed run keeps (``resume_keys``, ``SCHEDULES``): what its
    checkpoints record."""
    values = {k: getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1]) for k in [*resume_keys(cfg), *SCHEDULES]}
    return json.loads(json.dumps(values))  # as a checkpoint reads it back: tuples as lists


def keep_recorded(record: dict, cfg: RunConfig) -> dict:
    """Refuse, in one line, a setting of a resumed run's ``cfg`` (its config.json, flags over it, settled) other
    than the checkpoint's ``record`` of it (``recorded``; {} or a key it lacks, an earlier vaekit's: unchecked);
    returns ``cfg``'s record, which the run's checkpoints carry from now on. Networks from Python (model.net
    'custom': the model given, or model.json) are their own record of the model: its settings are not checked."""
    now = recorded(cfg)
    for key, old in record.items():
        if key in SCHEDULES:
            keep_schedule(key, old, now[key])
            continue
        described = key.startswith("model.") and now.get("model.net") == "custom"
        if key in now and now[key] != old and not (described or _unresolved(key, now[key])):
            raise VaekitError(
                f"{key}: config.json differs from what the checkpoint was trained with ({old!r} then, {now[key]!r} "
                "now): a resumed run keeps what its checkpoint rests on; put it back, or train a new run (another out "
                "folder) to change it",  # no key: a flag cannot mend the file (the CLI names none)
            )
    return now


def _unresolved(key: str, value: object) -> bool:
    """A setting left for the data to settle: 'auto', or the input shape and class count read from the data."""
    return value == "auto" or (key in ("model.input_shape", "model.num_classes") and not value)
