"""The data verb: the built-in data sets at a glance (``data.catalog``), with whether each is ready offline here."""

from __future__ import annotations

import argparse
from dataclasses import astuple

from .verbs import verb

COLUMNS = ("spec", "item shape", "items", "classes", "source", "ready offline here")


@verb("data", "list the built-in data sets: items, classes, source, and whether each loads offline here now")
def cmd_data(args: argparse.Namespace) -> None:
    from ..data.catalog import catalog

    print(f"| {' | '.join(COLUMNS)} |\n|{'---|' * len(COLUMNS)}")
    for entry in catalog():  # looked up without a download
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in astuple(entry)) + " |")  # a bar ends a cell
