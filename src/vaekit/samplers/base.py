"""What every post-hoc sampler is: a density q(z) fitted on a run's aggregate posterior codes (N, D), from which
new codes are drawn and decoded by the run's own decoder. A sampler is an ``nn.Module`` whose state is tensors
(saved as safetensors) and whose ``settings`` are plain JSON values (never class paths)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .. import errors
from ..errors import VaekitError
from ..training.progress import interactive


class Sampler(nn.Module):
    """Base of the samplers: standardises the codes (per-dimension loc and scale, kept as buffers), and leaves
    ``build`` (make the modules for D dims), ``fit_codes`` (fit on standardised codes) and ``draw`` to subclasses."""

    name = ""
    loc: Tensor  # buffers (D,), made by build
    scale: Tensor

    def __init__(self, seed: int = 0, **settings):
        super().__init__()
        self.seed = whole(seed, "seed", 0)
        self.settings = {"seed": self.seed, **settings}  # an np.int64 seed as an int (JSON)
        self.fitted: dict[str, int] = {}  # what fitting made of a setting, where the data allowed less (JSON)
        self.latent_dim = 0

    def build(self, latent_dim: int) -> Sampler:
        """Create the buffers and modules for D = ``latent_dim`` (before fitting or loading a state)."""
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        return self

    def fit(self, z: Tensor) -> Sampler:
        """Fit on codes z (N, D); returns self."""
        if z.dim() != 2 or len(z) < 2 or not torch.isfinite(z).all():
            raise VaekitError(f"a sampler is fitted on at least 2 finite codes (N, D), got shape {tuple(z.shape)}")
        self.build(z.shape[1])
        self.loc.copy_(z.mean(0))
        self.scale.copy_(z.std(0).clamp_min(1e-6))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.fit_codes((z - self.loc) / self.scale)
        return self.eval()

    def fit_codes(self, u: Tensor) -> None:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def draw(self, n: int) -> Tensor:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """(n, D) codes drawn from the fitted density (the global torch RNG: seed it for repeatable draws)."""
        return self.draw(n) * self.scale + self.loc


SAMPLERS: dict[str, type[Sampler]] = {}


def whole(v: object, name: str, low: int = 1) -> int:
    """``v`` if it is a whole number >= ``low``, else one line naming the sampler setting ``name``."""
    return errors.whole(v, name, low, "sampler setting ")


def rate(v: object, name: str = "lr") -> float:
    """``v`` if it is a finite number > 0, else one line naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not 0 < float(v) < math.inf:
        raise VaekitError(f"sampler setting {name} must be a finite number > 0, got {v!r}", key=name)
    return float(v)


def register(cls: type[Sampler]) -> type[Sampler]:
    """Add a Sampler class to ``SAMPLERS`` under its ``name``."""
    SAMPLERS[cls.name] = cls
    return cls


def train_density(
    params: list[Tensor], nll: Callable[[Tensor], Tensor], u: Tensor, steps: int, lr: float, batch_size: int = 256
) -> None:
    """Adam on the mean negative log-density ``nll`` of minibatches of the codes u (N, D); a bar of the steps on
    a terminal (a flow's 3000 steps take a minute or more on a CPU)."""
    opt = torch.optim.Adam(params, lr=lr)
    for _ in tqdm(range(steps), desc="fitting", unit="step", leave=False, disable=not interactive()):
        batch = u[torch.randint(len(u), (min(batch_size, len(u)),))]
        loss = nll(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
