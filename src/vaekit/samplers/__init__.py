"""Post-hoc samplers: a density fitted on a trained run's aggregate posterior codes, which draws codes for the
run's decoder in place of the prior (``run.sample(n, sampler="gmm")``, ``vaekit sample RUN --sampler gmm``).

``SAMPLERS`` maps each name (gmm, two-stage, flow) to its class; a fitted sampler is saved in the run folder
(``sampler-NAME.safetensors`` + ``sampler-NAME.json`` with the weights' digest, ``samplers.saved``) and fitted
again, with its saved settings, when the run's weights change. Layer: above training (the two-stage sampler trains
a VAE), below runs.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..config import RunConfig
from ..config.checks import DISCRETE
from ..core.contract import VAEModule, mean_of
from ..data.photos import note
from ..errors import VaekitError, whole
from ..io import run_lock
from ..models import MODELS
from . import flow, gmm, two_stage  # noqa: F401  (each registers its sampler)
from .base import SAMPLERS, Sampler, check_settings, lookup, n_codes, register
from .codes import CODES_LIMIT, aggregate_codes, unconditional
from .saved import load_sampler, sampler_paths, sampler_stamp, save_sampler, saved_fit

__all__ = [
    "SAMPLERS",
    "Sampler",
    "aggregate_codes",
    "draw_bound",
    "fit_sampler",
    "load_sampler",
    "need_run",
    "ones_as_one",
    "prior_draws",
    "register",
    "sampler_for",
    "sampler_paths",
    "sampler_stamp",
    "takes_run",
]
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
DECODE_BATCH = 10000  # codes decoded at a time: a network's activations for millions of codes need not fit at once


class RunLike(Protocol):
    """What a sampler needs of a ``vaekit.Run``."""

    path: Path | None
    config: RunConfig

    @property
    def model(self) -> VAEModule: ...

    @property
    def digest(self) -> str: ...

    def encode(self, x: Tensor) -> Distribution: ...


def need_run(run: object, what: str) -> None:
    """Refuse, in one line, a model given where ``what`` takes a run (its config and folder say what it needs)."""
    if isinstance(run, torch.nn.Module):
        why = f"{what} takes a Run, got {type(run).__name__}"
        raise VaekitError(f"{why}: pass the Run (vaekit.fit's return, or vaekit.load_run(folder))", key="run")


def takes_run(fn: F) -> F:
    """``fn(run, ...)`` refusing a model in the run's place (``need_run``) before anything reads it."""

    @functools.wraps(fn)
    def checked(run: object, *args: Any, **kwargs: Any) -> Any:
        need_run(run, fn.__name__)
        return fn(run, *args, **kwargs)

    return cast(F, checked)


DISCRETE_WHY = {  # why a family of discrete codes takes no post-hoc sampler, and what draws its codes instead
    "vq": "a vq run's codes are codebook vectors, which a sampler's draws are not; its PixelCNN prior draws them "
    "(run.sample(n); refit it with vaekit.fit_prior(run))",
    "gumbel": "a gumbel run's codes are one-hots, which a sampler's draws (of class probabilities) are not; its "
    "prior draws them (run.sample(n))",
}


def sampler_for(run: RunLike, name: str) -> type[Sampler]:
    """The class of the sampler ``name`` if it can draw for ``run``, else one line before any work: an unknown
    name, a conditional run (the samplers draw codes without a label), a table run (its rows come from the prior,
    as ``vaekit quality`` measures them), a vq or gumbel run (discrete codes, which no sampler here draws)."""
    cls = lookup(name)
    unconditional(run)
    if getattr(run, "table", None) is not None:
        raise VaekitError("a table run's rows come from its prior: a post-hoc sampler does not apply", key="sampler")
    family = discrete_family(run)
    if family is not None:
        raise VaekitError(DISCRETE_WHY.get(family, f"a {family} run's codes are discrete"), key="sampler")
    return cls


def discrete_family(run: RunLike) -> str | None:
    """'vq' or 'gumbel' for a run of discrete codes (by its config, or by its model's class where ``vaekit.fit``
    took a model built in Python, wrapped or not), else None."""
    if run.config.model.family in DISCRETE:
        return run.config.model.family
    model = getattr(run.model, "model", run.model)  # a Standardized wrapper's model
    return next((f for f in DISCRETE if f in MODELS and isinstance(model, MODELS[f])), None)


