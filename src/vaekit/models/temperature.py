"""A sampling temperature as the user gives it: one number, or for a deep run one per resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, cast

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError

Temperature: TypeAlias = float | Sequence[float] | np.ndarray | Tensor  # one number, or one per resolution


def temperatures(t: object, family: str) -> float | list[float]:
    """``t`` as a float, or for a deep run a list of floats (one per resolution: a list, tuple, array or tensor);
    one line unless each is a finite number >= 0 (numpy and torch numbers too, not bools)."""
    several = isinstance(t, (list, tuple)) or (isinstance(t, (np.ndarray, Tensor)) and t.ndim > 0)
    values = list(cast(list, t)) if several else [t]
    numbers = [float(v) for v in values if isinstance(v, (int, float, np.number, Tensor)) and not _bool(v)]
    if not values or len(numbers) < len(values) or not all(0 <= v < float("inf") for v in numbers):
        raise VaekitError(
            f"temperature must be a finite number >= 0 (or one per resolution), got {t!r}", key="temperature"
        )
    if several and family != "deep":
        raise VaekitError(f"one temperature per resolution takes a deep run; this one is {family}", key="temperature")
    return numbers if several else numbers[0]


def _bool(v: object) -> bool:
    """Whether ``v`` is a bool (Python's, numpy's or a bool tensor): not a temperature."""
    return isinstance(v, (bool, np.bool_)) or (isinstance(v, Tensor) and v.dtype == torch.bool)
