"""Data specs as settings name them: the built-in data sets and their options, and paths as a run stores them."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import VaekitError

BUILTINS = ("mnist5k", "digits", "mnist", "fashion-mnist", "dsprites", "photos")  # the data sets vaekit has
OPTIONS = {"dsprites": "dsprites[:SIZE][:n=N]", "photos": "photos[:SIZE]"}  # the built-in sets that take options


def builtin_key(spec: str) -> str | None:
    """The built-in data set ``spec`` names, normalised ('Fashion_MNIST' -> 'fashion-mnist', dsprites and photos
    with their options), or None: a path. Options on a set that takes none ('digits:8') are refused."""
    key = str(spec).strip().lower().replace("_", "-")
    name = key.split(":")[0]
    if name in BUILTINS and key != name and name not in OPTIONS:
        raise VaekitError(
            f"{spec}: the built-in set {name} takes no options (only {' and '.join(OPTIONS.values())} do)",
            key="data.spec",
        )
    return key if name in BUILTINS else None


def absolute_spec(spec: str) -> str:
    """A data spec naming a file or folder as its absolute path, as a run stores it (read from anywhere later);
    a built-in name, or no such path, as it is."""
    path = Path(spec).expanduser()
    return os.path.abspath(path) if spec and builtin_key(spec) is None and path.exists() else spec


def stored_spec(spec: str, beside: Path) -> str:
    """A run's data spec as stored; a relative path (as runs stored them before keeping absolute ones) missing
    from here is looked for in ``beside``, the run folder's parent: there where it is, or where it has a file
    name's suffix (``adult.csv``, not a built-in name), so that a missing file is named where it was sought."""
    path = Path(spec).expanduser()
    if not spec or builtin_key(spec) or path.is_absolute() or path.exists():  # a run named digits is no data
        return spec
    there = beside.absolute() / path
    return str(there) if there.exists() or path.suffix else spec
