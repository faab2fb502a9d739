"""A fitted sampler's pair of files in a run folder: ``sampler-NAME.safetensors`` (its tensors, their SHA-256 in
the header) and ``sampler-NAME.json`` (its settings, what fitting made of them, the sizes its buffers were built
with, the codes it was fitted on and their ``limit``, the run weights' digest and the SHA-256 of its own weights
file). A pair that names other run weights, or another weights file than the one beside it (a write cut short
between the two), or a ladder's fitted on every level (before its samplers fitted z_1 alone), is stale: fitted
again. A JSON whose fields are not a sampler's, or whose ``latent_dim`` is not the run's code size, is refused
in one line before any tensor is made; a refused file's line ends with how to fit it again (refit)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import files
from ..core.reading import evaluating, mean_of
from ..errors import VaekitError, is_number, is_whole
from ..io import atomic_write_json, read_json
from ..training.checkpoint import header, load_weights, save_weights
from .base import Sampler, check_settings, lookup
from .codes import decoded

if TYPE_CHECKING:
    from . import RunLike

WEIGHTS_DIGEST = "weights_sha256"  # the JSON's record of its weights file (the SHA-256 in that file's header)
BUILD_ERRORS = (TypeError, ValueError, KeyError, OverflowError, RuntimeError, MemoryError)  # VaekitError too
AGAIN = "; fit it again with refit"  # the end of a refused sampler file's line (key "refit": the CLI's flag)


def sampler_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """(weights, settings) file paths of the sampler ``name`` in a run folder."""
    return folder / files.SAMPLER_WEIGHTS.format(name), folder / files.SAMPLER_SETTINGS.format(name)


def read_saved(folder: Path, name: str) -> dict | None:
    """sampler-NAME.json of ``folder`` (None where there is none); one line where it cannot be read, or is not
    an object naming the sampler ``name`` with its settings."""
    path = sampler_paths(folder, name)[1]
    if not path.is_file():
        return None
    try:
        saved = read_json(path, "this sampler file")
    except OSError as e:
        raise VaekitError(f"{path}: cannot read the sampler's settings ({e})") from None
    except VaekitError as e:
        raise again(e) from None
    if not isinstance(saved, dict) or saved.get("sampler") != name or not isinstance(saved.get("settings"), dict):
        raise VaekitError(f"{path}: not the settings of a {name} sampler{AGAIN}", key="refit")
    return saved


def again(e: VaekitError) -> VaekitError:
    """``e``'s line about a sampler's file, naming the sampler (not a model) and ending with how to fit it again."""
    return VaekitError(f"{str(e).replace('the model', 'the sampler')}{AGAIN}", key="refit")


def limit_of(saved: dict) -> int | None:
    """The ``limit`` a saved sampler's codes were drawn under (None: items passed in, or a file from before it)."""
    limit = saved.get("limit")
    return int(limit) if saved.get("codes") == "train" and is_whole(limit, 1) else None


def codes_of(saved: dict) -> dict[str, int]:
    """What a saved sampler records of its codes: n_codes, and of a run's training split split_items and
    draw_seed (a file from before random draws has neither: its codes were the split's first items)."""
    return {k: int(saved[k]) for k in ("n_codes", "split_items", "draw_seed") if is_whole(saved.get(k), 0)}


def weights_sha(path: Path) -> str | None:
    """The SHA-256 a sampler's weights file records in its header (no tensor read); None where it has none."""
    found = header(path)
    return None if found is None else found[1].get("sha256")


def is_current(saved: dict, folder: Path, name: str, digest: str) -> bool:
    """Whether the JSON ``saved`` was written for the run weights ``digest`` and for the weights file beside it."""
    mine = weights_sha(sampler_paths(folder, name)[0])
    return saved.get(files.DIGEST) == digest and mine is not None and saved.get(WEIGHTS_DIGEST) == mine


