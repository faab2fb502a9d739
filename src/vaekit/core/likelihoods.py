"""p(x|z) and q(z|x) as ``torch.distributions``: the likelihood registry and the Gaussian helpers.

A likelihood turns decoder outputs into a distribution over one item with the item dims as event dims. The
decoder gives (B, *shape) for a one-parameter likelihood, or (B, n_params, *shape).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Normal,
    constraints,
)

from ..config import OWN_LIKELIHOOD, own_likelihood, parse_scale
from ..errors import VaekitError
from . import discretized
from .autoregressive import LocalARBernoulli
from .cbernoulli import LogitContinuousBernoulli
from .levels import eight_bit, first_off
from .tabular import Tabular

MIN_SCALE = 1e-4  # keeps q(z|x) and p(x|z) away from a degenerate scale of 0
SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(SOFTPLUS_ONE) = 1: a learned scale that starts at 1

# the registry: each likelihood's name and the support its data must lie in
SUPPORT = {
    "bernoulli": constraints.unit_interval,
    "cbernoulli": constraints.unit_interval,
    "gaussian": constraints.real,
    "discretized_logistic": eight_bit,  # the 256 levels k / 255 in [0, 1]
}
LIKELIHOODS = tuple(SUPPORT)
# check_support's advice: how data in 0..255 comes into [0, 1] (or onto its 256 levels), which likelihood models it
DIVIDE_HINT = "; divide data on a 0..255 scale by 255"
ROUND_HINT = "; data on a 0..255 scale comes onto the 256 levels k / 255 as round(x) / 255"
GAUSSIAN_HINT = "; real-valued data needs the gaussian likelihood"


def full(t: Tensor) -> Tensor:
    """``t`` in float32 if it is in a half-precision type (network outputs under autocast), else as it is."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def gaussian(loc: Tensor, scale: Tensor) -> Independent:
    """N(loc, diag scale^2) with the last dim as event: (..., D) -> batch (...), event (D,).

    Arguments are not validated (a check per call costs a host sync in the training step); callers pass
    scale > 0 by construction (softplus + floor). Half-precision network outputs (bf16 autocast) are cast
    up to float32 here, so every log-density and KL is computed in float32 (or float64 for a float64 model).
    """
    return Independent(Normal(full(loc), full(scale), validate_args=False), 1, validate_args=False)


def diag_normal(params: Tensor) -> Independent:
    """(B, 2 * D) -> N(loc, diag scale^2) with event shape (D,); scale = softplus + floor (half precision cast up)."""
    loc, raw = full(params).chunk(2, dim=-1)
    return gaussian(loc, F.softplus(raw) + MIN_SCALE)


class BernoulliLogits(Bernoulli):
    """Bernoulli(logits=l) whose log_prob is x * l - softplus(l): torch's value (up to rounding) in fewer passes
    over the logits, the IWAE estimator's largest cost after the decoder's matrix products."""

    def log_prob(self, value: Tensor) -> Tensor:
        return value * self.logits - F.softplus(self.logits)


