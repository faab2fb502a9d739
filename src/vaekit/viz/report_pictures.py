"""The report page's pictures and their captions, each caption saying what its picture shows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data import Dataset, Split
from ..errors import is_number
from ..evaluation.active import ACTIVE_THRESHOLD
from ..runs import Run
from .curves import plot_losses
from .discrete_sweeps import sweep_picture
from .figures import (
    decoded_dims,
    discrete_family,
    encode_means,
    interpolate,
    path_layout,
    save_interpolation,
    save_traversal,
    top_dims,
    traverse,
)
from .latent_maps import latent_map
from .latent_walks import SNAPPED, evaluated_as, undrawn
from .plots import _figure, _save_figure, is_image, save_reconstructions, save_samples, table_columns
from .report_tables import eval_caption as eval_caption

KL_BARS = 200  # a level of up to this many dims gets a bar per dim; a wider one its KL per dim sorted, as an area
KL_COLUMNS = 3  # panels (levels) per row of the KL figure


def two_items(split: Split, same_label: bool = False) -> list[int]:
    """Two items to interpolate between: the first two with different labels (the same, for a conditional
    model, which decodes the path under one label), else 0 and 1."""
    if split.y is not None:
        other = ((split.y == split.y[0]) if same_label else (split.y != split.y[0]))[1:].nonzero() + 1
        if len(other):
            return [0, int(other[0])]
    return [0, 1]


def class_name(run: Run, data: Dataset, label: int) -> str:
    """How a caption names class ``label``: its name where the run (or the data) has names, else its number."""
    names = run.classes or data.classes
    return f"class {names[label]!r}" if names and 0 <= label < len(names) else f"class {label}"


def pictures(
    run: Run, data: Dataset, split: Split, folder: Path, metrics: Path, n_dims: int = 8, seed: int = 0
) -> list[tuple[str, Path | None]]:
    """Write every picture of the run (its curves from the CSV ``metrics``) into ``folder``, the random draws
    seeded with ``seed``; returns (caption, path) pairs in page order (path None: a line saying why pictures are
    left out). A conditional model's captions name the class each picture is drawn for."""
    torch.manual_seed(seed)
    x, y = split.x[:2000], None if split.y is None else split.y[:2000]
    y_in = y if run.model.needs_labels else None
    curves = plot_losses(metrics, folder / "curves.png", run.config.to_dict()["train"])
    out: list[tuple[str, Path | None]] = [("Loss, reconstruction and KL per epoch", curves)]
    images = is_image(tuple(x.shape[1:]))
    out.append(samples_picture(run, data, images, folder))
    xr = run.reconstruct(x[:32], None if y_in is None else y_in[:32])
    out.append(
        (
            "Inputs (odd rows) above their reconstructions"
            if images
            else "Each value of 32 items against its reconstruction, in standardised units (dashed: equal)",
            save_reconstructions(x[:32], xr, folder / "r.png", columns=table_columns(run)),
        )
    )
    if len(x) < 2:  # a path needs two ends, a map items to place against each other
        return [*out, (f"No interpolation, traversals or latent map: the split has {len(x)} item (they need 2)", None)]
    out.append(interpolation_picture(run, data, split, x, y_in, folder))
    discrete = discrete_family(run) is not None  # a categorical or VQ code: sweeps of its codes, not -3..3
    out.append(
        sweep_picture(run, x, n_dims, folder, table_columns(run))
        if discrete
        else traversal_picture(run, data, split, y_in, n_dims, folder)
    )
    out.append(
        (
            "Latent map of the posterior means" + ("" if y is None else ", coloured by label"),
            latent_map(run, x, y, folder / "m.png", classes=data.classes),
        )
    )
    return out


