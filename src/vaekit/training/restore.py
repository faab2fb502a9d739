"""Where a run's loop starts: a fresh state, or, on resume, the state, weights and optimizer restored from the run
folder's checkpoint (its data held to the data given); then this rank's RNG seeded."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from .. import files
from ..config import TrainConfig
from ..core.contract import VAEModule
from ..errors import VaekitError
from . import distributed
from .checkpoint import load_latest_checkpoint
from .rank_rng import seed_rank
from .state import LoopState, check_same_data, state_problem, validation_redrawn
from .val_loss import measure_changed, measured


def restore(
    model: VAEModule, opt: torch.optim.Optimizer, t: TrainConfig, run: Path | None, resume: bool, data: dict
) -> tuple[LoopState, dict[str, Tensor], str, str]:
    """The loop state, with weights and optimizer loaded from the checkpoint on resume (whose data must be
    ``data``, the data's fingerprint), then this rank's RNG seeded (from the checkpoint where it can); returns
    the state, the checkpoint's extra tensors, and why a resumed run's validation is measured otherwise (other
    validation draws, another val_loss; "" where it is not)."""
    state = LoopState()
    extra: dict[str, Tensor] = {}
    if resume:
        if run is None:
            raise VaekitError("resuming continues a run folder: give out (the run to resume)", key="out")
        check = partial(state_problem, sums=3 + len(model.latent_dims))  # refused before it is restored
        saved, extra = load_latest_checkpoint(run / files.CHECKPOINT, model, opt, check)
        state = LoopState.from_checkpoint(saved)
        check_same_data(state.data, data)
    redrawn = validation_redrawn(state.data, data) if resume else ""  # acted on where training goes on
    measure = measured(t)
    remeasured = measure_changed(state.measure, measure) if resume else ""  # another val_loss
    state.data, state.measure = data, measure  # recorded from the start (an earlier run's: from now on)
    seed_rank(t.seed, extra, (state.epoch, state.batch))
    if not distributed.is_main():  # the checkpoint's running sums are the sum over all ranks: rank 0 holds them
        state.sums, state.seen = [0.0] * len(state.sums), 0
    return state, extra, redrawn, remeasured
