"""What float32, the dtype the models read, holds of the values given: its range (values beyond it are refused
before the cast, which would make them infinite), its resolution (a table column varying by less than float32
resolves at its size is said in one note, for CSV files, .npy tables, arrays and frames alike), and the 256
levels k / 255 of 8-bit images, which a narrower float holds only to its own rounding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import VaekitError
from .photos import note

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4e38


def below_float32(values: np.ndarray, name: str, where: str) -> None:
    """One line when a numeric column's values (sorted, distinct, finite) differ by less than float32 resolves at
    their size (1.7e12 + seconds, 1e9 + noise): the model reads float32, which keeps only a few of them there.
    ``where`` ends with ': ' (or is empty)."""
    if len(values) < 2 or not np.isfinite(values).all():  # inf: refused when the column is coded
        return
    spread, size = float(values[-1] - values[0]), float(np.abs(values).max())
    if spread <= 1e-6 * (1 + size):
        kept = len(np.unique(values.astype(np.float32)))
        note(
            f"{where}column {name!r} varies by {spread:g} around {size:g}, below what float32 resolves there: "
            f"its steps of {float(np.spacing(np.float32(size))):g} leave {kept} distinct value{'s' * (kept > 1)} "
            "(subtract an offset, such as its first value, to keep its variation)"
        )


def fits_float32(
    x: np.ndarray, where: str, names: Sequence[str] | None = None, notes: bool = True, rows: np.ndarray | None = None
) -> None:
    """Refuse, in one line, finite values of ``x`` (N, ...) beyond float32's range, naming the first one's item (its
    number in ``rows`` (N,), a streamed batch's, when given); for a table (N, D) of a dtype float32 does not hold
    exactly (float64, int64), one note per column ``below_float32`` finds (``names``: the columns')."""
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
            name = names[j] if names is not None else str(j)
            below_float32(np.array([lo[j], hi[j]]), name, f"{where}: ")


def _extreme(x: np.ndarray) -> float:
    """The largest magnitude among x's values, NaN left out (fmin, fmax), without copying x."""
    return float(max(-np.fmin.reduce(x, axis=None), np.fmax.reduce(x, axis=None)))
