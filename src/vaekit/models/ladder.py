"""The hierarchical VAE with top-down inference (ladder VAE: Sønderby et al. 2016; Kingma et al. 2016).

Generative path p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2) p(x|z_1). Inference runs bottom-up once through
deterministic features d_1..d_L of x, then top-down along the generative path: q(z_L|x) from d_L, and for
l < L the posterior q(z_l|x, z_{>l}) is read from d_l and the top-down state h_l = MLP(z_{l+1}), which also
gives the learned prior p(z_l|z_{l+1}) (``ladder_posterior = "topdown"``, the default: the bidirectional
inference of Kingma et al. 2016), or it is the precision-weighted combination (LVAE, eq. 17-19) of a Gaussian
read from d_l alone and that prior (``"precision"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise
from typing import ClassVar, cast

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent

from ..config import ModelConfig
from ..core.contract import VAEOutput
from ..core.likelihoods import diag_normal, gaussian
from ..errors import VaekitError
from . import register
from .nets import build_nets, mlp
from .vae import NetsVAE, n_params

LADDER_DIMS = [32, 16]  # a new ladder's z_1, z_2 where model.latent_dims lists none (vaekit models shows it)


def new_levels(m: ModelConfig) -> ModelConfig:
    """``m`` (edited in place) with a new ladder's levels settled: model.latent_dims, empty, is ``LADDER_DIMS``.
    Not for a saved run's config: its empty list is one level of model.latent_dim (vaekit before 32,16)."""
    if m.family == "ladder" and not m.latent_dims:
        m.latent_dims = list(LADDER_DIMS)
    return m


def latent(d: object) -> bool:
    """Whether ``d`` is a latent size: an integer >= 1 (not a bool)."""
    return isinstance(d, int) and not isinstance(d, bool) and d >= 1


def precision_weighted(q_hat: Independent, p: Independent) -> Independent:
    """LVAE eq. 19: N(loc, scale^2) with 1/scale^2 = 1/s_q^2 + 1/s_p^2, loc = scale^2 (m_q/s_q^2 + m_p/s_p^2)."""
    a, b = q_hat.base_dist, p.base_dist
    prec_q, prec_p = a.scale.pow(-2), b.scale.pow(-2)  # (B, D) each
    var = 1 / (prec_q + prec_p)
    return gaussian(var * (a.loc * prec_q + b.loc * prec_p), var.sqrt())


