"""What every picture takes and where it goes: items as tensors or numpy arrays, PNG file names (refused in one
line otherwise, as ``latent_map`` refuses them), and the most a grid or a line of a picture holds. ``plots`` re-exports
them."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from ..io import atomic_write_bytes

GRID_LIMIT = 1024  # items a grid of samples or reconstructions shows at most (the first): a .npy holds them all
LINE_LIMIT = 256  # steps in a row of an interpolation or traversal picture, and rows of a traversal


def as_items(x: object, what: str) -> Tensor:
    """Items x (N, ...) as a tensor: a tensor as it is, a numpy array of numbers (bool, int, float) as one; any
    other type, or an array of text or objects, is refused in one line naming ``what`` took it."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(x))  # contiguous: a flipped view has negative strides
    got = f"a numpy array of {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
    raise VaekitError(f"{what} takes items (N, ...) as a torch.Tensor or a numpy array of numbers, got {got}")


def png_path(path: object, what: str = "vaekit", hint: str = "") -> Path:
    """``path`` (a str or os.PathLike) if its name ends in .png, in any case; else one line, as ``latent_map``
    says it: ``what`` writes PNG only (``hint``: what else it takes)."""
    if not isinstance(path, str | os.PathLike):  # a file object: the PNG is written atomically, by its name
        raise VaekitError(
            f"{what} writes a PNG file: path must be a file name ending in .png{hint}, got {type(path).__name__}",
            key="out",
        )
    if Path(path).suffix.lower() != ".png":
        raise VaekitError(
            f"{path}: expected a .png file name ({what} writes PNG only: the name must end in .png)", key="out"
        )
    return Path(path)


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether items of ``shape`` (their shape past N) are images (C, H, W); a table's are (D,)."""
    return len(shape) == 3


def check_line(n: int, what: str) -> int:
    """``n`` if a line of a picture (steps of a path or traversal, rows of a traversal) can hold that many
    ``what``, at most LINE_LIMIT, else one line naming the cap."""
    if n > LINE_LIMIT:
        raise VaekitError(
            f"{what} {n}: over {LINE_LIMIT}, the most a picture's row or column shows", key=what.lstrip("-")
        )
    return n


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
