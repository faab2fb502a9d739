"""What every post-hoc sampler is: a density q(z) fitted on a run's aggregate posterior codes (N, D), from which
new codes are drawn and decoded by the run's own decoder. A sampler is an ``nn.Module`` whose state is tensors
(saved as safetensors) and whose ``settings`` are plain JSON values (never class paths)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .. import errors
from ..data.photos import note
from ..errors import SEEDS, VaekitError
from ..training.progress import interactive

MAX_NUMBERS = 2**28  # a sampler's parameters and buffers at most (1 GiB of float32): settings past it are refused
SEED_MAX = SEEDS - 1  # scikit-learn's random_state takes no more
CHUNK = 10000  # codes drawn at a time by ``Sampler.sample``
FAR = 100  # draws past FAR x the largest |standardised code| (and 1) mean a fit that diverged
CHECK_NUMBERS = 100_000  # numbers ``check_fit`` draws, about: its test reads every number of its draws
PER_NUMBER = 10  # codes a number below which a density over D numbers is fitted on few (``few_codes``)
FEW = "a sampler is fitted on at least 2 finite codes (N, D)"  # the start of the line refusing fewer
COUNTS = ("components", "transforms", "steps", "epochs", "layers")  # settings said as "300 steps"


class Sampler(nn.Module):
    """Base of the samplers: standardises the codes (per-dimension loc and scale, kept as buffers), and leaves
    ``build`` (make the modules for D dims), ``fit_codes`` (fit on standardised codes) and ``draw`` to subclasses."""

    name = ""
    MAIN: tuple[str, ...] = ()  # the settings a note of a saved sampler names whatever their values
    loc: Tensor  # buffers (D,), made by build
    scale: Tensor

    def __init__(self, seed: int = 0, **settings):
        super().__init__()
        self.seed = whole(seed, "seed", 0)
        if self.seed > SEED_MAX:
            raise VaekitError(f"sampler setting seed must be at most {SEED_MAX}, got {seed!r}", key="seed")
        self.settings = {"seed": self.seed, **settings}  # an np.int64 seed as an int (JSON)
        self.fitted: dict[str, float] = {}  # what fitting made of a setting, the final NLL (JSON)
        self.limit: int | None = None  # a run's training items its codes came from at most (None: codes passed in)
        self.codes: dict[str, int] = {}  # n_codes, and of a run's training split split_items and draw_seed (JSON)
        self.latent_dim = 0

    def numbers(self, latent_dim: int) -> int:
        """How many numbers the sampler's parameters and buffers hold for codes of ``latent_dim`` (about)."""
        return 2 * latent_dim

    def plan(self, z: Tensor) -> None:
        """Settle, before ``build``, what the codes z (N, D) make of the settings (a gmm's components); here a
        note where they are few for a density over D numbers (``few_codes``)."""
        if few_codes(*z.shape):
            n, d = z.shape
            note(
                f"{self.name} sampler: {n_codes(n)} of {d} numbers are few for a density over {d} numbers (fewer "
                f"than {PER_NUMBER * d}, {PER_NUMBER} a number): its draws may stray from the codes, or its fit diverge"
            )

    def sizes(self) -> dict[str, int]:
        """What the buffers are sized by where fitting made it other than the settings (the JSON's ``sizes``)."""
        return {}

    def size_by(self, sizes: dict) -> Sampler:
        """Size the buffers by a saved sampler's ``sizes`` before ``build`` ({}: by its settings); others refused."""
        if sizes != {}:
            raise VaekitError(f"{self.name} sampler: sizes {str(sizes)[:60]}: it is sized by its settings alone")
        return self

    def build(self, latent_dim: int) -> Sampler:
        """Create the buffers and modules for D = ``latent_dim`` (before fitting or loading a state); settings
        that would make over ``MAX_NUMBERS`` numbers are refused in one line first."""
        size = self.numbers(latent_dim)
        if size > MAX_NUMBERS:
            shown = ", ".join(f"{k}={v}" for k, v in self.settings.items() if k != "seed")
            raise VaekitError(
                f"{self.name} sampler: {shown} for codes of {latent_dim} numbers make {size:,} numbers, over "
                f"{MAX_NUMBERS:,}; choose smaller settings",
                key="sampler",
            )
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        return self

    def fit(self, z: Tensor) -> Sampler:
        """Fit on codes z (N, D); returns self. ``seed`` fixes the whole fit, the modules' first values too: the
        global torch RNG is left as it was. A fit that diverged is refused in one line (``check_fit``)."""
        if z.dim() != 2 or len(z) < 2 or not torch.isfinite(z).all():
            raise VaekitError(f"{FEW}, got shape {tuple(z.shape)}")
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.plan(z)
            self.build(z.shape[1])  # its modules' random first values: from the seed
            self.loc.copy_(z.mean(0))
            self.scale.copy_(z.std(0).clamp_min(1e-6))
            u = (z - self.loc) / self.scale
            self.fit_codes(u)
            self.eval()
            self.check_fit(u)
        return self

    def fit_codes(self, u: Tensor) -> None:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def draw(self, n: int) -> Tensor:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def nll(self, u: Tensor) -> Tensor | None:
        """(N,) -log q(u) of standardised codes u (N, D), or None for a sampler without a density."""
        return None

    @torch.no_grad()
    def check_fit(self, u: Tensor) -> None:
        """Record the final mean NLL of the standardised codes u (N, D) in ``fitted``; refuse, in one line naming
        the lr and steps (and few codes where they are the likely cause), a fit whose NLL is not finite or whose
        ``check_draws`` land far outside the codes' range; then ``judge`` the draws."""
        nll = self.nll(u)
        final = None if nll is None else float(nll.mean())
        draws, span = self.draw(check_draws(*u.shape)), max(1.0, float(u.abs().max()))
        reach = float(draws.abs().max()) if bool(torch.isfinite(draws).all()) else math.inf
        if (final is not None and not math.isfinite(final)) or reach > FAR * span:
            seen = ("" if final is None else f"final NLL {final:.4g}, ") + f"draws reach {reach:.3g} where the"
            raise VaekitError(
                f"{self.name} sampler: the fit diverged ({seen} standardised codes reach {span:.3g}); {self.remedy(u)}",
                key="lr",
            )
        if final is not None:
            self.fitted["nll"] = round(final, 6)
        self.judge(draws)

    def remedy(self, u: Tensor) -> str:
        """What to change after a diverged fit on the standardised codes u (N, D): a lower lr, or where the codes
        are few for D (``few_codes``) more codes or fewer steps, in ``vaekit.fit_sampler``'s keywords."""
        s, (n, d) = self.settings, u.shape
        how = ", ".join(f"{k} {s[k]}" for k in ("lr", "steps", "epochs") if k in s)
        if not few_codes(n, d):
            return f"fit it again with a lower lr (its settings now: {how})"
        keywords = ", ".join(f"{k}=..." for k in ("steps", "epochs", "lr") if k in s)
        return (
            f"{n_codes(n)} of {d} numbers are likely too few for it (fewer than {PER_NUMBER} a number), which a lower "
            f"lr alone seldom mends: fit it on more codes (more training items; limit in vaekit.fit_sampler(run, "
            f'"{self.name}", limit=...)), or stop it sooner (vaekit.fit_sampler(run, "{self.name}", {keywords}); '
            f"its settings now: {how})"
        )

    def judge(self, draws: Tensor) -> None:
        """Record in ``fitted`` what the standardised draws (n, D) of ``check_fit`` say of the fit (nothing here)."""

    def described(self) -> str:
        """Its ``MAIN`` settings and those off their defaults, as a note names them: "kind nsf, 300 steps"."""
        default = type(self)().settings
        keys = [k for k, v in self.settings.items() if k in self.MAIN or v != default.get(k)]
        return ", ".join(said(k, self.settings[k]) for k in keys)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """(n, D) codes drawn from the fitted density, ``CHUNK`` at a time (the global torch RNG: seed it for
        repeatable draws); n a whole number >= 1 whose codes fit in memory (``draw_bound``)."""
        from . import draw_bound  # the package's: its machine_memory

        n = draw_bound(whole(n, "n", 1, ""), [self.latent_dim], what=f"codes of {self.latent_dim} float32 numbers")
        parts = [self.draw(min(CHUNK, n - i)) * self.scale + self.loc for i in range(0, n, CHUNK)]
        return torch.cat(parts)


