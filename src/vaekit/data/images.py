"""A folder of images: flat (no labels) or one subfolder per class (labels are sorted folder names); the images
themselves are read by ``photos`` (sizes, modes) and ``image_cache``. Every note of the data layer is said here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vaekit.errors import VaekitError
from vaekit.io import printable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SYSTEM_FILES = ("thumbs.db", "desktop.ini", "icon\r")  # a file manager's, left out without a word like hidden ones
SPLITS = ("train", "val", "valid", "validation", "test")  # folder names of a data set split already
_said: set[str] = set()  # the notes said once per process (``note_once``)


def note(message: str) -> None:
    """One line about the data on stderr (what was skipped, what was moved), from one process: every note of the
    data layer comes here, and under torchrun (RANK set) only rank 0 says it; the data is the same in every rank,
    and its notes come before the process group exists. Control characters in names read from files (a folder's,
    a column's) are written escaped (``io.printable``)."""
    if os.environ.get("RANK", "0") == "0":
        print(f"vaekit: {printable(message)}", file=sys.stderr)


def note_once(message: str) -> None:
    """``note``, once per process: a folder is scanned more than once (its items, then the files of its rows)."""
    if message not in _said:
        _said.add(message)
        note(message)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, recursive: bool, broken: list[Path], above: set[str]) -> list[Path]:
    """The files in ``folder`` (and, when ``recursive``, in its subfolders, symbolic links to folders followed at
    any depth, each real folder once); a link to ``folder``, a folder above it or one of ``above`` (real paths:
    the data folder and those above it) stops there. Hidden names and anything under a hidden folder are left
    out; links to nothing are added to ``broken``."""
    files: list[Path] = []
    start = Path(os.path.realpath(folder))
    seen = (above | {str(p) for p in start.parents}) - {str(start)}  # ``folder`` itself is added as it is walked
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back to a folder already walked or above (a loop, or two links to one folder)
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not _hidden(d)) if recursive else []
        for name in names:
            path = Path(root, name)
            if _hidden(name) or name.lower() in SYSTEM_FILES:
                continue
            if path.is_file():
                files.append(path)
            elif path.is_symlink() and not path.exists():
                broken.append(path)
    return files


def _images_in(folder: Path, recursive: bool, broken: list[Path], others: list[Path], above: set[str]) -> list[Path]:
    """The image files in ``folder`` (and its subfolders when ``recursive``, through symbolic links), sorted;
    hidden files and anything under a hidden folder (.thumbs, .git), at any depth, are left out, and the other
    files (not of an image suffix) are added to ``others``."""
    found = _walk(folder, recursive, broken, above)
    others.extend(p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES)
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)


def _list(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image paths, their class indices and the class names (None, None for a flat folder). Class folders that
    hold no image files are left out (the classes are numbered without them); links to nothing, files of other
    suffixes and class folders that look like splits are noted."""
    broken: list[Path] = []
    others: list[Path] = []
    real = Path(os.path.realpath(folder))
    above = {str(real), *map(str, real.parents)}  # a link in a class folder to these stops there
    flat = _images_in(folder, False, broken, others, above)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    per_class = {d.name: _images_in(d, True, broken, others, above) for d in subdirs}
    per_class = {k: v for k, v in per_class.items() if v}
    if broken:
        n = len(broken)
        note_once(f"{folder}: {n} broken symbolic link{'s' * (n != 1)} left out, first {sorted(broken)[0]}")
    if flat and per_class:
        raise VaekitError(
            f"{folder}: mixes images at the top level with class subfolders ({', '.join(per_class)}); use one layout"
        )
    if not flat and not per_class:
        raise VaekitError(f"{folder}: no IDX files and no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    _note_others(folder, others)
    if flat:
        return flat, None, None
    _note_splits(folder, [d for d in subdirs if d.name in per_class])
    classes = list(per_class)
    files = [p for c in classes for p in per_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in per_class[c]]
    return files, labels, classes


def _note_others(folder: Path, others: list[Path]) -> None:
    """One line naming the suffixes of the files left out as no images (a .tga, a notes.txt) and the first."""
    if others:
        kinds = sorted({p.suffix.lower() or "no suffix" for p in others})
        shown = ", ".join(kinds[:6]) + (", ..." if len(kinds) > 6 else "")
        n = len(others)
        note_once(f"{folder}: {n} file{'s' * (n != 1)} left out (not image suffixes: {shown}), first {min(others)}")


def _note_splits(folder: Path, classes: list[Path]) -> None:
    """One line where the class folders are all named like splits (train, val, test) and hold only folders: a
    data set split already, whose splits would be trained on as classes."""
    if all(d.name.lower() in SPLITS and _only_folders(d) for d in classes):
        names = ", ".join(d.name for d in classes)
        first = next((d for d in classes if d.name.lower() == "train"), classes[0])
        note_once(
            f"{folder}: its class folders ({names}) look like splits holding class folders, and are trained on as "
            f"classes; to train on the classes inside, point at {first} (vaekit splits it by data.val_fraction "
            "and data.test_fraction)"
        )


def _only_folders(folder: Path) -> bool:
    """Whether ``folder`` holds folders and no files (hidden ones aside)."""
    shown = [p for p in folder.iterdir() if not _hidden(p.name)]
    return bool(shown) and all(p.is_dir() for p in shown)
