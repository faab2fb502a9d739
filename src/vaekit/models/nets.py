"""The built-in networks: factories of plain ``nn.Module`` encoders (x -> features) and decoders (z -> the
likelihood's parameters) for any input shape; MLPs for any item shape, convolutions for (C, H, W) images.

Each class keeps its init arguments as attributes of the same names, so a run can record and rebuild it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import VaekitError


def mlp(sizes: list[int], final_activation: bool = True) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """(B, *shape) -> (B, F) features through hidden ReLU layers (none: the flattened input)."""

    def __init__(self, shape: tuple[int, ...], hidden: list[int]):
        super().__init__()
        self.shape, self.hidden = tuple(shape), list(hidden)
        self.net = mlp([math.prod(shape), *hidden])
        self.out_features = hidden[-1] if hidden else math.prod(shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """(B, in_features) -> (B, n_params, *shape) likelihood parameters."""

    def __init__(self, in_features: int, shape: tuple[int, ...], hidden: list[int], n_params: int):
        super().__init__()
        self.in_features, self.shape, self.hidden, self.n_params = in_features, tuple(shape), list(hidden), n_params
        self.net = mlp([in_features, *hidden, n_params * math.prod(shape)], final_activation=False)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, self.n_params, *self.shape)


def conv_sizes(size: int, blocks: int) -> list[int]:
    """Spatial sizes through ``blocks`` stride-2 convolutions (kernel 3, padding 1): ceil halving."""
    sizes = [size]
    for _ in range(blocks):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, F): stride-2 conv blocks for any H, W and C, then flatten."""

    def __init__(self, shape: tuple[int, ...], channels: list[int]):
        super().__init__()
        self.shape, self.channels = tuple(shape), list(channels)
        if len(shape) != 3:
            raise VaekitError(f"the conv networks need (C, H, W) images, got item shape {tuple(shape)}")
        c, h, w = shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.out_features = channels[-1] * conv_sizes(h, len(channels))[-1] * conv_sizes(w, len(channels))[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)


class ConvDecoder(nn.Module):
    """(B, in_features) -> (B, n_params, C, H, W): the encoder mirrored, cropping to each size on the way up."""

    def __init__(self, in_features: int, shape: tuple[int, ...], channels: list[int], n_params: int):
        super().__init__()
        c, h, w = shape
        self.in_features, self.shape, self.channels, self.n_params = in_features, tuple(shape), list(channels), n_params
        self.hs, self.ws = conv_sizes(h, len(channels))[::-1], conv_sizes(w, len(channels))[::-1]
        rev = channels[::-1]
        self.fc = nn.Linear(in_features, rev[0] * self.hs[0] * self.ws[0])
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in zip(rev, [*rev[1:], n_params * c])
        )

    def forward(self, z: Tensor) -> Tensor:
        x = F.relu(self.fc(z)).view(-1, self.channels[-1], self.hs[0], self.ws[0])  # channels[-1]: ups[0]'s input
        for i, up in enumerate(self.ups):
            x = up(x)[..., : self.hs[i + 1], : self.ws[i + 1]]  # doubling overshoots odd sizes
            if i < len(self.ups) - 1:
                x = F.relu(x)
        return x.view(-1, self.n_params, *self.shape)


def mlp_nets(
    shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int] = (400, 400), n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """An MLP encoder (B, *shape) -> (B, hidden[-1]) and its mirror decoder (B, latent_dim) -> (B, n_params, *shape)."""
    hidden = list(hidden)
    return MLPEncoder(shape, hidden), MLPDecoder(latent_dim, shape, hidden[::-1], n_params)


def conv_nets(
    shape: tuple[int, ...], latent_dim: int, channels: Sequence[int] = (32, 64), n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """Stride-2 conv blocks (B, C, H, W) -> (B, F) for any H, W and C, and the mirrored decoder
    (B, latent_dim) -> (B, n_params, C, H, W)."""
    if not channels:
        raise VaekitError("the conv networks need at least one block of channels", key="model.channels")
    return ConvEncoder(shape, list(channels)), ConvDecoder(latent_dim, shape, list(channels), n_params)


def build_nets(cfg: ModelConfig, in_shape: tuple[int, ...], n_params: int) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder that ``cfg.net`` names, with ``cfg.latent_dim`` inputs to the decoder."""
    if cfg.net == "conv":
        return conv_nets(in_shape, cfg.latent_dim, cfg.channels, n_params)
    return mlp_nets(in_shape, cfg.latent_dim, cfg.hidden, n_params)
