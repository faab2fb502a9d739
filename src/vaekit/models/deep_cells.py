"""The parts of the deep hierarchy (``vaekit.models.deep``): residual cells, the bottom-up encoder and one
top-down block per latent group (VDVAE: Child 2021; NVAE: Vahdat & Kautz 2020).

Each class keeps its init arguments as attributes of the same names, so a run rebuilds it from model.json.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent

from ..core.likelihoods import MIN_SCALE, full, gaussian
from ..errors import VaekitError
from .temperature import Temperature, temperatures

INITS = ("scaled", "zero")


def sizes(size: int, resolutions: int) -> list[int]:
    """Spatial sizes from the top down: [1, ceil(size / 2^(n-2)), ..., ceil(size / 2), size] for n resolutions."""
    halved = [size]
    for _ in range(resolutions - 2):
        halved.append((halved[-1] + 1) // 2)
    return [1, *halved[::-1]]


def resolutions(size: int) -> int:
    """How many resolutions a grid of side ``size`` has, halving it (rounding up) down to 1 x 1."""
    n = 1
    while size > 1:
        n, size = n + 1, (size + 1) // 2
    return n


class ResCell(nn.Module):
    """x + f(x) on (B, width, h, w): a bottleneck GELU -> 1x1 -> GELU -> 3x3 -> GELU -> 1x1 (VDVAE's block).

    The branch's last convolution starts scaled by ``out_scale`` (1/sqrt(N) for N cells in a path, so the
    state's variance does not grow with depth), or at zero (``out_scale`` 0: each cell starts as the identity).
    """

    def __init__(self, width: int, inner: int, out_scale: float = 1.0):
        super().__init__()
        self.width, self.inner, self.out_scale = width, inner, out_scale
        self.branch = nn.Sequential(
            nn.GELU(),
            nn.Conv2d(width, inner, 1),
            nn.GELU(),
            nn.Conv2d(inner, inner, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(inner, width, 1),
        )
        last = self.branch[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        with torch.no_grad():
            last.weight.mul_(out_scale)
            last.bias.mul_(out_scale)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


def head(c_in: int, inner: int, c_out: int) -> nn.Sequential:
    """(B, c_in, h, w) -> (B, c_out, h, w): GELU -> 3x3 -> GELU -> 1x1, the parameters of a Gaussian group."""
    return nn.Sequential(nn.GELU(), nn.Conv2d(c_in, inner, 3, padding=1), nn.GELU(), nn.Conv2d(inner, c_out, 1))


def out_scale(init: str, n: int) -> float:
    """The residual branches' scale at initialisation: 1/sqrt(n) ("scaled") or 0 ("zero")."""
    return 0.0 if init == "zero" else 1 / math.sqrt(max(1, n))


class BottomUp(nn.Module):
    """x (B, C, H, W) -> the activations at each resolution, top (1 x 1) first, each (B, width, h, w).

    A 3x3 stem, ``cells`` residual cells per resolution, average pooling (ceil mode) from one size to the next
    and a global average over the last one to reach 1 x 1.
    """

    def __init__(self, channels: int, width: int, inner: int, resolutions: int, cells: int, init: str = "scaled"):
        super().__init__()
        self.channels, self.width, self.inner = channels, width, inner
        self.resolutions, self.cells, self.init = resolutions, cells, init
        scale = out_scale(init, resolutions * cells)
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResCell(width, inner, scale) for _ in range(cells))) for _ in range(resolutions)
        )  # data resolution first

    def forward(self, x: Tensor) -> list[Tensor]:
        h, acts = self.stem(x), []
        for i, stage in enumerate(self.stages):
            if i == len(self.stages) - 1:
                h = h.mean((2, 3), keepdim=True)  # (B, width, 1, 1)
            elif i > 0:
                h = F.avg_pool2d(h, 2, ceil_mode=True)
            h = stage(h)
            acts.append(h)
        return acts[::-1]


class GroupBlock(nn.Module):
    """One latent group of ``latent`` channels at one resolution, read from the top-down state h (B, width, h, w).

    p(z_g | z_<g) = N(loc, scale) from h; q(z_g | x, z_<g) from h and the bottom-up activation a, either
    directly or, with ``residual``, relative to the prior: N(loc_p + d_loc, scale_p * d_scale) (NVAE's residual
    normal). z is projected to the state's width and added to h, and a residual cell carries h on.
    """

    def __init__(self, width: int, inner: int, latent: int, residual: bool = False, out_scale: float = 1.0):
        super().__init__()
        self.width, self.inner, self.latent, self.residual, self.out_scale = width, inner, latent, residual, out_scale
        self.to_p = head(width, inner, 2 * latent)
        self.to_q = head(2 * width, inner, 2 * latent)
        self.from_z = nn.Conv2d(latent, width, 1)
        self.cell = ResCell(width, inner, out_scale)
        with torch.no_grad():  # z's first contribution to the state is small as well
            self.from_z.weight.mul_(out_scale if out_scale > 0 else 0.1)

    def prior(self, h: Tensor) -> Independent:
        """p(z_g | z_<g) with event (latent * h * w,) from the state (B, width, h, w)."""
        loc, raw = full(self.to_p(h)).chunk(2, dim=1)
        return gaussian(loc.flatten(1), (F.softplus(raw) + MIN_SCALE).flatten(1))

    def posterior(self, h: Tensor, a: Tensor, p: Independent) -> Independent:
        """q(z_g | x, z_<g) with event (latent * h * w,) from the state h and the activation a (B, width, h, w)."""
        loc, raw = full(self.to_q(torch.cat([h, a], 1))).chunk(2, dim=1)
        loc, raw = loc.flatten(1), raw.flatten(1)
        if self.residual:  # NVAE eq. 3: relative to the prior
            return gaussian(p.base_dist.loc + loc, p.base_dist.scale * (F.softplus(raw) + MIN_SCALE))
        return gaussian(loc, F.softplus(raw) + MIN_SCALE)

    def merge(self, h: Tensor, z: Tensor) -> Tensor:
        """The state after z: cell(h + W z), z (B, latent * h * w) -> (B, width, h, w)."""
        return self.cell(h + self.from_z(z.view(h.shape[0], self.latent, *h.shape[2:]).to(h.dtype)))


def expand(temperature: Temperature, resolutions: int) -> list[float]:
    """One temperature per resolution (top first) from one number (a 0-d tensor too) or a list, array or tensor of
    ``resolutions`` numbers, each finite and >= 0 (``temperature.temperatures``, as ``Run.sample`` checks it),
    else one line."""
    t = temperatures(temperature, "deep")
    if isinstance(t, float):
        return [t] * resolutions
    if len(t) != resolutions:
        raise VaekitError(
            f"temperature lists one value per resolution ({resolutions}, top first), got {len(t)}", key="temperature"
        )
    return t
