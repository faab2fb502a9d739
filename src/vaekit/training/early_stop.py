"""Early stopping on the validation loss: which epoch's weights a run keeps (the lowest validation loss), which
epochs count for ``train.patience`` (those without one better by more than ``train.min_delta``), and the lines
that say how a run ended: stopped early, or at its last epoch with its epochs all trained; an epoch whose
validation loss is not finite is never kept, and where no epoch has a finite one the run stops (diverged)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..config import TrainConfig
from . import distributed
from .first_step import TrainingStopped
from .kept import kept_line, number
from .state import LoopState


def judge(s: LoopState, val_loss: float, min_delta: float) -> bool:
    """Book an epoch's ``val_loss`` in ``s``; returns whether its weights are kept: the lowest validation loss so
    far (the first finite one always). ``s.bad_epochs`` counts the epochs since one below ``s.patience_val`` (the
    loss patience counts from) by more than ``min_delta``, which then becomes it (as Lightning's EarlyStopping):
    a smaller gain, such as a validation estimate's noise, keeps the weights but not the patience. A loss that is
    not finite (NaN, inf) is never kept nor better: a later finite one replaces it (``refuse_diverged`` says so)."""
    if not math.isfinite(val_loss):
        s.bad_epochs += 1
        return False
    improved = val_loss < s.best_val or not math.isfinite(s.best_val)  # inf: none yet (NaN: an older run's pick)
    if improved:
        s.best_val = val_loss
    if val_loss < s.patience_val - min_delta or not math.isfinite(s.patience_val):
        s.patience_val, s.bad_epochs = val_loss, 0
    else:
        s.bad_epochs += 1
    return improved


def refuse_diverged(rows: Sequence[Mapping], lr: float) -> None:
    """Say, where the last of ``rows`` (metrics rows, the epoch that just ended) has a validation loss that is
    not finite, that its weights are not kept (one warning line), or where no epoch before it had a finite one,
    stop the run in one line (nothing of the epoch written: no weights to keep), naming train.lr (``lr``)."""
    epoch, value = rows[-1]["epoch"], rows[-1]["val_loss"]
    if math.isfinite(value):
        return
    if not any(math.isfinite(number(r.get("val_loss")) or math.nan) for r in rows[:-1]):
        raise TrainingStopped(
            f"training stopped: the run diverged at epoch {epoch}: validation loss {value} is not finite and no "
            f"epoch so far has a finite one, so there are no weights to keep; lower train.lr (now {lr:g})",
            key="train.lr",
        )
    kept = kept_line(rows[:-1])
    distributed.warn(
        f"epoch {epoch}: validation loss {value} is not finite: its weights are not kept as best"
        + (f" ({kept.replace('kept', 'keeping', 1)})" if kept else "")
    )


def by_more(min_delta: float) -> str:
    """ " (by more than train.min_delta D)" where ``min_delta`` > 0: what "better" asks of a validation loss."""
    return f" (by more than train.min_delta {min_delta:g})" if min_delta > 0 else ""


def without_better(n: int, min_delta: float) -> str:
    """The words "2 epochs without a better validation loss" (better by more than ``min_delta`` where > 0)."""
    return f"{n} epoch{'s' * (n != 1)} without a better validation loss{by_more(min_delta)}"


def already_line(s: LoopState, t: TrainConfig) -> str:
    """The line of a resume that finds ``train.patience`` met already (nothing to train), whether the run stopped
    early or trained all the epochs it was asked for then; the weights it keeps."""
    kept = kept_line(s.rows)
    said = f"already {without_better(s.bad_epochs, t.min_delta)}, at least train.patience {t.patience}"
    return f"{said}: nothing to train" + (f"; {kept}" if kept else "")


def end_line(s: LoopState, t: TrainConfig) -> str:
    """The line of a run that trained its last epoch (``train.epochs``): the weights it keeps, and where its last
    epochs brought no better validation loss for ``train.patience`` or more, that it reached its epochs so (it did
    not stop early)."""
    kept = kept_line(s.rows)
    if not (t.patience and s.bad_epochs >= t.patience):
        return kept
    said = f"reached train.epochs {t.epochs}, the last {without_better(s.bad_epochs, t.min_delta)}"
    return said + (f"; {kept}" if kept else "")
