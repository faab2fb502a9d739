"""dSprites-style data generated in code (after Matthey et al. 2017): binary images of a square, an ellipse
and a heart over 6 scales, 40 orientations, 32 x- and 32 y-positions (737,280 combinations), with the
factor values of every image. Images are rendered on demand from their factors, never stored whole.

Spec syntax (built-in ``dsprites``): ``dsprites[:SIZE][:n=N]``, e.g. ``dsprites`` (64x64, 100,000 images),
``dsprites:32`` (32x32), ``dsprites:32:n=50000``; SIZE runs from 16 (smaller sizes lose whole shapes between
pixel centres) to 256, given once; ``n=all`` renders every combination. The subset is drawn
with a fixed generator, so a spec always means the same images; the labels are the shape (3 classes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from vaekit.data.core import RawData, _split_indices
from vaekit.errors import VaekitError

if TYPE_CHECKING:
    from vaekit.data.tables import TableOptions

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ["square", "ellipse", "heart"]
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * math.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
HALF_SIZE = 0.12  # half the side of the square at scale 1, as a fraction of the image width
MARGIN = 0.2  # centres run from MARGIN to 1 - MARGIN, so every rotated shape stays inside
DEFAULT_N, SUBSET_SEED, CHUNK = 100_000, 0, 2048
MIN_SIZE = 16  # at 8x8 9% of images (16% of ellipses) come out blank: no pixel centre falls inside the shape


def _inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside tests for local coordinates u, v (n, H, W) (unit half size, v pointing down) by shape (n, 1, 1)."""
    square = np.maximum(np.abs(u), np.abs(v)) <= 1.0
    ellipse = (u / 1.2) ** 2 + (v / 0.6) ** 2 <= 1.0
    hx, hy = u * 1.15, 0.12 - v * 1.15  # the heart curve (x^2 + y^2 - 1)^3 = x^2 y^3, centred, y up
    heart = (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0
    return np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))


def render(factors: np.ndarray, size: int = 64) -> np.ndarray:
    """Factor indices (N, 5) (shape, scale, orientation, posX, posY) -> binary images (N, size, size) uint8."""
    factors = check_factors(factors)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size  # pixel centres in (0, 1)
    out = np.empty((len(factors), size, size), dtype=np.uint8)
    for start in range(0, len(factors), CHUNK):
        f = factors[start : start + CHUNK]

        def col(a: np.ndarray) -> np.ndarray:  # (n,) -> (n, 1, 1)
            return a.astype(np.float32)[:, None, None]

        s = col(HALF_SIZE * SCALES[f[:, 1]])
        angle = ORIENTATIONS[f[:, 2]]
        cos, sin = col(np.cos(angle)), col(np.sin(angle))
        dx = grid[None, None, :] - col(MARGIN + (1 - 2 * MARGIN) * POSITIONS[f[:, 3]])  # (n, 1, W)
        dy = grid[None, :, None] - col(MARGIN + (1 - 2 * MARGIN) * POSITIONS[f[:, 4]])  # (n, H, 1)
        u, v = (cos * dx + sin * dy) / s, (cos * dy - sin * dx) / s  # rotate by -angle, scale to unit size
        out[start : start + CHUNK] = _inside(f[:, :1, None], u, v)
    return out


def check_factors(factors: np.ndarray) -> np.ndarray:
    """(N, 5) integer factor indices within FACTOR_SIZES, else VaekitError."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES) or factors.dtype.kind not in "iu":
        raise VaekitError(
            f"dsprites: factors must be integers of shape (N, 5), got {factors.dtype} {tuple(factors.shape)}"
        )
    if factors.size and ((factors < 0).any() or (factors >= np.array(FACTOR_SIZES)).any()):
        raise VaekitError(f"dsprites: factor indices must lie below {FACTOR_SIZES}")
    return factors.astype(np.int64)


def all_factors() -> np.ndarray:
    """Every combination, (737280, 5), in the order of the original dSprites file (posY fastest)."""
    return np.stack(np.unravel_index(np.arange(math.prod(FACTOR_SIZES)), FACTOR_SIZES), 1)


class DSprites:
    """A factor-sampling data set for the disentanglement metrics: sample factors, then render them."""

    factor_names, factor_sizes = FACTOR_NAMES, FACTOR_SIZES

    def __init__(self, size: int = 64):
        self.size = size

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 5) factor indices drawn uniformly and independently."""
        return np.stack([rng.integers(0, k, n) for k in FACTOR_SIZES], 1)

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """Factor indices (N, 5) -> float32 images (N, 1, size, size) in {0, 1}."""
        return torch.from_numpy(render(factors, self.size)).unsqueeze(1).float()


def parse_spec(spec: str) -> tuple[int, int]:
    """'dsprites[:SIZE][:n=N]' -> (size, n); bad parts raise VaekitError naming the spec."""
    size, n, sizes = 64, DEFAULT_N, 0
    for part in spec.split(":")[1:]:
        key, eq, value = part.partition("=")
        try:
            if not eq and key.isdigit():
                size, sizes = int(key), sizes + 1
            elif key == "n":
                n = math.prod(FACTOR_SIZES) if value == "all" else int(value)
            else:
                raise ValueError
        except ValueError:
            raise VaekitError(f"{spec}: expected dsprites[:SIZE][:n=N], e.g. dsprites:32:n=50000") from None
    if sizes > 1:
        raise VaekitError(f"{spec}: names the size {sizes} times; give one SIZE, e.g. dsprites:32:n=50000")
    if not MIN_SIZE <= size <= 256 or not 3 <= n <= math.prod(FACTOR_SIZES):
        raise VaekitError(
            f"{spec}: size must be in {MIN_SIZE}..256 (below {MIN_SIZE} the smallest shapes vanish between pixel "
            f"centres) and n in 3..{math.prod(FACTOR_SIZES)}"
        )
    return size, n


def load(spec: str, split: TableOptions | None = None) -> RawData:
    """RawData for a dsprites spec: a fixed random subset of n combinations, rendered once (uint8 images).

    ``split`` (the split options of a load that takes only its splits' items) with a ``limit`` below n renders
    only the items the split takes, as ``data.core`` splits the whole set: those ``limit`` items, in the order
    the split draws them, with the split fixed (test, val, train), so the Dataset holds the very items it would
    hold had every image been rendered."""
    size, n = parse_spec(spec)
    total = math.prod(FACTOR_SIZES)
    index = np.arange(total) if n == total else np.random.default_rng(SUBSET_SEED).choice(total, n, replace=False)
    used, fixed = _used(n, spec, split)
    factors = np.stack(np.unravel_index(index[used], FACTOR_SIZES), 1)
    return RawData(render(factors, size)[:, None], factors[:, 0], spec, scale=1.0, classes=list(SHAPES), fixed=fixed)


def _used(n: int, spec: str, split: TableOptions | None) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """(positions among the n items to render, the split of the rendered items or None: split as ever).

    Under a limit, the test, val and train positions ``data.core._split_indices`` draws for the whole set, and
    each split's rows among them; ``build_dataset`` then keeps each fixed split whole (no more than its limit)
    and in order."""
    if split is None or split.limit is None or split.limit >= n:
        return np.arange(n), None
    stub = RawData(np.empty((n, 0)), None, spec)  # what the split reads: the number of items, no official split
    parts = _split_indices(stub, n, n, split.val_fraction, split.test_fraction, split.seed, split.limit)
    names = ("test", "val", "train")
    ends = np.cumsum([len(parts[k]) for k in names])
    return np.concatenate([parts[k] for k in names]), {k: np.arange(e - len(parts[k]), e) for k, e in zip(names, ends)}
