"""A folder of images: flat (no labels) or one subfolder per class (labels are sorted folder names); the images
themselves are read by ``photos`` (sizes, modes) and ``image_cache``. Every note of the data layer is said here."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from vaekit import logs
from vaekit.errors import VaekitError
from vaekit.io import printable

IMAGE_SUFFIXES = (
    *(".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
    *(".pgm", ".ppm", ".pbm", ".pnm", ".avif"),  # Netpbm; AVIF where Pillow reads it (``avif_read``)
)
SYSTEM_FILES = ("thumbs.db", "desktop.ini", "icon\r")  # a file manager's, left out without a word like hidden ones
SPLITS = ("train", "val", "valid", "validation", "test")  # folder names of a data set split already
_said: set[str] = set()  # the notes said once per process (``note_once``)


def note(message: str) -> None:
    """One line about the data (what was skipped, what was moved), from one process: every note of the data layer
    comes here, and under torchrun (RANK set) only rank 0 says it; the data is the same in every rank, and its
    notes come before the process group exists. Said as a note of the logger "vaekit" (``vaekit.logs``: on stderr
    by default). Control characters in names read from files (a folder's, a column's) are written escaped
    (``io.printable``)."""
    if os.environ.get("RANK", "0") == "0":
        logs.note(printable(message))


def note_once(message: str) -> None:
    """``note``, once per process: a folder is scanned more than once (its items, then the files of its rows)."""
    if message not in _said:
        _said.add(message)
        note(message)


@contextmanager
def held_notes() -> Iterator[set[str]]:
    """The notes of the block held, then said once each as it ends (data read twice says its notes once), less
    those whose text after the first ": " the caller puts in the set yielded: shown otherwise (``describe``'s
    lines)."""
    held: dict[str, logging.LogRecord] = {}
    shown: set[str] = set()

    def hold(record: logging.LogRecord) -> bool:
        held.setdefault(record.getMessage(), record)
        return False

    logs.LOGGER.addFilter(hold)
    try:
        yield shown
    finally:
        logs.LOGGER.removeFilter(hold)
        for message, record in held.items():
            if message.split(": ", 1)[-1] not in shown:
                logs.LOGGER.handle(record)


def _hidden(name: str) -> bool:
    return name.startswith(".")


@cache
def avif_read() -> bool:
    """Whether this Pillow reads AVIF files (its ``avif`` plugin, built in since Pillow 11.2, may be absent)."""
    from PIL import features

    return "avif" in features.modules and bool(features.check_module("avif"))


def is_image(path: Path) -> bool:
    """Whether ``path`` has an image suffix (AVIF: where this Pillow reads it)."""
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES and (suffix != ".avif" or avif_read())


@dataclass
class _Found:
    """What walking a data folder found: real folders (and the data folder and those above it) and real files
    read so far, each once; links to nothing (by where they lie, so one reached twice counts once); linked
    duplicates left out; and the links met while the real folders are walked, followed after them all."""

    seen: set[str]
    taken: set[str] = field(default_factory=set)
    broken: dict[str, Path] = field(default_factory=dict)
    again: list[Path] = field(default_factory=list)
    later: list[Path] = field(default_factory=list)


def _loop(root: str, real: str) -> bool:
    """Whether the link ``root`` leads to a folder that holds it: a loop, the data folder or one above it."""
    holder = os.path.realpath(os.path.dirname(root))
    return holder == real or holder.startswith(real.rstrip(os.sep) + os.sep)


def _take(path: Path, found: _Found, files: list[Path]) -> None:
    """Add the file ``path`` to ``files`` unless its real file was read already (a linked duplicate); a link to
    nothing goes to ``found.broken``."""
    if path.is_file():
        real = os.path.realpath(path)
        if real in found.taken:
            found.again.append(path)
        else:
            found.taken.add(real)
            files.append(path)
    elif path.is_symlink() and not path.exists():
        found.broken.setdefault(os.path.join(os.path.realpath(path.parent), path.name), path)


def _walk(top: Path, found: _Found, follow: bool, recursive: bool = True) -> list[Path]:
    """The files under ``top`` (only its own when not ``recursive``), hidden names and anything under a hidden
    folder left out, each real folder and file once across the data set. Not ``follow``ing, the symbolic links
    met are put in ``found.later``; following, a link to a folder read already is a duplicate, left out, and
    one to a folder holding it (a loop, the data folder or above) stops there without a word."""
    files: list[Path] = []
    for root, dirs, names in os.walk(top, followlinks=follow):
        real = os.path.realpath(root)
        if recursive and real in found.seen:
            if not _loop(root, real):
                found.again.append(Path(root))
            dirs[:] = []
            continue
        found.seen.add(real)
        dirs[:] = sorted(d for d in dirs if not _hidden(d)) if recursive else []
        if not follow:
            found.later.extend(Path(root, d) for d in dirs if os.path.islink(os.path.join(root, d)))
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in sorted(names):
            path = Path(root, name)
            if _hidden(name) or name.lower() in SYSTEM_FILES:
                continue
            if not follow and path.is_symlink():
                found.later.append(path)
            else:
                _take(path, found, files)
    return files


def _images(found: list[Path], others: list[Path]) -> list[Path]:
    """The image files among ``found``, sorted; the other files (not of an image suffix) added to ``others``."""
    others.extend(p for p in found if not is_image(p))
    return sorted(p for p in found if is_image(p))


def _classes(folder: Path, subdirs: list[Path], found: _Found) -> dict[str, list[Path]]:
    """The files of each class folder: every real folder and file first (not through links), then what the
    symbolic links met reach that no real folder holds, so a link to another class's folder reads it once,
    under its own class."""
    files: dict[str, list[Path]] = {}
    later: dict[str, list[Path]] = {}
    for d in subdirs:
        found.later = [d] if d.is_symlink() else []
        files[d.name] = [] if d.is_symlink() else _walk(d, found, follow=False)
        later[d.name] = found.later
    for d in subdirs:
        for link in later[d.name]:
            if link.is_dir():
                files[d.name] += _walk(link, found, follow=True)
            else:
                _take(link, found, files[d.name])
    return files


def _list(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image paths, their class indices and the class names (None, None for a flat folder). Class folders that
    hold no image files are left out (the classes are numbered without them); they, links to nothing, linked
    duplicates, files of other suffixes and class folders that look like splits are noted."""
    others: list[Path] = []
    real = Path(os.path.realpath(folder))
    found = _Found({str(real), *map(str, real.parents)})  # a link to these stops there
    flat = _images(_walk(folder, found, follow=True, recursive=False), others)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    per_class = {k: _images(v, others) for k, v in _classes(folder, subdirs, found).items()}
    empty = [k for k, v in per_class.items() if not v and not (folder / k).is_symlink()]  # links: duplicates
    per_class = {k: v for k, v in per_class.items() if v}
    _note_links(folder, found)
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
    _note_empty(folder, empty)
    classes = list(per_class)
    files = [p for c in classes for p in per_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in per_class[c]]
    return files, labels, classes


