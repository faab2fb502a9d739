"""Loss curves of a run: metrics.csv read as columns, drawn per epoch with the loss titled by its objective (by
stretch, where a resume changed it: each change marked)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .. import files
from ..config.formats import shown
from ..errors import VaekitError, is_number
from ..io import read_json, read_plain
from ..run_history import train_stretches
from ..training.val_loss import ANY, MEASURED
from .plots import _figure, _save_figure

PLOT_LIMIT = 1e100  # metrics beyond this size are left out of the curves (their axis ticks overflow)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (an empty cell, a column that began after a resume: NaN). vaekit writes it
    whole (atomically): a row of fewer or more fields than its header (cut short, edited) or a cell that is no
    number is refused in one line naming its line."""
    try:  # read_plain: a FIFO or /dev/zero in its place is one line, as for every file of a run folder
        reader = csv.reader(io.StringIO(read_plain(path).decode("utf-8"), newline=""))
        header, cells = next(reader, []), []
        for row in filter(None, reader):  # blank lines skipped, as csv.DictReader skips them
            if len(row) != len(header):
                cut = ": a row cut short" if len(row) < len(header) else ""
                raise ValueError(f"line {reader.line_num} has {len(row)} fields, the header {len(header)}{cut}")
            cells.append([_number(v, reader.line_num, k) for k, v in zip(header, row)])
        m = {k: np.array([r[j] for r in cells]) for j, k in enumerate(header if cells else [])}
    except VaekitError:  # read_plain's line: not a plain file, too big
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:
        raise VaekitError(f"{path}: not a vaekit metrics.csv ({e})") from None
    if "epoch" not in m:
        raise VaekitError(f"{path}: no epoch rows (not a vaekit metrics.csv?)")
    return m


def _number(cell: str, line: int, column: str) -> float:
    """metrics.csv's ``cell`` (on ``line``, in ``column``) as a float, an empty one NaN; else ValueError naming it."""
    try:
        return float("nan" if cell == "" else cell)
    except ValueError:
        raise ValueError(f"line {line}, column {column!r}: {cell!r} is not a number") from None


def plot_losses(metrics_csv: str | Path, path: str | Path, train: dict | None = None) -> Path:
    """Loss, reconstruction and KL per epoch (``loss_figure``), each resume that changed the loss marked
    (``mark_changes``, from the config.json beside ``metrics_csv``); ``train``: the run's train settings (None:
    that config.json's, {} where there is none)."""
    saved = _saved(Path(metrics_csv).parent / files.CONFIG, train)
    given = saved.get("train")
    m = read_metrics(metrics_csv)
    fig = loss_figure(m, given if isinstance(given, dict) else {})
    mark_changes(fig.axes[0], m["epoch"], train_stretches(saved))
    return _save_figure(fig, path)


def _saved(config: Path, train: dict | None) -> dict:
    """The dict of ``config`` (a run's config.json; {}: none, or unreadable where ``train`` is given), with
    ``train`` as its train settings where given."""
    try:
        saved = read_json(config) if config.is_file() else {}
    except VaekitError:  # not JSON: said where the settings come from it, else only its resumes go unread
        if train is None:
            raise
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    return saved if train is None else saved | {"train": train}


def loss_figure(metrics: dict[str, np.ndarray], train: dict):
    """The curves of ``read_metrics``' columns, the loss titled by ``train``'s objective, the epochs trained at
    another beta than the final one shaded (``shaded``: a KL warm-up's, a beta changed on resume); values beyond
    ±PLOT_LIMIT (a diverged run's, a hand-edited file's: matplotlib cannot tick them) are left out."""
    from matplotlib.ticker import MaxNLocator

    m = {k: np.where(np.abs(v) <= PLOT_LIMIT, v, np.nan) for k, v in metrics.items()}
    fig, axes = _figure(3)
    spans = shaded(m["epoch"], m.get("beta", np.full(len(m["epoch"]), np.nan)), train)
    titles = (loss_title(train), "reconstruction log p(x|z)", "KL(q(z|x) || p(z))")
    for ax, key, title in zip(axes, ("loss", "rec", "kl"), titles):
        for epochs, label, color in spans:
            for i, e in enumerate(epochs):
                ax.axvspan(e - 0.5, e + 0.5, color=color, lw=0, label=None if i else label)
        for split, style in (("train", "-o"), ("val", "-s")):
            if f"{split}_{key}" in m:
                ax.plot(m["epoch"], m[f"{split}_{key}"], style, ms=3, label=split)
        ax.set(title=title, xlabel="epoch", ylabel="nats per item")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # every value left out: no lines to name
            ax.legend(fontsize="small")
    return fig


