"""Where an export's files go: the destinations checked before any tracing, and the checked temporary files
renamed into place all together or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ..errors import VaekitError
from ..io import keep_copy, write_error


def check_destinations(out: Path, paths: list[Path]) -> None:
    """One line, before anything is traced, for an ``out`` that is no writable folder or a destination in
    ``paths`` that no file can be renamed onto (a folder, a pipe)."""
    if out.exists() and not out.is_dir():
        raise VaekitError(f"{out}: not a folder; give the export a folder to write its files in", key="out")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise VaekitError(f"{out}: cannot write there (no permission to make files in this folder)", key="out")
    for path in paths:
        if path.is_dir() or (os.path.lexists(path) and not (path.is_file() or path.is_symlink())):
            what = "a folder" if path.is_dir() else "no regular file"
            raise VaekitError(f"{path}: {what} stands where the export writes its graph; move it away first", key="out")


def replace_all(moves: dict[Path, Path]) -> None:
    """Rename each temporary file onto its destination ({tmp: path}), all or none: each file replaced is kept
    (a hard link) until every rename has succeeded, and put back, with any new file removed, if one fails."""
    kept: dict[Path, Path] = {}
    done: list[Path] = []
    at = next(iter(moves.values()))  # the destination being worked on, which an error names
    try:
        for at in moves.values():
            if at.is_file():
                kept[at] = at.with_name(f".{at.name}.{secrets.token_hex(6)}.old")
                keep_copy(at, kept[at])
        for tmp, at in moves.items():
            os.replace(tmp, at)
            done.append(at)
    except OSError as e:
        for path in reversed(done):
            with contextlib.suppress(OSError):
                os.replace(kept[path], path) if path in kept else path.unlink()
        raise write_error(at, e) from None
    finally:
        for old in kept.values():
            old.unlink(missing_ok=True)


def new_folders(out: Path) -> list[Path]:
    """The folders ``out`` and its parents that do not exist yet, deepest first."""
    made, folder = [], out.absolute()
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    return made
