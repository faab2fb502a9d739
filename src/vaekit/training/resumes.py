"""What a resume changed: the training settings it trains on that differ from those config.json recorded, said in
one line and kept in config.json, which then holds the settings of the run's last stretch and, under
``written_by``, the record of each earlier one (``RESUMES``)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import files
from ..config.formats import shown
from ..io import read_json
from . import distributed
from .state import recorded_state

RESUMES = "resumes"  # config.json's written_by[RESUMES]: a list of {"epoch", "batch", "changed": {key: [old, new]}}

# when a run stops, and how it is shown, saved and placed, not what its epochs train: a change goes unrecorded
# (a longer train.epochs or train.patience is what a resume is for; metrics.csv shows the epochs trained)
STOPS = ("epochs", "patience", "min_delta", "max_bad_steps")
SHOWN = ("progress", "tensorboard", "device", "threads", "compile")  # how it is shown, logged and run
UNRECORDED = (*STOPS, *SHOWN, "checkpoint_every", "checkpoint_minutes")


def changed_settings(before: object, after: dict) -> dict[str, list]:
    """``{"train.lr": [old, new], ...}``: the train settings of config.json's dict ``after`` other than in the
    config.json dict ``before`` (a setting ``before`` lacks, an earlier vaekit's, is left out)."""
    old = before.get("train") if isinstance(before, dict) else None
    new = json.loads(json.dumps(after["train"]))  # as config.json holds them: tuples as lists
    if not isinstance(old, dict):
        return {}
    return {f"train.{k}": [old[k], v] for k, v in new.items() if k in old and old[k] != v and k not in UNRECORDED}


def resumed_record(run: Path, settings: dict) -> list[dict]:
    """The record of a resumed run's settings changes (config.json's earlier one, and this resume's where the
    ``settings`` it trains on differ from config.json's, said in one line); [] for a new run."""
    state = recorded_state(run)
    try:
        before = read_json(run / files.CONFIG) if state is not None else None
    except (OSError, ValueError):  # ValueError: VaekitError, not JSON: nothing to compare with
        before = None
    if before is None or state is None:
        return []
    written = before.get("written_by") if isinstance(before, dict) else None
    earlier = written.get(RESUMES) if isinstance(written, dict) else None
    earlier = earlier if isinstance(earlier, list) else []  # none (a first change), or a file edited by hand
    changed = changed_settings(before, settings)
    if not changed:
        return earlier
    epoch, batch = int(state.get("epoch", 0)) + 1, int(state.get("batch", 0))  # the first epoch trained so
    distributed.warn(change_line(changed, epoch, batch))
    return [*earlier, {"epoch": epoch, "batch": batch, "changed": changed}]


def change_line(changed: dict[str, list], epoch: int, batch: int) -> str:
    """The line of a resume that changes settings: each ``old -> new``, and from where they train."""
    where = f"epoch {epoch}" + (f", batch {batch + 1}" if batch else "")  # ``batch``: those trained before
    each = ", ".join(f"{k} {shown(old)} -> {shown(new)}" for k, (old, new) in changed.items())
    record = f"config.json records each change, from its epoch, under written_by.{RESUMES}"
    return f"resumed with other settings from {where} on: {each}; {record}"