def samples_picture(run: Run, data: Dataset, images: bool, folder: Path) -> tuple[str, Path]:
    """(caption, path) of the means of p(x|z) for z from the prior at temperature 1: images in a grid, a table's
    first two slots as a scatter in standardised units (its drawn rows are a table of their own, ``report_tables``);
    a conditional model's a row of 8 per class (a table's 64 in all), for its first CLASS_ROWS classes in order."""
    columns = table_columns(run)
    said = "Samples from the prior (temperature 1)" if images else SCATTER
    if not run.model.needs_labels:
        return said, save_samples(run.sample(64, 1.0), folder / "s.png", columns=columns)
    k = run.config.model.num_classes
    rows = min(k, CLASS_ROWS)
    per = 8 if images else max(1, 64 // rows)
    x = run.sample(rows * per, 1.0, torch.arange(rows).repeat_interleave(per))  # (rows * per, *shape)
    names = ", ".join(class_name(run, data, i) for i in range(rows))
    said += f": a row per class, top to bottom: {names}" if images else f", {per} for each class: {names}"
    said += f" (the first {rows} of {k} classes)" if rows < k else ""
    return said, save_samples(x, folder / "s.png", per if images else None, columns)


CLASS_ROWS = 10  # a conditional model's samples: a row for each of its first this many classes
SCATTER = (  # a table's Samples picture: the means of p(x|z), whose spread is less than that of draws from it
    "Decoded means of p(x|z), standardised, for z from the prior (temperature 1; not draws from p(x|z), whose rows "
    "are in the table above): the first two columns"
)


def interpolation_picture(
    run: Run, data: Dataset, split: Split, x: Tensor, y: Tensor | None, folder: Path
) -> tuple[str, Path]:
    """(caption, path) of the lerp and slerp paths between two items of x (N, *shape); y (N,) for a conditional
    model, else None. The caption places the paths as the figure does, and says a discrete code's are snapped."""
    ab = two_items(split, run.model.needs_labels)
    yab, family = None if y is None else y[ab], discrete_family(run)
    paths, images = interpolate(run, x[ab], 10, yab), is_image(tuple(x.shape[1:]))
    drawn = "" if yab is None else f", decoded for {class_name(run, data, int(yab[0]))} (item {ab[0]}'s)"
    ends = ", inputs at the ends" if images else ": each column along the path, in standardised units"
    ends += "" if family is None else f"; this {family} run's path points are {SNAPPED[family]}"
    return (
        f"Interpolation between items {ab[0]} and {ab[1]}{drawn}: {path_layout(x.shape[1:], list(paths))}" + ends,
        save_interpolation(x[ab], paths, folder / "i.png", columns=table_columns(run)),
    )


def traversal_picture(
    run: Run, data: Dataset, split: Split, y: Tensor | None, n_dims: int, folder: Path
) -> tuple[str, Path]:
    """(caption, path) of the traversals of the ``n_dims`` most active dims, ranked on the split's first 2000
    items x (N, *shape) as ``evaluate`` scores them (``evaluated_as``), around item 0's posterior mean; y (N,)
    for a conditional model, else None."""
    x = split.x[:2000]
    loc = encode_means(run, x, y)  # (N, D)
    ranked = encode_means(run, evaluated_as(run, split, len(x)), y) if undrawn(run, split) else loc
    spread = ranked.var(0)  # (D,): a dim is active where it is above ACTIVE_THRESHOLD
    dims = top_dims(spread, n_dims, among=decoded_dims(run, y))  # a ladder's decoder reads z_1 alone
    values = torch.linspace(-3, 3, 9)
    xs = traverse(run, loc[0], dims, values, None if y is None else y[:1])  # (dims, values, *shape)
    images = is_image(tuple(x.shape[1:]))
    drawn = "" if y is None else f", decoded for item 0's {class_name(run, data, int(y[0]))}"
    return (
        f"Traversals of {which(dims, spread)} from -3 to 3 around item 0's posterior mean{drawn}"
        + (": a row per dim" if images else ": each column as the dim moves, in standardised units"),
        save_traversal(xs, dims, values, folder / "t.png", columns=table_columns(run)),
    )


def which(dims: list[int], spread: Tensor) -> str:
    """How a traversal's caption names its ``dims``: the most active, or, none varying over the data (``spread``
    (D,), the variance of the posterior means), the first by that measure."""
    if bool((spread[dims] > ACTIVE_THRESHOLD).any()):
        return f"the most active dims {dims}"
    return f"dims {dims} (none varies over the data by more than {ACTIVE_THRESHOLD}: merely the first by that measure)"


def kl_picture(result: dict, path: Path, family: str = "vae") -> tuple[str, Path]:
    """(caption, path) of the KL per latent dimension of an evaluation ``result`` (eval.json) of a model of
    ``family``, a panel per level (the list's top first, named z_L down to z_1 next to the data): bars up to
    KL_BARS dims, the KL per dim sorted as an area beyond; a level whose q(z|x) or p(z) is not factorised has
    one total KL, said in its panel. No level factorised: the KL per level instead."""
    levels = result["kl_per_dim"]
    names = [level_name(i, len(levels)) for i in range(len(levels))]
    if all(kl is None for kl in levels):
        fig, (ax,) = _figure(1)
        total = result["kl_per_level"]
        ax.bar(range(len(total)), total)
        ax.set(title="KL per level (nats)", xlabel="level", xticks=range(len(total)), xticklabels=names)
        return f"KL per latent level: {UNSPLIT.get(family, UNSPLIT['vae'])}", _save_figure(fig, path)
    cols = min(KL_COLUMNS, len(levels))
    widest = min(max(len(kl or ()) for kl in levels), KL_BARS)
    fig, axes = _figure(cols, width=min(max(4.5, 0.25 * widest), 8), height=3, rows=math.ceil(len(levels) / cols))
    for ax in axes[len(levels) :]:
        ax.set_visible(False)
    for ax, kl, name in zip(axes, levels, names):
        _kl_panel(ax, kl, "" if len(levels) == 1 else name + ("" if kl is None else f", {len(kl)} dims"))
    sizes = [len(kl) for kl in levels if kl is not None]
    return kl_caption(sizes, None in levels), _save_figure(fig, path)


UNSPLIT = {  # why a family's KL has no per-dimension split, by family (else a flow posterior or such a prior)
    "vae": "q(z|x) or p(z) is not factorised or has no closed-form KL (a flow posterior, a mixture, VampPrior or "
    "flow prior), so its KL has no per-dimension split",
    "vq": "the KL is -log p(codes) of the whole code grid under the prior (one point q(z|x)), with no "
    "per-dimension split",
    "gumbel": "the KL of the categorical q(z|x) to the uniform p(z), summed over the latent variables; "
    "it is not split per dimension here",
}


def level_name(i: int, n: int) -> str:
    """How a figure names level ``i`` of ``n`` in eval.json's order (top first): z_n (top) down to z_1 (next to
    the data), as metrics.csv's val_kl_1 names z_1; a flat model's one level: z."""
    if n == 1:
        return "z"
    return f"z_{n - i}" + (" (top)" if i == 0 else " (next to the data)" if i == n - 1 else "")


def _kl_panel(ax, kl: list[float] | None, level: str) -> None:
    """One level's KL per dim (nats): bars in dim order, or beyond KL_BARS dims, sorted from largest as an area."""
    from matplotlib import ticker

    title = f"KL per dimension{', ' + level if level else ''} (nats)"
    if kl is None:  # not factorised: the KL of this level is one total (kl_per_level)
        ax.text(0.5, 0.5, "one total KL:\nq(z|x) or p(z) not factorised", ha="center", va="center")
        ax.set(title=title, xticks=[], yticks=[])
    elif len(kl) <= KL_BARS:
        ax.bar(range(len(kl)), kl)
        ax.set(title=title, xlabel="dimension")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
    else:
        ranked = np.sort(np.asarray(kl, dtype=float))[::-1]
        ax.fill_between(np.arange(1, len(ranked) + 1), ranked, step="mid", alpha=0.6)
        ax.set(title=f"{title}, sorted", xlabel=f"dimensions ranked by KL (of {len(kl)})", xlim=(1, len(ranked)))


def kl_caption(sizes: list[int], unfactorised: bool) -> str:
    """The KL figure's caption for levels of ``sizes`` dims, saying how each kind of panel draws them."""
    caption = "KL per latent dimension (evaluated split)"
    if max(sizes) > KL_BARS:
        caption += f": a bar per dim up to {KL_BARS} dims; a level of more shows its KL per dim sorted largest first"
    if unfactorised:
        caption += "; a level whose q(z|x) or p(z) is not factorised has one total KL (kl_per_level)"
    return caption


def training_line(metrics: dict[str, np.ndarray], train: dict) -> str:
    """How training ended, from metrics.csv's columns (``read_metrics``) and config.json's ``train``: the epochs
    done of those planned, the epoch whose weights are shown, and an early stop, an unfinished run or skipped
    steps where they show."""
    done, planned = (int(metrics["epoch"][-1]) if len(metrics["epoch"]) else 0), train.get("epochs")
    best = best_epoch(metrics)
    said = [f"{done} of {planned} epochs trained"]
    if best is not None:
        lowest = "the lowest validation loss" + ("" if best == lowest_epoch(metrics) else SET_ASIDE)
        said.append(f"the weights shown are epoch {best}'s, {lowest}")
    patience, since = train.get("patience") or 0, done - (best or 0)
    if isinstance(planned, (int, float)) and done >= planned:
        said.append("every epoch planned was trained")
    elif best is not None and is_number(patience) and patience > 0 and since >= patience:
        epochs = f"{since} epoch{'s' * (since != 1)}"
        said.append(f"stopped early: no better validation loss for {epochs} (train.patience {patience})")
    else:
        said.append(f"unfinished: it ended after epoch {done} (interrupted, stopped by an error, or still training)")
    skipped = metrics.get("skipped_steps", np.zeros(1))[-1:]
    if len(skipped) and skipped[0] > 0:
        said.append(f"{int(skipped[0])} steps were skipped for a non-finite loss or gradient or too large a norm")
    return "Training: " + "; ".join(said) + "."


SET_ASIDE = " since a resume set the earlier best aside (measured otherwise: another beta or objective)"


def best_epoch(metrics: dict[str, np.ndarray]) -> int | None:
    """The epoch whose weights the run keeps: as the trainer recorded it in the last row (``best_epoch``), else
    (a run from before that column) ``lowest_epoch``."""
    kept = metrics.get("best_epoch", np.array([]))[-1:]
    return int(kept[0]) if len(kept) and np.isfinite(kept[0]) else lowest_epoch(metrics)


def lowest_epoch(metrics: dict[str, np.ndarray]) -> int | None:
    """The epoch of the lowest val_loss, as the trainer picks it: the first, then each with a lower val_loss than
    all before it (None: no epochs or no val_loss)."""
    best, at = math.inf, None
    for epoch, value in zip(metrics["epoch"], metrics.get("val_loss", ())):
        if at is None or value < best:
            best, at = value, int(epoch)
    return at
