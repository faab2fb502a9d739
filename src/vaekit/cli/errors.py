"""Library errors said the command line's way, where the library's own words give Python's: a class a run folder
names that is not allowed (``--trust-code``, the module importable), labels a conditional run needs from the
data (a file that holds them), and an entry registered in another process (``--import``). Other errors are said
as they are, with the flag that sets their setting."""

from __future__ import annotations

import argparse

from ..errors import VaekitError
from .imports import import_way
from .stops import loaded

NEEDS_LABELS = "this model is conditional: it needs labels"  # runs.Run.labels, for items given without labels
IN_FILES = (
    "give --data a file that holds them (an .npz with y, or y_train and y_test, beside x; a table's label column)"
)


def for_command_line(
    e: VaekitError, flag: str | None, args: argparse.Namespace | None = None
) -> tuple[str, str | None]:
    """(the message, the flag to name after it) of ``e`` on the command line, ``flag`` being the one that sets its
    setting (``cli.flag_for``) on the verb run (``args``), if it has one."""
    trust = loaded("models.trust")  # imported by whatever raised its error
    if trust is not None and isinstance(e, trust.NotAllowed) and flag == "--trust-code":  # flag: the verb has it
        here = f"on the command line, for a folder you trust, with the module {e.module} importable from PYTHONPATH"
        return f"{e.what}: in Python, {e.ways}; {here}", flag
    if e.key in ("label", "y") and str(e).startswith(NEEDS_LABELS):  # Run.labels' words for Python's arguments
        return needs_labels(args), None
    if (way := import_way(e, getattr(args, "command", None))) is not None:  # an entry registered elsewhere
        return way, None
    return str(e), flag


def needs_labels(args: argparse.Namespace | None) -> str:
    """The line for items a conditional run reads without labels: the data (--data's, else the run's own) has
    none; give them in a file, or where the verb draws a class without encoding items (traverse without --item:
    its --dims chosen, not ranked on the items) by --label."""
    data = getattr(args, "data", None)
    where = f"the data {data} has none" if data else "its data has none"
    how = IN_FILES
    if hasattr(args, "label") and getattr(args, "item", None) is None:  # --dims: none ranked on the items
        way = "--dims" if getattr(args, "label", None) is not None else "--label (a class) with --dims"
        how = f"give {way}, or {IN_FILES.removeprefix('give ')}"
    return f"{NEEDS_LABELS}, and {where}: {how}"
