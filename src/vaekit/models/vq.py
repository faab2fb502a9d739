"""The VQ-VAE (van den Oord et al. 2017): an encoder to a grid of D-dim vectors, each replaced by its nearest of
K codebook vectors (EMA updates, straight-through gradients, the commitment loss), a decoder, and a gated
PixelCNN prior over the grid of code indices.

In the contract: z is the grid of code vectors, flattened (B, D * h * w); q(z|x) is the one point at the
encoder's nearest codes (``CodeGrid``: entropy 0), and p(z) a distribution over code grids (``CodePrior``), so
the KL term is -log p(codes) and rec - KL = log p(x|z_q) + log p(z_q) is a lower bound on log p(x) (the IWAE
bound is the same number for every K). Training is the paper's two stages: first the VQ-VAE under a uniform
p(z), whose KL is the constant h * w * log K; then the PixelCNN alone on the final model's training codes
(``train.prior_epochs`` at the end of training, or ``vaekit.fit_prior(run)``), after which p(z) is the PixelCNN
and ``generate`` draws from it. The PixelCNN is part of the model's state (a buffer records that it is fitted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..core.contract import VAEOutput
from ..core.discrete import CodeGrid, CodePrior, nearest
from ..core.likelihoods import Likelihood, full
from ..errors import VaekitError
from . import register
from .nets import MLPDecoder, MLPEncoder, conv_sizes
from .pixelcnn import GatedPixelCNN
from .vae import dry_run, n_params, positive

EPS = 1e-5  # Laplace smoothing of the EMA cluster sizes (Razavi et al. 2019, VQ-VAE-2's code)
DEAD = 1e-2  # a code whose EMA usage falls below this many vectors per step restarts at an encoder output


class GridDecoder(nn.Module):
    """(B, code_dim, h, w) -> (B, n_params, C, H, W): a 3x3 conv, then the conv encoder's blocks mirrored."""

    def __init__(self, shape: tuple[int, ...], channels: list[int], code_dim: int, n_params: int):
        super().__init__()
        c, h, w = shape
        self.shape, self.channels, self.code_dim, self.n_params = tuple(shape), list(channels), code_dim, n_params
        self.hs, self.ws = conv_sizes(h, len(channels))[::-1], conv_sizes(w, len(channels))[::-1]
        rev = self.channels[::-1]
        self.inp = nn.Conv2d(code_dim, rev[0], 3, padding=1)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in zip(rev, [*rev[1:], n_params * c])
        )

    def forward(self, z: Tensor) -> Tensor:
        x = torch.relu(self.inp(z))
        for i, up in enumerate(self.ups):
            x = up(x)[..., : self.hs[i + 1], : self.ws[i + 1]]  # doubling overshoots odd sizes
            if i < len(self.ups) - 1:
                x = torch.relu(x)
        return x.view(-1, self.n_params, *self.shape)


