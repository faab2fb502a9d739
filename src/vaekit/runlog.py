"""What the training loop writes into the run folder besides checkpoints: metrics.csv, summaries, pictures."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from .checkpoint import previous
from .data import Split
from .errors import VaekitError
from .io import atomic_write_text
from .plots import plot_losses, save_reconstructions, save_samples
from .run import CHECKPOINT, CONFIG, METRICS, WEIGHTS

FIELDS = ["epoch", "train_loss", "train_rec", "train_kl", "val_loss", "val_rec", "val_kl",
          "beta", "lr", "seconds", "samples_per_s"]
# files a new run replaces with --overwrite (TensorBoard event files are the logger's own business)
RUN_FILES = (CONFIG, WEIGHTS, CHECKPOINT, previous(CHECKPOINT).name, METRICS, "samples.png",
             "reconstructions.png", "loss.png", "eval.json", "report.html")


def start_run(out: str, resume: bool, overwrite: bool) -> Path:
    """Check the run folder: a new run must not overwrite another by accident; a resumed one needs a checkpoint."""
    run = Path(out)
    if resume:
        if not ((run / CHECKPOINT).is_file() or previous(run / CHECKPOINT).is_file()):
            raise VaekitError(f"{run}: no {CHECKPOINT} to resume from")
        for tmp in run.glob(".*.tmp"):  # a write that a killed run left half done
            tmp.unlink()
    elif (run / CONFIG).exists() and not overwrite:
        raise VaekitError(f"{run}: already holds a run; pass --resume to continue it or --overwrite to replace it")
    elif overwrite:
        for name in RUN_FILES:
            (run / name).unlink(missing_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    return run


def write_metrics(run: Path, rows: list[dict]) -> None:
    """metrics.csv, one row per epoch, rewritten whole (atomically) after every epoch."""
    buf = io.StringIO()
    # models with several latent levels add train_kl_l / val_kl_l columns (l = 1 next to the data)
    writer = csv.DictWriter(buf, fieldnames=FIELDS + [k for k in (rows[0] if rows else {}) if k not in FIELDS])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run / METRICS, buf.getvalue())


def metrics_row(epoch: int, tr: dict, va: dict, lr: float, seconds: float, n: int) -> dict:
    """One metrics.csv row from the train and validation means of an epoch (0-based ``epoch``)."""
    row = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_rec": tr["rec"], "train_kl": tr["kl"],
           "val_loss": va["loss"], "val_rec": va["rec"], "val_kl": va["kl"], "beta": tr["beta"], "lr": lr,
           "seconds": seconds, "samples_per_s": n / max(seconds, 1e-9)}
    if len(tr["kl_levels"]) > 1:  # per level, l = 1 at the bottom (the lists run top to bottom)
        for part, terms in (("train", tr), ("val", va)):
            row.update({f"{part}_kl_{l}": v for l, v in enumerate(terms["kl_levels"][::-1], 1)})
    return {k: v if k == "epoch" else float(f"{v:.6g}") for k, v in row.items()}


def summary(row: dict, epochs: int) -> str:
    """The one line printed after an epoch."""
    return (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.2f}  val {row['val_loss']:.2f} "
            f"(rec {row['val_rec']:.2f}, kl {row['val_kl']:.2f})  {row['seconds']:.1f}s  "
            f"{row['samples_per_s']:.0f} img/s")


@torch.no_grad()
def write_pictures(run: Path, split: Split, n: int = 64) -> None:
    """samples.png, reconstructions.png (from the best weights) and loss.png."""
    from .run import Run

    best = Run.load(run, device=str(split.x.device))
    if best.model.needs_labels:  # one row per class
        per_class = 8
        save_samples(best.sample_classes(per_class), run / "samples.png", nrow=per_class)
    else:
        save_samples(best.sample(n), run / "samples.png")
    xs, ys = split.x[:32], None if split.y is None else split.y[:32]
    save_reconstructions(xs.cpu(), best.reconstruct(xs, ys), run / "reconstructions.png")
    plot_losses(run / METRICS, run / "loss.png")
