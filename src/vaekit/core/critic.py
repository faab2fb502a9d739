"""FactorVAE's discriminator and its shuffled draws of prod_j q(z_j) (Kim & Mnih 2018), which the ``factor``
objective (``objectives_zoo``) trains beside the VAE."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn


class Discriminator(nn.Module):
    """z (B, D) -> (B,) logits of 'drawn from q(z)' against 'from prod_j q(z_j)' (FactorVAE's D)."""

    def __init__(self, latent_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.latent_dim, self.hidden, self.layers = latent_dim, hidden, layers
        sizes = [latent_dim] + [hidden] * layers
        blocks = [m for a, b in pairwise(sizes) for m in (nn.Linear(a, b), nn.LeakyReLU(0.2))]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(-1)


def permute_dims(z: Tensor, block: int = 1) -> Tensor:
    """(B, D) with each latent variable, ``block`` adjacent dimensions, shuffled across the batch on its own:
    draws of prod_j q(z_j) (Kim & Mnih 2018, algorithm 1). A categorical variable's K one-hot coordinates
    (block K) move together, so a shuffled row is still N one-hots."""
    g = z.reshape(z.shape[0], -1, block)  # (B, D / block, block)
    idx = torch.rand(g.shape[:2], device=z.device).argsort(0)  # (B, D / block)
    return g.gather(0, idx.unsqueeze(-1).expand_as(g)).reshape(z.shape)
