"""The run folder's files of ``evaluate``'s figures: eval.json for its own data, eval-DATA-SPLIT.json for other
data (eval-DATA-HASH-SPLIT.json for a second file of that name in another folder)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .. import files
from ..io import atomic_write_json, run_lock
from ..runs import Run


def eval_file(data: str, split: str, own: bool = True, tag: str = "") -> str:
    """The run folder's file of an evaluation: eval.json for its ``own`` data, else eval-DATA-SPLIT.json, the
    name of the ``data`` kept to letters, digits, '.', '_' and '-' (eval.json keeps the run's own figures), with
    ``tag`` after it where given (eval-DATA-TAG-SPLIT.json)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(data).name).strip("._-")[:80] or "data"
    return files.EVAL if own else f"eval-{safe}{f'-{tag}' * bool(tag)}-{split}.json"


def write_eval(run: Run, result: dict, own: bool = True) -> Path:
    """Write ``result`` to the run folder's ``eval_file`` (atomically, under the folder's lock); other data whose
    file of that name holds another file's figures (its "path", the data's absolute path: d1/new.npy, d2/new.npy)
    goes to eval-DATA-HASH-SPLIT.json, HASH the first 8 hex digits of the SHA-256 of its path."""
    with run_lock(run.folder):
        path, where = run.folder / eval_file(result["data"], result["split"], own), result.get("path")
        if not own and where and (saved_path(path) or where) != where:  # a file of no path: an older vaekit's
            digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            path = path.with_name(eval_file(result["data"], result["split"], own, digest))
        return atomic_write_json(path, result)


def saved_path(path: Path) -> str | None:
    """The "path" an evaluation file at ``path`` records, or None (no file, an older one, not vaekit's)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("path") if isinstance(saved, dict) and isinstance(saved.get("path"), str) else None
