"""Loss curves of a run: metrics.csv read as columns, drawn per epoch with the loss titled by its objective."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .. import files
from ..errors import VaekitError, is_number
from ..io import read_json, read_plain
from .plots import _figure, _save_figure

PLOT_LIMIT = 1e100  # metrics beyond this size are left out of the curves (their axis ticks overflow)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (an empty cell, a column that began after a resume: NaN)."""
    try:  # read_plain: a FIFO or /dev/zero in its place is one line, as for every file of a run folder
        rows = list(csv.DictReader(io.StringIO(read_plain(path).decode("utf-8"), newline="")))
        m = {k: np.array([float("nan" if r[k] == "" else r[k]) for r in rows]) for k in (rows[0] if rows else {})}
    except VaekitError:  # read_plain's line: not a plain file, too big
        raise
    except (OSError, UnicodeDecodeError, csv.Error, TypeError, ValueError) as e:  # TypeError: a short row
        raise VaekitError(f"{path}: not a vaekit metrics.csv ({e})") from None
    if "epoch" not in m:
        raise VaekitError(f"{path}: no epoch rows (not a vaekit metrics.csv?)")
    return m


def plot_losses(metrics_csv: str | Path, path: str | Path, train: dict | None = None) -> Path:
    """Loss, reconstruction and KL per epoch (``loss_figure``); ``train``: the run's train settings (None: those
    of the config.json beside ``metrics_csv``, {} where there is none)."""
    config = Path(metrics_csv).parent / files.CONFIG
    saved = read_json(config) if train is None and config.is_file() else {"train": train}
    given = saved.get("train") if isinstance(saved, dict) else None
    return _save_figure(loss_figure(read_metrics(metrics_csv), given if isinstance(given, dict) else {}), path)


def loss_figure(metrics: dict[str, np.ndarray], train: dict):
    """The curves of ``read_metrics``' columns, the loss titled by ``train``'s objective, a KL warm-up's epochs
    shaded (beta below its final value: their train loss weighs the KL less than validation's); values beyond
    ±PLOT_LIMIT (a diverged run's, a hand-edited file's: matplotlib cannot tick them) are left out."""
    from matplotlib.ticker import MaxNLocator

    m = {k: np.where(np.abs(v) <= PLOT_LIMIT, v, np.nan) for k, v in metrics.items()}
    fig, axes = _figure(3)
    beta, final = m.get("beta", np.full(len(m["epoch"]), np.nan)), train.get("beta")
    final = float(final) if isinstance(final, (int, float)) else np.nanmax(beta, initial=-np.inf)  # else the largest
    warm = m["epoch"][beta < final * (1 - 1e-6)]
    titles, shade = (loss_title(train), "reconstruction log p(x|z)", "KL(q(z|x) || p(z))"), "KL warm-up (train beta <"
    for ax, key, title in zip(axes, ("loss", "rec", "kl"), titles):
        for i, e in enumerate(warm):
            ax.axvspan(e - 0.5, e + 0.5, color="0.85", lw=0, label=None if i else f"{shade} {final:g})")
        for split, style in (("train", "-o"), ("val", "-s")):
            if f"{split}_{key}" in m:
                ax.plot(m["epoch"], m[f"{split}_{key}"], style, ms=3, label=split)
        ax.set(title=title, xlabel="epoch", ylabel="nats per item")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def loss_title(train: dict) -> str:
    """The loss panel's title: what ``train.objective`` (config.json's ``train``; {}: not known) minimises."""
    name, beta, c = train.get("objective"), train.get("beta", 1.0), train.get("capacity_max", 0)
    c = c if is_number(c) else 0
    if name is None or c > 0 or name != "elbo":
        return "loss (objective not recorded)" if name is None else f"loss: {'capacity' if c > 0 else name} objective"
    return "loss: -ELBO" if beta == 1 else f"loss: -(rec - {beta:g} KL)"
