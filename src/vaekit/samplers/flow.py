"""A normalising flow (zuko's MAF or NSF) fitted by maximum likelihood on the aggregate posterior codes."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import VaekitError
from .base import Sampler, rate, register, train_density, whole

KINDS = ("maf", "nsf")


@register
class FlowSampler(Sampler):
    """q(z) a masked autoregressive flow (``kind="maf"``) or neural spline flow (``"nsf"``) with ``transforms``
    layers of ``hidden`` units, trained for ``steps`` Adam steps of minibatch -log q(z)."""

    name = "flow"
    MAIN = ("kind", "steps")

    def __init__(
        self,
        kind: str = "maf",
        transforms: int = 5,
        hidden: int = 128,
        steps: int = 3000,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        if kind not in KINDS:
            raise VaekitError(f"flow sampler kind {kind!r}: expected one of {', '.join(KINDS)}", key="kind")
        counts = {"transforms": transforms, "hidden": hidden, "steps": steps}
        super().__init__(seed, kind=kind, **{k: whole(v, k) for k, v in counts.items()}, lr=rate(lr))

    def numbers(self, latent_dim: int) -> int:
        """Each transform's masked MLP (D -> H -> H -> D x P): its weights, as many mask numbers (zuko keeps each
        layer's mask as a buffer of the weight's shape), biases and the order (D,); the base's loc and scale and
        the codes' loc and scale (D,) each."""
        s, d = self.settings, latent_dim
        per_dim = 2 if s["kind"] == "maf" else 23  # an affine map's shift and scale; a spline's 8 + 8 + 7 (zuko's)
        h = s["hidden"]
        weights = d * h + h * h + h * d * per_dim
        return s["transforms"] * (2 * weights + 2 * h + d * per_dim + d) + 4 * d

    def build(self, latent_dim: int) -> FlowSampler:
        import zuko

        super().build(latent_dim)
        s = self.settings
        make = zuko.flows.MAF if s["kind"] == "maf" else zuko.flows.NSF
        self.flow = make(latent_dim, transforms=s["transforms"], hidden_features=(s["hidden"], s["hidden"]))
        return self

    def fit_codes(self, u: Tensor) -> None:
        s = self.settings
        self.train()
        train_density(list(self.flow.parameters()), lambda b: -self.flow().log_prob(b), u, s["steps"], s["lr"])

    def draw(self, n: int) -> Tensor:
        return self.flow().sample((n,))  # (n, D)

    @torch.no_grad()
    def nll(self, u: Tensor) -> Tensor:
        return -self.flow().log_prob(u)  # (N,)
