"""p(x|z) of a table with numeric and categorical columns, as one ``torch.distributions.Distribution``.

An item x (D,) holds the numeric columns first, then each categorical column one-hot: D = n + sum_j K_j. The
decoder gives one value per slot: the Gaussian's loc for a numeric column, a logit per category for a
categorical one (a softmax, as in TVAE, Xu et al. 2019). log p(x|z) is the sum of the Gaussian log-densities
and of each column's Categorical log-probability, so log_prob(x) -> (B,) as the model contract wants.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical, Distribution, Normal, constraints

from ..errors import VaekitError

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))  # as torch's Normal has it
WIDE = 2.0**60  # a scale or distance past which normal_log_prob standardises before squaring
NARROW = 2.0**-60  # a scale under which it does too (a column of ~1e-20: its square is below float32's range)


class Tabular(Distribution):
    """Gaussian numeric columns and Categorical ones: batch (B,), event (n + sum K,).

    ``loc``, ``scale`` (B, n) are the numeric columns' Normal; ``logits`` (B, sum K) the categories' logits,
    split into groups of ``categories`` (K_1, ..., K_m): sum K = the logits' last size, each K >= 1.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.real, 1)  # one-hot codes are real numbers too
    has_rsample = False

    def __init__(self, loc: Tensor, scale: Tensor, logits: Tensor, categories: Sequence[int]):
        self.loc, self.scale, self.logits = loc, scale, logits
        self.categories = checked_categories(loc, scale, logits, categories)
        self.n = loc.shape[-1]
        super().__init__(loc.shape[:-1], torch.Size([self.n + sum(self.categories)]), validate_args=False)

    def groups(self) -> list[Tensor]:
        """log-softmax of each categorical column's logits: m tensors (B, K_j)."""
        return [F.log_softmax(g, -1) for g in self.logits.split(self.categories, -1)] if self.categories else []

    def log_prob(self, value: Tensor) -> Tensor:
        """(B, D) -> (B,): Gaussian log-densities of the numeric slots plus log p(category) of each column (the
        one-hot code picks its log-probability; soft codes give the cross-entropy)."""
        rec = normal_log_prob(self.loc, self.scale, value[..., : self.n]).sum(-1)
        onehot = value[..., self.n :].split(self.categories, -1) if self.categories else []
        for logp, code in zip(self.groups(), onehot):
            rec = rec + (logp * code).sum(-1)
        return rec

    @property
    def mean(self) -> Tensor:
        """(B, D): the numeric locs, then each column's category probabilities (the mean of its one-hot code)."""
        return torch.cat([self.loc, *[g.exp() for g in self.groups()]], -1)

    @property
    def mode(self) -> Tensor:
        """(B, D): the numeric locs, then each column's most probable category one-hot."""
        hot = [F.one_hot(g.argmax(-1), g.shape[-1]).to(self.loc.dtype) for g in self.groups()]
        return torch.cat([self.loc, *hot], -1)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> Tensor:
        """(*sample_shape, B, D): numbers drawn from the Normal, categories from the softmax, one-hot."""
        with torch.no_grad():
            x = Normal(self.loc, self.scale).sample(sample_shape)
            hot = [
                F.one_hot(Categorical(logits=g).sample(sample_shape), g.shape[-1]).to(x.dtype) for g in self.groups()
            ]
            return torch.cat([x, *hot], -1)


class UnitsNormal(Normal):
    """A Normal whose log-density stays finite for any scale float32 holds (a table's column of ~1e20 or ~1e-20 has
    one): ``normal_log_prob``, where torch's squares the scale (beyond float32's range past ~1.8e19, under it
    below ~1e-19)."""

    def log_prob(self, value: Tensor) -> Tensor:
        """value (*batch, *event) -> its elementwise log-density, the same shape."""
        return normal_log_prob(self.loc, self.scale, value)


def normal_log_prob(loc: Tensor, scale: Tensor, value: Tensor) -> Tensor:
    """Elementwise log N(value; loc, scale): torch's formula, bit for bit, where its squares fit float32; where the
    scale or value - loc passes 2**60 (a table column of ~1e20, whose square is beyond float32's range) or the scale
    is under 2**-60 (a column of ~1e-20, whose square is under it) both are first divided by the scale, the change
    of variables, which leaves the density as it is and finite."""
    d = value - loc
    wide = (scale > WIDE) | (scale < NARROW) | (d.abs() > WIDE)
    unit = torch.where(wide, scale, torch.ones_like(scale)).detach()
    return -((d / unit) ** 2) / (2 * (scale / unit) ** 2) - scale.log() - LOG_SQRT_2PI


def checked_categories(loc: Tensor, scale: Tensor, logits: Tensor, categories: Sequence[int]) -> tuple[int, ...]:
    """``categories`` as a tuple; one line refuses a scale of another shape than loc (B, n), logits (B, sum K) of
    another batch, or K_j (each >= 1) that do not add up to the logits' last size."""
    if loc.dim() == 0 or scale.shape != loc.shape:
        raise VaekitError(f"loc and scale must both be (B, n), got {tuple(loc.shape)} and {tuple(scale.shape)}")
    if logits.dim() == 0 or logits.shape[:-1] != loc.shape[:-1]:
        raise VaekitError(f"logits must be (B, sum K) for loc {tuple(loc.shape)}, got {tuple(logits.shape)}")
    try:
        sizes = tuple(operator.index(k) for k in categories)
    except TypeError:  # not a sequence of integers
        sizes = (0,)
    if any(k < 1 for k in sizes) or sum(sizes) != logits.shape[-1]:
        raise VaekitError(
            f"categories must list K_j >= 1 adding up to the {logits.shape[-1]} logits per item, got {categories!r}"
        )
    return sizes