def ones_as_one(temperature: T) -> T | float:
    """1.0 for temperatures one a resolution that are all 1 (a deep run's draws at 1,1,1 are those at 1, which a
    post-hoc sampler takes), else ``temperature`` as it is."""
    ones = isinstance(temperature, list) and bool(temperature) and all(t == 1.0 for t in temperature)
    return 1.0 if ones else temperature


def machine_memory() -> int:
    """This machine's physical memory in bytes (16 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 16 * 2**30


def draw_bound(n: int, shape: Sequence[int], each: int | None = None, what: str = "") -> int:
    """``n`` if n items of ``shape`` as float32 (n x item size; ``each``: bytes an item, ``what``: such items)
    take at most a quarter of this machine's memory (the rest: the network's activations and the file's copy),
    else one line naming ``n`` with both sizes."""
    each = 4 * math.prod(shape) if each is None else each
    size, memory = n * each, machine_memory()
    if size > memory // 4:
        raise VaekitError(
            f"n {n}: {n} {what or f'items of {math.prod(shape)} float32 numbers'} take {size / 1e9:.3g} GB, over a "
            f"quarter of this machine's {memory / 1e9:.3g} GB of memory; draw fewer at a time (other seeds for more)",
            key="n",
        )
    return n


@torch.no_grad()
def prior_draws(run: RunLike, n: int, temperature: float | list[float], y: Tensor | None = None) -> Tensor:
    """(n, *shape) means of p(x|z) on the CPU for z from the run's prior, ``DECODE_BATCH`` at a time (labels y (n,)
    of a conditional model, or None): n within ``draw_bound``, and a million draws need not hold their activations."""
    model = run.model
    draw_bound(n, run.config.model.input_shape)
    parts = []
    for i in range(0, n, DECODE_BATCH):
        px = model.generate(min(DECODE_BATCH, n - i), temperature, None if y is None else y[i : i + DECODE_BATCH])  # type: ignore[arg-type]
        parts.append(mean_of(px).cpu())
    return torch.cat(parts)


def fit_sampler(
    run: RunLike,
    name: str,
    *,
    x: Tensor | None = None,
    refit: bool = False,
    save: bool = True,
    limit: int | None = None,
    **settings,
) -> Sampler:
    """The sampler ``name`` fitted on the run's aggregate posterior codes (of ``x``, default ``limit`` items of its
    training split drawn at random, seeded by its ``train.seed``; ``limit`` with ``x`` is refused: pass the items).

    A sampler saved for these weights (and these ``settings``, and a ``limit`` giving its codes: ``same_codes``,
    where given) is loaded instead, with a note naming it (and ``first_items``: a file from before random draws is
    still used); on a run without a folder, the one kept on it for these weights (fitted on ``x`` before) is
    returned; unless ``refit`` or ``x``: other settings or another limit are fitted, ``save`` or not. Without
    ``settings`` (``limit``) a fit takes those of the sampler saved in the run (for other weights too, as after
    ``train --resume``), else the defaults (``CODES_LIMIT``). With ``save`` and a run folder the fitted sampler is
    written there (safetensors + JSON).
    """
    need_run(run, "fit_sampler")
    cls = lookup(name)
    wanted = cls(**check_settings(name, settings)).settings
    limit = None if limit is None else whole(limit, "limit")
    if limit is not None and x is not None:
        raise VaekitError(
            f"limit {limit} counts items of the run's training split; with x, pass the items to fit on (x[:{limit}])",
            key="limit",
        )
    sampler_for(run, name)  # a conditional, table or discrete run: before any codes are encoded
    saved = None if refit or x is not None else load_sampler(run, name) or kept(run, name)
    if saved is not None and (not settings or saved.settings == wanted) and same_codes(saved, limit):
        if run.path is not None:  # loaded from its files: said, as a fit is
            note(f"using the {name} sampler saved in {run.path} ({saved.described()}){first_items(saved)}")
        return keep(run, name, saved)
    kept_settings, kept_limit = saved_fit(run, name)  # the file read once, for both
    kept_settings = None if settings else kept_settings
    limit = limit or kept_limit or CODES_LIMIT
    sampler = cls(**(kept_settings or settings))
    sampler.limit = None if x is not None else limit  # recorded in its JSON: another limit is fitted again
    folder = run.path if save else None
    with run_lock(folder) if folder is not None else nullcontext():  # a folder being written: refused first
        about: dict[str, int] = {}  # the training split's size and the draw's seed
        z = aggregate_codes(run, x, limit, about=about)
        sampler.codes = {"n_codes": len(z), **about}
        note(
            f"fitting the {name} sampler on {n_codes(len(z))}{fitting(sampler, kept_settings)}"
            + (" (kept in the run)" if folder else "")
        )
        with torch.enable_grad():  # fitted from sample_with / Run.sample, which run under no_grad
            sampler.fit(z)
        if folder is not None:
            source = "x" if x is not None else "train"  # items passed in, or n_codes drawn from the training split
            save_sampler(run, folder, sampler, {"latent_dim": z.shape[1], "codes": source, **sampler.codes})
    return keep(run, name, sampler) if folder is not None or run.path is None else sampler


def same_codes(saved: Sampler, limit: int | None) -> bool:
    """Whether a fit under ``limit`` (None: the saved one's) would fit the codes ``saved`` was fitted on: the same
    limit, or one no smaller than a training split whose every item it fitted (1,437 items under 10,000)."""
    if limit is None or limit == saved.limit:
        return True
    n, split = saved.codes.get("n_codes"), saved.codes.get("split_items")
    return saved.limit is not None and n is not None and (n < saved.limit or n == split) and limit >= n


def first_items(saved: Sampler) -> str:
    """The end of the note of a saved sampler fitted on the first ``limit`` items of a larger training split (a
    file from before the codes were drawn at random; still used: its codes are a run's, if maybe of few classes),
    saying how to draw them at random; else ""."""
    n = saved.codes.get("n_codes")
    if saved.limit is None or n is None or "draw_seed" in saved.codes or n < saved.limit:
        return ""
    return f"; fitted on the training split's first {n} items, not a random draw of them: fit it again (refit) for one"


def stamp(run: RunLike, name: str) -> object:
    """What a sampler kept on the run is kept for: the weights' digest, and in a run folder the settings and
    weights file of the sampler ``name`` saved there for them (``sampler_stamp``: None where none is)."""
    digest = run.digest
    return digest if run.path is None else (digest, sampler_stamp(run.path, name, digest))


def kept(run: RunLike, name: str) -> Sampler | None:
    """The sampler ``name`` kept on a run without a folder for its weights now (``keep``), else None."""
    then, sampler = run.__dict__.get("_samplers", {}).get(name, (None, None))
    return sampler if run.path is None and sampler is not None and then == stamp(run, name) else None


def keep(run: RunLike, name: str, sampler: Sampler) -> Sampler:
    """``sampler``, kept on the run for its ``stamp``: ``sample_with`` draws from it again, its file not read again
    nor the codes' size encoded, until the weights or the saved sampler change."""
    run.__dict__.setdefault("_samplers", {})[name] = (stamp(run, name), sampler)
    return sampler


def fitting(sampler: Sampler, kept: dict | None) -> str:
    """The end of the fitting note: its steps, and the other saved settings it reuses where they are not the
    defaults (its steps said once: ", 200 steps, with its saved settings kind=nsf")."""
    s = sampler.settings
    steps = f", {s['steps']} steps" if "steps" in s else ""
    own = {k: v for k, v in (kept or {}).items() if k != "steps" and type(sampler)().settings.get(k) != v}
    return steps + (f", with its saved settings {', '.join(f'{k}={v}' for k, v in own.items())}" if own else "")


@torch.no_grad()
def sample_with(run: RunLike, name: str, n: int) -> Tensor:
    """(n, *shape) means of p(x|z) for codes z drawn from the run's sampler ``name`` (loaded or fitted if need be,
    then kept on the run for these weights and, in a folder, for the sampler file saved there: ``keep``),
    ``DECODE_BATCH`` at a time: n within ``draw_bound``, as the prior's draws."""
    draw_bound(whole(n, "n"), run.config.model.input_shape)
    then, sampler = run.__dict__.get("_samplers", {}).get(name, (None, None))
    if sampler is None or then != stamp(run, name):  # the weights now (they may have been trained on), its files
        own = sampler is not None and run.path is None  # kept in memory alone: fitted again as it was
        sampler = fit_sampler(run, name, **({**sampler.settings, "limit": sampler.limit} if own else {}))
    device = next(run.model.parameters()).device
    parts = []
    for i in range(0, n, DECODE_BATCH):
        z = sampler.sample(min(DECODE_BATCH, n - i))  # (B, D)
        parts.append(mean_of(run.model.decode(z.to(device))).cpu())
    return torch.cat(parts)
