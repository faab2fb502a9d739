"""Schedules of the objective's weights over (fractional) epochs: KL warm-up, the beta-TCVAE dimension-wise
weight, the annealed capacity, and the learning rate."""

from __future__ import annotations

import math


def kl_weight(epoch_progress: float, beta: float, warmup_epochs: float) -> float:
    """KL warm-up: the weight rises linearly from 0 to ``beta`` over ``warmup_epochs`` (fractional epochs)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, epoch_progress / warmup_epochs)


def dimwise_weight_at(epoch_progress: float, warmup_epochs: float) -> float:
    """beta-TCVAE's dimension-wise KL weight: 0.05 rising linearly to 1 over ``warmup_epochs`` (0: always 1).

    Chen et al.'s code (``lambda_anneal``) anneals it so: while the marginals of q(z) are not yet pushed
    towards N(0, 1), a rotated code is not factorial, and the total-correlation term can tell it apart.
    """
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, 0.05 + 0.95 * epoch_progress / warmup_epochs)


def capacity_at(epoch_progress: float, capacity_max: float, capacity_epochs: float) -> float | None:
    """The target KL C (nats) rising linearly from 0 to ``capacity_max`` (Burgess et al. 2018); None when off."""
    if capacity_max <= 0:
        return None
    if capacity_epochs <= 0:
        return capacity_max
    return capacity_max * min(1.0, epoch_progress / capacity_epochs)


def tau_at(epoch_progress: float, start: float, end: float, epochs: float) -> float:
    """The Gumbel-softmax temperature: geometric from ``start`` to ``end`` over ``epochs`` (then ``end``), as
    Jang et al. 2017 anneal tau = max(end, exp(-r t))."""
    return start * (end / start) ** min(1.0, epoch_progress / max(epochs, 1e-9))


STEP_RULE = 2  # the rule of the 'step' schedule, recorded in a run's checkpoint (training.state.LoopState.lr_rule)


def lr_at(lr: float, schedule: str, epoch: int, epochs: int, rule: int = STEP_RULE) -> float:
    """The learning rate for ``epoch`` (0-based) of ``epochs``: constant ('none'), 'cosine', or 'step' (halved
    at each quarter of the run: the epochs from ``epochs`` q / 4 on take lr / 2^q, three halvings in all).
    ``rule`` 1 is the step schedule of a run whose checkpoint an earlier vaekit wrote, which it keeps: halved
    every ``epochs // 4`` epochs (every epoch for fewer than 8), with no end."""
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step" and rule < STEP_RULE:
        return lr * 0.5 ** (epoch // max(1, epochs // 4))
    if schedule == "step":
        return lr * 0.5 ** min(3, 4 * epoch // max(1, epochs))
    return lr
