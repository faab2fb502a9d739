"""The deep hierarchical VAE: a top-down hierarchy of spatial latent groups (VDVAE: Child 2021; NVAE: Vahdat &
Kautz 2020; Efficient-VDVAE: Hazami et al. 2022).

A bottom-up residual encoder runs over several resolutions (e.g. 28 -> 14 -> 7 -> 1). The top-down decoder
starts from a learned state at 1 x 1 and walks down the same resolutions; at each it reads a number of latent
groups z_g, each a (C_z, h, w) tensor: the prior p(z_g | z_<g) and the posterior q(z_g | x, z_<g) both come from
the shared top-down state, and the posterior also reads the bottom-up activation at that resolution. Residual
cells carry the state down to p(x | z) at the data's resolution. Each group is one latent level of the contract,
flattened to (B, C_z * h * w), top first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent
from torch.utils.checkpoint import checkpoint

from ..config import ModelConfig
from ..core.autoregressive import LocalARBernoulli, LocalAutoregressive
from ..core.contract import VAEOutput
from ..core.likelihoods import Likelihood, gaussian
from . import register
from .deep_cells import BottomUp, GroupBlock, ResCell, expand, out_scale, sizes
from .deep_checks import AR_KERNEL, check_flags, check_settings
from .temperature import Temperature

# pick(g, r, q, p) -> (the q to record, z (B, D_g)) for group g at resolution r; q is None without an input x
Pick = Callable[[int, int, Independent | None, Independent], tuple[Distribution, Tensor]]


@register("deep")
class DeepVAE(nn.Module):
    """Deep hierarchy of spatial latent groups read top-down; any likelihood of the registry.

    ``groups`` lists the latent groups at each resolution from the top (1 x 1, always) down to the data's
    (H, W), each one between them half the one below it (ceil): [1, 2, 2, 0] on 28 x 28 images puts 1 group
    at 1 x 1, 2 at 7 x 7, 2 at 14 x 14 and none at 28 x 28. ``width`` is the state's channels, ``cell_width``
    the residual cells' inner width, ``latent_channels`` C_z per group, ``cells`` the residual cells per
    resolution in each direction.
    ``residual_posterior`` parameterises q relative to p (NVAE); ``checkpoint_cells`` recomputes the top-down
    blocks' activations in the backward pass (less memory, more time); ``init`` scales the residual branches'
    last layer by 1/sqrt(N) ("scaled") or zeroes it ("zero"). ``patch`` p > 1 folds p x p pixel patches into
    channels before the encoder and unfolds the output's (pixel (un)shuffle), so no cell runs at the data's
    resolution: the resolutions then go from 1 x 1 to (H/p, W/p), and the per-image cost falls about p^2-fold
    at the top of the data's resolution. ``head_kernel`` (odd) is the kernel of the convolution that reads
    p(x|z)'s parameters from the final state: 3 lets each cell's pixels see its neighbours (about 0.6 nats
    better than 1 on binarised Fashion-MNIST after 10 epochs, at the same speed). ``ar_channels`` > 0 (Bernoulli
    only) makes p(x|z) local autoregressive (``core.autoregressive``): that many channels of features per pixel,
    and each pixel also reads the pixels above and to its left in an ``ar_kernel`` x ``ar_kernel`` window.
    """

    # init arguments kept under other attribute names (models.spec reads the rest by name)
    init_renamed: ClassVar[dict[str, str]] = {"likelihood": "likelihood_name"}

    needs_labels = False

    def __init__(
        self,
        input_shape: Sequence[int],
        likelihood: str = "bernoulli",
        *,
        groups: Sequence[int] = (1, 2, 2, 0),
        width: int = 32,
        cell_width: int = 16,
        latent_channels: int = 4,
        cells: int = 1,
        patch: int = 1,
        head_kernel: int = 3,
        ar_channels: int = 0,
        ar_kernel: int = AR_KERNEL,
        residual_posterior: bool = False,
        checkpoint_cells: bool = False,
        init: str = "scaled",
        scale: str = "learned",
        components: int = 5,
    ):
        super().__init__()
        check_flags(residual_posterior=residual_posterior, checkpoint_cells=checkpoint_cells)
        check_settings(
            input_shape,
            groups,
            init,
            likelihood,
            width=width,
            cell_width=cell_width,
            latent_channels=latent_channels,
            cells=cells,
            patch=patch,
            head_kernel=head_kernel,
            ar_channels=ar_channels,
            ar_kernel=ar_kernel,
        )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.likelihood_name, self.groups, self.width, self.cell_width = likelihood, list(groups), width, cell_width
        self.latent_channels, self.cells, self.patch, self.head_kernel = latent_channels, cells, patch, head_kernel
        self.residual_posterior, self.checkpoint_cells, self.init = residual_posterior, checkpoint_cells, init
        self.ar_channels, self.ar_kernel = ar_channels, ar_kernel
        self.scale, self.components = scale, components
        c, h, w = self.input_shape
        n = len(groups)
        self.hs, self.ws = sizes(h // patch, n), sizes(w // patch, n)  # top (1) first, on the patch grid
        self.likelihood = Likelihood(likelihood, self.input_shape, scale, components)
        self.encoder = BottomUp(c * patch**2, width, cell_width, n, cells, init)
        k = out_scale(init, sum(groups) + n * cells)  # residual branches on the top-down path
        self.h0 = nn.Parameter(torch.zeros(1, width, 1, 1))  # the learned state at the top
        self.blocks = nn.ModuleList(
            nn.ModuleList(GroupBlock(width, cell_width, latent_channels, residual_posterior, k) for _ in range(g))
            for g in groups
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResCell(width, cell_width, k) for _ in range(cells))) for _ in groups
        )
        n_out = (ar_channels or self.likelihood.n_params * c) * patch**2  # the head's features, or p(x|z)'s params
        self.to_x = nn.Sequential(nn.GELU(), nn.Conv2d(width, n_out, head_kernel, padding=head_kernel // 2))
        self.ar = LocalAutoregressive(c, ar_channels, ar_kernel) if ar_channels else None

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DeepVAE:
        """The hierarchy that ``cfg``'s deep_* settings describe, for ``cfg.input_shape``."""
        return cls(
            cfg.input_shape,
            cfg.likelihood,
            groups=cfg.deep_groups,
            width=cfg.deep_width,
            cell_width=cfg.deep_cell_width,
            latent_channels=cfg.deep_latent_channels,
            cells=cfg.deep_cells,
            patch=cfg.deep_patch,
            head_kernel=cfg.deep_head_kernel,
            ar_channels=cfg.deep_ar_channels,
            ar_kernel=cfg.deep_ar_kernel if cfg.deep_ar_channels else AR_KERNEL,  # an older run's unused one loads
            residual_posterior=cfg.residual_posterior,
            checkpoint_cells=cfg.checkpoint_cells,
            init=cfg.deep_init,
            scale=cfg.scale,
            components=cfg.likelihood_components,
        )

    @property
    def latent_dims(self) -> list[int]:
        """C_z * h * w of every group, top to bottom."""
        return [self.latent_channels * self.hs[r] * self.ws[r] for r, g in enumerate(self.groups) for _ in range(g)]

    def _call(self, fn: Callable[..., Tensor], *args: Tensor) -> Tensor:
        """fn(*args), its activations recomputed in the backward pass when ``checkpoint_cells`` is on."""
        if self.checkpoint_cells and self.training and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def top_down(self, acts: list[Tensor] | None, pick: Pick, n: int) -> tuple[Tensor, list, list, list]:
        """The state (n, width, H, W) at the data's resolution and the qz, pz, z lists (top first).

        ``acts`` are the bottom-up activations (top first) or None; ``pick`` chooses each group's z.
        """
        h, g = self.h0.expand(n, -1, -1, -1), 0
        qz, pz, zs = [], [], []
        for r, (blocks, stage) in enumerate(zip(self.blocks, self.stages)):
            if r:
                h = F.interpolate(h, size=(self.hs[r], self.ws[r]), mode="nearest")
            for block in cast("list[GroupBlock]", blocks):  # a ModuleList of GroupBlocks
                p = block.prior(h)
                q = block.posterior(h, acts[r], p) if acts is not None else None
                picked, z = pick(g, r, q, p)
                h = self._call(block.merge, h, z)
                qz.append(picked)
                pz.append(p)
                zs.append(z)
                g += 1
            h = self._call(stage, h) if self.cells else h
        return h, qz, pz, zs

    def _px(self, h: Tensor) -> Distribution:
        """p(x|z) from the state (B, width, H/p, W/p): parameters per pixel, unfolded from each patch's channels.

        The head runs in its own dtype under bf16 autocast (a half-precision h is cast up to it, a float64 one
        kept): a bf16 trunk then still gives p(x|z) parameters as fine as a discretized logistic's bins (2/255),
        which bf16's 8 bits are not near 1."""
        dtype = cast(nn.Conv2d, self.to_x[1]).weight.dtype
        h = h.to(dtype) if h.dtype in (torch.float16, torch.bfloat16) else h
        with torch.autocast(h.device.type, enabled=False):
            params = F.pixel_shuffle(self.to_x(h), self.patch)  # patch 1: unchanged
        if self.ar is not None:
            return LocalARBernoulli(params, self.ar)  # params: (B, ar_channels, H, W) features
        return self.likelihood(params.view(h.shape[0], self.likelihood.n_params, *self.input_shape))

    def bottom_up(self, x: Tensor) -> list[Tensor]:
        """x (B, C, H, W) -> the encoder's activations at each resolution, top first (patches folded first)."""
        return self.encoder(F.pixel_unshuffle(x, self.patch))

    def infer(self, x: Tensor, sample: bool = True, from_prior: int = 0) -> VAEOutput:
        """Top-down inference on x (B, C, H, W): z_g ~ q (its mean if not ``sample``); the lowest ``from_prior``
        groups (nearest the data) take their conditional prior's mean instead, q = p for them: the bound
        L^{>k} of Havtorn et al. 2021, whose code decodes those groups from the prior's mode."""
        first_from_prior = len(self.latent_dims) - from_prior

        def pick(g: int, r: int, q: Independent | None, p: Independent) -> tuple[Distribution, Tensor]:
            if g >= first_from_prior:
                return p, p.mean
            assert q is not None  # top_down has the bottom-up activations, so a posterior for every group
            return q, q.rsample() if sample else q.mean

        h, qz, pz, z = self.top_down(self.bottom_up(x), pick, x.shape[0])
        return VAEOutput(px=self._px(h), qz=qz, pz=pz, z=z)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, C, H, W) -> p(x|z) and q, p, z of every group top to bottom (z_g (B, C_z * h * w)); y is unused."""
        return self.infer(x)

    def forward_from_prior(self, x: Tensor, k: int) -> VAEOutput:
        """``forward`` with the lowest ``k`` groups from their conditional priors, for the LLR^{>k} score."""
        return self.infer(x, from_prior=k)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, C, H, W) -> q over every group's z concatenated, event (sum D_g,), each given the means above."""
        qz = cast("list[Independent]", self.infer(x, sample=False).qz)  # each group's q is a gaussian()
        return gaussian(torch.cat([q.base_dist.loc for q in qz], 1), torch.cat([q.base_dist.scale for q in qz], 1))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x|z) from every group's z concatenated (B, sum D_g), as ``encode`` gives it."""
        parts = z.split(self.latent_dims, dim=1)
        h, *_ = self.top_down(None, lambda g, r, q, p: (p, parts[g]), z.shape[0])
        return self._px(h)

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z_1) of the top group, read from the learned top state: event (D_1,)."""
        blocks = cast("list[GroupBlock]", self.blocks[next(r for r, g in enumerate(self.groups) if g)])
        p = blocks[0].prior(self._top_state())
        return gaussian(p.base_dist.loc[0], p.base_dist.scale[0])

    def _top_state(self) -> Tensor:
        """The state (1, width, h, w) at the first resolution with a group (no group above it)."""
        h: Tensor = self.h0
        for r, stage in enumerate(self.stages):
            if r:
                h = F.interpolate(h, size=(self.hs[r], self.ws[r]), mode="nearest")
            if self.groups[r]:
                return h
            h = stage(h)
        raise AssertionError("no latent group")  # check_settings refuses that

    def generate(self, n: int, temperature: Temperature = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` ancestral draws; ``temperature`` (finite, >= 0) scales the prior scales: one number,
        or one per resolution (top first, as ``groups``)."""
        h, _ = self._ancestral(n, temperature)
        return self._px(h)

    def prior_codes(self, n: int, temperature: Temperature = 1.0) -> Tensor:
        """``n`` ancestral draws of every group's z, concatenated as ``encode`` gives them: (n, sum D_g), without
        gradients (codes to decode or export). Each group is drawn from its prior given the groups above, so
        ``decode`` of them is ``generate``'s mean."""
        with torch.no_grad():
            return torch.cat(self._ancestral(n, temperature)[1], 1)

    def _ancestral(self, n: int, temperature: Temperature) -> tuple[Tensor, list[Tensor]]:
        """The state (n, width, H/p, W/p) and each group's z (n, D_g), top first, drawn from the priors."""
        t = expand(temperature, len(self.groups))

        def pick(g: int, r: int, q: Independent | None, p: Independent) -> tuple[Distribution, Tensor]:
            b = p.base_dist
            return p, b.loc + t[r] * b.scale * torch.randn_like(b.loc)

        h, _, _, zs = self.top_down(None, pick, n)
        return h, zs
