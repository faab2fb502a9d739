"""Library errors said the command line's way, where the library's own words give Python's: a class a run folder
names that is not allowed (``--trust-code``, the module importable), and labels a conditional run needs from the
data (a file that holds them). Other errors are said as they are, with the flag that sets their setting."""

from __future__ import annotations

from ..errors import VaekitError
from .stops import loaded

NEEDS_LABELS = "this model is conditional: it needs labels"  # runs.Run.labels, for items given without labels
IN_FILES = (
    "give --data a file that holds them (an .npz with y, or y_train and y_test, beside x; a table's label column)"
)


def for_command_line(e: VaekitError, flag: str | None) -> tuple[str, str | None]:
    """(the message, the flag to name after it) of ``e`` on the command line, ``flag`` being the one that sets its
    setting (``cli.flag_for``) on the verb run, if it has one."""
    trust = loaded("models.trust")  # imported by whatever raised its error
    if trust is not None and isinstance(e, trust.NotAllowed) and flag == "--trust-code":  # flag: the verb has it
        here = f"on the command line, for a folder you trust, with the module {e.module} importable from PYTHONPATH"
        return f"{e.what}: in Python, {e.ways}; {here}", flag
    if e.key == "label" and flag is None and str(e).startswith(NEEDS_LABELS):  # a verb that takes no --label
        return f"{NEEDS_LABELS}: {IN_FILES}", None
    return str(e), flag
