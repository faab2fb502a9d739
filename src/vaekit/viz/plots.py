"""Pictures of a run: image grids (samples, reconstructions) and plots for tabular data (loss curves: curves.py)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import files
from ..errors import VaekitError
from ..io import atomic_write_bytes

if TYPE_CHECKING:
    from ..data.tables import TableSchema
    from ..runs import Run

MIN_TILE = 28  # small images (8x8 digits) are enlarged to at least this many pixels
GRID_LIMIT = 1024  # items a grid of samples or reconstructions shows at most (the first): a .npy holds them all
LINE_LIMIT = 256  # steps in a row of an interpolation or traversal picture, and rows of a traversal
SLOTS_NAMED = 20  # a table's slots, or past them its columns, that a picture colours and names one by one


def displayable(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C', H, W) with C' in {1, 3, 4}: 2 channels get a zero third, more than 4 keep 3."""
    c = x.shape[1]
    if c == 2:
        return torch.cat([x, torch.zeros_like(x[:, :1])], 1)
    return x[:, :3] if c > 4 else x


def image_grid(x: Tensor, nrow: int | None = None, pad: int = 2, blank: Tensor | None = None) -> np.ndarray:
    """(N, C, H, W) values in [0, 1], any C, -> (H', W') or (H', W', 3|4) uint8 grid, ``nrow`` images per row,
    the tiles where ``blank`` (N,) is true left blank; the channels are made ``displayable`` first, so every grid
    can be written as a PNG."""
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
    """Write a uint8 (H, W) or (H, W, 3|4) array as PNG, atomically."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in STAMP.get().items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buf.getvalue())


def _save_figure(fig, path: str | Path) -> Path:
    """Write a figure of ``_figure`` as PNG (stamped as ``save_png`` stamps), atomically. Every text is drawn as
    it is, never parsed as maths: a name from the data (a CSV column, a class: "$x^$") is shown, not refused."""
    from matplotlib import rc_context, text

    for t in fig.findobj(text.Text):
        t.set_parse_math(False)
    buf = io.BytesIO()
    with rc_context({"text.parse_math": False}):  # the tick labels made while drawing; restored after
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata=STAMP.get())
    return atomic_write_bytes(path, buf.getvalue())


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


def is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


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


def table_slots(table: TableSchema) -> list[tuple[str, str]]:
    """(column, name) of each slot of a table's item: numeric columns, their modes, categories, gap indicators."""
    from ..data.modes import mode_counts

    slots = [(c.name, c.name) for c in table.numeric]
    if table.coding == "modes":
        modes = zip(table.numeric, mode_counts(table.numeric))
        slots += [(c.name, f"{c.name}: mode {k + 1}") for c, n in modes for k in range(n)]
    slots += [(c.name, f"{c.name}={v}") for c in table.categorical for v in c.categories]
    slots += [(c.name, f"{c.name}: {v}") for c in table.gapped for v in ("filled", "gap")]
    return slots


def slot_names(table: TableSchema) -> tuple[str, ...]:
    """The name of each slot of a table's item (``table_slots``)."""
    return tuple(name for _, name in table_slots(table))


def slot_groups(columns: Columns, d: int) -> list[tuple[str, list[int]]] | None:
    """The slots of items (D = d) a picture draws in one colour under one name in its legend: each its own up to
    SLOTS_NAMED slots; past that, those of each column (a category's slots, a column's modes and gap indicator)
    where there are at most SLOTS_NAMED columns; else None (too many to tell apart: one colour, no legend)."""
    if d <= SLOTS_NAMED:
        return [(columns.name(j), [j]) for j in range(d)]
    groups: dict[str, list[int]] = {}
    for j in range(d):
        groups.setdefault(columns.column(j), []).append(j)
    return list(groups.items()) if len(groups) <= SLOTS_NAMED else None


def group_colour(i: int, n: int) -> str | tuple:
    """The colour of group i of n: matplotlib's ten (C0..C9) up to ten, else tab20's twenty."""
    return f"C{i}" if n <= 10 else _tab20(i)


def column_lines(ax, t: np.ndarray, values: np.ndarray, columns: Columns) -> None:
    """values (T, D) against t (T,): a line per slot, coloured and named by its ``slot_groups`` group (a group's
    first line carries its name into the legend), or all in one faint colour where there are too many."""
    groups = slot_groups(columns, values.shape[1])
    if groups is None:
        for j in range(values.shape[1]):
            ax.plot(t, values[:, j], lw=1, color="C0", label=columns.name(j), alpha=0.4)
        return
    for i, (name, slots) in enumerate(groups):
        for k, j in enumerate(slots):  # a label starting with _ is left out of the legend
            ax.plot(t, values[:, j], lw=1, color=group_colour(i, len(groups)), label=name if k == 0 else f"_{name}")