class Likelihood(nn.Module):
    """Turns decoder outputs (B, *shape) or (B, n_params, *shape) into p(x|z) with the item dims as event dims.

    ``name`` is one of ``LIKELIHOODS``; ``scale`` (Gaussian only): learned (one per data dimension), shared,
    decoded (the decoder gives a second parameter per dimension) or a positive number (fixed). The
    discretized logistic mixture (8-bit data) takes ``components`` K and K (C + 2) parameters per element.
    """

    def __init__(self, name: str, shape: tuple[int, ...], scale: str = "learned", components: int = 5):
        super().__init__()
        if name not in SUPPORT:
            raise VaekitError(f"unknown likelihood {name!r} (known: {', '.join(LIKELIHOODS)})", key="model.likelihood")
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise VaekitError(
                f"components (logistics per element) must be a positive integer, got {components!r}",
                key="model.likelihood_components",
            )
        if name != "gaussian" and scale != "learned":  # as the config's conflicts table refuses them
            raise VaekitError(f"scale {scale!r} belongs to the gaussian likelihood, not {name}", key="model.scale")
        if name != "discretized_logistic" and components != 5:
            raise VaekitError(
                f"components {components} belong to the discretized_logistic likelihood, not {name}",
                key="model.likelihood_components",
            )
        self.name, self.shape, self.event_dims, self.components = name, tuple(shape), len(shape), components
        self.n_params = discretized.n_params(self.shape, components) if name == "discretized_logistic" else 1
        self.fixed_scale: float | None = None
        if name == "gaussian":
            mode = parse_scale(scale)
            if mode == "learned":
                self.log_scale = nn.Parameter(torch.zeros(self.shape))  # one scale per data dimension
            elif mode == "shared":
                self.log_scale = nn.Parameter(torch.zeros(()))
            elif mode == "decoded":  # heteroscedastic: the decoder gives a scale per item and dimension
                self.n_params = 2
            else:
                self.fixed_scale = float(mode)

    def params(self, out: Tensor) -> Tensor:
        """Decoder output -> (B, n_params, *shape); a shape that fits neither layout is one clear error, naming
        the shape the decoder gave."""
        given = tuple(out.shape)
        if out.dim() == self.event_dims + 1 and self.n_params == 1:
            out = out.unsqueeze(1)
        if tuple(out.shape[1:]) != (self.n_params, *self.shape):
            want = (
                f"(B, {', '.join(map(str, self.shape))})"
                if self.n_params == 1
                else f"(B, {self.n_params}, {', '.join(map(str, self.shape))})"
            )
            raise VaekitError(
                f"the decoder gives shape {given}; the {self.name} likelihood of items {self.shape} needs "
                f"{want}{channels_last_hint(given, self.shape)}"
            )
        return out

    def forward(self, out: Tensor) -> Distribution:
        """Decoder output (B, *shape) or (B, n_params, *shape) -> p(x|z): batch (B,), event (*shape,)."""
        params = self.params(out)
        if self.name == "discretized_logistic":
            return discretized.DiscretizedLogisticMixture(full(params), self.shape, self.components)
        head = full(params[:, 0])  # (B, *shape); float32 even when the network ran in bf16
        if self.name == "bernoulli":
            # validate_args=False admits [0, 1] targets (cross-entropy on grey levels) besides binary ones
            base: Distribution = BernoulliLogits(logits=head, validate_args=False)
        elif self.name == "cbernoulli":
            base = LogitContinuousBernoulli(logits=head.clamp(-30, 30), validate_args=False)
        else:
            if self.fixed_scale is not None:
                scale = torch.full_like(head, self.fixed_scale)
            else:
                raw = full(params[:, 1]) if self.n_params == 2 else self.log_scale
                scale = (F.softplus(raw + SOFTPLUS_ONE) + MIN_SCALE).expand_as(head)
            base = Normal(head, scale, validate_args=False)
        return Independent(base, self.event_dims, validate_args=False)


def channels_last_hint(given: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """For a decoder output ``given`` that ends in the channels-last layout (H, W, C) of images ``shape``
    (C, H, W), C in 1, 3, 4: that fit moves channels-last items so (``data.containers.channels_last``, with a
    note), and that input_shape=(H, W, C) keeps them as given."""
    hwc = shape[1:] + shape[:1]
    if len(shape) != 3 or shape[0] not in (1, 3, 4) or hwc == shape or tuple(given[-3:]) != hwc:
        return ""
    return (
        f"; where items {hwc} were moved from channels-last to {shape} (fit's note), input_shape={hwc} keeps "
        "them as given"
    )


def name_of(px: Distribution) -> str:
    """The registry name of the likelihood that ``p(x|z)`` is ('gaussian': a Normal, factorised or not, or the
    Tabular p(x|z) of a standardised table), else, for a distribution vaekit does not know, its own class name
    ('Beta' for Independent(Beta)): no name of ``LIKELIHOODS``, so nothing is chosen for it from the data."""
    base = px
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, discretized.DiscretizedLogisticMixture):
        return "discretized_logistic"
    if isinstance(base, ContinuousBernoulli):
        return "cbernoulli"
    if isinstance(base, (Bernoulli, LocalARBernoulli)):
        return "bernoulli"
    return "gaussian" if isinstance(base, (Normal, Tabular)) else type(base).__name__


