"""The prior axis: p(z) as a standard normal, a learned Gaussian mixture, a VampPrior, or a normalising flow.

Each entry is a small module registered under its name (``model.prior``), built from plain settings, with
``forward(qz_of)`` giving p(z) (event (D,)) and ``sample(n, temperature, qz_of)`` giving (n, D) draws whose base
noise is scaled by ``temperature``. ``qz_of(u)`` is the model's ``encode``: only the VampPrior reads it.

- ``standard``: N(0, I);
- ``mixture``: sum_c pi_c N(loc_c, diag scale_c^2), all learned (C = ``model.prior_components``);
- ``vamp``: the VampPrior (Tomczak & Welling 2018, eq. 9) p(z) = 1/K sum_k q(z|u_k) over K learned pseudo-inputs
  u_k (``model.pseudo_inputs``), kept in the data's range, started at K training items (``model.pseudo_init``);
- ``flow``: a masked autoregressive flow (Papamakarios et al. 2017, zuko) over z, learned: one pass per density.

Priors other than ``standard`` have no analytic KL to q(z|x): ``kl_term`` uses the one-sample estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, MixtureSameFamily

from ..config.checks import add_choice
from ..core.likelihoods import SOFTPLUS_ONE, diag_normal, gaussian
from ..errors import VaekitError
from . import allowed, positive
from .posteriors import FlowSettings, tempered

QzOf = Callable[[Tensor], Distribution]
# names of the weights being loaded (``loading_names``): a VampPrior whose earlier layout they hold reports that
_LOADING: ContextVar[Collection[str]] = ContextVar("vaekit_loading_names", default=())


@dataclass
class PriorSettings:
    """Plain settings every prior is built from."""

    components: int = 10  # mixture: Gaussians
    pseudo_inputs: int = 500  # vamp: K pseudo-inputs
    pseudo_init: str = "data"  # vamp: start at K training items (data) or near the range's low end (noise)
    low: float = -math.inf  # vamp: the data's range (the likelihood's support)
    high: float = math.inf
    flow: FlowSettings = field(default_factory=FlowSettings)


class Prior(Protocol):
    """What a registered prior module meets: called, p(z) (event (D,)); ``sample``, (n, D) tempered draws."""

    def __call__(self, qz_of: QzOf | None = None) -> Distribution: ...

    def sample(self, n: int, temperature: float, qz_of: QzOf | None = None) -> Tensor: ...


PRIORS: dict[str, Callable[..., Prior]] = {}


def register_prior(name: str) -> Callable:
    """Decorator adding a prior module class ``cls(latent_dim, input_shape, PriorSettings)`` under ``name``."""

    def add(cls: Callable) -> Callable:
        PRIORS[name] = cls
        add_choice("model.prior", name)  # a setting may name it
        return cls

    return add


def build_prior(name: str, latent_dim: int, shape: tuple[int, ...], s: PriorSettings) -> Prior:
    """The registered prior ``name`` over D = ``latent_dim`` for items of ``shape``."""
    if name not in PRIORS:
        raise VaekitError(f"unknown prior {name!r} (known: {', '.join(PRIORS)})", key="model.prior")
    return PRIORS[name](latent_dim, shape, s)


def init_mixture_(w: Tensor) -> None:
    """Initialise mixture parameters (..., C, 2D + 1) = [loc, raw scale, logit] in place: distinct locations
    N(0, 1) break the symmetry, scales start at 1, weights equal."""
    d = (w.shape[-1] - 1) // 2
    nn.init.normal_(w[..., :d])
    nn.init.constant_(w[..., d : 2 * d], SOFTPLUS_ONE)
    nn.init.zeros_(w[..., 2 * d])


def gaussian_mixture(params: Tensor) -> MixtureSameFamily:
    """(..., C, 2D + 1) [loc, raw scale, logit] -> sum_c pi_c N(loc_c, diag softplus(raw_c)^2), event (D,)."""
    return MixtureSameFamily(Categorical(logits=params[..., -1]), diag_normal(params[..., :-1]))


@register_prior("standard")
class StandardPrior(nn.Module):
    """p(z) = N(0, I)."""

    loc: Tensor  # buffer (D,), zeros

    def __init__(self, latent_dim: int, shape: tuple[int, ...], s: PriorSettings):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)

    def forward(self, qz_of: QzOf | None = None) -> Distribution:
        return gaussian(self.loc, torch.ones_like(self.loc))

    def sample(self, n: int, temperature: float, qz_of: QzOf | None = None) -> Tensor:
        return self().sample((n,)) * temperature  # (n, D)


@register_prior("mixture")
class MixturePrior(nn.Module):
    """p(z) = sum_c pi_c N(loc_c, diag scale_c^2) with C learned components."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], s: PriorSettings):
        super().__init__()
        c = positive(s.components, "prior_components")  # resolved: a VAE's 0 is 10 here
        self.params = nn.Parameter(torch.empty(c, 2 * latent_dim + 1))  # (C, 2D + 1)
        init_mixture_(self.params.data)

    def forward(self, qz_of: QzOf | None = None) -> Distribution:
        return gaussian_mixture(self.params)

    def sample(self, n: int, temperature: float, qz_of: QzOf | None = None) -> Tensor:
        """A component per draw, then its Gaussian with the scale times ``temperature``."""
        pz = self()
        c = pz.mixture_distribution.sample((n,))  # (n,)
        comp = pz.component_distribution.base_dist  # batch (C, D)
        return comp.loc[c] + temperature * comp.scale[c] * torch.randn_like(comp.loc[c])


