"""The conditional VAE (Sohn et al. 2015): q(z|x, y), p(x|z, y) and a prior p(z|y) learned per class."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, MixtureSameFamily

from ..config import ModelConfig
from ..errors import VaekitError
from ..nets import Likelihood, build_nets, diag_normal, gaussian
from . import register
from .vae import VAEOutput

SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(SOFTPLUS_ONE) = 1: a learned scale that starts at 1


@register("cvae")
class ConditionalVAE(nn.Module):
    """Conditional VAE: q(z|x, y), p(x|z, y) and p(z|y); labels y (B,) come from the data.

    The label enters the encoder (next to the features of x) and the decoder (next to z).

    y is fed one-hot (``label_embedding = 0``) or as a learned ``label_embedding``-dim vector. With
    ``learned_prior`` the prior is p(z|y) = N(loc_y, diag scale_y^2) from a table per class (as in pyro's
    CVAE example), or with ``prior_components`` C > 1 a mixture sum_c pi_yc N(loc_yc, diag scale_yc^2) per
    class (its KL then comes from the one-sample estimate); otherwise N(0, I). MLP or conv networks come from
    ``build_nets`` as for the flat VAE.
    """

    needs_labels = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.num_classes < 1:
            raise VaekitError("config: the conditional VAE needs model.num_classes >= 1 (it comes from the labels)")
        self.cfg, d, k = cfg, cfg.latent_dim, cfg.num_classes
        shape = tuple(cfg.input_shape)
        self.label_features = cfg.label_embedding or k
        self.embed = nn.Embedding(k, cfg.label_embedding) if cfg.label_embedding else None
        self.likelihood = Likelihood(cfg.likelihood, shape, cfg.scale)
        # the decoder reads [z, e(y)]: the same networks with a wider input
        self.encoder, self.decoder = build_nets(replace(cfg, latent_dim=d + self.label_features), shape,
                                                self.likelihood.n_params)
        self.to_qz = nn.Linear(self.encoder.out_features + self.label_features, 2 * d)
        if cfg.learned_prior:
            self.pz_table = self.prior_table(k, d, cfg.prior_components)
        self.register_buffer("pz_loc", torch.zeros(d), persistent=False)

    @property
    def latent_dims(self) -> list[int]:
        return [self.cfg.latent_dim]

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
        w = table.weight.detach().view(k, c, 2 * d + 1)
        nn.init.normal_(w[..., :d])  # distinct component locations break the symmetry
        nn.init.constant_(w[..., d: 2 * d], SOFTPLUS_ONE)
        nn.init.zeros_(w[..., 2 * d])  # equal weights
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
        if (not self.training if check is None else check) and bool(((y < 0) | (y >= self.cfg.num_classes)).any()):
            raise VaekitError(f"labels must lie in 0..{self.cfg.num_classes - 1}, got {y.min()}..{y.max()}")
        if self.embed is not None:
            return self.embed(y)
        return F.one_hot(y, self.cfg.num_classes).to(self.pz_loc.dtype)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape), (B,) -> q(z|x, y) with batch (B,) and event (D,)."""
        h = self.encoder(x)  # (B, F)
        return diag_normal(self.to_qz(torch.cat([h, self.label(y, len(x))], 1)))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, D), (B,) -> p(x|z, y) with batch (B,) and event ``shape``."""
        return self.likelihood(self.decoder(torch.cat([z, self.label(y, len(z))], 1)))

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z|y) with batch (B,) and event (D,) (learned per class), or N(0, I) with event (D,)."""
        if not self.cfg.learned_prior or y is None:
            return gaussian(self.pz_loc, torch.ones_like(self.pz_loc))
        params = self.pz_table(y)
        if self.cfg.prior_components <= 1:
            return diag_normal(params)  # (B, 2D) -> loc, softplus scale
        params = params.view(len(y), self.cfg.prior_components, -1)  # (B, C, 2D + 1)
        return MixtureSameFamily(Categorical(logits=params[..., -1]), diag_normal(params[..., :-1]))

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        qz = self.encode(x, y)
        z = qz.rsample()  # (B, D)
        pz = self.prior(y if self.cfg.learned_prior else None)
        return VAEOutput(px=self.decode(z, y), qz=[qz], pz=[pz], z=[z])

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z, y) for ``n`` draws z ~ p(z|y) with the prior's scale (a mixture: the drawn component's)
        times ``temperature``; y (n,)."""
        self.label(y, n, check=True)
        pz = self.prior(y)
        if isinstance(pz, MixtureSameFamily):  # a component per draw, then its Gaussian
            rows, c = torch.arange(n, device=y.device), pz.mixture_distribution.sample()  # (n,) each
            comp = pz.component_distribution.base_dist  # batch (n, C), event (D,)
            loc, scale = comp.loc[rows, c], comp.scale[rows, c]  # (n, D)
        else:
            loc, scale = pz.base_dist.loc, pz.base_dist.scale
        eps = torch.randn(n, self.cfg.latent_dim, device=self.pz_loc.device)
        return self.decode(loc + temperature * scale * eps, y)