def column_legend(ax, columns: Columns, d: int) -> None:
    """A legend beside ``ax`` naming the ``slot_groups`` of items (D = d), where they have names to tell apart."""
    if slot_groups(columns, d) is not None:
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)


def grid_head(x: Tensor, nrow: int | None = None) -> tuple[Tensor, int | None]:
    """(items, nrow) of x (N, ...) that a grid shows: all up to GRID_LIMIT; else the first GRID_LIMIT, or for
    whole rows of ``nrow`` (a class grid: a row per class) the first GRID_LIMIT // rows of each (at least one)."""
    if len(x) <= GRID_LIMIT:
        return x, nrow
    if nrow is None or len(x) % nrow:  # no whole rows: the first items
        return x[:GRID_LIMIT], nrow and min(nrow, GRID_LIMIT)
    keep = max(1, GRID_LIMIT // (len(x) // nrow))
    rows = x.reshape(-1, nrow, *x.shape[1:])[:GRID_LIMIT, :keep]  # (rows, keep, ...)
    return rows.flatten(0, 1), keep


def check_line(n: int, what: str) -> int:
    """``n`` if a line of a picture (steps of a path or traversal, rows of a traversal) can hold that many
    ``what``, at most LINE_LIMIT, else one line naming the cap."""
    if n > LINE_LIMIT:
        raise VaekitError(
            f"{what} {n}: over {LINE_LIMIT}, the most a picture's row or column shows", key=what.lstrip("-")
        )
    return n


def save_samples(x: Tensor, path: str | Path, nrow: int | None = None, columns: Columns | None = None) -> Path:
    """A grid of images (N, C, H, W), ``nrow`` per row (at most GRID_LIMIT shown: ``grid_head``), or for other
    items (N, ...) a scatter of the first two slots in standardised units, named by ``columns``."""
    if is_image(tuple(x.shape[1:])):
        return save_png(image_grid(*grid_head(x, nrow)), path)
    fig, (ax,) = _figure(1)
    columns = columns or Columns()
    xs = columns.standardised(x)
    ys = xs[:, 1] if xs.shape[1] > 1 else np.zeros(len(xs))
    ax.scatter(xs[:, 0], ys, s=6, alpha=0.5)
    ylabel = f"{columns.name(1)} (standardised)" if xs.shape[1] > 1 else ""
    ax.set(xlabel=f"{columns.name(0)} (standardised)", ylabel=ylabel, title="samples")
    return _save_figure(fig, path)


def save_reconstructions(
    x: Tensor, x_rec: Tensor, path: str | Path, per_row: int = 8, columns: Columns | None = None
) -> Path:
    """Inputs and their reconstructions in alternating rows (images; the first GRID_LIMIT, a last row short of
    ``per_row`` filled with blank tiles), or for other items (N, ...) each value against its reconstruction, in
    standardised units, a colour per slot named by ``columns`` (``slot_groups``: past 20 slots, per column)."""
    if is_image(shape := tuple(x.shape[1:])):
        x, x_rec = (v[:GRID_LIMIT].detach().float().cpu() for v in (x, x_rec))
        per_row = min(per_row, len(x))
        rows = math.ceil(len(x) / per_row)
        fill = torch.zeros(rows * per_row - len(x), *shape)  # the last row's blank tiles
        pairs = torch.stack([torch.cat([v, fill]).view(rows, per_row, *shape) for v in (x, x_rec)], 1)
        blank = (torch.arange(rows * per_row) >= len(x)).view(rows, 1, per_row).expand(rows, 2, per_row)
        return save_png(image_grid(pairs.reshape(-1, *shape), nrow=per_row, blank=blank.reshape(-1)), path)
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
    return _save_figure(fig, path)


def _tab20(j: int) -> tuple:
    import matplotlib

    return matplotlib.colormaps["tab20"](j % 20)


def save_array_or_png(x: Tensor, out: str | Path, save: Callable[[Tensor, Path], Path]) -> Path:
    """Write (N, *shape) to ``out``: a .npy array, or a .png through ``save(x, path)``."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, x.numpy())
        return atomic_write_bytes(out, buf.getvalue())
    if suffix == ".png":
        return save(x, out)
    raise VaekitError(f"{out}: expected a .png, .npy or (a table run's rows) .csv file name", key="out")
