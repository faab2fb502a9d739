"""A photo folder's cache: where it goes (``cache_root``) and its .json read and checked (``read_meta``); the
arrays of a built-in set that a package gives slowly, kept in the cache (``cached_arrays``).

The cache lies in data.data_dir where that folder or its parent exists, else in $VAEKIT_CACHE or
~/.cache/vaekit: no folder tree is made for a data_dir, as a run's config.json (one received too) may name any
path. A .json that does not hold what vaekit writes is a damaged (or foreign) cache, built again.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from ..io import atomic_write_bytes, read_json
from .builtin import cache_dir
from .images import note_once

META_KEYS = {"labels", "classes", "mode", "auto", "deep", "skipped"}  # what a cache's .json holds


def cache_root(data_dir: str | None) -> Path:
    """Where caches go: data.data_dir where it is a folder or its parent is (it is then made, one folder), else
    $VAEKIT_CACHE or ~/.cache/vaekit with one note: a run's config.json, one received too, may name any path, and
    no folder tree is made for it."""
    if not data_dir:
        return cache_dir()
    root = Path(data_dir).expanduser()
    if root.is_dir() or (root.parent.is_dir() and not root.exists()):  # made as one folder, never a tree
        return root
    note_once(f"{data_dir} (data.data_dir): neither a folder nor in one here; caching in {cache_dir()} instead")
    return cache_dir()


def read_meta(path: Path) -> dict | None:
    """A cache's .json, or None where it cannot be read, lacks a key or holds what vaekit never writes (a damaged
    or foreign cache, rebuilt)."""
    try:
        meta = read_json(path)
    except (OSError, VaekitError):  # unreadable, or not JSON (cut, not UTF-8, nested too deeply)
        return None
    return meta if isinstance(meta, dict) and meta.keys() >= META_KEYS and _sound(meta) else None


def _sound(meta: dict) -> bool:
    """Whether a cache's .json holds what vaekit writes: modes L or RGB, class names, labels 0..K-1 of them (or
    none), skipped files {file, error} as text, the names of the classes left with no readable file; anything
    else is a damaged (or foreign) cache, rebuilt."""
    classes, labels, skipped = meta["classes"], meta["labels"], meta["skipped"]
    if meta["mode"] not in ("L", "RGB") or meta["auto"] not in ("L", "RGB") or not isinstance(meta["deep"], bool):
        return False
    if not (classes is None or (isinstance(classes, list) and all(isinstance(c, str) for c in classes))):
        return False
    if labels is not None and not (
        isinstance(classes, list)
        and isinstance(labels, list)
        and all(type(y) is int and 0 <= y < len(classes) for y in labels)
    ):
        return False
    emptied = meta.get("emptied", [])  # not in a cache an older vaekit wrote
    if not (isinstance(emptied, list) and all(isinstance(c, str) for c in emptied)):
        return False
    return isinstance(skipped, list) and all(
        isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("error"), str) for s in skipped
    )


def cached_arrays(name: str, package: str, shapes: tuple, build: Callable[[], tuple]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of built-in set ``name`` that ``build`` makes from ``package`` (seconds), kept in the cache as .npz
    under the package's version (milliseconds); a file that does not read or holds other ``shapes`` (x's, y's) is
    a foreign or damaged cache, built again. No cache (no home folder) or a read-only or full one only costs speed."""
    from importlib.metadata import version

    path = None
    try:
        path = cache_dir() / name / f"{name}-{package}-{version(package)}.npz"
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
        if (x.shape, y.shape) == shapes:  # another shape: a foreign or damaged cache, rebuilt
            return x, y
    except Exception:  # noqa: BLE001 - no cache yet, or a damaged one: rebuild it from the package
        pass
    x, y = build()
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    with contextlib.suppress(OSError, VaekitError):  # a WriteError (read-only, full) only costs speed
        if path is not None:
            atomic_write_bytes(path, buffer.getvalue())
    return x, y
