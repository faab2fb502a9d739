"""Pictures of a run's latent space: interpolations (lerp, slerp), traversals (latent maps: ``latent_maps``); PNG out,
or (path None) the picture as a ``PIL.Image.Image``, as ``plots``' helpers. What they decode (``interpolate``,
``traverse``, ``traversals``) is ``latent_walks``', importable from here as before.

Built on the grid and figure helpers of ``plots``; images of any size and channel count become grids,
tables (items of shape (D,)) become line plots or scatters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..evaluation.metrics import encode_means as encode_means  # re-exported, as the walks: they lived here
from ..runs import Run
from .latent_walks import SWEEPS as SWEEPS
from .latent_walks import decode_mean as decode_mean
from .latent_walks import decoded_dims as decoded_dims
from .latent_walks import discrete_family as discrete_family
from .latent_walks import interpolate as interpolate
from .latent_walks import lerp as lerp
from .latent_walks import refuse_discrete as refuse_discrete
from .latent_walks import slerp as slerp
from .latent_walks import snapped as snapped
from .latent_walks import spans as spans
from .latent_walks import traversals as traversals
from .latent_walks import traverse as traverse
from .picture_rules import Items, Named, as_pictures, out_path
from .picture_rules import path_layout as path_layout  # re-exported, as top_dims: they lived here
from .picture_rules import top_dims as top_dims
from .plots import (
    Columns,
    _figure,
    _picture,
    _save_figure,
    check_line,
    column_legend,
    column_lines,
    image_grid,
    is_image,
    named_grid,
)
from .plots import displayable as displayable  # re-exported: it lives beside image_grid, which applies it


@overload
def save_interpolation(
    x: Items, paths: Mapping[str, Items], path: None = None, columns: Columns | None = None
) -> Image.Image: ...
@overload
def save_interpolation(x: Items, paths: Mapping[str, Items], path: Named, columns: Columns | None = None) -> Path: ...
def save_interpolation(
    x: Items, paths: Mapping[str, Items], path: Named | None = None, columns: Columns | None = None
) -> Path | Image.Image:
    """Rows lerp and slerp, each [x_a, path..., x_b] for images; for other items (2, ...) a panel per path, side
    by side, of their values along it in standardised units, a line per slot named by ``columns``. Written as PNG
    to ``path`` (returned), or, path None, returned as a ``PIL.Image.Image``."""
    out, (x, *ps) = out_path(path, "save_interpolation"), as_pictures("save_interpolation", x, *paths.values())
    drawn = dict(zip(paths, ps))  # name -> (steps, *shape), a tensor
    if is_image(tuple(x.shape[1:])):
        check_line(max(len(p) for p in drawn.values()), "steps")
        rows = [torch.cat([x[:1], p, x[1:2]]) for p in drawn.values()]  # (steps + 2, C, H, W) each
        return _picture(image_grid(torch.cat(rows), nrow=len(rows[0])), out)
    columns = columns or Columns()
    ref = torch.cat([p.flatten(1) for p in drawn.values()])  # standardised by the paths when columns has no scale
    fig, axes = _figure(len(drawn))
    for ax, (name, p) in zip(axes, drawn.items()):
        column_lines(ax, np.linspace(0, 1, len(p)), columns.standardised(p.flatten(1), ref), columns)
        ax.set(title=f"{name}: decoded values", xlabel="t", ylabel="value (standardised)")
    column_legend(axes[-1], columns, ref.shape[1])
    return _picture(fig, out, _save_figure)


@overload
def save_traversal(
    x: Items, dims: list[int], values: Tensor, path: None = None, columns: Columns | None = None
) -> Image.Image: ...
@overload
def save_traversal(x: Items, dims: list[int], values: Tensor, path: Named, columns: Columns | None = None) -> Path: ...
def save_traversal(
    x: Items, dims: list[int], values: Tensor, path: Named | None = None, columns: Columns | None = None
) -> Path | Image.Image:
    """x (R, V, *shape): a grid, a row per dim, a column per value, each named (images), or a panel per dim of each
    slot against its value, standardised, a line per slot named by ``columns``; PNG or picture as ``save_samples``."""
    (x,), out = as_pictures("save_traversal", x, lead=2), out_path(path, "save_traversal")
    if is_image(tuple(x.shape[2:])):
        check_line(max(x.shape[:2]), "steps or dims")
        return _picture(named_grid(image_grid(x.flatten(0, 1), nrow=x.shape[1]), dims, values), out, _save_figure)
    columns = columns or Columns()
    ref = x.flatten(2).flatten(0, 1)  # (R * V, D): the scale when columns has none
    fig, axes = _figure(len(dims), width=3.5)
    for ax, i, xs in zip(axes, dims, x):
        column_lines(ax, values.numpy(), columns.standardised(xs.flatten(1), ref), columns)
        ax.set(title=f"z[{i}]", xlabel="value", ylabel="decoded (standardised)" if ax is axes[0] else "")
    column_legend(axes[-1], columns, ref.shape[1])
    return _picture(fig, out, _save_figure)


@overload
def save_factor_traversals(
    run: Run, dims: list[dict], path: None = None, span: float = 2.5, steps: int = 9, shown: list[int] | None = None
) -> Image.Image: ...
@overload
def save_factor_traversals(
    run: Run, dims: list[dict], path: Named, span: float = 2.5, steps: int = 9, shown: list[int] | None = None
) -> Path: ...
def save_factor_traversals(
    run: Run,
    dims: list[dict],
    path: Named | None = None,
    span: float = 2.5,
    steps: int = 9,
    shown: list[int] | None = None,
) -> Path | Image.Image:
    """One row per latent dim of ``shown`` (indices into ``dims``, evaluate_run's; default all) in that order: z_d
    from -span to span (others 0), decoded; labelled with its best factor; the title says how many of all. PNG or
    picture as ``save_samples``."""
    out = out_path(path, "save_factor_traversals")
    values = torch.linspace(-span, span, steps)
    rows = [dims[i] for i in (range(len(dims)) if shown is None else shown)]
    xs = traverse(run, torch.zeros(len(dims)), [r["dim"] for r in rows], values)  # (len(rows), steps, 1, H, W)
    fig, _ = _figure(1, width=steps * 0.9, height=len(rows) * 0.9 + 0.4)
    fig.clf()
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, row, info in zip(axes, xs, rows):
        ax.imshow(image_grid(row, nrow=steps, pad=1), cmap="gray", vmin=0, vmax=255)
        label = f"z{info['dim']}: {info['factor'] or '-'}\nMI {info['normalised_mi']:.2f} sd {info['std']:.2f}"
        ax.set(xticks=[], yticks=[])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    some = f"; the {len(rows)} of {len(dims)} dims of most MI" if len(rows) < len(dims) else ""
    axes[0].set_title(f"latent traversals, z from {-span:g} to {span:g}{some}", fontsize=9)
    return _picture(fig, out, _save_figure)
