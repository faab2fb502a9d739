"""Where an export's files go: the destinations checked before any tracing, and the checked temporary files
renamed into place all together or not at all; and the weights file they come from, as their metadata names it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from .. import files
from ..errors import VaekitError
from ..io import keep_copy, write_error
from ..runs import Run
from ..training.checkpoint import header

DIGEST_IS = (  # training.checkpoint.tensor_digest
    "the SHA-256 of the weights' tensors, not of a file: over each tensor of the model's state dict in name order, "
    "the text 'name|dtype|shape|' (dtype as torch names it, torch.float32; shape as a Python tuple: (16, 64), (16,), "
    "()) then the tensor's bytes in C order; model.safetensors records the same value in its header "
    "(__metadata__.sha256); file_sha256, where given, is the SHA-256 of that file's bytes (sha256sum)"
)


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


def weights(run: Run) -> dict[str, object]:
    """What ``vaekit_weights_sha256`` is, and the SHA-256 of the run's weights file where it holds these weights."""
    path = run.path / files.WEIGHTS if run.path is not None else None
    found = header(path) if path is not None else None
    same = found is not None and found[1].get("sha256") == run.digest
    return {
        "vaekit_weights_sha256": DIGEST_IS,
        "file": files.WEIGHTS if same else None,
        "file_sha256": file_sha256(path) if same and path is not None else None,  # sha256sum of the file
    }


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (what sha256sum prints), read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
