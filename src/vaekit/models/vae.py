"""The flat VAE: an encoder network, a decoder network, a standard-normal prior and a likelihood."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..nets import Likelihood, build_nets, diag_normal, gaussian
from . import register


@dataclass
class VAEOutput:
    """What every model's forward returns; ``elbo`` and ``iwae_bound`` read only this."""

    px: Distribution        # p(x|z); log_prob(x) has shape (B,)
    qz: list[Distribution]  # q(z_l|.), one per latent layer, top to bottom
    pz: list[Distribution]  # the matching priors p(z_l|.)
    z: list[Tensor]         # the rsample()d latents, each (B, D_l)


@register("vae")
class VAE(nn.Module):
    """q(z|x) = N(loc(x), diag scale(x)^2), p(z) = N(0, I), p(x|z) from ``cfg.likelihood``.

    Every model takes labels ``y`` (B,) as an optional argument; ``needs_labels`` tells the trainer
    whether to pass them. The flat VAE ignores them.
    """

    needs_labels = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        shape = tuple(cfg.input_shape)
        self.likelihood = Likelihood(cfg.likelihood, shape, cfg.scale)
        self.encoder, self.decoder = build_nets(cfg, shape, self.likelihood.n_params)
        self.to_qz = nn.Linear(self.encoder.out_features, 2 * cfg.latent_dim)
        self.register_buffer("pz_loc", torch.zeros(cfg.latent_dim), persistent=False)

    @property
    def latent_dims(self) -> list[int]:
        return [self.cfg.latent_dim]

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape) -> q(z|x) with batch (B,) and event (D,)."""
        return diag_normal(self.to_qz(self.encoder(x)))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, D) -> p(x|z) with batch (B,) and event ``shape``."""
        return self.likelihood(self.decoder(z))

    def prior(self) -> Distribution:
        """p(z) = N(0, I) with event (D,)."""
        return gaussian(self.pz_loc, torch.ones_like(self.pz_loc))

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        qz = self.encode(x)
        z = qz.rsample()  # (B, D): the reparameterisation trick
        return VAEOutput(px=self.decode(z), qz=[qz], pz=[self.prior()], z=[z])

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` draws z ~ N(0, temperature^2 I)."""
        z = self.prior().sample((n,)) * temperature
        return self.decode(z)
