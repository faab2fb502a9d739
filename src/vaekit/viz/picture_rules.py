"""What every picture takes and where it goes: items as tensors or numpy arrays (uint8 images as 0..255), codes and
values as vectors, PNG file names (refused in one line otherwise, as ``latent_map`` refuses them) or None for the
picture itself, and the most a grid, a line or a traversal of a picture holds (``top_dims``: its dims). ``plots`` and
``figures`` re-export them."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import logs
from ..data.item_arrays import IMAGE_SCALES
from ..errors import VaekitError
from ..evaluation.metrics import ACTIVE_THRESHOLD
from ..io import atomic_write_bytes

GRID_LIMIT = 1024  # items a grid of samples or reconstructions shows at most (the first): a .npy holds them all
LINE_LIMIT = 256  # steps in a row of an interpolation or traversal picture, and rows of a traversal
PIXELS = {str(k): v for k, v in IMAGE_SCALES.items()}  # "uint8": 255, as fit reads images; a torch dtype's too
RETURNED = ", or None for the picture itself"  # what the picture helpers take as path
Items = Tensor | np.ndarray  # (N, ...) a picture helper takes: images in [0, 1], or uint8 (``as_pictures``)
Named = str | os.PathLike  # a PNG file name (``png_path``)


def as_items(x: object, what: str, lead: int = 1) -> Tensor:
    """Items x (N, ...) as a tensor: a tensor as it is, a numpy array of numbers (bool, int, float) as one; uint8
    (uint16) images, (C, H, W) past ``lead`` dims, as floats / 255 (/ 65,535), as ``fit`` reads them. Any other
    type, or an array of text or objects, is refused in one line naming ``what`` took it."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        x = torch.from_numpy(np.ascontiguousarray(x))  # contiguous: a flipped view has negative strides
    if not isinstance(x, Tensor):
        got = f"a numpy array of {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise VaekitError(f"{what} takes items (N, ...) as a torch.Tensor or a numpy array of numbers, got {got}")
    scale = PIXELS.get(str(x.dtype).removeprefix("torch."))
    return x.float() / scale if scale and is_image(tuple(x.shape[lead:])) else x


def as_pictures(what: str, *xs: object, lead: int = 1) -> tuple[Tensor, ...]:
    """The items of one picture (each (N, ...), ``as_items``), their images judged together. Pictures take values
    in [0, 1] and clip the rest: a gaussian p(x|z)'s decoded means stray a little past them, and pass. Whole
    numbers past [0, 1] are pixels of another scale (a float image in 0..255; never a decoder's means) and are
    refused in one line naming the range seen. Fractional values ``on_another_scale`` (a [-1, 1]-normalised
    batch, a resized 0..255 image) are drawn clipped, as before, with one warning naming the range seen and the
    scaling to apply: a warning, not a refusal, as they may be vaekit's own decoded means of a run trained on data
    of that scale (the pictures at the end of its training, its report), which must still be drawn. A table's
    items (standardised in its pictures) are taken as they are."""
    items = tuple(as_items(x, what, lead) for x in xs)
    images = [t.detach().flatten().float() for t in items if is_image(tuple(t.shape[lead:])) and t.numel()]
    if not images:
        return items
    v = torch.cat([t.cpu() for t in images])
    lo, hi = float(v.min()), float(v.max())
    if (lo < 0 or hi > 1) and bool((v == v.round()).all()):  # whole numbers: no decoder's means, pixels given
        fix = "pass them as uint8 or divide by 255" if lo >= 0 and hi <= 255 else "scale them to [0, 1]"
        raise VaekitError(
            f"{what}: image values in [{lo:g}, {hi:g}], whole numbers; pictures take values in [0, 1] "
            f"(uint8 images as 0..255): {fix}"
        )
    if on_another_scale(v):
        out = float(((v < 0) | (v > 1)).float().mean())
        logs.warning(
            f"{what}: image values in [{lo:.4g}, {hi:.4g}], {out:.0%} of them outside [0, 1]: pictures take values "
            f"in [0, 1], so these are drawn clipped (black below 0, white above 1): {rescale(lo, hi)}"
        )
    return items


