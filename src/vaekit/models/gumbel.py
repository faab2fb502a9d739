"""The categorical VAE with Gumbel-softmax latents (Jang et al. 2017; Maddison et al. 2017's Concrete).

z is N = ``latent_dim`` one-hot variables of K = ``categories`` classes, flattened (B, N * K); p(z) is uniform
over them; q(z|x) is the categorical of the encoder's logits (``GumbelSoftmax``). Training draws its
relaxation at temperature ``tau`` (annealed by the trainer from ``train.gumbel_tau`` to ``train.gumbel_tau_end``);
the KL term is the analytic KL between the unrelaxed categoricals. In eval mode ``forward`` draws exact one-hots,
so the validation loss and the IWAE bound are those of the discrete model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..core.contract import VAEOutput
from ..core.discrete import GumbelSoftmax
from ..errors import VaekitError
from . import register
from .nets import build_nets
from .vae import NetsVAE, n_params, positive


@register("gumbel")
class GumbelVAE(NetsVAE):
    """Categorical VAE: N categorical latents of K classes, Gumbel-softmax relaxation in training, uniform p(z).

    ``encoder`` maps x (B, *shape) to features (B, F), a linear layer to the logits (B, N, K); ``decoder`` maps
    z (B, N * K) (one-hots, or their relaxation) to the likelihood's parameters. ``tau`` is the relaxation's
    temperature now (the trainer anneals it).
    """

    MODULE_ORDER = ("likelihood", "encoder", "decoder", "to_logits")

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        categories: int = 10,
        likelihood: str = "bernoulli",
        *,
        tau: float = 1.0,
        scale: str = "learned",
        components: int = 5,
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__(encoder, decoder, likelihood, scale, components)
        self.latent_dim, self.categories = positive(latent_dim, "latent_dim"), positive(categories, "categories")
        if categories < 2 or not tau > 0:
            raise VaekitError(
                f"categories must be >= 2 and tau > 0, got {categories} and {tau}", key="model.categories"
            )
        self.tau = float(tau)
        self.register_buffer("pz_loc", torch.zeros(latent_dim, categories), persistent=False)  # p(z)'s logits
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> GumbelVAE:
        """The built-in MLP or conv networks ``cfg`` names; the decoder reads ``latent_dim * categories`` inputs."""
        shape = tuple(cfg.input_shape)
        nets = build_nets(replace(cfg, latent_dim=cfg.latent_dim * cfg.categories), shape, n_params(cfg))
        return cls(
            *nets,
            cfg.latent_dim,
            cfg.categories,
            cfg.likelihood,
            scale=cfg.scale,
            components=cfg.likelihood_components,
            input_shape=shape,
        )

    def make_heads(self, f: int) -> None:
        self.to_logits = nn.Linear(f, self.latent_dim * self.categories)

    def decoder_inputs(self) -> int:
        return self.latent_dim * self.categories

    @property
    def latent_dims(self) -> list[int]:
        return [self.latent_dim * self.categories]

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape) -> q(z|x): N categoricals of K classes, event (N * K,)."""
        self._built(x)
        logits = self.to_logits(self.encoder(x)).unflatten(1, (self.latent_dim, self.categories))  # (B, N, K)
        return GumbelSoftmax(logits, self.tau)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, N * K) -> p(x|z) with event ``shape``."""
        return self._likelihood(self.decoder(z))

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z): N uniform categoricals of K classes, event (N * K,)."""
        return GumbelSoftmax(self.pz_loc, self.tau)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape) -> p(x|z), q(z|x), p(z) and z (B, N * K): relaxed in training, one-hot in eval."""
        qz = self.encode(x)
        z = qz.rsample() if self.training else qz.sample()  # (B, N * K): relaxed in training, one-hot in eval
        return VAEOutput(px=self.decode(z), qz=[qz], pz=[self.prior()], z=[z])

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` one-hot draws from the uniform prior; a categorical has no scale, so a ``temperature``
        other than 1 is refused rather than ignored."""
        if temperature != 1.0:
            raise VaekitError(
                f"temperature {temperature}: a categorical prior has no scale to temper (1 only)", key="temperature"
            )
        return self.decode(self.prior().sample((n,)))


def set_tau(model: nn.Module, tau: float) -> None:
    """Set the Gumbel-softmax temperature of every categorical VAE in ``model`` (wrappers included)."""
    for m in model.modules():
        if isinstance(m, GumbelVAE):
            m.tau = float(tau)