def check_draws(n: int, d: int) -> int:
    """How many codes ``check_fit`` draws for N codes of D numbers: 1,000 (10 N where fewer) up to D = 100, then
    about ``CHECK_NUMBERS`` numbers (at least 100 codes): a flow's draw costs D network passes of D-wide layers,
    and a diverged fit shows in the largest of the n x D numbers drawn, not in how many codes hold them."""
    return min(10 * n, max(100, min(1000, CHECK_NUMBERS // d)))


def few_codes(n: int, d: int) -> bool:
    """Whether N codes are few for a density over D numbers: under ``PER_NUMBER`` a number. Even white codes'
    sample covariance has eigenvalues from (1 - sqrt(D/N))^2 to (1 + sqrt(D/N))^2 (Marchenko-Pastur): 0.47 to
    1.73 at N = 10 D, so with fewer codes a density's second moments alone are poorly known."""
    return n < PER_NUMBER * d


def n_codes(n: int) -> str:
    """ "1 code", "480 codes"."""
    return f"{n} code{'s' * (n != 1)}"


def said(key: str, value: object) -> str:
    """A setting as a note says it: "300 steps", "1 component", "kind nsf", "lr 0.0001"."""
    if key in COUNTS and isinstance(value, int):
        return f"{value} {key if value != 1 else key[:-1]}"
    return f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"


SAMPLERS: dict[str, type[Sampler]] = {}


def lookup(name: str) -> type[Sampler]:
    """The class of the sampler ``name``, else one line naming the known ones."""
    if name not in SAMPLERS:
        raise VaekitError(f"sampler {name!r}: expected one of {', '.join(SAMPLERS)}", key="sampler")
    return SAMPLERS[name]


def check_settings(name: str, settings: dict) -> dict:
    """``settings`` if the sampler ``name`` takes each of them, else one line naming the unknown one and its own."""
    known = [p for p in inspect.signature(lookup(name).__init__).parameters if p != "self"]
    for key in settings:
        if key not in known:
            raise VaekitError(
                f"sampler {name} has no setting {key!r} (its settings: {', '.join(known)})", key="sampler"
            )
    return settings


def whole(v: object, name: str, low: int = 1, what: str = "sampler setting ") -> int:
    """``v`` if it is a whole number >= ``low``, else one line naming the sampler setting ``name``."""
    return errors.whole(v, name, low, what)


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
