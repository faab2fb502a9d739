"""The posterior axis: q(z|x) as a diagonal Gaussian, or that Gaussian carried through a normalising flow (zuko).

Each entry is a small module registered under its name (``model.posterior``), built from plain settings, that
turns the encoder's Gaussian q0(z|x) = N(loc(x), diag scale(x)^2) and its features h (B, F) into q(z|x):

- ``gaussian``: q0 itself (the analytic KL applies);
- ``iaf``: inverse autoregressive flow (Kingma et al. 2016): affine autoregressive steps conditioned on h, one
  network pass per step to sample; the density of a sample q itself drew comes with it (cached);
- ``nsf``: neural spline flow (Durkan et al. 2019) in coupling form (two passes each way), conditioned on h.

A flow posterior is a ``torch.distributions.Distribution`` (``FlowPosterior``) with batch (B,) and event (D,),
``rsample`` and ``log_prob``, so ``kl_term`` falls back to the one-sample estimate and ``iwae_bound`` works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal
from zuko.distributions import NormalizingFlow

from ..config.checks import add_choice
from ..core.likelihoods import full, gaussian
from ..errors import VaekitError


@dataclass
class FlowSettings:
    """Plain settings every flow of the zoo (prior or posterior) is built from."""

    transforms: int = 3  # flow steps
    hidden: list[int] = field(default_factory=lambda: [128, 128])  # widths of each step's network


POSTERIORS: dict[str, Callable[..., nn.Module]] = {}


def register_posterior(name: str) -> Callable:
    """Decorator adding a posterior module class ``cls(latent_dim, features, FlowSettings)`` under ``name``."""

    def add(cls: Callable) -> Callable:
        POSTERIORS[name] = cls
        add_choice("model.posterior", name)  # a setting may name it
        return cls

    return add


def build_posterior(name: str, latent_dim: int, features: int, s: FlowSettings) -> nn.Module:
    """The registered posterior ``name`` for D = ``latent_dim`` and encoder features F = ``features``."""
    if name not in POSTERIORS:
        raise VaekitError(f"unknown posterior {name!r} (known: {', '.join(POSTERIORS)})", key="model.posterior")
    return POSTERIORS[name](latent_dim, features, s)


class FlowPosterior(NormalizingFlow):
    """q(z|x): a Gaussian base N(loc, diag scale^2) (batch (B,), event (D,)) and a flow ``transform`` z -> z0.

    ``rsample`` keeps the log-density of what it drew, so ``log_prob`` of that very tensor costs nothing (an
    inverse autoregressive flow would otherwise need D passes). Everything runs in float32, outside autocast.
    """

    def rsample(self, shape: torch.Size = torch.Size()) -> Tensor:
        with torch.autocast(self.base.mean.device.type, enabled=False):
            z, log_q = self.rsample_and_log_prob(torch.Size(shape))
        self._drawn = (z, log_q)
        return z

    def log_prob(self, z: Tensor) -> Tensor:
        drawn = getattr(self, "_drawn", None)
        if drawn is not None and z is drawn[0]:
            return drawn[1]
        with torch.autocast(z.device.type, enabled=False):
            return super().log_prob(full(z))

    @property
    def mean(self) -> Tensor:
        """The base's mean carried through the flow (B, D): a deterministic code of x, not E[z] (no closed form)."""
        with torch.no_grad(), torch.autocast(self.base.mean.device.type, enabled=False):
            return self.transform.inv(self.base.mean)

    @property
    def stddev(self) -> Tensor:
        raise VaekitError("a flow posterior q(z|x) has no closed-form scale; use model.posterior gaussian here")

    def tempered(self, temperature: float) -> FlowPosterior:
        """The same flow over a base whose scale is times ``temperature``."""
        base = self.base.base_dist
        return FlowPosterior(self.transform, gaussian(base.loc, base.scale * temperature))


def tempered(q: Distribution, temperature: float) -> Distribution:
    """q with its (base) Gaussian's scale times ``temperature``: a Gaussian or a ``FlowPosterior``."""
    if isinstance(q, FlowPosterior):
        return q.tempered(temperature)
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal):
        return gaussian(q.base_dist.loc, q.base_dist.scale * temperature)
    raise VaekitError(f"cannot temper a {type(q).__name__}: it has no Gaussian base")


@register_posterior("gaussian")
class GaussianPosterior(nn.Module):
    """q(z|x) = q0(z|x) = N(loc(x), diag scale(x)^2): no parameters of its own."""

    def __init__(self, latent_dim: int, features: int, s: FlowSettings):
        super().__init__()

    def forward(self, q0: Independent, h: Tensor) -> Distribution:
        return q0


class FlowOnGaussian(nn.Module):
    """q0(z|x) through a zuko flow conditioned on a context c = W h (B, hidden[0]) of the encoder's features."""

    def __init__(self, latent_dim: int, features: int, s: FlowSettings, flow: zuko.flows.Flow, invert: bool):
        super().__init__()
        self.context = nn.Linear(features, s.hidden[0])
        self.flow = flow.transform  # the steps only: the base is q0
        self.invert = invert

    def forward(self, q0: Independent, h: Tensor) -> FlowPosterior:
        """q0 with batch (B,), event (D,) and features h (B, F) -> q(z|x) with the same shapes."""
        with torch.autocast(h.device.type, enabled=False):
            c = self.context(full(h))  # (B, C)
            transform = self.flow(c)  # f, cheap in its forward direction (MAF: z -> z0)
        return FlowPosterior(transform.inv if self.invert else transform, q0)  # IAF: sampling runs f


@register_posterior("iaf")
class IAFPosterior(FlowOnGaussian):
    """Inverse autoregressive flow: MAF's affine steps run backwards, so sampling is one pass per step."""

    def __init__(self, latent_dim: int, features: int, s: FlowSettings):
        flow = zuko.flows.MAF(latent_dim, s.hidden[0], transforms=s.transforms, hidden_features=list(s.hidden))
        super().__init__(latent_dim, features, s, flow, invert=True)


@register_posterior("nsf")
class NSFPosterior(FlowOnGaussian):
    """Rational-quadratic spline coupling flow (8 bins on [-5, 5], identity outside): two passes either way."""

    def __init__(self, latent_dim: int, features: int, s: FlowSettings):
        flow = zuko.flows.NSF(
            latent_dim, s.hidden[0], transforms=s.transforms, passes=2, hidden_features=list(s.hidden)
        )
        super().__init__(latent_dim, features, s, flow, invert=False)
