"""The data verb: the built-in data sets at a glance (``data.catalog``), with whether each is ready offline here;
or, given a path, what vaekit would read of that file or folder (``data.describe``), without training."""

from __future__ import annotations

import argparse
from dataclasses import astuple

from ..errors import VaekitError
from .train_flags import given_sets
from .verbs import arg, verb

COLUMNS = ("spec", "item shape", "items", "classes", "source", "ready offline here")


@verb(
    "data",
    "list the built-in data sets: items, classes, source, and whether each loads offline here now; given a file or "
    "folder, what vaekit would read of it",
    arg(
        "path",
        nargs="?",
        metavar="PATH",
        help="a file or folder (or a built-in name) to describe without training: items, item shape, dtype and "
        "scaling, classes with counts, a table's columns, files skipped and why, the likelihood auto would choose; "
        "a built-in set is read only from what is here offline (never downloaded): one not here, its catalogue row",
    ),
    arg(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a data setting to read PATH (a built-in set too) with, as train takes it: data.image_size=32, "
        "data.limit=100, ...",
    ),
    examples=(
        "vaekit data",
        "vaekit data photos/ --set data.image_size=32",
        "vaekit data x.npy",
        "vaekit data dsprites:32 --set data.limit=1000",
    ),
)
def cmd_data(args: argparse.Namespace) -> None:
    if args.set and args.path is None:
        raise VaekitError("data: --set says how to read PATH: give the file or folder to describe")
    if args.path is not None:
        from ..data.describe import describe

        lines = describe(args.path, given_sets(args.set))
        width = max(len(what) for what, _ in lines)
        for what, found in lines:
            print(f"{what + ':':<{width + 1}} {found}")
        return
    from ..data.catalog import catalog

    print(f"| {' | '.join(COLUMNS)} |\n|{'---|' * len(COLUMNS)}")
    for entry in catalog():  # looked up without a download
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in astuple(entry)) + " |")  # a bar ends a cell
