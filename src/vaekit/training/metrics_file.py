"""A run's metrics.csv: one row per epoch of its train and validation means (``metrics_row``), the file rewritten
whole and atomically after every epoch (``write_metrics``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .. import files
from ..io import atomic_write_text

FIELDS = ["epoch", "train_loss", "train_rec", "train_kl", "val_loss", "val_rec", "val_kl"]
FIELDS += ["beta", "lr", "seconds", "samples_per_s"]


def write_metrics(run: Path, rows: list[dict]) -> None:
    """metrics.csv, one row per epoch, rewritten whole (atomically) after every epoch."""
    buf = io.StringIO()
    # models with several latent levels add train_kl_l / val_kl_l columns (l = 1 next to the data); the rows of a
    # run resumed from an older vaekit may lack a later column: left empty there
    extra = dict.fromkeys(k for row in rows for k in row if k not in FIELDS)
    writer = csv.DictWriter(buf, fieldnames=FIELDS + list(extra), restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run / files.METRICS, buf.getvalue())


def metrics_row(epoch: int, tr: dict, va: dict, lr: float, seconds: float, n: int) -> dict:
    """One metrics.csv row from the train and validation means of an epoch (0-based ``epoch``); ``n`` items
    trained in its ``seconds``."""
    values = [tr["loss"], tr["rec"], tr["kl"], va["loss"], va["rec"], va["kl"], tr["beta"], lr, seconds]
    row = dict(zip(FIELDS, [epoch + 1, *values, n / max(seconds, 1e-9)]))
    if len(tr["kl_levels"]) > 1:  # per level, l = 1 at the bottom (the lists run top to bottom)
        for part, terms in (("train", tr), ("val", va)):
            row.update({f"{part}_kl_{level}": v for level, v in enumerate(terms["kl_levels"][::-1], 1)})
    return {k: v if k == "epoch" else float(f"{v:.9g}") for k, v in row.items()}  # 9 digits: float32 round-trips
