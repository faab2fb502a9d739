"""Which epoch's weights a run keeps, as the trainer records it in every metrics.csv row (``best_epoch``,
``best_val_loss``), and the lines that say so and where a resume goes on."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

KEPT = ("best_epoch", "best_val_loss")  # metrics.csv's columns: the kept weights' epoch and val_loss after each epoch


def number(value: object) -> float | None:
    """A metrics value as a float: a number, or a metrics.csv cell's text; None where empty or not a number."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def kept_of(rows: Sequence[Mapping]) -> tuple[int, float] | None:
    """(epoch, val_loss) of the weights a run keeps after ``rows`` (metrics rows, numbers or metrics.csv's text):
    the last row's ``best_epoch`` where the trainer recorded it, so a best validation loss a resume set aside
    (another objective, another number of processes) is not read back; a run from before that column, the
    trainer's pick over ``val_loss`` (the first epoch, then each with a lower one than all before it). None: no
    epochs, no val_loss."""
    last = rows[-1] if rows else {}
    epoch, loss = number(last.get(KEPT[0])), number(last.get(KEPT[1]))
    if epoch is not None and not math.isnan(epoch):
        return int(epoch), math.nan if loss is None else loss
    at: tuple[int, float] | None = None
    for row in rows:
        value, epoch = number(row.get("val_loss")), number(row.get("epoch"))
        if value is not None and epoch is not None and (at is None or value < at[1]):
            at = int(epoch), value
    return at


def kept_columns(rows: Sequence[Mapping], improved: bool) -> dict[str, float]:
    """The ``KEPT`` columns of the last of ``rows`` (its epoch just ended): its own epoch and val_loss where its
    weights were kept (``improved``), else the kept ones before it."""
    if improved or len(rows) < 2:
        return {KEPT[0]: rows[-1]["epoch"], KEPT[1]: rows[-1]["val_loss"]}
    epoch, loss = kept_of(rows[:-1]) or (rows[-1]["epoch"], rows[-1]["val_loss"])
    return {KEPT[0]: epoch, KEPT[1]: loss}


def kept_line(rows: Sequence[Mapping]) -> str:
    """The line that names the kept weights after ``rows``: "kept epoch 8's weights (val loss 25.01)"; "" where
    there are none."""
    found = kept_of(rows)
    return "" if found is None else f"kept epoch {found[0]}'s weights (val loss {found[1]:.2f})"


def resume_line(epoch: int, batch: int, batches: int, epochs: int) -> str:
    """Where a resumed run goes on: its last checkpoint's ``epoch`` (epochs done of ``epochs``) and ``batch``
    (batches done of the next epoch's ``batches``); steps a stopped run took after it are trained again."""
    after = f", after batch {batch} of {batches}" if batch else ""
    return f"resuming at epoch {epoch + 1}/{epochs}{after}, from the last checkpoint"
