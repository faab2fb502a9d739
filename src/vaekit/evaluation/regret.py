"""The ELBO of items under a given Gaussian q(z|x), drawn from noise shared by every item (common random numbers),
and the likelihood regret that re-fits that q to each item (Xiao et al. 2020); ``scores`` builds on both."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from ..core.contract import VAEModel, VAEOutput, dist_name, with_article
from ..core.likelihoods import gaussian
from ..core.objectives import elbo, repeat_items
from ..errors import VaekitError

SCALED = 2.0**20  # the regret's Adam steps each item's ELBO scaled to |ELBO| <= this (unscaled below it)


def normal_q(qz: object) -> bool:
    """Whether q(z|x) is a factorised Normal (the common-noise scores' draws loc + scale * eps assume one)."""
    return isinstance(qz, Independent) and isinstance(qz.base_dist, Normal)


def draws(
    model: VAEModel, x: Tensor, loc: Tensor, scale: Tensor, eps: Tensor, y: Tensor | None = None
) -> tuple[VAEOutput, Tensor]:
    """The model's output for z_s = loc + scale * eps_s, with eps (S, D) shared by the items of x (B, *shape).

    Returns (output over S*B rows, sample-major, and x repeated to match (S*B, *shape)).
    """
    s = eps.shape[0]
    z = (loc.unsqueeze(0) + scale.unsqueeze(0) * eps.unsqueeze(1)).flatten(0, 1)  # (S*B, D)
    qz = gaussian(loc.repeat(s, 1), scale.repeat(s, 1))
    ys = None if y is None else y.repeat(s)
    return VAEOutput(model.decode(z, ys), [qz], [model.prior(ys)], [z]), repeat_items(x, s)


def elbo_at(model: VAEModel, x: Tensor, loc: Tensor, scale: Tensor, eps: Tensor, y: Tensor | None = None) -> Tensor:
    """ELBO (B,) of x (B, *shape) under q = N(loc, scale^2) (B, D), averaged over z = loc + scale * eps_s.

    eps (S, D) is shared by every item; the KL term is analytic (objectives.elbo).
    """
    terms = elbo(*draws(model, x, loc, scale, eps, y))
    return (terms["rec"] - terms["kl"]).view(eps.shape[0], x.shape[0]).mean(0)


def step_weights(start: Tensor) -> Tensor:
    """(B,) weights of the items' ELBOs in the regret's objective: 1 where the starting ELBO ``start`` (B,) has
    |ELBO| <= SCALED, else SCALED / |ELBO|. Each item's loc and log-scale are its own and Adam's steps do not
    depend on the scale of their gradients (up to its eps), so the weights change no fit; they keep the squared
    gradients within range. An ELBO of -5e27 (a table value of 1e18) has gradients of about 6e25, whose squares
    overflow float32 (3.4e38) in Adam's second moment and turn every step to 0: unweighted, the regret of such
    an item read 0, the most normal score."""
    return (SCALED / start.abs()).clamp(max=1.0)


def likelihood_regret(
    model: VAEModel, x: Tensor, eps: Tensor, steps: int = 30, lr: float = 0.05, y: Tensor | None = None
) -> Tensor:
    """Likelihood regret (B,) >= 0 (Xiao et al. 2020): best ELBO over a per-item q minus the encoder's ELBO.

    q's loc and log-scale (B, D) start at the encoder's and are optimised with Adam, all items at once
    (they are independent; each item's ELBO weighted by ``step_weights``); the decoder stays fixed and the best
    ELBO seen, step 0 included, is kept. An item the model's dtype cannot fit, its starting ELBO or its weighted
    gradients' squares beyond the dtype's range (float32: about 3.4e38), scores inf: beyond the range, never 0.
    """
    with torch.no_grad():
        qz = model.encode(x, y)
        if not normal_q(qz):
            raise VaekitError(
                f"likelihood_regret re-fits a Gaussian q(z|x); this model's is {with_article(dist_name(qz))}"
            )
        loc0, scale0 = qz.mean, qz.stddev  # a factorised Gaussian q(z|x)
        start = elbo_at(model, x, loc0, scale0, eps, y)  # (B,)
    loc = loc0.clone().requires_grad_(True)
    log_scale = scale0.log().clone().requires_grad_(True)
    opt = torch.optim.Adam([loc, log_scale], lr=lr)
    best, fits, weights = start.clone(), torch.isfinite(start), step_weights(start)
    for _ in range(steps):
        with torch.enable_grad():
            value = elbo_at(model, x, loc, log_scale.exp(), eps, y)  # (B,)
            grads = torch.autograd.grad(-(value * weights).sum(), [loc, log_scale])
        fits &= torch.isfinite(grads[0].square()).all(1) & torch.isfinite(grads[1].square()).all(1)
        best = torch.fmax(best, value.detach())  # a step whose ELBO is no number gains nothing
        loc.grad, log_scale.grad = grads
        opt.step()
    with torch.no_grad():
        best = torch.fmax(best, elbo_at(model, x, loc, log_scale.exp(), eps, y))
    return torch.where(fits, best - start, torch.inf)