CLIPPED = 0.2  # how far clipping to [0, 1] moves image values on average, at least, on another scale


def on_another_scale(v: Tensor) -> bool:
    """Whether image values v (M,) lie on another scale than [0, 1]: clipping to [0, 1] moves them by CLIPPED or
    more on average, the mean of max(-v, 0, v - 1). Measured: a gaussian p(x|z)'s decoded means move by 0.03 to
    0.11 after one epoch on digits (samples, reconstructions; a few values past -1), by 0.04 to 0.15 untrained
    (noise around 0); a uniform [-1, 1] batch by 0.25, [-1, 1]-normalised digits by 0.59, standardised images
    by about 0.45, 0..255 pixels by 80 or more. A mean, not the extremes (a decoder's stray values pass -1) nor
    a share outside (its means of a black background may all lie a hair below 0); sparse 0..255 pixels count by
    how far they lie. Data only a little past [0, 1] (bright photos normalised to [-1, 1]) go unremarked."""
    return float((v.neg().relu() + (v - 1).relu()).mean()) >= CLIPPED


def rescale(lo: float, hi: float) -> str:
    """What to do with images of values in [lo, hi] (``on_another_scale``): the scaling to [0, 1] they suggest."""
    if lo >= -1.05 and hi <= 1.05:
        return "scale them to [0, 1] first: (x + 1) / 2 for [-1, 1]-normalised images"
    if lo >= -0.05 and hi <= 255.5:
        return "scale them to [0, 1] first: x / 255 for 0..255 pixels"
    return "scale them to [0, 1] first: (x - x.min()) / (x.max() - x.min()) for another range"


def out_path(path: object, what: str) -> Path | None:
    """Where a picture helper writes: None (path None: it returns the picture, a ``PIL.Image.Image``), else the
    PNG file ``path`` (``png_path``)."""
    return None if path is None else png_path(path, what, RETURNED)


def vector(v: object, name: str, size: int | None = None) -> Tensor:
    """``v`` (a tensor, numpy array or list of numbers) as a float32 (size,) tensor on the CPU, any length >= 1
    when ``size`` is None; one line naming the expected shape otherwise."""
    want = "(V,) with V >= 1" if size is None else f"(D,) = ({size},), the run's latent size"
    try:
        t = torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, Tensor) else v, dtype=np.float32))
    except (TypeError, ValueError):
        raise VaekitError(f"{name}: expected numbers of shape {want}", key=name) from None
    if t.dim() != 1 or len(t) < 1 or (size is not None and len(t) != size):
        raise VaekitError(f"{name} has shape {tuple(t.shape)}: expected {want}", key=name)
    return t


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


def path_layout(shape: tuple[int, ...] | torch.Size, names: list[str]) -> str:
    """Where ``save_interpolation`` puts each path of items of ``shape``: rows for images, panels for others."""
    where = ("top", "bottom") if is_image(tuple(shape)) else ("left", "right")
    if len(names) != 2:
        return ", ".join(names) + (" (top to bottom)" if where[0] == "top" else " (left to right)")
    return f"{names[0]} ({where[0]}), {names[1]} ({where[1]})"


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


def top_dims(score: Tensor, n: int, floor: float = ACTIVE_THRESHOLD, among: list[int] | None = None) -> list[int]:
    """Up to ``n`` dims with the largest score (D,) (e.g. the variance of the posterior means), of ``among``
    (default all; ``decoded_dims``), leaving out those at or below ``floor`` (inactive units) unless none is
    above it."""
    pool = torch.arange(len(score)) if among is None else torch.as_tensor(among, dtype=torch.long)
    order = pool[score[pool].argsort(descending=True)][: min(n, len(pool))]
    active = order[score[order] > floor]
    return (active if len(active) else order).tolist()