@register("ladder")
class LadderVAE(NetsVAE):
    """Hierarchical VAE: p(z_L) p(z_l|z_{l+1}) ... p(x|z_1), top-down inference, one KL per level.

    ``dims`` lists z_1..z_L from the data up (e.g. [32, 16]). ``encoder`` maps x (B, *shape) to the bottom-up
    features d_1 (B, F), d_{l+1} = MLP(d_l) of ``width``; the top-down nets map z_{l+1} to p(z_l|z_{l+1});
    ``decoder`` maps z_1 (B, dims[0]) to the likelihood's parameters. ``posterior`` is "topdown" or
    "precision". The latent lists of ``VAEOutput`` and ``latent_dims`` run top to bottom, z_L first, like
    every model's.
    """

    # init arguments kept under other attribute names (models.spec reads the rest by name)
    init_renamed: ClassVar[dict[str, str]] = NetsVAE.init_renamed | {"posterior": "posterior_mode"}

    MODULE_ORDER = ("likelihood", "encoder", "decoder", "up", "to_q", "down")
    pz_loc: Tensor  # buffer (D_L,): the top prior's zero mean

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        dims: Sequence[int],
        likelihood: str = "bernoulli",
        *,
        width: int = 256,
        posterior: str = "topdown",
        scale: str = "learned",
        components: int = 5,
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__(encoder, decoder, likelihood, scale, components)
        if not isinstance(dims, Sequence) or isinstance(dims, str) or not dims or not all(latent(d) for d in dims):
            raise VaekitError(
                f"dims must list positive latent sizes z_1..z_L (e.g. [32, 16]), got {dims!r}", key="model.latent_dims"
            )
        if posterior not in ("topdown", "precision"):
            raise VaekitError(
                f"posterior must be topdown or precision, got {posterior!r}", key="model.ladder_posterior"
            )
        self.dims, self.width, self.posterior_mode = list(dims), width, posterior
        self.topdown = posterior == "topdown"
        self.register_buffer("pz_loc", torch.zeros(self.dims[-1]), persistent=False)
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> LadderVAE:
        """The built-in networks that ``cfg`` describes; ``cfg.latent_dims`` (or [latent_dim]) from the data up."""
        dims, shape = list(cfg.latent_dims) or [cfg.latent_dim], tuple(cfg.input_shape)
        nets = build_nets(replace(cfg, latent_dim=dims[0]), shape, n_params(cfg))
        return cls(
            *nets,
            dims,
            cfg.likelihood,
            width=cfg.hidden[-1] if cfg.hidden else 256,
            posterior=cfg.ladder_posterior,
            scale=cfg.scale,
            components=cfg.likelihood_components,
            input_shape=shape,
        )

    def make_heads(self, f: int) -> None:
        dims, width = self.dims, self.width
        feats = [f] + [width] * (len(dims) - 1)  # widths of d_1..d_L
        self.up = nn.ModuleList(mlp([a, width]) for a in feats[:-1])  # d_l -> d_{l+1}
        q_in = [f + width for f in feats[:-1]] + feats[-1:] if self.topdown else feats
        self.to_q = nn.ModuleList(nn.Linear(f, 2 * d) for f, d in zip(q_in, dims))  # [d_l, h_l] or d_l -> q(z_l)
        self.down = nn.ModuleList(
            nn.Sequential(mlp([d_above, width]), nn.Linear(width, 2 * d)) for d, d_above in pairwise(dims)
        )  # z_{l+1} -> h_l -> p(z_l|z_{l+1})

    def decoder_inputs(self) -> int:
        return self.dims[0]

    @property
    def latent_dims(self) -> list[int]:
        """Sizes of z_L..z_1, top to bottom."""
        return self.dims[::-1]

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z_L) = N(0, I) with event (D_L,): the top of the hierarchy."""
        return gaussian(self.pz_loc, torch.ones_like(self.pz_loc))

    def conditional_prior(self, level: int, z_above: Tensor) -> Independent:
        """p(z_l|z_{l+1}) for ``level`` l in 1..L-1 (1 at the bottom); z_above (B, D_{l+1}) -> event (D_l,)."""
        return diag_normal(self.down[level - 1](z_above))

    def posterior(self, level: int, d: Tensor, z_above: Tensor) -> tuple[Independent, Independent]:
        """q(z_l|x, z_{l+1}) and p(z_l|z_{l+1}) for ``level`` l in 1..L-1 from d_l (B, F_l) and z_above."""
        down = cast(nn.Sequential, self.down[level - 1])  # [mlp, linear]
        h = down[0](z_above)  # (B, width): the top-down state
        p = diag_normal(down[1](h))
        if self.topdown:
            return diag_normal(self.to_q[level - 1](torch.cat([d, h], 1))), p
        return precision_weighted(diag_normal(self.to_q[level - 1](d)), p), p

    def bottom_up(self, x: Tensor) -> list[Tensor]:
        """(B, *shape) -> [d_1, ..., d_L], each (B, F_l)."""
        self._built(x)
        d = [self.encoder(x)]
        for up in self.up:
            d.append(up(d[-1]))
        return d

    def infer(self, x: Tensor, sample: bool = True, from_prior: int = 0) -> VAEOutput:
        """Top-down inference: qz, pz, z top to bottom; z_l is rsample()d, or the posterior mean if not ``sample``;
        the lowest ``from_prior`` levels (z_1.. nearest the data) take their prior's mean instead, q = p there:
        the L^{>k} bound of Havtorn et al. 2021."""
        d, levels = self.bottom_up(x), len(self.dims)
        pz: list[Distribution] = [self.prior()]
        top = from_prior >= levels
        qz = [pz[0].expand((len(x),)) if top else diag_normal(self.to_q[-1](d[-1]))]
        z = [qz[0].mean if top or not sample else qz[0].rsample()]
        for level in range(levels - 1, 0, -1):  # l = L-1, ..., 1
            q, p = self.posterior(level, d[level - 1], z[-1])
            qz.append(p if level <= from_prior else q)
            pz.append(p)
            z.append(p.mean if level <= from_prior else q.rsample() if sample else q.mean)
        return VAEOutput(px=self.decode(z[-1]), qz=qz, pz=pz, z=z)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape) -> p(x|z_1) and q, p, z of every level top to bottom (z_l (B, D_l)); y is unused."""
        return self.infer(x)

    def forward_from_prior(self, x: Tensor, k: int) -> VAEOutput:
        """``forward`` with the lowest ``k`` levels from their priors, for the LLR^{>k} score."""
        return self.infer(x, from_prior=k)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape) -> q over [z_L, ..., z_1] concatenated, event (sum D_l,), each level given the means above."""
        qz = cast("list[Independent]", self.infer(x, sample=False).qz)  # each level's q is a gaussian()
        loc = torch.cat([q.base_dist.loc for q in qz], 1)  # (B, sum D_l)
        scale = torch.cat([q.base_dist.scale for q in qz], 1)  # (B, sum D_l)
        return gaussian(loc, scale)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x|z_1) from z_1 (B, D_1), or from [z_L, ..., z_1] (B, sum D_l) as ``encode`` gives it."""
        return self._likelihood(self.decoder(z[:, -self.dims[0] :]))

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z_1) for ``n`` ancestral draws from the top down; ``temperature`` scales every level's scale."""
        return self.decode(self._ancestral(n, temperature)[-1])

    def prior_codes(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` ancestral draws of every level's z, concatenated as ``encode`` gives them (z_L first): (n, sum D_l),
        without gradients (codes to decode or export). Each level is drawn from its prior given the level above, so
        ``decode`` of them is ``generate``'s."""
        with torch.no_grad():
            return torch.cat(self._ancestral(n, temperature), 1)

    def _ancestral(self, n: int, temperature: float) -> list[Tensor]:
        """Each level's z (n, D_l), top first, from p(z_L) and p(z_l|z_{l+1}), their scales times ``temperature``."""
        z = [self.pz_loc + temperature * torch.randn(n, self.dims[-1], device=self.pz_loc.device)]
        for level in range(len(self.dims) - 1, 0, -1):
            p = self.conditional_prior(level, z[-1]).base_dist
            z.append(p.loc + temperature * p.scale * torch.randn_like(p.loc))
        return z
