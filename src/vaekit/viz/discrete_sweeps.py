"""Sweeps of a discrete code, the report's picture in place of traversals for the categorical (Gumbel-softmax) and
VQ families: one latent variable at a time (a categorical variable, a grid position) set to each of its
categories or codes, the rest of item 0's code kept, decoded.

A traversal sets one coordinate of a continuous code to -3..3: no code these decoders read. A categorical VAE's
decoder reads N one-hots of K categories (flattened variable-major, (N * K,)); a VQ-VAE's reads a grid of
codebook vectors, whose scale is arbitrary. The variables are ranked as ``active_codes`` judges them active:
by sum_k Var_x(q(z_u = k|x)) over the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn.functional import one_hot

from ..data.lazy import LazyArray
from ..errors import VaekitError
from ..evaluation.active import ACTIVE_THRESHOLD, active_codes, discrete_codes
from ..models.vq import VQVAE
from ..run_reads import reading
from ..runs import Run
from .latent_walks import decode_mean, discrete_family
from .picture_rules import Named, out_path
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
)

SWEEP_ROWS = 8  # the report's rows: the most varying variables or grid positions
SWEEP_COLUMNS = 10  # categories or codes per row, at most


@dataclass
class Sweep:
    """A sweep of a discrete code: ``x`` (R, C, *shape) the decoded means, ``rows`` the R variables (gumbel) or
    grid positions (vq, row-major over ``grid``) swept, most varying first, ``picks`` (R, C) the category or code
    each column sets, ``z`` (R, C, D) the codes decoded, ``active`` how many variables vary over the data, of
    ``size`` (N variables of K categories, or K codes, ``size[1]``)."""

    family: str
    x: Tensor
    rows: list[int]
    picks: Tensor
    z: Tensor
    active: int
    size: tuple[int, int]
    grid: tuple[int, int] | None = None
    padded: bool = False  # vq: a row has fewer codes used at its position than columns, the rest by overall use


@reading
def data_codes(run: Run, x: Tensor | LazyArray, batch_size: int = 500) -> Tensor:
    """The discrete codes of items x (N, *shape) on the CPU (``discrete_codes``): the class probabilities
    (N, U, K) of a categorical q(z|x), or the code indices (N, h * w) of a VQ-VAE's, row-major."""
    parts = []
    for i in range(0, len(x), batch_size):
        codes = discrete_codes(run.encode(x[i : i + batch_size]))
        if not codes:
            raise VaekitError("this run's q(z|x) is not a categorical or VQ code: its traversals are `traverse`'s")
        parts.append(codes[0])
    return torch.cat(parts)


def counts(index: Tensor, k: int) -> Tensor:
    """How often each of U positions takes each of k codes over N items: index (N, U) -> (U, k)."""
    n, u = index.shape
    return torch.zeros(u, k).scatter_add_(1, index.t().long(), torch.ones(u, n))


def spread(codes: Tensor) -> Tensor:
    """sum_k Var_x(q(z_u = k|x)) per variable u, (U,), as ``active_codes`` measures it: from probabilities
    (N, U, K), or indices (N, U) (one-hot q: N/(N-1) times the Gini impurity); zeros for one item."""
    n = len(codes)
    if n < 2:
        return torch.zeros(codes.shape[1])
    if codes.dim() == 3:
        return codes.var(0).sum(-1)
    f = counts(codes, int(codes.max()) + 1) / n  # (U, K)
    return (1 - f.pow(2).sum(1)) * n / (n - 1)


def most_varying(codes: Tensor, n: int) -> tuple[list[int], int]:
    """(up to ``n`` variables of ``codes`` (N, U, K) or (N, U), largest ``spread`` first, the inactive ones
    (``active_codes``) left out unless none is active; how many are active)."""
    if n < 1:
        raise VaekitError(f"{n} rows: a sweep needs at least 1 variable to sweep", key="n_dims")
    order = spread(codes).argsort(descending=True, stable=True)
    active = active_codes(codes, ACTIVE_THRESHOLD) if len(codes) > 1 else torch.zeros(codes.shape[1], dtype=torch.bool)
    kept = order[active[order]]
    return (kept if len(kept) else order)[:n].tolist(), int(active.sum())


