"""Distributions over discrete latents, as ``torch.distributions``: the categorical VAE's Gumbel-softmax q(z|x)
and p(z), and the VQ-VAE's one-point q(z|x) and its priors over a grid of codebook vectors.

Every one has batch (B,) (or ()) and a flat event (D,), as the model contract wants, and an analytic KL
registered with ``torch.distributions.kl``, so ``kl_term`` uses it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, OneHotCategorical, RelaxedOneHotCategorical, constraints
from torch.distributions.kl import register_kl
from torch.types import _size


class GumbelSoftmax(Distribution):
    """N categorical variables of K classes over flattened one-hot vectors: event (N * K,).

    ``sample()`` draws exact one-hots (the discrete model); ``rsample()`` draws their Gumbel-softmax relaxation
    at temperature ``tau`` (Jang et al. 2017: ``RelaxedOneHotCategorical`` in ``Independent``), the
    reparameterised surrogate that training differentiates through. ``log_prob(z)`` is the categorical
    log-probability sum_nk z_nk log pi_nk, exact for one-hots (what ``sample`` gives, and the IWAE bound uses).
    ``mean`` is pi, the class probabilities. logits (..., N, K) -> batch (...).
    """

    arg_constraints = {"logits": constraints.real}
    has_rsample = True

    def __init__(self, logits: Tensor, tau: float, validate_args: bool = False):
        # bf16 logits (autocast) upcast to float32 for the softmax; float64 ones (a scorer's) keep their dtype
        self.logits = logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(-1)  # (..., N, K)
        self.tau = float(tau)
        n, k = logits.shape[-2:]
        super().__init__(logits.shape[:-2], torch.Size([n * k]), validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return self.logits.exp()

    @property
    def mean(self) -> Tensor:
        return flat(self.probs, self.event_shape[0])

    @property
    def variance(self) -> Tensor:
        p = self.probs
        return flat(p * (1 - p), self.event_shape[0])

    def relaxed(self) -> Independent:
        """The relaxation: Independent(RelaxedOneHotCategorical(tau, logits)) with event (N, K)."""
        return Independent(
            RelaxedOneHotCategorical(
                torch.tensor(self.tau, device=self.logits.device), logits=self.logits, validate_args=False
            ),
            1,
        )

    def rsample(self, sample_shape: _size = torch.Size()) -> Tensor:
        return self.relaxed().rsample(sample_shape).flatten(-2)  # (*sample_shape, ..., N * K)

    def sample(self, sample_shape: _size = torch.Size()) -> Tensor:
        with torch.no_grad():
            return OneHotCategorical(logits=self.logits, validate_args=False).sample(sample_shape).flatten(-2)

    def log_prob(self, value: Tensor) -> Tensor:
        return (value.unflatten(-1, self.logits.shape[-2:]) * self.logits).sum((-2, -1))

    def entropy(self) -> Tensor:
        return -(self.probs * self.logits).sum((-2, -1))

    def expand(self, batch_shape, _instance=None) -> GumbelSoftmax:
        return GumbelSoftmax(self.logits.expand(*batch_shape, *self.logits.shape[-2:]), self.tau)


def flat(t: Tensor, size: int) -> Tensor:
    """(..., N, K) -> (..., N * K = ``size``): a batch (B, N, K) as (-1, size), the size a constant, which an
    ONNX graph reshapes at B = 0 too (flatten's (B, -1) fails there, and its B is traced as a constant)."""
    return t.reshape(-1, size) if t.dim() == 3 else t.flatten(-2)


@register_kl(GumbelSoftmax, GumbelSoftmax)
def _kl_gumbel(q: GumbelSoftmax, p: GumbelSoftmax) -> Tensor:
    """KL between the unrelaxed categoricals, summed over the N variables: sum pi_q (log pi_q - log pi_p)."""
    return (q.probs * (q.logits - p.logits)).sum((-2, -1))


def nearest(v: Tensor, codebook: Tensor) -> Tensor:
    """(..., D) vectors -> (...,) the index of each one's nearest code in ``codebook`` (K, D), by
    |v|^2 - 2 v.e + |e|^2 (no (..., K, D) difference tensor)."""
    dist = codebook.pow(2).sum(1) - 2 * v @ codebook.t()  # (..., K); |v|^2 is the same for every code
    return dist.argmin(-1)


class CodeGrid(Distribution):
    """A one-point q(z|x) over grids of codebook vectors (VQ-VAE): z = the nearest codes of the encoder's output.

    ``index`` (B, h, w) are the codes, ``loc`` (B, D * h * w) their vectors (channel-major, as (B, D, h, w)
    flattened), ``st`` the same values with the straight-through gradient to the encoder output (van den Oord
    et al. 2017, eq. 3), which ``rsample`` returns. ``log_prob`` is 0 at the grid (and -inf elsewhere); its
    entropy is 0, so KL(q || p) = -log p(index).
    """

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, index: Tensor, loc: Tensor, st: Tensor | None = None):
        self.index, self.loc = index, loc
        self.st = loc if st is None else st
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        # zeros (+0, not loc * 0's -0 for loc < 0); not zeros_like: an ONNX export would fold that into a constant
        return (self.loc * 0).abs()  # of fixed batch size

    def rsample(self, sample_shape: _size = torch.Size()) -> Tensor:
        return self.st.expand(*sample_shape, *self.st.shape)

    def sample(self, sample_shape: _size = torch.Size()) -> Tensor:
        return self.loc.detach().expand(*sample_shape, *self.loc.shape)

    def log_prob(self, value: Tensor) -> Tensor:
        far = (value - self.loc).abs().amax(-1) > 1e-5 * (1 + self.loc.abs().amax(-1))
        return torch.zeros(far.shape, device=value.device).masked_fill(far, -math.inf)

    def entropy(self) -> Tensor:
        return torch.zeros(self.batch_shape, device=self.loc.device)