def recorded_name(px: Distribution) -> str:
    """config.json's model.likelihood for ``p(x|z)``: its registry name, else its class name marked as the user's
    own ('own:Beta'), so the run says what its model is and no name of the registry stands in for it."""
    name = name_of(px)
    return name if name in SUPPORT else OWN_LIKELIHOOD + name


def support(likelihood: str | Distribution) -> constraints.Constraint:
    """The set one data value must lie in, by registry name or of a distribution p(x|z) (its own ``support``).

    A Bernoulli's {0, 1} is widened to [0, 1]: grey levels are its targets too (cross-entropy). A distribution
    that declares no support, or one that depends on its parameters, gives the real line: nothing to check; so
    does the name of a p(x|z) of the user's own ('own:Beta'), whose support only the model's p(x|z) tells.
    """
    if isinstance(likelihood, str):
        return constraints.real if own_likelihood(likelihood) else SUPPORT[likelihood]
    try:
        s = likelihood.support
    except NotImplementedError:  # torch's default for a distribution that declares none
        return constraints.real
    while isinstance(s, constraints.independent):
        s = s.base_constraint
    if s is None or constraints.is_dependent(s):
        return constraints.real
    return constraints.unit_interval if s is constraints.boolean else s


def check_support(likelihood: str | Distribution, x: Tensor, where: str) -> None:
    """Refuse data outside the likelihood's support (Bernoulli-type likelihoods need values in [0, 1]); the
    likelihood is named as ``name_of`` gives it ('Beta' for a user's Beta p(x|z))."""
    s = support(likelihood)
    try:
        inside = bool(s.check(x).all())
    except (RuntimeError, ValueError):  # bounds per item (a Uniform's parameters): nothing to check the data by
        return
    if not inside:
        lo, hi = float(x.min()), float(x.max())
        name = likelihood if isinstance(likelihood, str) else name_of(likelihood)
        off = first_off(x) if s is eight_bit and lo >= 0 and hi <= 1 else None
        if off is not None:
            item = off[0] // max(1, x[0].numel()) if x.dim() > 1 else off[0]
            raise VaekitError(
                f"{where}: value {off[1]:.6g} (item {item}) is not one of the 256 levels k / 255 that the {name} "
                "likelihood models (8-bit data): round the data onto them (round(x * 255) / 255); continuous "
                "data in [0, 1] needs the cbernoulli likelihood",
                key="model.likelihood",
            )
        known = name in SUPPORT and s is not constraints.real  # [0, 1], or its 256 levels
        scale = (ROUND_HINT if s is eight_bit else DIVIDE_HINT) if known and lo >= 0 and hi <= 255 else ""
        hint = scale + GAUSSIAN_HINT if known else ""
        raise VaekitError(
            f"{where}: values in [{lo:.4g}, {hi:.4g}] lie outside the {name} likelihood's support {_interval(s)}{hint}",
            key="model.likelihood",
        )


def _interval(s: constraints.Constraint) -> str:
    lo, hi = (getattr(s, k, None) for k in ("lower_bound", "upper_bound"))
    lo, hi = (v.item() if isinstance(v, Tensor) and v.numel() == 1 else v for v in (lo, hi))
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        return f"[{lo:g}, {hi:g}]"
    return type(s).__name__.strip("_") if any(isinstance(v, Tensor) for v in (lo, hi)) else str(s)
