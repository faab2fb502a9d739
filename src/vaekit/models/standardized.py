"""A model on standardised columns that answers in the data's own units: x' = (x - loc) / scale inside, and
p(x|z) mapped back, so log p(x|z) counts the change of units (minus the sum of log scale) and samples, means
and reconstructions come out in the table's units.

It meets the model contract itself, so training, evaluation, anomaly scores and export need nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from ..core.contract import VAEOutput
from ..errors import VaekitError


class Standardized(nn.Module):
    """``model`` (any model of the contract, on standardised items) seen in the data's units.

    ``loc`` and ``scale`` (the item shape) are buffers, saved with the weights; ``p(x|z)`` of the inner model
    must be a factorised Normal (the Gaussian likelihood).
    """

    def __init__(self, model: nn.Module, loc: Sequence[float] | Tensor, scale: Sequence[float] | Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("loc", torch.as_tensor(loc, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    @classmethod
    def fitted(cls, model: nn.Module, x) -> Standardized:
        """``model`` on the columns of x (N, *shape; a tensor or lazily read data) standardised by their mean
        and standard deviation."""
        return cls(model, *column_stats(x))

    @property
    def latent_dims(self) -> list[int]:
        return self.model.latent_dims

    @property
    def needs_labels(self) -> bool:
        return self.model.needs_labels

    def init_args(self) -> dict:
        """What rebuilds this model (with fresh weights; loc and scale come back with them)."""
        return {"model": self.model, "loc": self.loc.tolist(), "scale": self.scale.tolist()}

    def inside(self, x: Tensor) -> Tensor:
        """(B, *shape) in the data's units -> standardised."""
        return (x - self.loc) / self.scale

    def outside(self, px: Distribution) -> Independent:
        """p(x'|z) on standardised items -> p(x|z) in the data's units."""
        base = px.base_dist if isinstance(px, Independent) else px
        if not isinstance(base, Normal):
            raise VaekitError("standardised columns need the gaussian likelihood")
        return Independent(Normal(self.loc + self.scale * base.loc, self.scale * base.scale, validate_args=False),
                           len(self.loc.shape), validate_args=False)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        return self.model.encode(self.inside(x), y)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return self.outside(self.model.decode(z, y))

    def prior(self, y: Tensor | None = None) -> Distribution:
        return self.model.prior(y)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        out = self.model(self.inside(x), y)
        return VAEOutput(self.outside(out.px), out.qz, out.pz, out.z)

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        return self.outside(self.model.generate(n, temperature, y))


def column_stats(x, batch_size: int = 10000) -> tuple[Tensor, Tensor]:
    """Per-column mean and standard deviation of items x (N, *shape), read ``batch_size`` at a time (lazily
    read data too), summed in float64; a constant column gets scale 1 (it is then only shifted)."""
    n, total, squares = 0, 0.0, 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i: i + batch_size].double()
        n, total, squares = n + len(xb), total + xb.sum(0), squares + (xb * xb).sum(0)
    loc = total / max(n, 1)
    scale = (squares / max(n, 1) - loc * loc).clamp(min=0).sqrt()
    scale = torch.where(scale > 1e-6 * (1 + loc.abs()), scale, torch.ones_like(scale))
    return loc.float(), scale.float()