@register_prior("vamp")
class VampPrior(nn.Module):
    """p(z) = 1/K sum_k q(z|u_k), K pseudo-inputs u (K, *shape) learned in the data's own units and clipped to
    [low, high] (the likelihood's support), as in the paper's code (a hard tanh). By default
    (``pseudo_init="data"``) the trainer starts them at K training items (``init_from``), on the data manifold
    from the first step; with ``pseudo_init="noise"`` they stay at 5% of the range plus 1% noise (the paper's
    MNIST start)."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], s: PriorSettings):
        super().__init__()
        self.low, self.high, self.from_data = s.low, s.high, allowed(s.pseudo_init, "pseudo_init") == "data"
        unit = 0.05 + 0.01 * torch.randn(positive(s.pseudo_inputs, "pseudo_inputs"), *shape)  # (K, *shape)
        self.u = nn.Parameter(self.low + (self.high - self.low) * unit if self.bounded else unit - 0.05)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def pseudo_inputs(self) -> Tensor:
        """u (K, *shape) in the data's range."""
        return self.u.clamp(self.low, self.high)

    @torch.no_grad()
    def init_from(self, x: Tensor) -> None:
        """Start the pseudo-inputs at K data items x (K, *shape) (cycled if fewer)."""
        self.u.copy_(x[torch.arange(len(self.u)) % len(x)].to(self.u).clamp(self.low, self.high))

    def forward(self, qz_of: QzOf | None = None) -> Distribution:
        if qz_of is None:
            raise VaekitError("the VampPrior needs the model's encoder (qz_of)")
        qu = qz_of(self.pseudo_inputs())  # batch (K,), event (D,)
        logits = torch.zeros(len(self.u), device=self.u.device)
        return MixtureSameFamily(Categorical(logits=logits), qu)  # uniform weights 1/K

    def sample(self, n: int, temperature: float, qz_of: QzOf | None = None) -> Tensor:
        """z ~ q(z|u_k) for a uniform k per draw, the posterior's base scale times ``temperature``."""
        if qz_of is None:
            raise VaekitError("the VampPrior needs the model's encoder (qz_of)")
        k = torch.randint(len(self.u), (n,), device=self.u.device)
        return tempered(qz_of(self.pseudo_inputs()[k]), temperature).sample()  # (n, D)

    # vaekit before f19d00c kept the pseudo-inputs as raw values ``raw`` (K, *shape): u = low + (high - low) *
    # sigmoid(raw) on a bounded range, u = raw on the real line; their weights load converted to u
    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        if prefix + "raw" in state_dict and prefix + "u" not in state_dict:
            raw = state_dict.pop(prefix + "raw")
            state_dict[prefix + "u"] = self.low + (self.high - self.low) * torch.sigmoid(raw) if self.bounded else raw
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if prefix + "raw" in _LOADING.get() and prefix + "u" not in _LOADING.get():  # see ``loading_names``
            u = destination.pop(prefix + "u")
            destination[prefix + "raw"] = (
                torch.logit((u - self.low) / (self.high - self.low), 1e-6) if self.bounded else u
            )


@contextmanager
def loading_names(names: Collection[str]) -> Iterator[None]:
    """Within: weights of these ``names`` are being loaded. A VampPrior whose pseudo-inputs they hold in the
    layout of vaekit before f19d00c (``raw``) gives its state dict in that layout, so a check of the names and
    shapes against the model's passes; loading them converts them to today's ``u``."""
    token = _LOADING.set(names)
    try:
        yield
    finally:
        _LOADING.reset(token)


@register_prior("flow")
class FlowPrior(nn.Module):
    """p(z): a learned masked autoregressive flow over a N(0, I) base (D network passes to sample)."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], s: PriorSettings):
        super().__init__()
        self.flow = zuko.flows.MAF(latent_dim, transforms=s.flow.transforms, hidden_features=list(s.flow.hidden))

    def forward(self, qz_of: QzOf | None = None) -> Distribution:
        return self.flow()  # batch (), event (D,)

    def sample(self, n: int, temperature: float, qz_of: QzOf | None = None) -> Tensor:
        pz = self.flow()
        eps = pz.base.sample((n,)) * temperature  # (n, D) base noise
        return pz.transform.inv(eps)
