"""What the entry points that read a run's model share (``Run.sample``, ``encode``, ``reconstruct``,
``vaekit.evaluate``, the pictures): the model in eval mode and without gradients for the call (``reading``),
outputs refused in one line where they are not finite (``finite``), the digest of a run folder's weights
read without building its model (``weights_digest``: ``vaekit curves``), and how its training went (``trained``:
``Run``'s repr)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from . import files
from .config import TrainConfig
from .core.contract import evaluating
from .errors import NotFinite
from .models.temperature import Temperature
from .run_compat import earlier_layout
from .training.checkpoint import read_tensors, tensor_digest
from .training.early_stop import judge
from .training.kept import kept_of, number
from .training.state import LoopState, at_patience, recorded_state

F = TypeVar("F", bound=Callable[..., Any])


def reading(fn: F) -> F:
    """``fn(run, ...)`` (a run, or anything with a ``model``) under ``torch.no_grad`` with ``run.model`` in eval
    mode (``core.contract.evaluating``: dropout off, BatchNorm's running statistics read and not moved), its mode
    as it was after the call: a model a user is fine-tuning (``model.train()``) is read as trained."""

    @functools.wraps(fn)
    def read(run: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad(), evaluating(run.model):
            return fn(run, *args, **kwargs)

    return cast(F, read)


def finite(x: Tensor, what: str, temperature: Temperature = 1.0) -> Tensor:
    """``x`` if its values are all finite, else one line: the model's outputs are not (a run that diverged, or
    draws at a ``temperature`` other than 1 that took the codes too far)."""
    if not torch.isfinite(x).all():
        why = (f"temperature {temperature} drew codes too far out, or " if temperature != 1 else "") + "the model"
        bad = int((~torch.isfinite(x)).sum())
        raise NotFinite(f"{what}: {bad} of {x.numel()} values are NaN or infinite: {why} diverged (its metrics.csv)")
    return x


def weights_digest(run: Path) -> str | None:
    """``Run.digest`` of the folder ``run``'s kept weights (model.safetensors), read without building the model
    (whose classes may be the user's, at hand only in their script): the SHA-256 of the file's tensors, checked
    against the one it records, as a loaded model's state holds them. None where loading would change them (a
    float width other than float32, cast to the model's; an earlier vaekit's layout) or the folder is a
    multi-scale detector's: ``Run.load`` then says."""
    if (run / files.SCALES).is_file():
        return None
    tensors, meta = read_tensors(run / files.WEIGHTS)  # a missing or damaged file: one line
    if {v.dtype for v in tensors.values() if v.is_floating_point()} - {torch.float32} or earlier_layout(tensors):
        return None
    return meta.get("sha256") or tensor_digest(tensors)


def trained(path: Path | None, rows: list[dict], t: TrainConfig) -> str:
    """``Run``'s repr of its training: "epochs='7 of 20', best_epoch=4, best_val_loss=196.96, ended='stopped early'"
    from its metrics ``rows`` (one per epoch trained), ``t`` (config.json's train: the epochs planned) and the run
    folder ``path`` (None: a fit without one); the kept weights' epoch and validation loss ('?' where unknown)."""
    kept = kept_of(rows)
    best = "best_epoch=?, best_val_loss=?" if kept is None else f"best_epoch={kept[0]}, best_val_loss={kept[1]:.2f}"
    return f"epochs='{len(rows)} of {t.epochs}', {best}, ended={ended(path, rows, t)!r}"


def ended(path: Path | None, rows: list[dict], t: TrainConfig) -> str:
    """How training ended: "interrupted mid-epoch" (the folder's newest checkpoint stands inside an epoch),
    "reached its epochs" (``t.epochs``), "stopped early" (``train.patience`` met at an epoch's end, as
    ``training.state.at_patience`` tells it from the loop state the checkpoint records: ``recorded_state``; with
    no checkpoint, a fit without a folder, the epochs' ``rows`` judged again), else "interrupted" (after an epoch:
    by a signal or an error, or still training)."""
    state = recorded_state(path) if path is not None else None
    if state is not None and state.get("batch"):
        return "interrupted mid-epoch"
    if len(rows) >= t.epochs:
        return "reached its epochs"
    if state is None:  # judged as the loop judged each epoch's val_loss (early_stop.judge)
        s = LoopState()
        for row in rows:
            if (value := number(row.get("val_loss"))) is not None:
                judge(s, value, t.min_delta)
        state = {"bad_epochs": s.bad_epochs}
    return "stopped early" if at_patience(t, 0, int(state.get("bad_epochs", 0))) else "interrupted"
