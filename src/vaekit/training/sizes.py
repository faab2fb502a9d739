"""How much a run folder's files ask to build, held before anything is allocated: the modules a model.json may
name, and the bytes of the model a config.json (or model.json) builds against the weights file beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import VaekitError
from ..models.spec import class_names
from .checkpoint import previous, unreadable

# modules a model.json may name, nested ones included: far above any real network (a deep VAE names a few
# hundred), far below the 200,000 whose rebuild took over five minutes (a few ms each, on the meta device first)
MAX_MODULES = 10_000


def check_modules(spec: object, source: str) -> None:
    """Refuse in one line a model spec (``source``: the file it came from) naming more than MAX_MODULES modules."""
    n = len(class_names(spec, source))
    if n > MAX_MODULES:
        raise VaekitError(f"{source}: names {n:,} modules; a model.json may name at most {MAX_MODULES:,}")


def meta_size(build: Callable[[], nn.Module]) -> int | None:
    """Bytes of the state a model ``build`` makes would hold, found by building it on the meta device (shapes,
    no storage); None where the build needs real values (an operation the meta device lacks) or fails: the
    real build then reports for itself."""
    try:
        with torch.device("meta"):
            model = build()
        return sum(v.numel() * v.element_size() for v in model.state_dict().values())
    except Exception:  # noqa: BLE001 - any failure here is the real build's to report
        return None


def held_to_weights(run: Path, weights: Path, build: Callable[[], nn.Module]) -> None:
    """Refuse, before anything is allocated, a model ``build`` makes that is larger than ``weights`` (sizes edited
    or sent to fill the memory), first built on the meta device. A weights file that cannot be read as safetensors
    (truncated, empty, a header of another size) is said to be damaged; a damaged checkpoint is passed over for
    the one before it, as resuming does."""
    have = readable_size(weights)
    need = meta_size(build)
    if need is not None and have is not None and need > 2 * have + 2**20:
        raise VaekitError(
            f"{run}: its config.json builds a model of {need / 1e6:,.1f} MB, and {weights.name} holds "
            f"{have / 1e3:,.1f} kB: the sizes do not belong to these weights"
        )


def readable_size(weights: Path) -> int | None:
    """Bytes of ``weights`` (None: no such file), or of the checkpoint before it where ``weights`` is damaged and
    that one is whole; a damaged file with none to fall back to is refused in one line."""
    if not weights.is_file():
        return None
    for path in (weights, previous(weights)):
        if path.is_file() and not unreadable(path):
            return path.stat().st_size
    raise VaekitError(f"{weights}: damaged: it cannot be read as a safetensors file ({unreadable(weights)})")
