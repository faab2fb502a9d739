"""Which numbers of a run's codes its samplers fit: those its decoder reads. A ladder's ``encode`` gives every
level, [z_L, ..., z_1] (N, sum D_l), but its ``decode`` reads z_1 alone (the levels above act on the items only
through z_1's prior and posterior, which a sampler's draws replace): its samplers fit and draw z_1 (N, D_1),
which its ``decode`` takes as it is. Every other family's decoder reads its whole code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..data.user import run_items
from ..errors import VaekitError
from ..models import MODELS
from .base import FEW

if TYPE_CHECKING:
    from . import RunLike


def read_size(run: RunLike) -> int | None:
    """D_1, the trailing numbers of a code that a ladder of two levels or more decodes; None for other runs (a
    ladder by its config, or by its model's class where ``vaekit.fit`` took one built in Python)."""
    model = getattr(run.model, "model", run.model)  # a Standardized wrapper's model
    ladder = run.config.model.family == "ladder" or ("ladder" in MODELS and isinstance(model, MODELS["ladder"]))
    sizes = list(getattr(model, "latent_dims", []))  # top to bottom: z_1's is the last
    return sizes[-1] if ladder and len(sizes) > 1 else None


def decoded(run: RunLike, z: Tensor) -> Tensor:
    """The numbers of the codes z (N, D) that the run's decoder reads: (N, D_1) of a ladder, else z."""
    size = read_size(run)
    return z if size is None else z[:, -size:]


def items_once(run: RunLike, x: object) -> Tensor:
    """Items passed to ``fit_sampler`` read once as a run method reads them (``data.user.run_items``: its notes,
    a channels-last array moved, said once rather than once a batch); none is one line."""
    if len(x) == 0:  # type: ignore[arg-type]
        raise VaekitError(f"{FEW}, got no items", key="sampler")
    return run_items(x, tuple(run.config.model.input_shape), None)
