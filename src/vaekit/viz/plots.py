"""Pictures of a run: image grids (samples, reconstructions) and plots for tabular data (loss curves: curves.py).

Every picture helper (these, ``figures``' interpolations and traversals, ``latent_map``, ``save_sweeps``) writes a
PNG file whose name ends in .png (any case) and returns its path; another name, or a file object, is refused in one
line. Given no path (None) it returns the picture instead, a ``PIL.Image.Image`` a notebook shows (Pillow writes
other formats: ``save_samples(x).save("s.jpg")``). Images are taken in [0, 1], uint8 as 0..255; values on another
scale ([-1, 1], 0..255 floats) are drawn clipped with a warning naming their range (``as_pictures``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import files
from ..errors import VaekitError
from ..io import atomic_write_bytes
from .picture_rules import GRID_LIMIT, as_items, as_pictures, is_image, out_path, png_path
from .picture_rules import LINE_LIMIT as LINE_LIMIT  # re-exported, as the rest: they lived here
from .picture_rules import check_line as check_line
from .picture_rules import grid_head as grid_head
from .picture_rules import save_array_or_png as save_array_or_png
from .slots import SLOTS_NAMED as SLOTS_NAMED
from .slots import column_legend, group_colour, slot_groups, table_slots
from .slots import column_lines as column_lines
from .slots import slot_names as slot_names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..runs import Run

MIN_TILE = 28  # small images (8x8 digits) are enlarged to at least this many pixels


def displayable(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C', H, W) with C' in {1, 3, 4}: 2 channels get a zero third, more than 4 keep 3."""
    c = x.shape[1]
    if c == 2:
        return torch.cat([x, torch.zeros_like(x[:, :1])], 1)
    return x[:, :3] if c > 4 else x


def image_grid(
    x: Tensor | np.ndarray, nrow: int | None = None, pad: int = 2, blank: Tensor | None = None
) -> np.ndarray:
    """(N, C, H, W) values in [0, 1] (others clipped; uint8: 0..255), any C (a tensor or a numpy array), -> (H', W')
    or (H', W', 3|4) uint8 grid, ``nrow`` images per row, the tiles where ``blank`` (N,) is true left blank; the
    channels are made ``displayable`` first, so every grid can be written as a PNG (``PIL.Image.fromarray(grid)``
    shows it)."""
    x = as_items(x, "image_grid")
    if x.dim() != 4:
        raise VaekitError(f"image_grid takes images (N, C, H, W), got shape {tuple(x.shape)}")
    x = displayable(x.detach().float().clamp(0, 1).cpu())
    n, c, h, w = x.shape
    zoom = max(1, math.ceil(MIN_TILE / max(h, w)))
    x = x.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3)
    h, w = h * zoom, w * zoom
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        if blank is not None and blank[i]:
            continue
        r, k = divmod(i, nrow)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = x[i]
    arr = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[..., 0] if c == 1 else arr


STAMP: ContextVar[dict[str, str]] = ContextVar("STAMP", default={})  # noqa: B039 - read only; stamped() sets anew


@contextmanager
def stamped(digest: str) -> Iterator[None]:
    """PNGs written meanwhile carry ``digest``, the SHA-256 of the weights they came from, as a text chunk."""
    token = STAMP.set({files.DIGEST: digest})
    try:
        yield
    finally:
        STAMP.reset(token)


