"""Encoder and decoder networks for any input shape, and the heads that turn their outputs into distributions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Normal,
    constraints,
)

from .config import ModelConfig, parse_scale
from .errors import VaekitError

MIN_SCALE = 1e-4  # keeps q(z|x) and p(x|z) away from a degenerate scale of 0


def mlp(sizes: list[int], final_activation: bool = True) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """(B, *shape) -> (B, F) features through hidden ReLU layers (none: the flattened input)."""

    def __init__(self, shape: tuple[int, ...], hidden: list[int]):
        super().__init__()
        self.net = mlp([math.prod(shape), *hidden])
        self.out_features = hidden[-1] if hidden else math.prod(shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """(B, in_features) -> (B, n_params, *shape) likelihood parameters."""

    def __init__(self, in_features: int, shape: tuple[int, ...], hidden: list[int], n_params: int):
        super().__init__()
        self.shape, self.n_params = shape, n_params
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
        self.shape, self.n_params = shape, n_params
        self.hs, self.ws = conv_sizes(h, len(channels))[::-1], conv_sizes(w, len(channels))[::-1]
        rev = channels[::-1]
        self.fc = nn.Linear(in_features, rev[0] * self.hs[0] * self.ws[0])
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in zip(rev, [*rev[1:], n_params * c])
        )

    def forward(self, z: Tensor) -> Tensor:
        x = F.relu(self.fc(z)).view(-1, self.ups[0].in_channels, self.hs[0], self.ws[0])
        for i, up in enumerate(self.ups):
            x = up(x)[..., : self.hs[i + 1], : self.ws[i + 1]]  # doubling overshoots odd sizes
            if i < len(self.ups) - 1:
                x = F.relu(x)
        return x.view(-1, self.n_params, *self.shape)


def full(t: Tensor) -> Tensor:
    """``t`` in float32 if it is in a half-precision type (network outputs under autocast), else as it is."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def gaussian(loc: Tensor, scale: Tensor) -> Independent:
    """N(loc, diag scale^2) with the last dim as event: (..., D) -> batch (...), event (D,).

    Arguments are not validated (a check per call costs a host sync in the training step); callers pass
    scale > 0 by construction (softplus + floor). Half-precision network outputs (bf16 autocast) are cast
    up to float32 here, so every log-density and KL is computed in float32 (or float64 for a float64 model).
    """
    return Independent(Normal(full(loc), full(scale), validate_args=False), 1, validate_args=False)


def diag_normal(params: Tensor) -> Independent:
    """(B, 2 * D) -> N(loc, diag scale^2) with event shape (D,); scale = softplus + floor (half precision cast up)."""
    loc, raw = full(params).chunk(2, dim=-1)
    return gaussian(loc, F.softplus(raw) + MIN_SCALE)


class BernoulliLogits(Bernoulli):
    """Bernoulli(logits=l) whose log_prob is x * l - softplus(l): torch's value (up to rounding) in fewer passes
    over the logits, the IWAE estimator's largest cost after the decoder's matrix products."""

    def log_prob(self, value: Tensor) -> Tensor:
        return value * self.logits - F.softplus(self.logits)


class Likelihood(nn.Module):
    """Turns decoder outputs (B, n_params, *shape) into p(x|z) with the item dims as event dims."""

    def __init__(self, name: str, shape: tuple[int, ...], scale: str = "learned"):
        super().__init__()
        self.name, self.event_dims = name, len(shape)
        self.n_params = 1
        self.fixed_scale: float | None = None
        if name == "gaussian":
            mode = parse_scale(scale)
            if mode == "learned":
                self.log_scale = nn.Parameter(torch.zeros(shape))  # one scale per data dimension
            elif mode == "shared":
                self.log_scale = nn.Parameter(torch.zeros(()))
            elif mode == "decoded":  # heteroscedastic: the decoder gives a scale per item and dimension
                self.n_params = 2
            else:
                self.fixed_scale = float(mode)

    def forward(self, params: Tensor) -> Distribution:
        head = full(params[:, 0])  # (B, *shape); float32 even when the network ran in bf16
        if self.name == "bernoulli":
            # validate_args=False admits [0, 1] targets (cross-entropy on grey levels) besides binary ones
            base: Distribution = BernoulliLogits(logits=head, validate_args=False)
        elif self.name == "cbernoulli":
            base = ContinuousBernoulli(logits=head.clamp(-30, 30), validate_args=False)
        else:
            if self.fixed_scale is not None:
                scale = torch.full_like(head, self.fixed_scale)
            else:
                raw = full(params[:, 1]) if self.n_params == 2 else self.log_scale
                scale = (F.softplus(raw + math.log(math.e - 1)) + MIN_SCALE).expand_as(head)
            base = Normal(head, scale, validate_args=False)
        return Independent(base, self.event_dims, validate_args=False)


SUPPORT = {"bernoulli": constraints.unit_interval, "cbernoulli": constraints.unit_interval, "gaussian": constraints.real}


def check_support(likelihood: str, x: Tensor, where: str) -> None:
    """Refuse data outside the likelihood's support (Bernoulli-type likelihoods need values in [0, 1])."""
    if not bool(SUPPORT[likelihood].check(x).all()):
        lo, hi = float(x.min()), float(x.max())
        hint = " (use --likelihood gaussian for real-valued data)" if likelihood != "gaussian" else ""
        raise VaekitError(f"{where}: values in [{lo:.4g}, {hi:.4g}] lie outside the {likelihood} "
                          f"likelihood's support [0, 1]{hint}")


def build_nets(cfg: ModelConfig, in_shape: tuple[int, ...], n_params: int) -> tuple[nn.Module, nn.Module]:
    """The encoder (x -> features) and decoder (z -> likelihood parameters) chosen by ``cfg.net``."""
    if cfg.net == "conv":
        enc = ConvEncoder(in_shape, cfg.channels)
        return enc, ConvDecoder(cfg.latent_dim, in_shape, cfg.channels, n_params)
    enc = MLPEncoder(in_shape, cfg.hidden)
    return enc, MLPDecoder(cfg.latent_dim, in_shape, cfg.hidden[::-1], n_params)
