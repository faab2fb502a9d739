"""A model on standardised columns that answers in the data's own units: x' = (x - loc) / scale inside, and
p(x|z) mapped back, so log p(x|z) counts the change of units (minus the sum of log scale) and samples, means
and reconstructions come out in the table's units.

It meets the model contract itself, so training, evaluation, anomaly scores and export need nothing else.
A table with categorical columns (``categories``: K_j of each, one-hot after the numeric columns) gets the
``core.tabular.Tabular`` p(x|z): the inner decoder's locs of those slots are the categories' logits.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ..core.contract import VAEModule, VAEOutput
from ..core.tabular import Tabular, UnitsNormal
from ..errors import VaekitError

CONSTANT = 0.01  # a constant column's scale in the data's units: this share of its value's size, at least 1 (``fixed``)


class Standardized(VAEModule):  # at run time an nn.Module; declares that it meets the contract
    """``model`` (any model of the contract, on standardised items) seen in the data's units.

    ``loc`` and ``scale`` (the item shape) are buffers, saved with the weights; ``p(x|z)`` of the inner model
    must be a factorised Normal (the Gaussian likelihood). ``categories`` (K_j per categorical column) marks the
    last sum(K_j) slots as one-hot codes: they keep loc 0 and scale 1.
    """

    model: VAEModule
    loc: Tensor  # buffers, the item shape
    scale: Tensor

    def __init__(
        self,
        model: VAEModule,
        loc: Sequence[float] | Tensor,
        scale: Sequence[float] | Tensor,
        categories: Sequence[int] = (),
    ):
        super().__init__()
        self.model = model
        self.categories = category_sizes(categories)
        self.register_buffer("loc", torch.as_tensor(loc, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        check_units(self.loc, self.scale, self.categories, getattr(model, "input_shape", None))

    @classmethod
    def fitted(cls, model: VAEModule, x, categories: Sequence[int] = (), numbers: bool = True) -> Standardized:
        """``model`` on the columns of x (N, *shape; a tensor, numpy array or lazily read data) standardised by
        their mean and standard deviation (the numeric ones: one-hot slots of ``categories`` are left as they are,
        and so are the numeric slots when not ``numbers``, as TVAE's alphas, already on a unit scale)."""
        loc, scale = column_stats(x)
        n = 0 if categories and not numbers else loc.shape[-1] - sum(categories)
        if categories:
            loc[n:], scale[n:] = 0.0, 1.0
        return cls(model, loc, scale, categories)

    @property
    def latent_dims(self) -> list[int]:
        return self.model.latent_dims

    @property
    def needs_labels(self) -> bool:
        return self.model.needs_labels

    @property
    def data_init_items(self) -> int:
        return int(getattr(self.model, "data_init_items", 0))

    def init_from_data(self, x: Tensor) -> None:
        """The inner model's data-dependent start, on the standardised items x (N, *shape)."""
        self.model.init_from_data(self.inside(x))  # type: ignore[operator]

    def init_args(self) -> dict:
        """What rebuilds this model (with fresh weights; loc and scale come back with them)."""
        return {
            "model": self.model,
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "categories": list(self.categories),
        }

    def inside(self, x: Tensor) -> Tensor:
        """(B, *shape) in the data's units -> standardised (a constant column, scale 0: only shifted)."""
        return (x - self.loc) / torch.where(self.scale > 0, self.scale, 1.0)

    def units(self, loc: Tensor, scale: Tensor, loc0: Tensor, scale0: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised (B, n) locs and scales -> the data's units (``loc0``, ``scale0``: the n columns').

        A constant column (scale 0) answers its one value with the scale ``fixed`` gives it: no parameter moves it."""
        return loc0 + scale0 * loc, torch.where(scale0 > 0, scale0 * scale, fixed(loc0, scale0))

    def outside(self, px: Distribution) -> Distribution:
        """p(x'|z) on standardised items -> p(x|z) in the data's units (``Tabular`` with categories)."""
        base = px.base_dist if isinstance(px, Independent) else px
        if not isinstance(base, Normal):
            raise VaekitError("standardised columns need the gaussian likelihood")
        if self.categories:  # (B, n) numbers in the table's units, then (B, sum K) logits
            n = self.loc.shape[-1] - sum(self.categories)
            loc, scale = self.units(base.loc[..., :n], base.scale[..., :n], self.loc[:n], self.scale[:n])
            return Tabular(loc, scale, base.loc[..., n:], self.categories)
        return Independent(
            UnitsNormal(*self.units(base.loc, base.scale, self.loc, self.scale), validate_args=False),
            len(self.loc.shape),
            validate_args=False,
        )

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """x (B, *shape) in the data's units -> the inner model's q(z|x) of its standardised items."""
        return self.model.encode(self.inside(x), y)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """z (B, D) -> p(x|z) in the data's units, event (*shape,)."""
        return self.outside(self.model.decode(z, y))

    def prior(self, y: Tensor | None = None) -> Distribution:
        """The inner model's p(z) (event (D,)); y (B,) for a conditional one."""
        return self.model.prior(y)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape) in the data's units -> the inner model's output with p(x|z) in those units."""
        out = self.model(self.inside(x), y)
        return VAEOutput(self.outside(out.px), out.qz, out.pz, out.z)

    def forward_from_prior(self, x: Tensor, k: int) -> VAEOutput:
        """``forward`` with the inner hierarchy's lowest ``k`` groups from their priors (LLR^{>k}), p(x|z) in the
        data's units; only for an inner model that has it (``hierarchical``)."""
        out = cast(Any, self.model).forward_from_prior(self.inside(x), k)  # a hierarchy (``hierarchical``)
        return VAEOutput(self.outside(out.px), out.qz, out.pz, out.z)

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) in the data's units for ``n`` draws from the inner model: batch (n,), event (*shape,)."""
        return self.outside(self.model.generate(n, temperature, y))


