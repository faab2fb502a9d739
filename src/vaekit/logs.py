"""vaekit's notes and warnings as records of the logger "vaekit" (notes at INFO, warnings at WARNING).

By default each is one line on stderr, as the CLI shows it: ``vaekit: NOTE`` or ``vaekit: warning: WARNING``,
written to the ``sys.stderr`` of the moment (a notebook's, pytest's capture). ``logging.getLogger("vaekit")
.setLevel(logging.ERROR)`` silences them; a handler added to that logger gets every record too. The records do
not reach the root logger's handlers (a ``logging.basicConfig`` would say each twice): set the logger's
``propagate`` to True for that. Who says a line under torchrun (rank 0, or each rank) is the caller's rule.
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("vaekit")


class StderrLines(logging.Handler):
    """Each record as the one line vaekit has always written: ``vaekit: `` before a note, ``vaekit: warning: ``
    before a warning (WARNING and above), nothing before a ``bare`` one; to ``sys.stderr`` as it is when the
    record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        if sys.stderr is None:  # Python started with stderr closed (``2>&-``): nowhere to say it
            return
        try:
            kind = "warning: " if record.levelno >= logging.WARNING else ""
            start = "" if getattr(record, "bare", False) else f"vaekit: {kind}"
            sys.stderr.write(f"{start}{record.getMessage()}\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # a stderr full or closed: logging's own report, not the caller's failure
            self.handleError(record)


def _install() -> None:
    """The stderr handler, once (a module reloaded adds no second one, nor undoes the user's ``propagate``); INFO
    and above unless the user has set the logger's level already."""
    if not any(isinstance(h, StderrLines) for h in LOGGER.handlers):
        LOGGER.addHandler(StderrLines())
        LOGGER.propagate = False
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)


_install()


def note(message: str) -> None:
    """A note (INFO): what vaekit chose, left out or moved."""
    LOGGER.info(message)


def warning(message: str, bare: bool = False) -> None:
    """A warning (WARNING): what may be wrong with a run, its settings or its data. ``bare``: said on stderr as it
    is, without ``vaekit: warning: `` (a sampler's or a run folder's line, which names its own source)."""
    LOGGER.warning(message, extra={"bare": bare})
