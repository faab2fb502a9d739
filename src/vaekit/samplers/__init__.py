"""Post-hoc samplers: a density fitted on a trained run's aggregate posterior codes, which draws codes for the
run's decoder in place of the prior (``run.sample(n, sampler="gmm")``, ``vaekit sample RUN --sampler gmm``).

``SAMPLERS`` maps each name (gmm, two-stage, flow) to its class; a fitted sampler is saved in the run folder
(``sampler-NAME.safetensors`` + ``sampler-NAME.json`` with the weights' digest) and fitted again when the run's
weights change. Layer: above training (the two-stage sampler trains a VAE), below runs.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor
from torch.distributions import Distribution

from .. import files
from ..config import RunConfig
from ..core.contract import VAEModule
from ..data.lazy import LazyArray, drawn_once, head_split
from ..data.photos import note
from ..data.prepare import prepare_data
from ..errors import VaekitError
from ..io import atomic_write_json, read_json, run_lock
from ..training.checkpoint import load_weights, save_weights
from . import flow, gmm, two_stage  # noqa: F401  (each registers its sampler)
from .base import SAMPLERS, Sampler, register

__all__ = [
    "SAMPLERS",
    "Sampler",
    "aggregate_codes",
    "draw_bound",
    "fit_sampler",
    "load_sampler",
    "prior_draws",
    "register",
    "sampler_for",
    "sampler_paths",
]
CODES_LIMIT = 10000  # training items whose posterior means the samplers are fitted on
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


def lookup(name: str) -> type[Sampler]:
    if name not in SAMPLERS:
        raise VaekitError(f"sampler {name!r}: expected one of {', '.join(SAMPLERS)}", key="sampler")
    return SAMPLERS[name]


def sampler_for(run: RunLike, name: str) -> type[Sampler]:
    """The class of the sampler ``name`` if it can draw for ``run``, else one line before any work: an unknown
    name, a conditional run (the samplers draw codes without a label), a table run (its rows come from the prior,
    as ``vaekit quality`` measures them)."""
    cls = lookup(name)
    unconditional(run)
    if getattr(run, "table", None) is not None:
        raise VaekitError("a table run's rows come from its prior: a post-hoc sampler does not apply", key="sampler")
    return cls


def unconditional(run: RunLike) -> None:
    """One line for a conditional run: the samplers draw codes without a label."""
    if run.model.needs_labels:
        raise VaekitError(
            "post-hoc samplers draw codes for an unconditional model; this run is conditional", key="sampler"
        )


def check_settings(name: str, settings: dict) -> dict:
    """``settings`` if the sampler ``name`` takes each of them, else one line naming the unknown one and its own."""
    known = [p for p in inspect.signature(lookup(name).__init__).parameters if p != "self"]
    for key in settings:
        if key not in known:
            raise VaekitError(
                f"sampler {name} has no setting {key!r} (its settings: {', '.join(known)})", key="sampler"
            )
    return settings


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
    parts = [
        model.generate(min(DECODE_BATCH, n - i), temperature, None if y is None else y[i : i + DECODE_BATCH]).mean.cpu()  # type: ignore[arg-type]
        for i in range(0, n, DECODE_BATCH)
    ]
    return torch.cat(parts)


def sampler_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """(weights, settings) file paths of the sampler ``name`` in a run folder."""
    return folder / files.SAMPLER_WEIGHTS.format(name), folder / files.SAMPLER_SETTINGS.format(name)


@torch.no_grad()
def aggregate_codes(run: RunLike, x: Tensor | None = None, limit: int = CODES_LIMIT, batch_size: int = 500) -> Tensor:
    """Posterior means E_q[z|x] (N, D) of ``x`` (default: the first ``limit`` items of the run's training split,
    binarised once if the run binarises dynamically)."""
    unconditional(run)
    items: Tensor | LazyArray
    if x is None:
        if not run.config.data.spec:
            raise VaekitError(
                "this run was trained on data passed in memory: fit its sampler on their codes first, "
                "vaekit.fit_sampler(run, name, x=items)",
                key="sampler",
            )
        data, mode = prepare_data(run.config, stream=True)
        s = head_split(data.train, limit)
        items = (drawn_once(s, run.config.train.seed) if mode == "dynamic" else s).x
    else:
        items = x
    z = torch.cat([run.encode(items[i : i + batch_size]).mean.cpu() for i in range(0, len(items), batch_size)])
    if z.dim() != 2:
        raise VaekitError(
            f"this model's codes have shape {tuple(z.shape[1:])}; post-hoc samplers need flat codes", key="sampler"
        )
    return z


def load_sampler(run: RunLike, name: str) -> Sampler | None:
    """The sampler saved in the run folder, or None if there is none or it was fitted for other weights."""
    if run.path is None:
        return None
    weights, settings = sampler_paths(run.path, name)
    if not settings.is_file():
        return None
    try:
        saved = read_json(settings, "the sampler's settings")
    except OSError as e:
        raise VaekitError(f"{settings}: cannot read the sampler's settings ({e})") from None
    if not isinstance(saved, dict):
        raise VaekitError(f"{settings}: not the settings of a {name} sampler (a JSON object)")
    if saved.get(files.DIGEST) != run.digest:
        return None  # stale: fitted on the codes of other weights
    if saved.get("sampler") != name or not isinstance(saved.get("settings"), dict):
        raise VaekitError(f"{settings}: not the settings of a {name} sampler")
    try:
        sampler = lookup(name)(**saved["settings"]).build(int(saved["latent_dim"]))
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError, MemoryError) as e:  # sizes: allocation
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VaekitError(f"{settings}: settings that do not build a {name} sampler ({why})") from None
    load_weights(sampler, weights)
    return sampler.eval()


def fit_sampler(
    run: RunLike,
    name: str,
    *,
    x: Tensor | None = None,
    refit: bool = False,
    save: bool = True,
    limit: int = CODES_LIMIT,
    **settings,
) -> Sampler:
    """The sampler ``name`` fitted on the run's aggregate posterior codes (of ``x``, default its training split).

    A sampler saved for these weights (and these ``settings``, if given) is loaded instead, unless ``refit``
    or ``x``. With ``save`` and a run folder the fitted sampler is written there (safetensors + JSON).
    """
    cls = lookup(name)
    wanted = cls(**check_settings(name, settings)).settings
    sampler_for(run, name)  # a conditional or table run: before any codes are encoded
    saved = None if refit or x is not None else load_sampler(run, name)
    if saved is not None and (not settings or saved.settings == wanted):
        return saved
    folder = run.path if save else None
    with run_lock(folder) if folder is not None else nullcontext():  # a folder being written: refused first
        z = aggregate_codes(run, x, limit)
        steps = f", {wanted['steps']} steps" if "steps" in wanted else ""
        note(f"fitting the {name} sampler on {len(z)} codes{steps}" + (" (kept in the run)" if folder else ""))
        with torch.enable_grad():  # fitted from sample_with / Run.sample, which run under no_grad
            sampler = cls(**settings).fit(z)
        if folder is not None:
            weights, path = sampler_paths(folder, name)
            save_weights(sampler, weights)
            about: dict[str, object] = {"sampler": name, "settings": sampler.settings, "fitted": sampler.fitted}
            about |= {"latent_dim": z.shape[1], "n_codes": len(z)}
            atomic_write_json(path, {**about, files.DIGEST: run.digest})
    if run.path is None:  # a run without a folder keeps its fitted samplers on itself, for these weights
        run.__dict__.setdefault("_samplers", {})[name] = (run.digest, sampler)
    return sampler


@torch.no_grad()
def sample_with(run: RunLike, name: str, n: int) -> Tensor:
    """(n, *shape) means of p(x|z) for codes z drawn from the run's sampler ``name`` (fitted if need be; a run
    without a folder keeps its fitted samplers on itself, for these weights)."""
    digest, sampler = run.__dict__.get("_samplers", {}).get(name, (None, None))
    if run.path is not None or digest != run.digest:
        sampler = fit_sampler(run, name)
    z = sampler.sample(n)  # (n, D)
    device = next(run.model.parameters()).device
    parts = [run.model.decode(z[i : i + DECODE_BATCH].to(device)).mean.cpu() for i in range(0, n, DECODE_BATCH)]
    return torch.cat(parts)
