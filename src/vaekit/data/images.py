"""A folder of images: flat (no labels) or one subfolder per class (labels are sorted folder names); the images
themselves are read by ``photos`` (sizes, modes) and ``image_cache``. Every note of the data layer is said here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vaekit.errors import VaekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_said: set[str] = set()  # the notes said once per process (``note_once``)


def note(message: str) -> None:
    """One line about the data on stderr (what was skipped, what was moved), from one process: every note of the
    data layer comes here, and under torchrun (RANK set) only rank 0 says it; the data is the same in every rank,
    and its notes come before the process group exists."""
    if os.environ.get("RANK", "0") == "0":
        print(f"vaekit: {message}", file=sys.stderr)


def note_once(message: str) -> None:
    """``note``, once per process: a folder is scanned more than once (its items, then the files of its rows)."""
    if message not in _said:
        _said.add(message)
        note(message)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, recursive: bool, broken: list[Path]) -> list[Path]:
    """The files in ``folder`` (and, when ``recursive``, in its subfolders, symbolic links to folders followed at
    any depth, each real folder once so that a link to a folder above stops); hidden names and anything under a
    hidden folder are left out; links to nothing are added to ``broken``."""
    files: list[Path] = []
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back to a folder already walked (a loop, or two links to one folder)
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not _hidden(d)) if recursive else []
        for name in names:
            path = Path(root, name)
            if _hidden(name):
                continue
            if path.is_file():
                files.append(path)
            elif path.is_symlink() and not path.exists():
                broken.append(path)
    return files


def _images_in(folder: Path, recursive: bool, broken: list[Path] | None = None) -> list[Path]:
    """The image files in ``folder`` (and its subfolders when ``recursive``, through symbolic links), sorted;
    hidden files and anything under a hidden folder (.thumbs, .git), at any depth, are left out."""
    found = _walk(folder, recursive, [] if broken is None else broken)
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)


def _list(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image paths, their class indices and the class names (None, None for a flat folder). Class folders that
    hold no image files are left out (the classes are numbered without them); links to nothing are noted."""
    broken: list[Path] = []
    flat = _images_in(folder, recursive=False, broken=broken)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    per_class = {d.name: _images_in(d, recursive=True, broken=broken) for d in subdirs}
    per_class = {k: v for k, v in per_class.items() if v}
    if broken:
        n = len(broken)
        note_once(f"{folder}: {n} broken symbolic link{'s' * (n != 1)} left out, first {sorted(broken)[0]}")
    if flat and per_class:
        raise VaekitError(
            f"{folder}: mixes images at the top level with class subfolders ({', '.join(per_class)}); use one layout"
        )
    if flat:
        return flat, None, None
    if not per_class:
        raise VaekitError(f"{folder}: no IDX files and no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    classes = list(per_class)
    files = [p for c in classes for p in per_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in per_class[c]]
    return files, labels, classes
