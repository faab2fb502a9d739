"""A training call refused in a process that the spawn (or forkserver) start method is bootstrapping: such a
child re-imports the user's script as ``__mp_main__``, and a call outside ``if __name__ == "__main__":`` would
train again there (the DataLoader workers of the parent's run, and the run folder it holds)."""

from __future__ import annotations

import multiprocessing

from ..errors import VaekitError


def refuse_spawned_import(name: str) -> None:
    """One line where ``name`` (``vaekit.train``) runs while this process is a multiprocessing child still
    importing the parent's ``__main__`` (its ``_inheriting`` phase, which multiprocessing itself checks before it
    starts a process); a torchrun worker, or a child whose target calls it on purpose, goes on."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise VaekitError(
            f"{name} was called while a worker process started (spawn) imported your script: put the call "
            'under if __name__ == "__main__":'
        )
