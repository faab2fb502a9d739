"""The report page's pictures and their captions, each caption saying what its picture shows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data import Dataset, Split
from ..runs import Run
from .figures import (
    decoded_dims,
    encode_means,
    interpolate,
    path_layout,
    save_interpolation,
    save_traversal,
    top_dims,
    traverse,
)
from .latent_maps import latent_map
from .plots import _figure, _save_figure, is_image, plot_losses, save_reconstructions, save_samples, table_columns

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
) -> list[tuple[str, Path]]:
    """Write every picture of the run (its curves from the CSV ``metrics``) into ``folder``, the random draws
    seeded with ``seed``; returns (caption, path) pairs in page order. A conditional model's captions name the
    class each picture is drawn for."""
    torch.manual_seed(seed)
    x, y = split.x[:2000], None if split.y is None else split.y[:2000]
    y_in = y if run.model.needs_labels else None
    out = [("Loss, reconstruction and KL per epoch", plot_losses(metrics, folder / "curves.png"))]
    label = 0 if run.model.needs_labels else None
    images = is_image(tuple(x.shape[1:]))
    out.append(
        (
            "Samples from the prior (temperature 1)"
            + ("" if label is None else f", all drawn for {class_name(run, data, label)}")
            + ("" if images else ": the first two columns"),
            save_samples(run.sample(64, 1.0, label), folder / "s.png", columns=table_columns(run)),
        )
    )
    xr = run.reconstruct(x[:32], None if y_in is None else y_in[:32])
    out.append(
        (
            "Inputs (odd rows) above their reconstructions"
            if images
            else "Each value of 32 items against its reconstruction, in standardised units (dashed: equal)",
            save_reconstructions(x[:32], xr, folder / "r.png", columns=table_columns(run)),
        )
    )
    out.append(interpolation_picture(run, data, split, x, y_in, folder))
    out.append(traversal_picture(run, data, x, y_in, n_dims, folder))
    out.append(
        (
            "Latent map of the posterior means" + ("" if y is None else ", coloured by label"),
            latent_map(run, x, y, folder / "m.png", classes=data.classes),
        )
    )
    return out


def interpolation_picture(
    run: Run, data: Dataset, split: Split, x: Tensor, y: Tensor | None, folder: Path
) -> tuple[str, Path]:
    """(caption, path) of the lerp and slerp paths between two items of x (N, *shape); y (N,) for a conditional
    model, else None. The caption places the paths as the figure does."""
    ab = two_items(split, run.model.needs_labels)
    yab = None if y is None else y[ab]
    paths = interpolate(run, x[ab], 10, yab)
    images = is_image(tuple(x.shape[1:]))
    drawn = "" if yab is None else f", decoded for {class_name(run, data, int(yab[0]))} (item {ab[0]}'s)"
    return (
        f"Interpolation between items {ab[0]} and {ab[1]}{drawn}: {path_layout(x.shape[1:], list(paths))}"
        + (", inputs at the ends" if images else ": each column along the path, in standardised units"),
        save_interpolation(x[ab], paths, folder / "i.png", columns=table_columns(run)),
    )


def traversal_picture(
    run: Run, data: Dataset, x: Tensor, y: Tensor | None, n_dims: int, folder: Path
) -> tuple[str, Path]:
    """(caption, path) of the traversals of the ``n_dims`` most active dims around item 0's posterior mean; x
    (N, *shape), y (N,) for a conditional model, else None."""
    loc = encode_means(run, x, y)  # (N, D)
    dims = top_dims(loc.var(0), n_dims, among=decoded_dims(run, y))  # a ladder's decoder reads z_1 alone
    values = torch.linspace(-3, 3, 9)
    xs = traverse(run, loc[0], dims, values, None if y is None else y[:1])  # (dims, values, *shape)
    images = is_image(tuple(x.shape[1:]))
    drawn = "" if y is None else f", decoded for item 0's {class_name(run, data, int(y[0]))}"
    return (
        f"Traversals of the most active dims {dims} from -3 to 3 around item 0's posterior mean{drawn}"
        + (": a row per dim" if images else ": each column as the dim moves, in standardised units"),
        save_traversal(xs, dims, values, folder / "t.png", columns=table_columns(run)),
    )


def kl_picture(result: dict, path: Path) -> tuple[str, Path]:
    """(caption, path) of the KL per latent dimension of an evaluation ``result`` (eval.json), a panel per
    level: bars up to KL_BARS dims, the KL per dim sorted as an area beyond; a level whose q(z|x) or p(z) is
    not factorised has one total KL, said in its panel. No level factorised: the KL per level instead."""
    levels = result["kl_per_dim"]
    if all(kl is None for kl in levels):
        fig, (ax,) = _figure(1)
        total = result["kl_per_level"]
        ax.bar(range(len(total)), total)
        ax.set(title="KL per level (nats)", xlabel="level", xticks=range(len(total)))
        caption = "KL per latent level: q(z|x) or p(z) is not factorised (a flow posterior or a VampPrior)"
        return caption + ", so its KL has no per-dimension split", _save_figure(fig, path)
    cols = min(KL_COLUMNS, len(levels))
    widest = min(max(len(kl or ()) for kl in levels), KL_BARS)
    fig, axes = _figure(cols, width=min(max(4.5, 0.25 * widest), 8), height=3, rows=math.ceil(len(levels) / cols))
    for ax in axes[len(levels) :]:
        ax.set_visible(False)
    for i, (ax, kl) in enumerate(zip(axes, levels)):
        _kl_panel(ax, kl, f"level {i}" if len(levels) > 1 else "")
    sizes = [len(kl) for kl in levels if kl is not None]
    return kl_caption(sizes, None in levels), _save_figure(fig, path)


def _kl_panel(ax, kl: list[float] | None, level: str) -> None:
    """One level's KL per dim (nats): bars in dim order, or beyond KL_BARS dims, sorted from largest as an area."""
    title = f"KL per dimension{', ' + level if level else ''} (nats)"
    if kl is None:  # not factorised: the KL of this level is one total (kl_per_level)
        ax.text(0.5, 0.5, "one total KL:\nq(z|x) or p(z) not factorised", ha="center", va="center")
        ax.set(title=title, xticks=[], yticks=[])
    elif len(kl) <= KL_BARS:
        ax.bar(range(len(kl)), kl)
        ax.set(title=title, xlabel="dimension")
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