@reading
def category_sweeps(run: Run, x: Tensor | LazyArray, n_vars: int = SWEEP_ROWS, columns: int = SWEEP_COLUMNS) -> Sweep:
    """Category sweeps of a categorical (Gumbel-softmax) run over items x (N, *shape): item 0's code (the most
    probable category of each of its N variables, one-hots), with each of the ``n_vars`` most varying variables
    set in turn to each of its K categories (0..K-1; for K > ``columns``, the ``columns`` of highest mean
    q(z_u = k|x) over x, largest first), decoded."""
    probs = data_codes(run, x)  # (N, U, K)
    u, k = probs.shape[1:]
    rows, active = most_varying(probs, n_vars)
    use = probs.mean(0)  # (U, K)
    picks = torch.stack(
        [torch.arange(k) if k <= columns else use[v].argsort(descending=True, stable=True)[:columns] for v in rows]
    )  # (R, C)
    z = one_hot(probs[0].argmax(-1), k).float().repeat(len(rows), picks.shape[1], 1, 1)  # (R, C, U, K)
    for r, v in enumerate(rows):
        z[r, :, v] = one_hot(picks[r], k).float()
    z = z.flatten(2)  # (R, C, U * K), variable-major as the decoder reads it
    xs = decode_mean(run, z.flatten(0, 1))
    return Sweep("gumbel", xs.view(*z.shape[:2], *xs.shape[1:]), rows, picks, z, active, (u, k))


@reading
def code_sweeps(run: Run, x: Tensor | LazyArray, n_positions: int = SWEEP_ROWS, columns: int = SWEEP_COLUMNS) -> Sweep:
    """Code sweeps of a VQ-VAE run over items x (N, *shape): item 0's code grid, with each of the ``n_positions``
    positions whose code varies most over x given in turn each of the (up to ``columns``) codes used most there,
    as the codebook's own vectors, decoded. Ties, and the codes that fill a row whose position uses fewer than
    another row's, go by their use over the whole grid."""
    model = run.model
    if not isinstance(model, VQVAE):
        raise VaekitError(f"code sweeps are a VQ-VAE's: this run's model is a {type(model).__name__}")
    index = data_codes(run, x)  # (N, P)
    book, grid = model.codebook.detach().cpu(), model.grid  # (K, D), (h, w)
    k = len(book)
    rows, active = most_varying(index, n_positions)
    used = counts(index, k)  # (P, K)
    overall = used.sum(0).argsort(descending=True, stable=True)  # (K,)
    c = min(columns, int((used[rows] > 0).sum(1).max()))  # no column that no row's position uses
    picks = torch.stack([overall[used[p, overall].argsort(descending=True, stable=True)][:c] for p in rows])
    grids = index[0].repeat(len(rows), c, 1)  # (R, C, P)
    for r, p in enumerate(rows):
        grids[r, :, p] = picks[r]
    z = book[grids.unflatten(-1, grid)].movedim(-1, -3).flatten(-3)  # (R, C, D * h * w), channel-major
    xs = decode_mean(run, z.flatten(0, 1))
    padded = bool((used[rows] > 0).sum(1).lt(c).any())
    return Sweep("vq", xs.view(*z.shape[:2], *xs.shape[1:]), rows, picks, z, active, (index.shape[1], k), grid, padded)


def sweeps(run: Run, x: Tensor | LazyArray, n: int = SWEEP_ROWS, columns: int = SWEEP_COLUMNS) -> Sweep:
    """``category_sweeps`` or ``code_sweeps``, as the run's family has it: ``n`` rows of at most ``columns``."""
    family = discrete_family(run)
    if family is None:
        raise VaekitError("sweeps are for discrete codes (gumbel, vq): a continuous code's are `traverse`'s")
    return (category_sweeps if family == "gumbel" else code_sweeps)(run, x, n, columns)


def position(p: int, grid: tuple[int, int]) -> str:
    """Grid position ``p`` (row-major) as "(row, column)"."""
    return f"({p // grid[1]}, {p % grid[1]})"


