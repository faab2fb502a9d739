"""The JSON files of a run folder that the data layer reads, checked before use: classes.json (``read_classes``),
class_counts.json (``read_class_counts``) and table.json (``read_schema``). A folder may come from elsewhere: a
value of another type is one line naming the file and the field, never a TypeError later."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import cast

from ..errors import VaekitError, is_number
from ..io import read_json
from .table_values import MAX_DECIMALS  # vaekit writes no more (10**18: an OverflowError)

KINDS = ("numeric", "categorical")
CODINGS = ("standard", "modes")
NUMBERS = ("loc", "scale", "constant", "step", "min", "max", "origin")  # finite numbers or null
FLAGS = ("integer", "boolean", "gaps")  # true, false or null
TEXTS = ("unit", "time")  # text or null
MODE_LISTS = ("weight", "mean", "std")


def _read(path: str | Path, what: str) -> object:
    try:
        return read_json(path)
    except OSError as e:
        raise VaekitError(f"{path}: cannot read {what} ({e})") from None


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_number = partial(is_number, finite=True)  # a finite number, not a bool


def read_classes(path: str | Path, count: int | None = None) -> list[str]:
    """A run's class names, label 0 first, from its classes.json ``{"classes": [text, ...]}``; else one line. A
    conditional run's (``count``: its model.num_classes) names each of its classes once."""
    d = _read(path, "the class names")
    found = d.get("classes") if isinstance(d, dict) else None
    if not _texts(found):
        raise VaekitError(f'{path}: cannot read the class names (expected {{"classes": [names as text]}})')
    names = list(cast(list[str], found))
    if count is not None and len(names) != count:
        raise VaekitError(f"{path}: lists {len(names)} class names, and the run's model has {count} classes")
    if count is not None and (twice := next((n for n, k in Counter(names).items() if k > 1), None)) is not None:
        raise VaekitError(f"{path}: names the class {twice!r} twice; each label needs a name of its own")
    return names


def read_class_counts(path: str | Path, count: int) -> list[int] | None:
    """How many training items each of a conditional run's ``count`` classes had, label 0 first (its
    class_counts.json ``{"counts": [...]}``); None for counts of no item; else one line."""
    d = _read(path, "the classes' counts")
    found = d.get("counts") if isinstance(d, dict) else None
    if not isinstance(found, list) or len(found) != count or not all(type(k) is int and k >= 0 for k in found):
        raise VaekitError(f"{path}: cannot read the classes' counts (expected {count} whole numbers, 0 or more)")
    return None if not sum(found) else found


def read_schema(path: str | Path) -> dict:
    """A run's table.json as a dict whose every field has the type vaekit writes; else one line naming it."""
    d = _read(path, "the table's schema")
    bad = f"{path}: cannot read the table's schema"
    if not isinstance(d, dict) or not isinstance(d.get("columns"), list) or not d["columns"]:
        raise VaekitError(f"{bad} (expected an object with a list of columns)")
    for key, ok in (
        ("missing", isinstance(d.get("missing", "refuse"), str)),
        ("numeric", d.get("numeric", "standard") in CODINGS),
        ("label", d.get("label") is None or isinstance(d["label"], str)),
        ("label_index", d.get("label_index") is None or (type(d["label_index"]) is int and d["label_index"] >= 0)),
    ):
        if not ok:
            raise VaekitError(f"{bad} ({key}: {d.get(key)!r})")
    for j, column in enumerate(d["columns"]):
        if (why := _bad_field(column)) is not None:
            raise VaekitError(f"{bad} (column {j}: {why})"[:300])
    return d


def _bad_field(c: object) -> str | None:
    """What is wrong with a column: no object, or its first field whose value is not of its type; else None."""
    from .table_schema import Column  # it reads its files through this module

    if not isinstance(c, dict):
        return f"expected an object, got {c!r}"
    known = {f.name for f in fields(Column)}
    checks = [
        ("name", isinstance(c.get("name"), str)),
        ("kind", c.get("kind") in KINDS),
        ("categories", _texts(c.get("categories", []))),
        ("fill", c.get("fill") is None or isinstance(c["fill"], str) or _number(c["fill"])),
        *((k, c.get(k) is None or _number(c[k])) for k in NUMBERS),
        *((k, c.get(k) is None or isinstance(c[k], bool)) for k in FLAGS),
        *((k, c.get(k) is None or isinstance(c[k], str)) for k in TEXTS),
        ("decimals", c.get("decimals") is None or (type(c["decimals"]) is int and 0 <= c["decimals"] <= MAX_DECIMALS)),
        ("modes", c.get("modes") is None or _modes(c["modes"])),
    ]
    if unknown := sorted(set(c) - known):
        return f"unknown field {unknown[0]!r}"
    return next((f"{key} {c.get(key)!r}" for key, ok in checks if not ok), None)


def _modes(m: object) -> bool:
    """Whether ``m`` is a column's modes as vaekit writes them: index, weight, mean, std of one length."""
    if not isinstance(m, dict) or not {"index", *MODE_LISTS} <= m.keys() <= {"index", "alpha_scale", *MODE_LISTS}:
        return False
    index, lists = m["index"], [m[k] for k in MODE_LISTS]
    if not isinstance(index, list) or not all(type(i) is int and i >= 0 for i in index):
        return False
    same = all(isinstance(v, list) and len(v) == len(index) and all(map(_number, v)) for v in lists)
    return same and _number(m.get("alpha_scale", 1.0))
