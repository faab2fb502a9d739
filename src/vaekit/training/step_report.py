"""What the callbacks hear after each training step: the run's step number and the step's metrics, under torchrun
over every process's share of the global batch at the steps a callback reads them (``reads_every``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import Tensor

from . import distributed
from .callbacks import Callback


def reads_every(callbacks: Iterable[object]) -> int:
    """The steps at which ``callbacks`` read the step metrics: the multiples of the gcd of their ``every``
    (TensorBoard's and MLflow's: 10); 1 where one overrides ``on_step_end`` without an ``every``; 0 where none
    has an ``on_step_end`` of its own."""
    steps = []
    for c in callbacks:
        own = getattr(type(c), "on_step_end", Callback.on_step_end) is not Callback.on_step_end
        every = getattr(c, "every", 1)
        if own:
            steps.append(every if isinstance(every, int) and not isinstance(every, bool) and every > 0 else 1)
    return math.gcd(*steps)


def step_metrics(terms: dict[str, Tensor], read: bool, beta: float, lr: float) -> dict[str, Tensor | float]:
    """``on_step_end``'s metrics of a step's ``terms``: loss, rec and kl as batch means (0-dim tensors; where
    ``read``, a step a callback reads, means over every process's items: a collective, so every process calls
    this at those steps), beta and lr."""
    if read:
        means = distributed.step_means(terms["loss"], terms["rec"], terms["kl"])
    else:  # rank 0's share of the batch: no callback reads these
        means = {"loss": terms["loss"].detach(), "rec": terms["rec"].detach().mean(), "kl": terms["kl"].detach().mean()}
    return {**means, "beta": beta, "lr": lr}
