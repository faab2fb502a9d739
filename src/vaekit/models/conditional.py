"""The conditional VAE (Sohn et al. 2015): q(z|x, y), p(x|z, y) and a prior p(z|y) learned per class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, MixtureSameFamily

from ..config import ModelConfig
from ..core.contract import VAEOutput
from ..core.likelihoods import SOFTPLUS_ONE, diag_normal, gaussian
from ..errors import VaekitError
from . import register
from .nets import build_nets
from .priors import gaussian_mixture, init_mixture_
from .vae import NetsVAE, dry_run, n_params, positive


@register("cvae")
class ConditionalVAE(NetsVAE):
    """Conditional VAE: q(z|x, y), p(x|z, y) and p(z|y); labels y (B,) in 0..num_classes-1.

    ``encoder`` maps x (B, *shape) to features (B, F); the label features e(y) join them before q(z|x, y)'s
    linear head. ``decoder`` maps [z, e(y)] (B, latent_dim + E) to the likelihood's parameters. e(y) is y
    one-hot (E = num_classes, ``label_embedding = 0``) or a learned ``label_embedding``-dim vector. With
    ``learned_prior`` the prior is p(z|y) = N(loc_y, diag scale_y^2) from a table per class (as in pyro's
    CVAE example), or with ``prior_components`` C > 1 a mixture sum_c pi_yc N(loc_yc, diag scale_yc^2) per
    class (its KL then comes from the one-sample estimate); otherwise N(0, I).
    """

    needs_labels = True
    plain_forward = True  # forward is encode, rsample, decode, prior: importance sampling encodes once
    MODULE_ORDER = ("embed", "likelihood", "encoder", "decoder", "to_qz", "pz_table")

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        num_classes: int,
        likelihood: str = "bernoulli",
        *,
        scale: str = "learned",
        components: int = 5,
        label_embedding: int = 0,
        learned_prior: bool = True,
        prior_components: int = 1,
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__(encoder, decoder, likelihood, scale, components)
        self.latent_dim = positive(latent_dim, "latent_dim")
        self.num_classes = positive(num_classes, "num_classes")
        self.label_embedding, self.learned_prior = label_embedding, learned_prior
        self.prior_components = positive(prior_components, "prior_components")
        self.label_features = label_embedding or self.num_classes
        self.embed = nn.Embedding(self.num_classes, label_embedding) if label_embedding else None
        self.register_buffer("pz_loc", torch.zeros(self.latent_dim), persistent=False)
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> ConditionalVAE:
        """The built-in networks that ``cfg`` describes; the decoder reads [z, e(y)]."""
        if cfg.num_classes < 1:
            raise VaekitError(
                "the conditional VAE needs its number of classes: pass num_classes=K (K >= 1; training sets it "
                "from the data's labels)",
                key="model.num_classes",
            )
        shape, wide = tuple(cfg.input_shape), cfg.latent_dim + (cfg.label_embedding or cfg.num_classes)
        nets = build_nets(replace(cfg, latent_dim=wide), shape, n_params(cfg))
        return cls(
            *nets,
            cfg.latent_dim,
            cfg.num_classes,
            cfg.likelihood,
            scale=cfg.scale,
            components=cfg.likelihood_components,
            label_embedding=cfg.label_embedding,
            learned_prior=cfg.learned_prior,
            prior_components=cfg.prior_components or 1,
            input_shape=shape,
        )

    def make_heads(self, f: int) -> None:
        self.to_qz = nn.Linear(f + self.label_features, 2 * self.latent_dim)
        if self.learned_prior:
            self.pz_table = self.prior_table(self.num_classes, self.latent_dim, self.prior_components)

    def decoder_inputs(self) -> int:
        return self.latent_dim + self.label_features

    def check_decoder(self) -> None:
        """As ``NetsVAE.check_decoder``; a decoder that fails on its inputs [z, e(y)] (B, D + E) is told their split."""
        try:
            super().check_decoder()
        except VaekitError:  # its dry run again, named by its inputs' parts (where the likelihood refused: passes)
            y = f"embedded y] (latent_dim {self.latent_dim} + label_embedding {self.label_embedding})"
            if self.embed is None:
                y = f"one-hot y] (latent_dim {self.latent_dim} + {self.num_classes} classes)"
            dry_run(self.decoder, (self.decoder_inputs(),), f"decoder, reading [z, {y},")
            raise

    @property
    def latent_dims(self) -> list[int]:
        return [self.latent_dim]

    @staticmethod
    def prior_table(k: int, d: int, c: int) -> nn.Embedding:
        """Per class y the prior's parameters: [loc_y, raw scale_y] (2D,), or for c > 1 components
        c blocks [loc_yc, raw scale_yc, mixture logit_yc] (c * (2D + 1),)."""
        if c <= 1:
            table = nn.Embedding(k, 2 * d)
            nn.init.zeros_(table.weight[:, :d])
            nn.init.constant_(table.weight[:, d:], SOFTPLUS_ONE)  # starts at N(0, I)
            return table
        table = nn.Embedding(k, c * (2 * d + 1))
        init_mixture_(table.weight.detach().view(k, c, 2 * d + 1))  # as the mixture prior's (models.priors)
        return table

    def label(self, y: Tensor | None, n: int, check: bool | None = None) -> Tensor:
        """(B,) int64 labels -> (B, E) one-hot or embedded label features.

        Values are range-checked unless ``check`` is False; by default only outside training (the trainer
        checks every label once up front, so the training step skips this host sync).
        """
        if y is None:
            raise VaekitError("the conditional VAE needs labels y (B,)")
        if y.shape != (n,):
            raise VaekitError(f"labels y must have shape ({n},), got {tuple(y.shape)}")
        if (not self.training if check is None else check) and bool(((y < 0) | (y >= self.num_classes)).any()):
            raise VaekitError(f"labels must lie in 0..{self.num_classes - 1}, got {y.min()}..{y.max()}")
        if self.embed is not None:
            return self.embed(y)
        return F.one_hot(y, self.num_classes).to(self.pz_loc.dtype)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape), (B,) -> q(z|x, y) with batch (B,) and event (D,)."""
        self._built(x)
        h = self.encoder(x)  # (B, F)
        return diag_normal(self.to_qz(torch.cat([h, self.label(y, len(x))], 1)))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, D), (B,) -> p(x|z, y) with batch (B,) and event ``shape``."""
        return self._likelihood(self.decoder(torch.cat([z, self.label(y, len(z))], 1)))

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z|y) with batch (B,) and event (D,) (learned per class), or N(0, I) with event (D,)."""
        if not self.learned_prior or y is None:
            return gaussian(self.pz_loc, torch.ones_like(self.pz_loc))
        params = self.pz_table(y)
        if self.prior_components <= 1:
            return diag_normal(params)  # (B, 2D) -> loc, softplus scale
        return gaussian_mixture(params.view(len(y), self.prior_components, -1))  # (B, C, 2D + 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape), labels y (B,) -> p(x|z, y), q(z|x, y), p(z|y) and z (B, D), one level."""
        qz = self.encode(x, y)
        z = qz.rsample()  # (B, D)
        pz = self.prior(y if self.learned_prior else None)
        return VAEOutput(px=self.decode(z, y), qz=[qz], pz=[pz], z=[z])

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z, y) for ``n`` draws z ~ p(z|y) with the prior's scale (a mixture: the drawn component's)
        times ``temperature``; y (n,)."""
        self.label(y, n, check=True)
        pz = self.prior(y)
        if isinstance(pz, MixtureSameFamily):  # a component per draw, then its Gaussian
            c = pz.mixture_distribution.sample()  # (n,)
            rows = torch.arange(n, device=c.device)  # (n,)
            comp = cast(Independent, pz.component_distribution).base_dist  # batch (n, C), event (D,)
            loc, scale = comp.loc[rows, c], comp.scale[rows, c]  # (n, D)
        else:
            base = cast(Independent, pz).base_dist  # gaussian() or diag_normal(): Independent(Normal)
            loc, scale = base.loc, base.scale
        eps = torch.randn(n, self.latent_dim, device=self.pz_loc.device)
        return self.decode(loc + temperature * scale * eps, y)
