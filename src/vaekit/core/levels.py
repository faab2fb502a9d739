"""The 256 levels k / 255 of 8-bit data as the support of the discretized logistic mixture, which models only them:
values between levels (continuous data in [0, 1]) would be rounded to the nearest, silently.

A value is on a level within 1e-3 of a level's width (float32's own rounding of k / 255 is 6e-8), or, where it
is a float16 number, within float16's rounding of one (up to 0.06 of a level near 1): the rule by which the data
package calls data 8-bit (``data.prepare._value_kinds`` and ``levels_within``), so data it models
under this likelihood is never refused here.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints

TOLERANCE = 1e-3  # of a level's width (1 / 255)
MANTISSA = {torch.float16: 10, torch.bfloat16: 7}  # stored mantissa bits of the narrow floats


def levels_within(x: Tensor, dtype: torch.dtype) -> Tensor:
    """(same shape) bool: where a value of ``x`` is one of ``dtype`` (float16, bfloat16) and lies within that
    dtype's rounding (half its spacing there) of a level k / 255: an 8-bit image stored at that width."""
    level = torch.round(x * 255) / 255
    _, e = torch.frexp(x)  # x = m 2^e, m in [0.5, 1): the spacing there is 2^(e - 1 - mantissa bits)
    half = torch.ldexp(torch.ones_like(x), (e - 2 - MANTISSA[dtype]).clamp(min=-25))
    return (x.to(dtype).to(x.dtype) == x) & ((x - level).abs() <= half + 6e-8)  # 6e-8: float32's rounding of k/255


def on_levels(x: Tensor) -> Tensor:
    """(same shape) bool: where x is within [0, 1] and on a level k / 255 (see the module's rule)."""
    near = (x * 255 - torch.round(x * 255)).abs() < TOLERANCE
    if bool(near.all()):
        return (x >= 0) & (x <= 1)
    return (near | levels_within(x, torch.float16)) & (x >= 0) & (x <= 1)


class _EightBit(constraints._Interval):
    """[0, 1], on the levels k / 255 (``on_levels``)."""

    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def check(self, value: Tensor) -> Tensor:
        return on_levels(value)

    def __repr__(self) -> str:
        return "EightBit()"


eight_bit = _EightBit()


def first_off(x: Tensor) -> tuple[int, float] | None:
    """(flat index, value) of the first value of x in [0, 1] that is not on a level, or None."""
    bad = ((x >= 0) & (x <= 1) & ~on_levels(x)).flatten()
    if not bool(bad.any()):
        return None
    i = int(bad.nonzero()[0])
    return i, float(x.flatten()[i])