def fixed(loc: Tensor, scale: Tensor) -> Tensor:
    """(*shape) the scale, in the data's units, of the Normal answering each constant column (scale 0; others' entries
    unused) of value ``loc``: ``CONSTANT`` * max(|loc|, 1) where its scale is -0.0, as ``column_stats`` gives it; 1
    where +0.0, as runs written before it were scored (their weights' scale is +0.0), so their scores stay as they were.

    A column that held one value c in training has no spread to learn, so its density is fixed. A unit scale, in
    whatever units the column has, scored a deviation by those units: a rate's 0.5 -> 0.9 cost 0.1 nats and
    2,000,000 -> 2,000,100 (+0.005%) 5,000. Relative to the value, a deviation is scored without units: one of
    ``CONSTANT`` of |c| is one standard deviation (a 10% one costs 50 nats, +0.005% nothing to speak of); the floor of
    1 keeps a column of zeros, or of values near it, from an arbitrarily narrow density. Each row at c gets the same
    log-density, -log(scale) - 0.919, which moves no ranking of rows."""
    return torch.where(torch.signbit(scale), CONSTANT * loc.abs().clamp_min(1.0), torch.ones_like(loc))


def hierarchical(model: object) -> bool:
    """Whether ``model`` (or the model a ``Standardized`` wraps) can take its lowest groups from their priors."""
    return hasattr(model.model if isinstance(model, Standardized) else model, "forward_from_prior")


def category_sizes(categories: Sequence[int]) -> list[int]:
    """``categories`` as a list of K_j >= 1, one per categorical column; anything else is one line."""
    try:
        sizes = [operator.index(k) for k in categories]
    except TypeError:  # not a sequence, or not of integers
        sizes = [0]
    if isinstance(categories, str) or any(k < 1 for k in sizes):
        raise VaekitError(f"categories must list each categorical column's K_j (integers >= 1), got {categories!r}")
    return sizes


def check_units(loc: Tensor, scale: Tensor, categories: list[int], shape: Sequence[int] | None) -> None:
    """Refuse, in one line, a loc or scale other than the item shape (``shape``, the model's when known), a
    scale < 0 or not finite, or ``categories`` that do not fit the last slots of a table's (D,) items."""
    if loc.dim() == 0 or loc.shape != scale.shape:
        raise VaekitError(
            f"loc and scale must both have the item shape, got {tuple(loc.shape)} and {tuple(scale.shape)}"
        )
    if shape is not None and tuple(loc.shape) != tuple(shape):
        raise VaekitError(f"loc and scale have shape {tuple(loc.shape)}; the model takes items of {tuple(shape)}")
    if not bool(torch.isfinite(loc).all() and torch.isfinite(scale).all() and (scale >= 0).all()):
        raise VaekitError("loc must be finite and scale finite and >= 0 (0: a constant column)")
    if categories and (loc.dim() != 1 or sum(categories) > loc.shape[0]):
        raise VaekitError(
            f"categories {categories} need {sum(categories)} one-hot slots at the end of table items (D,); "
            f"loc and scale have shape {tuple(loc.shape)}"
        )


def column_stats(x, batch_size: int = 10000) -> tuple[Tensor, Tensor]:
    """(*shape) float32 loc and scale of items x (N, *shape; a tensor, numpy array or lazily read data): their
    mean and standard deviation, read ``batch_size`` at a time and computed in float64, each batch's about its own
    mean and the batches merged (Chan et al. 1979), not from sums of squares, which lose a column's spread beside
    its size (1.7e9 +- 100 came out 0). A column varying by no more than ``constant_below`` of its largest |value|
    gets scale -0.0: constant, only shifted, and answered with a scale relative to its value (``fixed``; the sign of
    the zero tells it from a run written before, whose +0.0 is answered as it was)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if len(x) == 0:
        raise VaekitError("no items to standardise: x is empty")
    zero = torch.zeros((), dtype=torch.float64)
    n, loc, m2, peak = 0, zero, zero, zero  # so far: the count, the mean, the summed squared deviations, max |x|
    for i in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[i : i + batch_size]).double()  # (b, *shape)
        b, mb, peak = len(xb), xb.mean(0), torch.maximum(peak, xb.abs().amax(0))
        delta, total = mb - loc, n + b
        loc, m2 = loc + delta * (b / total), m2 + (xb - mb).square().sum(0) + delta.square() * (n * b / total)
        n = total
    scale = (m2 / n).sqrt()
    dtype = x.dtype if isinstance(x, Tensor) else torch.float32  # lazily read data come as float32
    scale = torch.where(scale > constant_below(dtype, peak, n), scale, -0.0)  # -0.0: see ``fixed``
    return loc.float(), scale.float()


def constant_below(dtype: torch.dtype, peak: Tensor, n: int) -> Tensor:
    """(*shape) the standard deviation at or under which a column of ``n`` values of ``dtype``, the largest
    |value| ``peak``, is constant, relative to its own size (no absolute floor: 1e-20 +- 1e-21 keeps its spread):
    float64's rounding in ``column_stats`` (4096 float64 eps of it, about 1e-12), or for a coarser float (float32
    holds 7 digits), whose values float64 holds exactly, a quarter of the least spread its values can have there
    (one of n a step of eps * peak from the rest: that step / sqrt(n)). An all-zero column: 0 (its scale is 0)."""
    rounding = 4096 * torch.finfo(torch.float64).eps
    resolution = torch.finfo(dtype).eps / (4 * n**0.5) if dtype.is_floating_point else 0.0
    return max(rounding, resolution) * peak
