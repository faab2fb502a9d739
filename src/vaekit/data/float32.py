"""What float32, the dtype the models read, holds of the values given: its range (values beyond it are refused
before the cast, which would make them infinite), its resolution (a table column varying by less than float32
resolves at its size is said in one note, for CSV files, .npy tables, arrays and frames alike), and the 256
levels k / 255 of 8-bit images, which a narrower float holds only to its own rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import VaekitError
from .photos import note

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4e38


def below_float32(values: np.ndarray, name: str, where: str, ends: bool = False) -> None:
    """One line when a numeric column's values (sorted, distinct, finite) differ by less than float32 resolves at
    their size (1.7e12 + seconds, 1e9 + noise): the model reads float32, which keeps only a few of them there.
    ``ends``: ``values`` are only the column's least and greatest (a file read in chunks), and the line says how
    many float32 holds between them at most. ``where`` ends with ': ' (or is empty)."""
    if len(values) < 2 or not np.isfinite(values).all():  # inf: refused when the column is coded
        return
    spread, size = float(values[-1] - values[0]), float(np.abs(values).max())
    if too_fine(values[0], values[-1]):
        step = _spacing(size)
        kept = len(np.unique(values.astype(np.float32))) if not ends else _steps(values[0], values[-1], step) + 1
        note(
            f"{where}column {name!r} varies by {spread:g} around {size:g}, below what float32 resolves there: "
            f"its steps of {step:g} leave {'at most ' * ends}{kept} distinct value{'s' * (kept > 1)} "
            "(subtract an offset, such as its first value, to keep its variation)"
        )


def fits_float32(
    x: np.ndarray,
    where: str,
    names: Sequence[str] | None = None,
    notes: bool = True,
    rows: np.ndarray | None = None,
    ends: bool = False,
) -> None:
    """Refuse, in one line, finite values of ``x`` (N, ...) beyond float32's range, naming the first one's item (its
    number in ``rows`` (N,), a streamed batch's, when given); for a table (N, D) of a dtype float32 does not hold
    exactly (float64, int64), one note per column ``below_float32`` finds (``names``: the columns'; ``ends``: x is
    only each column's least and greatest, (2, D))."""
    if x.dtype.kind not in "iuf" or np.can_cast(x.dtype, np.float32, "safe"):
        return  # float32 holds every value of float16, uint8..int16 exactly
    if x.dtype.kind == "f" and x.size and _extreme(x) > FLOAT32_MAX:
        big = np.isfinite(x) & (np.abs(x) > FLOAT32_MAX)
        if big.any():  # inf alone is left to the NaN and inf check
            n, at = int(big.sum()), np.unravel_index(int(np.argmax(big)), x.shape)
            item = int(at[0] if rows is None else rows[at[0]])
            raise VaekitError(
                f"{where}: {n} value{'s' * (n != 1)} beyond float32's range (+-3.4e38), the first {x[at]:.4g} in item "
                f"{item}: the model reads float32; rescale the data"
            )
    if notes and x.ndim == 2 and len(x) > 1:
        lo, hi = np.fmin.reduce(x).astype(np.float64), np.fmax.reduce(x).astype(np.float64)  # (D,), NaN left out
        for j in np.flatnonzero(hi > lo).tolist():
            if too_fine(lo[j], hi[j]):  # its distinct values counted only then
                column = x[:, j].astype(np.float64)
                name = names[j] if names is not None else str(j)
                below_float32(np.unique(column[np.isfinite(column)]), name, f"{where}: ", ends)


def too_fine(lo: float, hi: float) -> bool:
    """Whether values from ``lo`` to ``hi`` span no more than 8 of float32's steps at their size (about a millionth
    of it): relative, as float32's resolution is (1e-8 +- 1e-9 is resolved as well as 1 +- 0.1)."""
    size = max(abs(float(lo)), abs(float(hi)))
    return size <= FLOAT32_MAX and float(hi) - float(lo) <= 8 * _spacing(size)  # beyond: refused, not noted


def _spacing(size: float) -> float:
    """float32's step at ``size`` (>= 0, within its range), computed in float64: 2^(e - 24) for size = m 2^e,
    m in [0.5, 1), and 2^-149 among the subnormals."""
    return math.ldexp(1.0, max(math.frexp(size)[1] - 24 if size else -149, -149))


def _steps(lo: float, hi: float, step: float) -> int:
    """How many float32 steps of ``step`` lie between ``lo`` and ``hi`` once both are rounded to float32."""
    return round((float(np.float32(hi)) - float(np.float32(lo))) / step)


def _extreme(x: np.ndarray) -> float:
    """The largest magnitude among x's values, NaN left out (fmin, fmax), without copying x."""
    return float(max(-np.fmin.reduce(x, axis=None), np.fmax.reduce(x, axis=None)))
