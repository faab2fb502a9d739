"""The run folder's files of ``evaluate``'s figures: eval.json for its own data, eval-DATA-SPLIT.json for other
data (eval-DATA-HASH-SPLIT.json for a second file of that name in another folder)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .. import files
from ..config.specs import builtin_key
from ..errors import VaekitError, is_number, is_whole
from ..io import atomic_write_json, read_json, run_lock
from ..runs import Run


def eval_file(data: str, split: str, own: bool = True, tag: str = "") -> str:
    """The run folder's file of an evaluation: eval.json for its ``own`` data, else eval-DATA-SPLIT.json, the
    name of the ``data`` kept to letters, digits, '.', '_' and '-' (eval.json keeps the run's own figures), with
    ``tag`` after it where given (eval-DATA-TAG-SPLIT.json)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(data).name).strip("._-")[:80] or "data"
    return files.EVAL if own else f"eval-{safe}{f'-{tag}' * bool(tag)}-{split}.json"


def data_path(spec: str | None) -> str | None:
    """The absolute path of the data file or folder ``spec`` (eval-DATA-SPLIT.json's "path": whose figures), or
    None for a built-in set's name (a run folder named so, ``--data digits --out digits``, is no data)."""
    path = Path(spec).expanduser() if spec and not builtin(spec) else None
    return str(path.resolve()) if path is not None and path.exists() else None


def builtin(spec: str) -> bool:
    """Whether ``spec`` names a built-in set: its name is never a path here, though a file or folder of that name
    lies in the working folder (a run folder ``digits`` of the set digits); a run stores a path as absolute."""
    try:
        return builtin_key(spec) is not None
    except VaekitError:  # a set's name with options it takes none of: no set, read as a path
        return False


def eval_path(folder: Path, data: str, split: str, own: bool = True, where: str | None = None) -> Path:
    """The run ``folder``'s file of the evaluation of ``data``'s ``split``: ``eval_file``'s, or for other data at
    the absolute path ``where`` whose file of that name records another path (d1/new.npy, d2/new.npy),
    eval-DATA-HASH-SPLIT.json, HASH the first 8 hex digits of the SHA-256 of ``where``. A file that records no
    path (an older vaekit's) is taken as this data's."""
    path = folder / eval_file(data, split, own)
    if own or not where or (saved_path(path) or where) == where:
        return path
    digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return path.with_name(eval_file(data, split, own, digest))


def data_stamp(spec: str | None) -> list[int] | None:
    """A cheap fingerprint of the data file or folder ``spec``: [bytes, latest mtime_ns, files] of the file or of
    every file under the folder, or None for a built-in set's name (nothing to change under it). Data rewritten
    under the same name, even with as many items, has another stamp. A built-in name is never a path here."""
    path = Path(spec).expanduser() if spec and not builtin(spec) else None
    if path is None or not path.exists():
        return None
    found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [p.stat() for p in found]
    return [sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0), len(stats)]


def write_eval(run: Run, result: dict, own: bool = True) -> Path:
    """Write ``result`` to the run folder's ``eval_path`` for its data, split and "path" (the data's absolute
    path), atomically, under the folder's lock, with the data's ``data_stamp`` ("data_stamp", set in ``result``
    too, so what the caller shows is what the file holds) where it has none."""
    with run_lock(run.folder):
        where = result.get("path")
        if "data_stamp" not in result:
            result["data_stamp"] = data_stamp(run.config.data.spec if own else where)
        return atomic_write_json(eval_path(run.folder, result["data"], result["split"], own, where), result)


def saved_path(path: Path) -> str | None:
    """The "path" an evaluation file at ``path`` records, or None (no file, an older one, not vaekit's)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("path") if isinstance(saved, dict) and isinstance(saved.get("path"), str) else None


EVAL_NUMBERS = ("elbo", "rec", "kl", "nll", "bits_per_dim")  # eval.json's figures the page shows as numbers


def saved_eval(path: Path) -> dict:
    """eval.json from ``path``, or {} when missing, damaged, or other than an evaluation (a count, a figure, a KL
    list, the active units or the probe's accuracy of another type): computed again, never drawn as it is."""
    try:
        obj = read_json(path)
    except (OSError, VaekitError):
        return {}
    if not isinstance(obj, dict):
        return {}
    counts = all(is_whole(obj.get(key)) for key in ("k", "n", "seed"))
    figures = all(is_number(obj.get(key)) for key in EVAL_NUMBERS)
    kl = obj.get("kl_per_dim")
    levels = isinstance(kl, list) and all(d is None or (isinstance(d, list) and all(map(is_number, d))) for d in kl)
    per_level = isinstance(obj.get("kl_per_level"), list) and all(map(is_number, obj["kl_per_level"]))
    return obj if counts and figures and levels and per_level and _typed_extras(obj) else {}


def _typed_extras(obj: dict) -> bool:
    """Whether eval.json's ``obj`` has its probe's accuracy null or in [0, 1], its active units (when there) as
    ``evaluate`` writes them, and its run's passes and seconds (when there) numbers."""
    probe, au = obj.get("probe_accuracy"), obj.get("active_units", {})
    if not (probe is None or (is_number(probe) and 0 <= probe <= 1)) or not isinstance(au, dict):
        return False
    levels = [] if au.get("per_level") is None else au["per_level"]  # None: one item evaluated, no variance
    total = au.get("total") is None or is_whole(au["total"], 0)
    units = total and isinstance(levels, list) and all(is_whole(v, 0) for v in levels)
    timing = is_whole(obj.get("elbo_passes", 1)) and is_number(obj.get("seconds", 0))
    return units and is_number(au.get("threshold", 0)) and timing
