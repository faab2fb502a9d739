"""Stopping a run cleanly: SIGINT and SIGTERM finish the current step and write a checkpoint."""

from __future__ import annotations

import signal
import threading
import time

from torch import nn


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing a checkpoint; ``code`` is the shell's 128 + signal number, ``run``
    the run folder (None: none). What was trained comes with it (``vaekit.fit`` sets them): ``history``, the
    metrics rows of the epochs that finished, ``model``, left as a finished fit leaves it, and ``result``, the
    Run of them (each None until set)."""

    def __init__(self, signum: int, where: str, run: str | None):
        name = signal.Signals(signum).name
        saved = f"checkpoint written in {run}" if run else "nothing saved (no run folder)"
        super().__init__(f"stopped by {name} at {where}; {saved}")
        self.code, self.run = 128 + signum, run
        self.history: list[dict] = []
        self.model: nn.Module | None = None
        self.result: object = None  # vaekit.fit's Run of what was trained (set there; the training layer has none)

    def keep(self, model: nn.Module, history: list[dict]) -> None:
        """What was trained: ``model`` as the fit left it and ``history``, the finished epochs' metrics rows; said in
        the line where no run folder keeps them."""
        self.model, self.history = model, history
        if self.run is None:
            n, last = len(history), "the last step's weights (no epoch ended)"
            held = f"its best epoch's weights (of {n} finished; their metrics: this exception's history)" if n else last
            self.args = (f"{self.args[0]}: the model holds {held}",)

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: a notebook shows the one line (class and message), not the library's frames."""
        return [f"{type(self).__name__}: {self}"]


class StopSignal:
    """While active, SIGINT and SIGTERM only set ``signum``; the loop checks it after every step.

    A second SIGINT raises KeyboardInterrupt at once. Outside the main thread (where Python cannot
    install handlers) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


class CheckpointClock:
    """Says when a mid-epoch checkpoint is due: every ``steps`` optimiser steps and/or every ``minutes``."""

    def __init__(self, steps: int, minutes: float):
        self.steps, self.seconds = steps, 60.0 * minutes
        self.count, self.last = 0, time.monotonic()

    def due(self) -> bool:
        self.count += 1
        if (self.steps and self.count % self.steps == 0) or (
            self.seconds and time.monotonic() - self.last >= self.seconds
        ):
            self.last = time.monotonic()
            return True
        return False