def sampler_stamp(folder: Path, name: str, digest: str) -> dict | None:
    """{"settings", "weights_sha256"} of the sampler ``name`` saved in ``folder`` for the run weights ``digest``,
    else None (none, stale or unreadable): what quality.json records of the sampler it measured."""
    try:
        saved = read_saved(folder, name)
    except VaekitError:
        return None
    if saved is None or not is_current(saved, folder, name, digest):
        return None
    return {"settings": saved["settings"], WEIGHTS_DIGEST: saved[WEIGHTS_DIGEST]}


def saved_fit(run: RunLike, name: str) -> tuple[dict | None, int | None]:
    """(settings, limit) of the sampler ``name`` saved in the run folder (for these weights or others) where its
    file is a sampler's, else (None, None): what a fit without settings, or without a limit, reuses."""
    try:
        saved = None if run.path is None else read_saved(run.path, name)
        if saved is None:
            return None, None
        return lookup(name)(**check_settings(name, saved["settings"])).settings, limit_of(saved)
    except BUILD_ERRORS:
        return None, None


@torch.no_grad()
def code_size(run: RunLike) -> tuple[int, int]:
    """(D, all): the numbers of one of the run's codes that its samplers fit (``codes.decoded``: a ladder's z_1)
    and all of them, from its posterior mean of items of zeros (the model in eval mode for it, weights untouched)."""
    with evaluating(run.model):
        z = mean_of(run.encode(torch.zeros(2, *run.config.model.input_shape))).flatten(1)  # (2, all)
    return decoded(run, z).shape[1], z.shape[1]


def load_sampler(run: RunLike, name: str) -> Sampler | None:
    """The sampler saved in the run folder, or None if there is none or its pair is stale (other run weights,
    another weights file). Its ``fitted`` is the JSON's; the global torch RNG is left as it was."""
    if run.path is None:
        return None
    saved = read_saved(run.path, name)
    if saved is None or not is_current(saved, run.path, name, run.digest):
        return None
    weights, path = sampler_paths(run.path, name)
    (size, every), dim, fitted = code_size(run), saved.get("latent_dim"), saved.get("fitted", {})
    if is_whole(dim) and int(dim) == every != size:  # a ladder's sampler fitted on every level before: stale
        return None
    if not is_whole(dim) or int(dim) != size:  # before any tensor is made: a crafted size is no allocation
        raise VaekitError(f"{path}: latent_dim {dim!r} is not this run's code size, {size}{AGAIN}", key="refit")
    if not isinstance(fitted, dict) or not all(isinstance(k, str) and is_number(v) for k, v in fitted.items()):
        raise VaekitError(f"{path}: fitted {str(fitted)[:60]!r} is not numbers by name{AGAIN}", key="refit")
    try:
        with torch.random.fork_rng(devices=[]):  # the modules' random first values, overwritten: not the user's RNG
            sampler = lookup(name)(**check_settings(name, saved["settings"]))
            sampler.size_by(saved.get("sizes", {})).build(size)  # a file from before sizes: by its settings
    except BUILD_ERRORS as e:  # sizes: refused by build before allocation
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VaekitError(f"{path}: settings that do not build a {name} sampler ({why}){AGAIN}", key="refit") from None
    sampler.fitted, sampler.limit, sampler.codes = dict(fitted), limit_of(saved), codes_of(saved)
    try:
        load_weights(sampler, weights)
    except VaekitError as e:  # other shapes than its JSON's (an edited file), damaged, not finite
        raise again(e) from None
    return sampler.eval()


def save_sampler(run: RunLike, folder: Path, sampler: Sampler, about: dict) -> None:
    """Write ``sampler``'s weights, then its JSON naming them (``about``: its codes), both atomically."""
    weights, path = sampler_paths(folder, sampler.name)
    save_weights(sampler, weights)
    mine = weights_sha(weights)
    record = {"sampler": sampler.name, "settings": sampler.settings, "fitted": sampler.fitted, **about}
    record |= {"limit": sampler.limit, "sizes": sampler.sizes()}  # the codes' limit; its buffers' sizes
    atomic_write_json(path, {**record, WEIGHTS_DIGEST: mine, files.DIGEST: run.digest})