def sweep_caption(s: Sweep, images: bool) -> str:
    """What a sweep's picture shows: what varies, what stays item 0's, and how its rows and columns were chosen."""
    (u, k), c = s.size, s.picks.shape[1]
    varies = f"{s.active} of {u} vary over the data" if s.active else "none varies over the data by more than "
    varies += "" if s.active else f"{ACTIVE_THRESHOLD}: these are merely the first by that measure"
    if s.family == "gumbel":
        cols = f"its {k} categories, 0 to {k - 1}" if c == k else f"the {c} of its {k} categories most used"
        said = (
            f"Category sweeps of the categorical variables {s.rows} of {u} ({k} categories each; {varies}), most "
            f"varying first by sum_k Var_x q(z_u = k|x): item 0's code (one-hots of its most probable category per "
            f"variable), one variable at a time set to each of {cols}, decoded; the other variables stay item 0's"
        )
        row, col = "variable", "category" + ("" if c == k else ", by mean q(z_u = k|x) over the data, most first")
    else:
        grid = s.grid or (1, u)
        rest = "; codes not used at a position fill its row by their use over the grid" if s.padded else ""
        said = (
            f"Code sweeps of the grid positions {', '.join(position(p, grid) for p in s.rows)} (row, column) of the "
            f"{grid[0]} x {grid[1]} code grid ({varies}), most varying first by the spread of their codes: item 0's "
            f"code grid, one position at a time given the codebook vector of each of the {c} codes (of {k}) used "
            f"most at that position, decoded; the other positions keep item 0's codes{rest}"
        )
        row, col = "position", "code, the most used at that position first"
    if images:
        return f"{said}: a row per {row}, top to bottom, a column per {col}"
    return f"{said}: a panel per {row}, each slot's decoded value (standardised) against the {col}"


@overload
def save_sweeps(s: Sweep, path: None = None, columns: Columns | None = None) -> Image.Image: ...
@overload
def save_sweeps(s: Sweep, path: Named, columns: Columns | None = None) -> Path: ...
def save_sweeps(s: Sweep, path: Named | None = None, columns: Columns | None = None) -> Path | Image.Image:
    """A sweep's decoded means: a grid of a row per variable or position (images), or a panel per row of each
    slot against the category or code set, in standardised units, a line per slot named by ``columns``. Written
    as PNG to ``path`` (returned), or, path None, returned as a ``PIL.Image.Image``, as ``save_samples``."""
    out = out_path(path, "save_sweeps")
    if is_image(tuple(s.x.shape[2:])):
        check_line(max(s.x.shape[:2]), "categories or rows")
        return _picture(image_grid(s.x.flatten(0, 1), nrow=s.x.shape[1]), out)
    columns = columns or Columns()
    ref = s.x.flatten(2).flatten(0, 1)  # (R * C, slots): the scale when columns has none
    fig, axes = _figure(len(s.rows), width=3.5)
    at = np.arange(s.picks.shape[1])
    for ax, row, xs, picks in zip(axes, s.rows, s.x, s.picks):
        column_lines(ax, at, columns.standardised(xs.flatten(1), ref), columns)
        name = f"z[{row}]" if s.family == "gumbel" else f"position {position(row, s.grid or (1, s.size[0]))}"
        ax.set(title=name, xlabel="category" if s.family == "gumbel" else "code", xticks=at)
        ax.set_xticklabels([str(p) for p in picks.tolist()], fontsize="x-small")
    axes[0].set_ylabel("decoded (standardised)")
    column_legend(axes[-1], columns, ref.shape[1])
    return _picture(fig, out, _save_figure)


def sweep_picture(run: Run, x: Tensor, n: int, folder: Path, columns: Columns | None = None) -> tuple[str, Path]:
    """(caption, path) of the report's sweeps of a discrete run over items x (N, *shape): ``n`` rows."""
    s = sweeps(run, x, n)
    return sweep_caption(s, is_image(tuple(x.shape[1:]))), save_sweeps(s, folder / "t.png", columns)
