"""What a loaded run reads of its folder besides its model: its metrics rows (``Run.history``) and the model's
weights in a training checkpoint (``Run.load(path, weights="checkpoint.safetensors")``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch
from torch import Tensor, nn

from . import files
from .config import RunConfig
from .config.parse import RESUMES, WRITTEN_BY
from .core.contract import VAEModule
from .errors import VaekitError
from .io import read_plain
from .run_compat import loaded_model
from .training.checkpoint import check_state, header, read_tensors
from .training.kept import number

WHOLE_COLUMNS = ("epoch", "skipped_steps", "best_epoch")  # counts: ints in a fit's rows, so in those read back


def read_history(run: Path) -> list[dict]:
    """The rows of ``run``'s metrics.csv as a fit's ``history`` holds them ({column: number}; a count an int): a
    cell that is empty (a column that began after a resume) or not a number is left out of its row. A file that
    cannot be read (missing, not a plain file, not a CSV): []."""
    try:
        text = read_plain(run / files.METRICS).decode("utf-8")  # a FIFO or /dev/zero: one line
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error, VaekitError):
        return []
    history = []
    for row in rows:
        values = {str(k): number(v) for k, v in row.items() if k is not None}  # None: a row's extra cells
        history.append(
            {k: int(v) if k in WHOLE_COLUMNS and v.is_integer() else v for k, v in values.items() if v is not None}
        )
    return history


def train_stretches(saved: object) -> list[tuple[int, int, dict]]:
    """Each stretch of a run's training between the resumes that changed its settings, oldest first, from its
    config.json dict ``saved``: (the first epoch it trained, 1-based; the batches of that epoch trained before it;
    its train settings). ``saved["train"]`` holds the last stretch's settings and ``written_by.resumes`` each
    change's [old, new] (``training.resumes``), so the earlier ones are found walking back. [] where ``saved``
    holds no train table; a record that is not one (a file edited by hand) is left out."""
    train = saved.get("train") if isinstance(saved, dict) else None
    if not isinstance(saved, dict) or not isinstance(train, dict):
        return []
    written = saved.get(WRITTEN_BY)
    records = written.get(RESUMES) if isinstance(written, dict) else None
    later, now = [], dict(train)
    for record in reversed(records if isinstance(records, list) else []):
        try:
            epoch, batch = int(record["epoch"]), int(record["batch"])
            before = {str(k).removeprefix("train."): old for k, (old, _) in record["changed"].items()}
        except (LookupError, TypeError, ValueError, AttributeError):
            continue
        later.append((epoch, batch, now))
        now = now | before
    return [(1, 0, now), *reversed(later)]


def checkpoint_model(path: Path) -> dict[str, Tensor] | None:
    """The model's tensors of the training checkpoint at ``path`` (its ``model.*``, named as the model names them;
    the last step's weights, not an EMA average), or None where ``path`` is no checkpoint (a weights file)."""
    found = header(path)
    if found is None or "state" not in found[1] or not any(k.startswith("model.") for k in found[0]):
        return None
    tensors, _ = read_tensors(path)  # its checksum verified
    return {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}


def loaded(run: Path, weights: str, skeleton: nn.Module | None, where: torch.device) -> tuple[RunConfig, VAEModule]:
    """``run_compat.loaded_model``'s (config, model) with the weights file ``weights`` of the folder ``run``, or
    where it names a training checkpoint, the model's weights in it (built with the kept ones first)."""
    checkpoint = checkpoint_model(run / weights)
    cfg, model = loaded_model(run, files.WEIGHTS if checkpoint is not None else weights, skeleton, where)
    if checkpoint is not None:
        check_state(model, checkpoint, run / weights)  # another model's: named as such
        model.load_state_dict(checkpoint)
    return cfg, model


def stale_files(run: Path, digest: str) -> list[str]:
    """``Run.stale_files`` of the folder ``run`` for weights of ``digest``: the derived files there that record
    other weights."""
    names = (*files.DERIVED_FILES, files.SAMPLES, files.RECONSTRUCTIONS)
    named = {*names, *files.TRAINING_FILES}  # loss.png: the metrics' picture
    found = {n: files.stamp(run / n) for n in names if (run / n).is_file()}  # unstamped: stale
    pngs = (p for p in sorted(run.glob("*.png")) if p.name not in named)
    others = (*pngs, *files.others(run))  # other data's (eval-DATA-SPLIT.json, ...)
    found |= {p.name: d for p in others if (d := files.stamp(p)) is not None}  # the user's own: not ours
    return [n for n, d in found.items() if d != digest]
