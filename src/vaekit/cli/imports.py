"""vaekit's global option --import MODULE: the user's own module imported before the verb runs, as ``python -c
"import m; ..."`` would, so that the entries it registers (a prior, posterior, objective or model family) are
valid settings for that verb. The user's explicit act: vaekit never imports a module because a run folder or a
config names it (docs/guides/security.md)."""

from __future__ import annotations

import importlib
import re

from ..config.registered import IMPORT_IT, UNKNOWN
from ..errors import VaekitError

IMPORT_HELP = (
    "import the module MODULE (a name, from PYTHONPATH or the installed packages) before the verb runs, so the "
    "entries it registers (a prior, posterior, objective or model family) are known; repeatable; before the verb"
)


def import_modules(names: list[str]) -> None:
    """Import each module of ``names`` (--import), in order; one that cannot be found is one line."""
    for name in names:
        if name.endswith(".py") or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
            raise VaekitError(f"--import {name}: give a module's name (myplugins, mypkg.entries), not a file or path")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not (name == e.name or name.startswith(f"{e.name}.")):
                raise  # a module it imports itself is missing: its own traceback says which
            raise VaekitError(
                f"--import {name}: no module {e.name!r} found on PYTHONPATH or among the installed packages (the "
                "vaekit script does not look in the working directory: PYTHONPATH=. does)"
            ) from None


def import_way(e: VaekitError, verb: str | None) -> str | None:
    """The command line's way of making known the entry ``e`` says this process has not registered
    (``config.registered``), in place of Python's (import it); None for any other error."""
    text = str(e)  # its key may be gone: a run's config.json said it (``settings_from``)
    if UNKNOWN not in text or IMPORT_IT not in text:
        return None
    how = f"name the module that registers it before the verb: vaekit --import MODULE {verb or 'VERB'} ..."
    return text[: text.index(IMPORT_IT)] + how