class CodePrior(Distribution):
    """p(z) over grids of h x w codes of a codebook (K, D): uniform, or an autoregressive ``net`` over indices.

    ``net`` (a PixelCNN) gives ``logits(index (B, h, w)) -> (B, K, h, w)`` and ``sample(n, h, w, temperature)
    -> (n, h, w)``. ``log_prob(z)`` reads z (..., D * h * w) as a grid of codes (each vector's nearest code).
    Event (D * h * w,), batch ().
    """

    arg_constraints: dict = {}

    def __init__(self, codebook: Tensor, grid: tuple[int, int], net=None, temperature: float = 1.0):
        self.codebook, self.grid, self.net, self.temperature = codebook, tuple(grid), net, temperature
        super().__init__(
            torch.Size(), torch.Size([codebook.shape[1] * self.grid[0] * self.grid[1]]), validate_args=False
        )

    def indices(self, z: Tensor) -> Tensor:
        """(..., D * h * w) -> (..., h, w): the nearest code of each of z's vectors."""
        d = self.codebook.shape[1]
        v = z.unflatten(-1, (d, -1)).transpose(-1, -2)  # (..., h * w, D)
        return nearest(v, self.codebook).unflatten(-1, self.grid)

    def vectors(self, index: Tensor) -> Tensor:
        """(..., h, w) indices -> (..., D * h * w) their codebook vectors, channel-major."""
        return self.codebook[index].movedim(-1, -3).flatten(-3)

    def log_prob_index(self, index: Tensor) -> Tensor:
        """log p(index) (...,) of code grids (..., h, w)."""
        if self.net is None:
            return torch.full(
                index.shape[:-2], -math.prod(self.grid) * math.log(len(self.codebook)), device=index.device
            )
        flat = index.reshape(-1, *self.grid)
        logp = self.net.logits(flat).float().log_softmax(1).gather(1, flat.unsqueeze(1))  # (B, 1, h, w)
        return logp.sum((1, 2, 3)).view(index.shape[:-2])

    def log_prob(self, value: Tensor) -> Tensor:
        return self.log_prob_index(self.indices(value))

    def sample(self, sample_shape: _size = torch.Size()) -> Tensor:
        n = math.prod(sample_shape)
        with torch.no_grad():
            if self.net is None:
                index = torch.randint(len(self.codebook), (n, *self.grid), device=self.codebook.device)
            else:
                index = self.net.sample(n, *self.grid, temperature=self.temperature)
            return self.vectors(index).view(*sample_shape, -1)


@register_kl(CodeGrid, CodePrior)
def _kl_codes(q: CodeGrid, p: CodePrior) -> Tensor:
    """KL(delta_index || p) = -log p(index): H * W * log K for the uniform prior (a constant)."""
    return -p.log_prob_index(q.index)