def _note_links(folder: Path, found: _Found) -> None:
    """One line each for the links to nothing and the linked duplicates left out, with their counts."""
    for paths, what in ((list(found.broken.values()), "broken symbolic link"), (found.again, "linked duplicate")):
        if paths:
            n, why = len(paths), " (each real folder and file is read once)" * (what == "linked duplicate")
            note_once(f"{folder}: {n} {what}{'s' * (n != 1)} left out{why}, first {sorted(paths)[0]}")


def _note_others(folder: Path, others: list[Path]) -> None:
    """One line naming the suffixes of the files left out as no images (a .tga, a notes.txt) and the first."""
    if others:
        kinds = sorted({p.suffix.lower() or "no suffix" for p in others})
        kinds = [k + " (this Pillow reads no AVIF)" * (k == ".avif") for k in kinds]
        shown = ", ".join(kinds[:6]) + (", ..." if len(kinds) > 6 else "")
        n = len(others)
        note_once(f"{folder}: {n} file{'s' * (n != 1)} left out (not image suffixes: {shown}), first {min(others)}")


def _note_empty(folder: Path, empty: list[str]) -> None:
    """One line naming the class folders that hold no image files (images not copied yet?), left out: the
    classes are numbered without them."""
    if empty:
        one = len(empty) == 1
        them = f"class folder{'' if one else 's'} {', '.join(empty)} hold{'s' if one else ''} no image files"
        note_once(f"{folder}: {them}: left out, the classes numbered without {'it' if one else 'them'}")


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
