"""Callbacks: the trainer calls each at the start and end of fitting, at every step's end and every epoch's end.

The training loop imports no logger and no picture code: TensorBoard, the pictures of a run and a user's own
logging (MLflow, W&B, plots) are callbacks. Under torchrun only rank 0 calls them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from ..config import RunConfig
from ..data.core import Dataset
from ..errors import VaekitError


@dataclass
class FitInfo:
    """What a fit is about: its run folder (None without ``out``), its config, its data, and whether it resumed."""

    path: Path | None
    config: RunConfig
    data: Dataset
    resumed: bool


class Callback:
    """Override the hooks you need; their arguments, in this order:

    - ``on_fit_start(model, info)`` and ``on_fit_end(model, info)``: ``info`` a ``FitInfo`` (path, config, data,
      resumed);
    - ``on_step_end(step, metrics, model)``: ``step`` counts the run's steps from 0 (a resumed fit's first is the
      run's next, as in TensorBoard and MLflow), skipped steps too; a callback's ``every`` (an int attribute:
      TensorBoard's, MLflow's) says at which steps it reads the metrics, which under torchrun are then means over
      every process's items (``training.step_report``; without ``every``: every step);
    - ``on_epoch_end(epoch, metrics, model)``: ``epoch`` counts from 1;
    - ``on_fit_error(error, info)``;
    - ``on_nothing_to_train(model, info)``: a resume with nothing left to train calls it alone (no other hook).

    ``model`` is the model being trained, not a copy: the one given to ``vaekit.fit``, which trains it in place
    (wrapped when fit standardises columns): in train mode at a step's end, in eval mode at an epoch's end (with
    the averaged weights, with ``train.ema``). ``on_step_end``'s metrics are 0-dim tensors on the training device
    (loss, rec and kl as batch means) and floats (beta, lr): reading a tensor (``float(v)``) waits for the device,
    so a callback that only needs them now and then should read them only then. ``on_epoch_end``'s metrics are
    the metrics.csv row. ``on_fit_end`` gets the model with the weights the run keeps (the epoch with the lowest
    validation loss), in eval mode; ``on_fit_error`` the exception a fit stops with (an interruption, a
    divergence, a full disk), just before it propagates. ``on_nothing_to_train`` gets what ``on_fit_end`` gets, so a
    callback can do the end-of-fit work a fit stopped after its last checkpoint (a kill) left undone, if any.
    """

    def on_fit_start(self, model: nn.Module, info: FitInfo) -> None:
        pass

    def on_step_end(self, step: int, metrics: dict[str, Tensor | float], model: nn.Module) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None:
        pass

    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        pass

    def on_fit_error(self, error: BaseException, info: FitInfo) -> None:
        pass

    def on_nothing_to_train(self, model: nn.Module, info: FitInfo) -> None:
        pass


class Callbacks(Callback):
    """Several callbacks called in order (none on ranks other than 0)."""

    def __init__(self, callbacks: Iterable[Callback], enabled: bool = True):
        items = check_callbacks(callbacks)  # on every rank: a mistake stops them all alike
        self.items = items if enabled else []

    def __bool__(self) -> bool:
        return bool(self.items)

    def on_fit_start(self, model: nn.Module, info: FitInfo) -> None:
        self._call("on_fit_start", model, info)

    def on_step_end(self, step: int, metrics: dict[str, Tensor | float], model: nn.Module) -> None:
        self._call("on_step_end", step, metrics, model)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None:
        self._call("on_epoch_end", epoch, metrics, model)

    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        self._call("on_fit_end", model, info)

    def on_fit_error(self, error: BaseException, info: FitInfo) -> None:
        self._call("on_fit_error", error, info)

    def on_nothing_to_train(self, model: nn.Module, info: FitInfo) -> None:
        self._call("on_nothing_to_train", model, info)

    def _call(self, hook: str, *args) -> None:
        for c in self.items:
            fn = getattr(c, hook, None)
            if fn is not None:
                fn(*args)


HOOKS = ("on_fit_start", "on_step_end", "on_epoch_end", "on_fit_end", "on_fit_error", "on_nothing_to_train")


def check_callbacks(callbacks: object) -> list[Callback]:
    """``callbacks`` as a list if it is an iterable of callbacks (a ``Callback``, or an object with one of its
    hooks), else one line."""
    if isinstance(callbacks, (Callback, str)) or not isinstance(callbacks, Iterable):
        raise VaekitError(
            f"callbacks take a list of vaekit.Callback, got a {type(callbacks).__name__}: pass [callback]",
            key="callbacks",
        )
    items = list(callbacks)
    for c in items:
        if not isinstance(c, Callback) and not any(hasattr(c, h) for h in HOOKS):
            raise VaekitError(
                f"callbacks take a list of vaekit.Callback; a {type(c).__name__} has none of its hooks "
                f"({', '.join(HOOKS)})",
                key="callbacks",
            )
    return items
