"""What a run's validation loss is and what defines it: the loss itself (``validation_loss``, its draws the same
every epoch: ``fixed_draws``), the settings it depends on (``measured``), which the checkpoint records beside the
best validation loss, so that a resume that changes them sets that best aside (``measure_changed``) rather than
compare losses of two objectives, and the refusal of splits and batches too small to learn from
(``check_split_sizes``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from ..config import TrainConfig
from ..config.conflicts_zoo import BATCH_LEVEL, batch_level
from ..config.formats import shown
from ..core.contract import VAEModule
from ..core.objectives import capacity_objective
from ..core.objectives_zoo import ObjectiveSettings
from ..data.packed import Items
from ..errors import VaekitError
from . import distributed
from .critic import Critic
from .step import evaluate_loss

MEASURED = {  # the train settings each built-in objective's validation loss reads (free bits, tc_beta: left out)
    "elbo": ("beta",),
    "mmd": ("beta", "mmd_weight", "mmd_kernel"),
    "factor": ("beta", "factor_gamma"),
    "iwae": ("iw_samples",),
    "miwae": ("iw_samples", "iw_groups"),
    "ciwae": ("iw_samples", "ciwae_beta"),
    "piwae": ("iw_samples", "iw_groups"),
}
ANY = ("beta", "iw_samples", "iw_groups", "ciwae_beta", "mmd_weight", "mmd_kernel", "factor_gamma")  # one of yours
VAL_DRAWS = 0x76616C  # the validation draws' stream, apart from training's (train.seed's) and every rank's
PAIRED = ("mmd",)  # objectives whose validation loss compares a batch's codes in pairs (evaluated in eval mode)


def validation_loss(model: VAEModule, x: Items, y: Tensor | None, t: TrainConfig, critic: Critic | None) -> dict:
    """The mean loss, rec and KL over the validation items ``x`` (N, *shape) (this process's share) under the run's
    objective (``critic``: factor's discriminator), the ELBO's free bits and beta-TCVAE left out, means over every
    process; a capacity run's loss is the capacity objective at its final target C. Its draws (z, an objective's
    own) are the same for the same items every epoch (``fixed_draws``): two epochs' losses differ by their weights,
    not by fresh noise, which early stopping would read as a change."""
    s = ObjectiveSettings.of(t, free_bits=0.0, tc_beta=0.0, critic=None if critic is None else critic.net)
    with fixed_draws(t.seed):
        va = evaluate_loss(model, x, y, t.beta, validation_batch(t), settings=s, name=t.objective)
    va = distributed.mean_over_ranks(va, len(x))
    if t.capacity_max > 0:  # weights are judged by the capacity objective at its final target C
        va["loss"] = capacity_objective(va["rec"], va["kl"], t.capacity_max, t.gamma)
    return va


@contextmanager
def fixed_draws(seed: int) -> Iterator[None]:
    """Common random numbers for validation: torch's generators (the CPU's, and this process's GPU's where CUDA
    has started) seeded inside from (``seed``, VAL_DRAWS, rank) alone, and given back their state after, so the
    training's stream is as if validation drew nothing: a resumed run stays bit for bit the unbroken one."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    state = int(np.random.SeedSequence([seed, VAL_DRAWS, distributed.rank()]).generate_state(1)[0])
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
        torch.default_generator.manual_seed(state)
        if cuda:
            torch.cuda.manual_seed(state)  # this process's GPU alone
        yield


def validation_batch(t: TrainConfig) -> int:
    """Items per validation batch: a training batch's rows (``t.batch_size``, at least 2), an importance-weighted
    objective's items counted K (times M groups) rows each, as its forward pass repeats them; at least 1 item, 2
    under a batch-level objective (``BATCH_LEVEL``). The loss sums over items, so it is the same for any size
    (a batch-level term aside: its estimate then comes from batches of this size)."""
    reads = MEASURED.get(t.objective, ANY)
    rows = (t.iw_samples if "iw_samples" in reads else 1) * (t.iw_groups if "iw_groups" in reads else 1)
    return max(2 if t.objective in BATCH_LEVEL else 1, max(2, t.batch_size) // rows)


def measured(t: TrainConfig) -> dict:
    """The settings that define ``validation_loss`` (JSON): the objective, capacity_max (and gamma where it is on:
    then the loss reads nothing else) or the objective's own settings."""
    if t.capacity_max > 0:
        return {"objective": t.objective, "capacity_max": t.capacity_max, "gamma": t.gamma}
    return {"objective": t.objective, "capacity_max": 0.0} | {k: getattr(t, k) for k in MEASURED.get(t.objective, ANY)}


def measure_changed(saved: dict, now: dict) -> str:
    """Why a checkpoint's best validation loss, measured under ``saved`` (``measured``; {}: a checkpoint from before
    it, taken as comparable), does not compare with losses under ``now``, naming each setting changed, added or
    removed ('(not read)'); "" where it does."""
    if not saved or saved == now:
        return ""
    show = lambda k, d: shown(d[k]) if k in d else "(not read)"  # noqa: E731
    keys = [*now, *(k for k in saved if k not in now)]  # a setting only one of them reads: added or removed
    differ = [k for k in keys if k not in saved or k not in now or saved[k] != now[k]]
    changed = [f"train.{k} {show(k, saved)} -> {show(k, now)}" for k in differ]
    return f"its validation loss measures another objective since its checkpoint ({', '.join(changed)})"


def check_split_sizes(model: nn.Module, t: TrainConfig, n_train: int, n_val: int, least: int) -> None:
    """Refuse, in one line, splits and batches a loss cannot learn from (before any training): a training split
    of one item (where a step needs ``least`` (``data.batching.fewest``) = 2, one process, saying why), a batch
    size that gives a process's share fewer than ``least`` items (a last batch never does: a lone last item joins
    the batch before, ``data.batching.batch_count``), and a validation split with a process's share of one item
    under an objective of ``PAIRED``."""
    world = distributed.world()
    why = batch_level(t) or "the model normalises over a batch's items (BatchNorm)"
    if least > 1 and n_train == 1 and world == 1:
        msg = f"the training split holds 1 item, and {why}: a training step needs 2 or more; give more data"
        raise VaekitError(msg, key="data.spec")
    if n_train == 1:  # one row: every column's spread 0, the loss the same whatever the weights
        raise VaekitError("1 training item: nothing to learn from one sample; give more data", key="data.spec")
    if t.batch_size // world < least:
        each = t.batch_size // world
        share = f"over {world} processes gives each a batch of {each}" if world > 1 else f"makes batches of {each} item"
        raise VaekitError(
            f"train.batch_size {t.batch_size} {share}, and {why}: a training step needs {least} or more; give a "
            f"batch size of at least {least * world}",
            key="train.batch_size",
        )
    shares = {len(range(r, n_val, world)) for r in range(world)}  # each process's share (distributed.part)
    if t.objective in PAIRED and 1 in shares:
        held = "holds 1 item" if world == 1 else f"leaves a process 1 of its {n_val} items ({world} processes)"
        raise VaekitError(
            f"the validation split {held}, and the {t.objective} objective's validation loss needs 2 or more "
            f"({BATCH_LEVEL[t.objective]}): raise data.val_fraction or give more data",
            key="data.val_fraction",
        )
