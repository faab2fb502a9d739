"""The built-in networks: factories of plain ``nn.Module`` encoders (x -> features) and decoders (z -> the
likelihood's parameters) for any input shape; MLPs for any item shape, convolutions for (C, H, W) images.

Each class keeps its init arguments as attributes of the same names, so a run can record and rebuild it.
"""

from __future__ import annotations

import itertools
import math
import operator
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


def item_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """The item shape as a tuple of sizes >= 1; an int n is (n,), vectors of n features. Else one line."""
    try:
        dims = tuple(operator.index(s) for s in shape) if hasattr(shape, "__iter__") else (operator.index(shape),)
    except TypeError:  # neither an integer nor a sequence of them
        dims = ()
    if isinstance(shape, str) or not dims or min(dims) < 1:
        raise VaekitError(
            f"shape must be the item shape, sizes >= 1 such as (784,) or (1, 28, 28), got {shape!r}",
            key="model.input_shape",
        )
    return dims


def widths(value: int | Sequence[int], name: str) -> list[int]:
    """Layer widths >= 1 as a list (an int n: one layer of n), else one line naming ``model.<name>``."""
    try:
        sizes = [operator.index(v) for v in value] if hasattr(value, "__iter__") else [operator.index(value)]
    except TypeError:  # neither an integer nor a sequence of them
        sizes = [0]
    if isinstance(value, str) or any(w < 1 for w in sizes):
        raise VaekitError(f"{name} must list layer widths >= 1, got {value!r}", key=f"model.{name}")
    return sizes


def latent_size(latent_dim: int) -> int:
    """``latent_dim`` if it is an integer >= 1, else one line."""
    try:
        size = operator.index(latent_dim)
    except TypeError:  # a float, a list, ...
        size = 0
    if isinstance(latent_dim, bool) or size < 1:
        raise VaekitError(f"latent_dim must be a positive integer, got {latent_dim!r}", key="model.latent_dim")
    return size


def mlp_nets(
    shape: int | Sequence[int], latent_dim: int, hidden: int | Sequence[int] = (400, 400), n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """An MLP encoder (B, *shape) -> (B, hidden[-1]) and its mirror decoder (B, latent_dim) -> (B, n_params, *shape).

    ``shape`` may be an int n for vectors (n,); ``hidden`` an int for one layer (an empty list: none)."""
    shape, hidden = item_shape(shape), widths(hidden, "hidden")
    return MLPEncoder(shape, hidden), MLPDecoder(latent_size(latent_dim), shape, hidden[::-1], n_params)


def conv_nets(
    shape: Sequence[int], latent_dim: int, channels: int | Sequence[int] = (32, 64), n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """Stride-2 conv blocks (B, C, H, W) -> (B, F) for any H, W and C, and the mirrored decoder
    (B, latent_dim) -> (B, n_params, C, H, W); ``channels`` an int for one block."""
    shape, channels = item_shape(shape), widths(channels, "channels")
    if not channels:
        raise VaekitError("the conv networks need at least one block of channels", key="model.channels")
    return ConvEncoder(shape, channels), ConvDecoder(latent_size(latent_dim), shape, channels, n_params)


def build_nets(cfg: ModelConfig, in_shape: tuple[int, ...], n_params: int) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder that ``cfg.net`` names, with ``cfg.latent_dim`` inputs to the decoder."""
    if cfg.net == "conv":
        return conv_nets(in_shape, cfg.latent_dim, cfg.channels, n_params)
    return mlp_nets(in_shape, cfg.latent_dim, cfg.hidden, n_params)