def shaded(epoch: np.ndarray, beta: np.ndarray, train: dict) -> list[tuple[np.ndarray, str, str]]:
    """(epochs, legend label, colour) of the epochs (E,) whose metrics.csv beta (E,), each epoch's mean KL weight,
    is not the final one (``train``'s beta, else the last recorded): a KL warm-up's, below it within ``train``'s
    warmup_epochs (not known: the first epochs, their beta rising), whose train loss weighs the KL less than
    validation's; and the others, trained at a beta that a resume then changed (the loss there is of that beta)."""
    known, given, warmup = beta[np.isfinite(beta)], train.get("beta"), train.get("warmup_epochs")
    final = float(known[-1]) if len(known) else np.nan  # the last recorded, where the config gives none
    final = float(given) if isinstance(given, (int, float)) and is_number(given, finite=True) else final
    other = np.isfinite(beta) & (np.abs(beta - final) > 1e-6 * abs(final))
    below = other & (beta < final)
    if isinstance(warmup, (int, float)) and is_number(warmup):
        warm = below & (epoch - 1 < float(warmup))  # kl_weight's schedule: epoch e (1-based) starts at e - 1
    else:
        warm = np.cumprod(below & np.r_[beta[1:] > beta[:-1], True]).astype(bool)
    changed = other & ~warm
    was = ", ".join(f"{b:g}" for b in dict.fromkeys(np.round(beta[changed], 6)))
    return [
        (epoch[warm], f"KL warm-up (train beta < {final:g})", "0.85"),
        (epoch[changed], f"train beta {was}, changed to {final:g} on resume", "#f2dfc4"),
    ]


def mark_changes(ax, epoch: np.ndarray, stretches: list[tuple[int, int, dict]]) -> None:
    """On the loss panel ``ax`` of the epochs ``epoch`` (E,): a dashed line before each epoch from which a resume
    changed what the loss measures (``loss_settings``), the change named in the legend, and the title by the
    objective of each stretch drawn (``train_stretches``' (epoch, batch, settings), oldest first)."""
    known = epoch[np.isfinite(epoch)]
    ends = [s[0] - 1 for s in stretches[1:]] + [np.inf]  # a stretch's validation losses: its epochs to the next's
    drawn = [s for s, end in zip(stretches, ends) if len(known) and s[0] <= known.max() and end >= known.min()]
    kept: list[tuple[int, int, dict]] = drawn[:1]
    for e, b, train in drawn[1:]:
        if changes := loss_changes(kept[-1][2], train):
            where = f"from epoch {e}" + (f", batch {b + 1}" if b else "")  # a resume within epoch e
            ax.axvline(e - 0.5, color="0.35", ls="--", lw=1, label=f"{where}: {changes}")
            kept.append((e, b, train))
    if not kept:
        return
    names = [objective_name(s[2]) for s in kept]
    at = ", ".join(str(s[0]) for s in kept[1:])
    if len(kept) == 1:
        ax.set_title(loss_title(kept[0][2]))  # one stretch: perhaps not the last (a change not trained yet)
    elif len(kept) == 2 and None not in names and names[0] != names[1]:
        ax.set_title(f"loss: {names[0]} to epoch {kept[1][0] - 1},\n{names[1]} from epoch {kept[1][0]}")
    else:
        ax.set_title(f"loss (objective changed at epoch{'s' if len(kept) > 2 else ''} {at})")
    if len(kept) > 1:
        ax.legend(fontsize="small")


def loss_settings(train: dict) -> tuple[str, ...]:
    """The train settings the validation loss reads under ``train`` (``training.val_loss.measured``)."""
    c = train.get("capacity_max", 0)
    if is_number(c) and c > 0:
        return ("objective", "capacity_max", "gamma")
    return ("objective", "capacity_max", *MEASURED.get(str(train.get("objective")), ANY))


def loss_changes(before: dict, after: dict) -> str:
    """The settings of the loss that differ between two stretches' train settings ('beta 1 -> 2'; "": none)."""
    keys = dict.fromkeys((*loss_settings(before), *loss_settings(after)))
    show = lambda d, k: shown(d[k]) if k in d else "(not recorded)"  # noqa: E731
    return ", ".join(f"{k} {show(before, k)} -> {show(after, k)}" for k in keys if before.get(k) != after.get(k))


def objective_name(train: dict) -> str | None:
    """What ``train.objective`` (config.json's ``train``; {}: not known) minimises; None: not recorded."""
    name, beta, c = train.get("objective"), train.get("beta", 1.0), train.get("capacity_max", 0)
    c = c if is_number(c) else 0
    if name is None or c > 0 or name != "elbo":
        return None if name is None else f"{'capacity' if c > 0 else name} objective"
    return "-ELBO" if beta == 1 else f"-(rec - {beta:g} KL)"


def loss_title(train: dict) -> str:
    """The loss panel's title: what ``train.objective`` (config.json's ``train``; {}: not known) minimises."""
    name = objective_name(train)
    return "loss (objective not recorded)" if name is None else f"loss: {name}"
