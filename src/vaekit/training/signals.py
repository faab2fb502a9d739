"""Stopping a run cleanly: SIGINT and SIGTERM finish the current step and write a checkpoint."""

from __future__ import annotations

import signal
import threading
import time


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing a checkpoint; ``code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int, where: str, run: str | None):
        name = signal.Signals(signum).name
        saved = f"checkpoint written in {run}" if run else "nothing saved (no run folder)"
        super().__init__(f"stopped by {name} at {where}; {saved}")
        self.code, self.run = 128 + signum, run


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