def save_png(arr: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 (H, W) or (H, W, 3|4) array as PNG, atomically, to ``path``: a name ending in .png
    (``png_path``; ``PIL.Image.fromarray(arr).save(name)`` writes the formats Pillow knows)."""
    from PIL.PngImagePlugin import PngInfo

    path = png_path(path)
    info = PngInfo()
    for key, value in STAMP.get().items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buf.getvalue())


def _figure_png(fig: Figure) -> bytes:
    """A figure of ``_figure`` as PNG bytes (stamped as ``save_png`` stamps). Every text is drawn as it is,
    never parsed as maths: a name from the data (a CSV column, a class: "$x^$") is shown, not refused."""
    from matplotlib import rc_context, text

    for t in fig.findobj(text.Text):
        t.set_parse_math(False)
    buf = io.BytesIO()
    with rc_context({"text.parse_math": False}):  # the tick labels made while drawing; restored after
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata=STAMP.get())
    return buf.getvalue()


def _save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a figure of ``_figure`` as PNG (``_figure_png``), atomically, to a name ending in .png."""
    return atomic_write_bytes(png_path(path), _figure_png(fig))


def _picture(
    pic: np.ndarray | Figure, path: Path | None, save: Callable[[Figure, Path], Path] | None = None
) -> Path | Image.Image:
    """A grid (``image_grid``'s array) or a figure written to ``path`` as PNG (a figure by ``save``, a module's own
    ``_save_figure``, else this one's), or (path None) as a PIL image."""
    if isinstance(pic, np.ndarray):
        return Image.fromarray(pic) if path is None else save_png(pic, path)
    if path is not None:
        return (save or _save_figure)(pic, path)
    return Image.open(io.BytesIO(_figure_png(pic))).convert("RGB")  # opaque anyway; RGB saves as JPEG too


def _figure(ncols: int, width: float = 4.5, height: float = 3.5, rows: int = 1):
    """A figure of ``rows`` x ``ncols`` panels of ``width`` x ``height`` inches and its axes (rows * ncols,),
    laid out by matplotlib's constrained layout (tick labels and titles never run into the next panel); built
    apart from pyplot: the caller's backend, current figure and open figures (a notebook's inline plots) stay
    as they were; freed when no longer referenced."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * rows), layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False).reshape(-1)
    for ax in axes:  # no offset: a constant reads as its value, not as "1e-5 + 3.056779e2"
        ax.ticklabel_format(useOffset=False)
    return fig, axes


@dataclass(frozen=True)
class Columns:
    """The slots of a table's items (D,) as pictures show them: their names (``feature j`` where none), the loc
    and scale (D,) that standardise them (the training split's; None: by the items a picture shows), and the
    column each belongs to (``owners``: a category's slots, a column's modes and gap indicator share one)."""

    names: tuple[str, ...] = ()
    loc: np.ndarray | None = None
    scale: np.ndarray | None = None
    owners: tuple[str, ...] = ()

    def name(self, j: int) -> str:
        return self.names[j] if j < len(self.names) else f"feature {j}"

    def column(self, j: int) -> str:
        return self.owners[j] if j < len(self.owners) else self.name(j)

    def standardised(self, x: Tensor, ref: Tensor | None = None) -> np.ndarray:
        """(N, D) in the data's units -> (x - loc) / scale; without loc and scale, those of ``ref`` (or x)."""
        xs = x.detach().float().flatten(1).cpu().numpy()
        loc, scale = self.loc, self.scale
        if loc is None or scale is None or len(loc) != xs.shape[1]:
            r = xs if ref is None else ref.detach().float().flatten(1).cpu().numpy()
            loc, scale = r.mean(0), r.std(0)
        return (xs - loc) / np.where(scale > 0, scale, 1.0)


def table_columns(run: Run) -> Columns | None:
    """A run's item slots (None for images): names from its table.json, loc and scale from its standardisation
    (``Standardized``'s buffers), else None."""
    from ..models.standardized import Standardized

    if is_image(tuple(run.config.model.input_shape)):
        return None
    model, table = run.model, run.table
    slots = table_slots(table) if table is not None else []
    names, owners = tuple(name for _, name in slots), tuple(owner for owner, _ in slots)
    if not isinstance(model, Standardized):
        return Columns(names, owners=owners)
    return Columns(names, model.loc.flatten().cpu().numpy(), model.scale.flatten().cpu().numpy(), owners)


@overload
def save_samples(
    x: Tensor | np.ndarray, path: None = None, nrow: int | None = None, columns: Columns | None = None
) -> Image.Image: ...
@overload
def save_samples(
    x: Tensor | np.ndarray, path: str | os.PathLike, nrow: int | None = None, columns: Columns | None = None
) -> Path: ...
def save_samples(
    x: Tensor | np.ndarray,
    path: str | os.PathLike | None = None,
    nrow: int | None = None,
    columns: Columns | None = None,
) -> Path | Image.Image:
    """A grid of images (N, C, H, W) in [0, 1] (``as_pictures``), ``nrow`` per row (at most GRID_LIMIT shown:
    ``grid_head``), or for other items (N, ...) a scatter of the first two slots in standardised units, named by
    ``columns``; x a tensor or a numpy array. Written as PNG to ``path`` (a name ending in .png; returned), or,
    path None, returned as a ``PIL.Image.Image`` (a notebook shows it; ``.save("s.jpg")`` writes any format Pillow
    knows)."""
    (x,), out = as_pictures("save_samples", x), out_path(path, "save_samples")
    if is_image(tuple(x.shape[1:])):
        return _picture(image_grid(*grid_head(x, nrow)), out)
    fig, (ax,) = _figure(1)
    columns = columns or Columns()
    xs = columns.standardised(x)
    ys = xs[:, 1] if xs.shape[1] > 1 else np.zeros(len(xs))
    ax.scatter(xs[:, 0], ys, s=6, alpha=0.5)
    ylabel = f"{columns.name(1)} (standardised)" if xs.shape[1] > 1 else ""
    ax.set(xlabel=f"{columns.name(0)} (standardised)", ylabel=ylabel, title="samples")
    return _picture(fig, out)


def _pairs_grid(x: Tensor, x_rec: Tensor, per_row: int) -> np.ndarray:
    """Images x and x_rec (N, C, H, W) as one grid of alternating rows of ``per_row`` (the first GRID_LIMIT, a
    last row short of ``per_row`` filled with blank tiles)."""
    shape = tuple(x.shape[1:])
    x, x_rec = (v[:GRID_LIMIT].detach().float().cpu() for v in (x, x_rec))
    per_row = min(per_row, len(x))
    rows = math.ceil(len(x) / per_row)
    fill = torch.zeros(rows * per_row - len(x), *shape)  # the last row's blank tiles
    pairs = torch.stack([torch.cat([v, fill]).view(rows, per_row, *shape) for v in (x, x_rec)], 1)
    blank = (torch.arange(rows * per_row) >= len(x)).view(rows, 1, per_row).expand(rows, 2, per_row)
    return image_grid(pairs.reshape(-1, *shape), nrow=per_row, blank=blank.reshape(-1))


@overload
def save_reconstructions(
    x: Tensor | np.ndarray,
    x_rec: Tensor | np.ndarray,
    path: None = None,
    per_row: int = 8,
    columns: Columns | None = None,
) -> Image.Image: ...
@overload
def save_reconstructions(
    x: Tensor | np.ndarray,
    x_rec: Tensor | np.ndarray,
    path: str | os.PathLike,
    per_row: int = 8,
    columns: Columns | None = None,
) -> Path: ...
def save_reconstructions(
    x: Tensor | np.ndarray,
    x_rec: Tensor | np.ndarray,
    path: str | os.PathLike | None = None,
    per_row: int = 8,
    columns: Columns | None = None,
) -> Path | Image.Image:
    """Inputs and their reconstructions in alternating rows (images: ``_pairs_grid``), or for other items (N, ...)
    each value against its reconstruction, in standardised units, a colour per slot named by ``columns``
    (``slot_groups``: past 20 slots, per column); x and x_rec tensors or numpy arrays. Written as PNG to ``path``
    (a name ending in .png; returned), or, path None, returned as a ``PIL.Image.Image``, as ``save_samples``."""
    (x, x_rec), out = as_pictures("save_reconstructions", x, x_rec), out_path(path, "save_reconstructions")
    if is_image(tuple(x.shape[1:])):
        return _picture(_pairs_grid(x, x_rec, per_row), out)
    fig, (ax,) = _figure(1)
    columns = columns or Columns()
    xs, rs = columns.standardised(x, x), columns.standardised(x_rec, x)
    d, groups = xs.shape[1], slot_groups(columns, xs.shape[1]) or []
    for i, (name, js) in enumerate(groups):  # a colour and a legend entry per slot, or per column
        ax.scatter(xs[:, js].ravel(), rs[:, js].ravel(), s=6, alpha=0.6, color=group_colour(i, len(groups)), label=name)
    if not groups:
        ax.scatter(xs.flatten(), rs.flatten(), s=4, alpha=0.4)
    column_legend(ax, columns, d)
    lo, hi = float(min(xs.min(), rs.min())), float(max(xs.max(), rs.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(
        xlabel="input (standardised)", ylabel="reconstruction (standardised)", title=f"reconstructions ({d} features)"
    )
    return _picture(fig, out)


def named_grid(grid: np.ndarray, dims: list[int], values: Tensor):
    """A traversal's ``image_grid`` (H', W'[, C]) as a figure: its rows named z[dim], its columns by value (V,)."""
    (h, w), n = grid.shape[:2], len(values)
    fig, (ax,) = _figure(1, width=w / 60 + 0.8, height=h / 60 + 0.4)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks((np.arange(n) + 0.5) * (w - 2) / n + 1, [f"{float(v):.3g}" for v in values], fontsize=7)
    ax.set_yticks((np.arange(len(dims)) + 0.5) * (h - 2) / len(dims) + 1, [f"z[{i}]" for i in dims], fontsize=7)
    ax.tick_params(length=0)
    ax.set(xlabel="value", frame_on=False)
    return fig