def grid_conv_nets(
    shape: tuple[int, ...], channels: Sequence[int], code_dim: int, n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """Stride-2 conv blocks (B, C, H, W) -> (B, code_dim, H / 2^n, W / 2^n) and the mirrored decoder."""
    if len(shape) != 3 or not channels:
        raise VaekitError(
            f"the conv VQ-VAE needs (C, H, W) images and conv channels, got {tuple(shape)}", key="model.net"
        )
    layers: list[nn.Module] = []
    for c_in, c_out in zip([shape[0], *channels[:-1]], channels):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
    layers += [nn.Conv2d(channels[-1], channels[-1], 3, padding=1), nn.ReLU(), nn.Conv2d(channels[-1], code_dim, 1)]
    return nn.Sequential(*layers), GridDecoder(tuple(shape), list(channels), code_dim, n_params)


def grid_mlp_nets(
    shape: tuple[int, ...], hidden: Sequence[int], positions: int, code_dim: int, n_params: int = 1
) -> tuple[nn.Module, nn.Module]:
    """An MLP (B, *shape) -> (B, code_dim, 1, positions): a 1 x ``positions`` grid, and its mirror decoder."""
    enc = MLPEncoder(tuple(shape), list(hidden))
    return (
        nn.Sequential(
            enc, nn.Linear(enc.out_features, positions * code_dim), nn.Unflatten(1, (code_dim, 1, positions))
        ),
        nn.Sequential(nn.Flatten(), MLPDecoder(positions * code_dim, tuple(shape), list(hidden)[::-1], n_params)),
    )


@register("vq")
class VQVAE(nn.Module):
    """VQ-VAE: nearest-code quantisation of an encoder grid (EMA codebook), a decoder, a PixelCNN prior over codes.

    ``encoder`` maps x (B, *shape) to (B, D, h, w) (found by a dry run); ``decoder`` maps (B, D, h, w) to the
    likelihood's parameters. ``codebook_size`` K codes, ``commitment`` beta_c of ||z_e - sg(e)||^2 (summed
    over the grid, per item), ``decay`` of the codebook's EMA; ``prior_channels`` and ``prior_layers`` size the
    gated PixelCNN, p(z) once the second stage has fitted it (uniform before). ``generate`` draws code grids from
    p(z) (the PixelCNN's logits / temperature) and decodes them.
    """

    # init arguments kept under other attribute names (models.spec reads the rest by name)
    init_renamed: ClassVar[dict[str, str]] = {"likelihood": "likelihood_name"}

    needs_labels = False
    # buffers that ``build`` registers (declared for the type checker)
    codebook: Tensor  # (K, D)
    cluster_size: Tensor  # (K,)
    embed_sum: Tensor  # (K, D)
    prior_fitted: Tensor  # (), bool

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: str = "bernoulli",
        *,
        codebook_size: int = 512,
        commitment: float = 0.25,
        decay: float = 0.99,
        prior_channels: int = 64,
        prior_layers: int = 5,
        scale: str = "learned",
        components: int = 5,
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.likelihood_name, self.scale, self.components = likelihood, scale, components
        self.codebook_size = positive(codebook_size, "codebook_size")
        self.prior_channels = positive(prior_channels, "pixelcnn_channels")
        self.prior_layers = positive(prior_layers, "pixelcnn_layers")
        if not (commitment >= 0 and 0 <= decay < 1):
            raise VaekitError(
                f"commitment must be >= 0 and decay in [0, 1), got {commitment}, {decay}", key="model.commitment"
            )
        self.commitment, self.decay = float(commitment), float(decay)
        self.input_shape: tuple[int, ...] | None = None
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> VQVAE:
        """The conv (a grid of H / 2^n x W / 2^n) or MLP (a 1 x ``latent_dim`` grid) networks ``cfg`` names."""
        shape, n = tuple(cfg.input_shape), n_params(cfg)
        nets = (
            grid_conv_nets(shape, cfg.channels, cfg.code_dim, n)
            if cfg.net == "conv"
            else grid_mlp_nets(shape, cfg.hidden, cfg.latent_dim, cfg.code_dim, n)
        )
        return cls(
            *nets,
            cfg.likelihood,
            codebook_size=cfg.codebook_size,
            commitment=cfg.commitment,
            decay=cfg.codebook_decay,
            prior_channels=cfg.pixelcnn_channels,
            prior_layers=cfg.pixelcnn_layers,
            scale=cfg.scale,
            components=cfg.likelihood_components,
            input_shape=shape,
        )

    def build(self, shape: Sequence[int]) -> VQVAE:
        """Build for items of ``shape``: the grid (D, h, w) by a dry run, the codebook, likelihood and PixelCNN."""
        shape = tuple(int(s) for s in shape)
        if self.input_shape is not None:
            if shape != self.input_shape:
                raise VaekitError(f"items have shape {shape}, the model was built for {self.input_shape}")
            return self
        h = dry_run(self.encoder, shape, "encoder")
        if h.dim() != 4:
            raise VaekitError(f"the VQ-VAE's encoder must map items to a grid (B, D, h, w); it gives {tuple(h.shape)}")
        k, (d, rows, cols) = self.codebook_size, h.shape[1:]
        self.grid = (rows, cols)
        like: dict[str, Any] = {"device": h.device, "dtype": torch.float32}
        self.register_buffer("codebook", torch.randn(k, d, **like))  # (K, D), moved by the EMA
        self.register_buffer("cluster_size", torch.zeros(k, **like))  # (K,) EMA of each code's usage
        self.register_buffer("embed_sum", torch.zeros(k, d, **like))  # (K, D) EMA of the vectors it took
        self.likelihood = Likelihood(self.likelihood_name, shape, self.scale, self.components).to(h.device)
        self.pixelcnn = GatedPixelCNN(k, self.prior_channels, self.prior_layers).to(h.device)
        self.pixelcnn.requires_grad_(False)  # fitted in the second stage only (training.prior), never by the ELBO
        self.register_buffer("prior_fitted", torch.zeros((), dtype=torch.bool, device=h.device))
        self.fitted = False  # its value on the host: read once, when weights are loaded (no sync per step)
        self.likelihood.params(dry_run(self.decoder, (d, rows, cols), "decoder"))  # its output must fit
        self.input_shape = shape
        return self

    @property
    def latent_dims(self) -> list[int]:
        return [self.codebook.shape[1] * self.grid[0] * self.grid[1]]

    def quantize(self, x: Tensor) -> tuple[CodeGrid, Tensor]:
        """(B, *shape) -> q(z|x) (its codes and straight-through vectors) and the encoder output z_e (B, D, h, w)."""
        if self.input_shape is None:
            self.build(x.shape[1:])
        ze = full(self.encoder(x))  # (B, D, h, w), float32 under autocast
        index = nearest(ze.permute(0, 2, 3, 1), self.codebook)  # (B, h, w)
        zq = self.codebook[index].permute(0, 3, 1, 2)  # (B, D, h, w)
        st = ze + (zq - ze).detach()  # straight-through: the decoder's gradient to z_e
        return CodeGrid(index, zq.flatten(1), st.flatten(1)), ze

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape) -> q(z|x): the one point at the nearest codes, event (D * h * w,)."""
        return self.quantize(x)[0]

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, D * h * w) code vectors (or any vectors) -> p(x|z) with event ``shape``."""
        if self.input_shape is None:
            raise VaekitError("the model is not built yet: pass input_shape, or encode or fit some data first")
        return self.likelihood(self.decoder(z.view(-1, self.codebook.shape[1], *self.grid)))

    def prior(self, y: Tensor | None = None, temperature: float = 1.0) -> Distribution:
        """p(z) over code grids, event (D * h * w,): the PixelCNN once fitted, uniform before."""
        return CodePrior(self.codebook, self.grid, self.pixelcnn if self.fitted else None, temperature)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape) -> p(x|z), the code posterior, p(z), z (B, D * h * w) and the commitment loss (B,)."""
        qz, ze = self.quantize(x)
        commit = self.commitment * (ze - qz.loc.view_as(ze)).pow(2).sum((1, 2, 3))  # (B,); e is a buffer: sg(e)
        if self.training:
            self.ema_update(ze.detach(), qz.index)
        z = qz.rsample()
        return VAEOutput(px=self.decode(z), qz=[qz], pz=[self.prior()], z=[z], extra={"commitment": commit})

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` code grids drawn from p(z) (the fitted PixelCNN with logits / ``temperature``)."""
        return self.decode(self.prior(temperature=temperature).sample((n,)))

    @torch.no_grad()
    def ema_update(self, ze: Tensor, index: Tensor) -> None:
        """Move each code to the EMA mean of the encoder vectors it took (van den Oord et al. 2017, appendix A.1);
        codes unused for long restart at random vectors of this batch (no host sync)."""
        k, d = self.codebook.shape
        v, idx = ze.movedim(1, -1).reshape(-1, d), index.reshape(-1)  # (N, D), (N,)
        self.cluster_size.mul_(self.decay).add_(torch.bincount(idx, minlength=k).float(), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(
            torch.zeros_like(self.embed_sum).index_add_(0, idx, v), alpha=1 - self.decay
        )
        n = self.cluster_size.sum()
        size = (self.cluster_size + EPS) / (n + k * EPS) * n
        dead = (self.cluster_size < DEAD).unsqueeze(1)  # (K, 1)
        pick = v[torch.randint(len(v), (k,), device=v.device)]
        self.codebook.copy_(torch.where(dead, pick, self.embed_sum / size.unsqueeze(1)))
        self.embed_sum.copy_(torch.where(dead, pick, self.embed_sum))
        self.cluster_size.masked_fill_(dead.squeeze(1), 1.0)

    def codes(self, x: Tensor) -> Tensor:
        """(B, *shape) -> (B, h, w) code indices."""
        return self.quantize(x)[0].index

    def prior_nll(self, index: Tensor) -> Tensor:
        """-log p(index) (B,) under the PixelCNN, nats, for code grids (B, h, w): the second stage's loss."""
        return self.pixelcnn.nll(index)

    def prior_parameters(self) -> list[nn.Parameter]:
        """The second stage's parameters: the PixelCNN's."""
        return list(self.pixelcnn.parameters())

    def set_prior_fitted(self) -> None:
        """From now on p(z) is the PixelCNN (the second stage has run)."""
        self.prior_fitted.fill_(True)
        self.fitted = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if hasattr(self, "prior_fitted"):
            self.fitted = bool(self.prior_fitted)
