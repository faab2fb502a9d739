"""Which numbers of a run's codes its samplers fit: those its decoder reads. A ladder's ``encode`` gives every
level, [z_L, ..., z_1] (N, sum D_l), but its ``decode`` reads z_1 alone (the levels above act on the items only
through z_1's prior and posterior, which a sampler's draws replace): its samplers fit and draw z_1 (N, D_1),
which its ``decode`` takes as it is. Every other family's decoder reads its whole code.

The codes of a run's training split are those of a seeded random draw of ``limit`` of its items (``drawn``): a
split sorted by class (an .npz sorted by label, a folder of classes) would give its first items one class."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..core.contract import mean_of
from ..data.core import Split
from ..data.lazy import LazyArray, drawn_once
from ..data.prepare import prepare_data
from ..data.user import run_items
from ..errors import VaekitError
from ..models import MODELS
from .base import FEW

if TYPE_CHECKING:
    from . import RunLike

CODES_LIMIT = 10000  # training items whose posterior means the samplers are fitted on, at most


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


def unconditional(run: RunLike) -> None:
    """One line for a conditional run: the samplers draw codes without a label."""
    if run.model.needs_labels:
        raise VaekitError(
            "post-hoc samplers draw codes for an unconditional model; this run is conditional", key="sampler"
        )


def drawn(s: Split, n: int, seed: int) -> Split:
    """``n`` items of ``s`` drawn at random without replacement (the same ``seed``, the same items), in their order
    in ``s``, with their labels and rows (fixed binarisation's key: an item keeps its own); all of ``s`` where it
    holds no more than ``n``."""
    if len(s) <= n:
        return s
    idx = np.sort(np.random.default_rng(seed).choice(len(s), n, replace=False))  # (n,)
    x = s.x.subset(idx) if isinstance(s.x, LazyArray) else s.x[torch.from_numpy(idx)]
    rows = idx if s.rows is None else np.asarray(s.rows)[idx]
    part = s.part[idx] if isinstance(s.part, np.ndarray) else s.part
    return replace(s, x=x, y=None if s.y is None else s.y[torch.from_numpy(idx)], rows=rows, part=part)


@torch.no_grad()
def aggregate_codes(
    run: RunLike, x: Tensor | None = None, limit: int = CODES_LIMIT, batch_size: int = 500, about: dict | None = None
) -> Tensor:
    """Posterior means E_q[z|x] (N, D) of ``x`` (default: ``limit`` items of the run's training split drawn at
    random, seeded by its ``train.seed``: ``drawn``; binarised once if the run binarises dynamically): the numbers
    its decoder reads (``decoded``: a ladder's z_1). ``about`` gets the split's size and the draw's seed
    ({"split_items", "draw_seed"}) where the codes are the training split's."""
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
        seed = run.config.train.seed
        s = drawn(data.train, limit, seed)
        items = (drawn_once(s, seed) if mode == "dynamic" else s).x
        (about if about is not None else {}).update(split_items=len(data.train), draw_seed=seed)
    else:
        items = items_once(run, x)
    z = torch.cat([mean_of(run.encode(items[i : i + batch_size])).cpu() for i in range(0, len(items), batch_size)])
    if z.dim() != 2:
        raise VaekitError(
            f"this model's codes have shape {tuple(z.shape[1:])}; post-hoc samplers need flat codes", key="sampler"
        )
    return decoded(run, z)
