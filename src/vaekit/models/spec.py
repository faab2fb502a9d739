"""Rebuilding a model from JSON, never from a pickle: each module's class (its import path) and init arguments.

A module's init arguments come from its ``init_args()`` method when it has one, else, as scikit-learn reads an
estimator's parameters, from the attributes named like the parameters of its ``__init__`` (torch's own layers
keep theirs so: ``nn.Conv1d(1, 16, 5)`` has ``in_channels``, ``kernel_size``...); a class that keeps some under
other names maps them in ``init_renamed`` (vaekit's families: ``{"likelihood": "likelihood_name"}``).
Arguments may be JSON values, tuples, lists and other modules. A spec is kept only when building it again gives
a module of the same structure and outputs (``spec_check``); only ``nn.Module`` classes are built.
Reading one back, every class it names is checked against ``models.trust``'s allow-list before any import, and
its arguments are JSON values and nested specs only (nothing is resolved by import).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..errors import VaekitError
from ..io import read_json
from .trust import check_name, import_path, resolve_class

SCALARS = (bool, int, float, str, type(None))
M = TypeVar("M", bound=nn.Module)


class SpecError(VaekitError):
    """A module cannot be recorded so that it rebuilds from its import path and init arguments."""


def class_path(cls: type) -> str:
    """'package.module:QualName' of a class that can be imported again, else SpecError."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise SpecError(f"{cls.__qualname__} is defined in a script or a function, so it cannot be imported")
    if import_path(path) is not cls:
        raise SpecError(f"{path} does not import as the class it names")
    return path


def module_spec(module: nn.Module) -> dict:
    """{"class": path, "args": {...}} (or a list of positional args, for nn.Sequential)."""
    cls = type(module)
    path = class_path(cls)
    if isinstance(module, nn.Sequential) and cls.__init__ is nn.Sequential.__init__:
        return {"class": path, "args": [_encode(m, path) for m in module]}
    if isinstance(module, nn.ModuleList) and cls.__init__ is nn.ModuleList.__init__:
        return {"class": path, "args": {"modules": [_encode(m, path) for m in module]}}
    own = getattr(module, "init_args", None)
    args = own() if callable(own) else _attributes(module)
    return {"class": path, "args": {k: _encode(v, f"{cls.__qualname__}.{k}") for k, v in args.items()}}


def _attributes(module: nn.Module, left: list[str] | None = None) -> dict:
    """Init arguments read from attributes of the same names (scikit-learn's convention), or of the names the
    class's ``init_renamed`` gives them; a class with ``init_renamed`` keeps every one (none is left out). The
    names of those left out (kept under no such attribute: their defaults apply) go to ``left``."""
    args, cls = {}, type(module)
    renamed: dict[str, str] | None = getattr(cls, "init_renamed", None)
    for name, p in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.VAR_POSITIONAL:
            raise SpecError(f"{cls.__qualname__} takes *{name}, which cannot be read back")
        attr = (renamed or {}).get(name, name)
        if not hasattr(module, attr) or (
            callable(getattr(module, attr)) and not isinstance(getattr(module, attr), nn.Module)
        ):
            if p.default is p.empty or renamed is not None:
                raise SpecError(f"{cls.__qualname__} keeps no attribute {attr!r} for its init argument {name!r}")
            if left is not None:
                left.append(name)
            continue  # left out: the default applies (``spec_check`` catches a wrong guess)
        value = getattr(module, attr)
        if isinstance(p.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # torch's convention: bias=True keeps a tensor named bias
        args[name] = value
    return args


def unread_args(module: nn.Module) -> list[str]:
    """The init arguments of ``module`` that ``module_spec`` leaves out, kept under no attribute of their names."""
    left: list[str] = []
    containers = (nn.Sequential.__init__, nn.ModuleList.__init__)  # module_spec's own args for those
    if not callable(getattr(module, "init_args", None)) and type(module).__init__ not in containers:
        with contextlib.suppress(SpecError):  # a class refused whole: its spec is refused as that
            _attributes(module, left)
    return left


def _encode(v: object, where: str) -> object:
    """A JSON value for an init argument: scalars, lists, {"tuple": [...]}, {"module": spec}, {"dict": {...}}."""
    if isinstance(v, nn.Module):
        return {"module": module_spec(v)}
    if isinstance(v, float) and not math.isfinite(v):
        raise SpecError(f"{where} is {v}, which JSON cannot hold")
    if isinstance(v, SCALARS):
        return v
    if isinstance(v, (tuple, torch.Size)):
        return {"tuple": [_encode(u, where) for u in v]}
    if isinstance(v, list):
        return [_encode(u, where) for u in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {"dict": {k: _encode(u, where) for k, u in v.items()}}
    raise SpecError(f"{where} is a {type(v).__name__}, which cannot be recorded as JSON")


def _decode(v: object, source: str) -> object:
    """An init argument back from ``_encode``'s JSON (``class_names`` has checked its shape)."""
    if isinstance(v, list):
        return [_decode(u, source) for u in v]
    if isinstance(v, dict):
        ((kind, inner),) = v.items()
        if kind == "module":
            return _build(inner, source)
        if kind == "tuple":
            return tuple(_decode(u, source) for u in inner)
        return {k: _decode(u, source) for k, u in inner.items()}
    return v


def class_names(spec: object, source: str = "") -> list[str]:
    """Every class a spec names, nested ones included, top first. A spec of another shape than ``module_spec``
    writes is refused: arguments are JSON scalars, lists, {"tuple"}, {"dict"} and {"module": spec} only."""
    if (
        not isinstance(spec, dict)
        or "class" not in spec
        or not set(spec) <= {"class", "args"}
        or not isinstance(args := spec.get("args", {}), (list, dict))
    ):
        raise VaekitError(f"{source + ': ' if source else ''}not a vaekit model spec: {str(spec)[:60]}")
    return [spec["class"], *_names_in(list(args) if isinstance(args, list) else list(args.values()), source)]


def _names_in(v: object, source: str) -> list[str]:
    """The classes an encoded argument names (see ``_encode``); anything else is refused."""
    if isinstance(v, list):
        return [name for u in v for name in _names_in(u, source)]
    if isinstance(v, SCALARS):
        return []
    if isinstance(v, dict) and len(v) == 1:
        ((kind, inner),) = v.items()
        if kind == "module":
            return class_names(inner, source)
        if kind == "tuple" and isinstance(inner, list):
            return _names_in(inner, source)
        if kind == "dict" and isinstance(inner, dict):
            return _names_in(list(inner.values()), source)
    raise VaekitError(f"{source + ': ' if source else ''}not a vaekit model spec value: {str(v)[:60]}")


def build(spec: dict, source: str = "") -> nn.Module:
    """The module a spec describes, with fresh weights. Every class it names is checked before anything is
    imported (``models.trust``; ``source``, the file it came from, goes into the messages); only ``nn.Module``
    classes are instantiated."""
    for path in class_names(spec, source):
        check_name(path, source)
    return _build(spec, source)


def _build(spec: dict, source: str) -> nn.Module:
    cls = resolve_class(spec["class"], source)
    args = spec.get("args", {})
    if isinstance(args, list):
        return cls(*(_decode(a, source) for a in args))
    return cls(**{k: _decode(v, source) for k, v in args.items()})


def structure(model: nn.Module) -> tuple:
    """What must agree between a model and its rebuild: the repr and every state tensor's name and shape."""
    with torch.random.fork_rng(devices=[]):  # some reprs draw (zuko's flows): a run's RNG stream must not move
        text = repr(model)
    return text, [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def module_classes(model: nn.Module) -> list[list[str]]:
    """[name, 'module:QualName'] of every submodule of ``model``, in order (``named_modules``, the model itself
    named ""): the structure model.json records, which a skeleton loaded in its place must have."""
    return [[name, _path(m)] for name, m in model.named_modules()]


def _path(module: nn.Module) -> str:
    """'module:QualName' of the class of ``module``, a lazy one's as it becomes once built (LazyLinear: Linear)."""
    cls = getattr(type(module), "cls_to_become", None) or type(module)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_structure(model: nn.Module, record: Path) -> str:
    """Check ``model``, a skeleton loaded in place of a run's model: the classes of its submodules, in order, must
    be those the run's model.json (``record``) gives: every submodule where it lists them (``modules``), else those
    its spec holds as init arguments, found in ``model`` by their argument paths. Else one line naming the first
    that differs; a class moved or renamed (``_renamed``) is taken, named in the note returned ("" where none).
    A record that is missing or unreadable, or names no structure, compares nothing."""
    try:
        saved = read_json(record)
    except (OSError, VaekitError):
        return ""
    listed = saved.get("modules") if isinstance(saved, dict) else None
    moved: list[tuple[str, str, str]] = []  # (name, class given, class recorded)
    if isinstance(listed, list) and all(isinstance(r, list) and [type(v) for v in r] == [str, str] for r in listed):
        why = _difference(module_classes(model), listed, moved)
    else:
        why = _spec_difference(saved.get("spec") if isinstance(saved, dict) else None, model, moved)
    if why:
        raise VaekitError(f"{record.parent}: the model given is not the one trained ({record.name} records it): {why}")
    said = "; ".join(
        f"{f'its submodule {n}' if n else 'the model given'} is a {c} where it was a {w}" for n, c, w in moved
    )
    return f"{record.parent}: {said} ({record.name}): taken as a class moved or renamed" if said else ""


def _spec_difference(spec: object, model: nn.Module, moved: list[tuple[str, str, str]]) -> str | None:
    """The first module a recorded spec holds whose class is not that of the module of ``model`` at its argument
    path, in words; None where all agree, or where there is no spec (or a malformed one). Classes moved or
    renamed (``_renamed``) go to ``moved``."""
    try:
        held = _held(spec)
    except (TypeError, ValueError, KeyError, AttributeError):  # None, or not as module_spec writes one
        return None
    for name, was in held:
        sub = _at(model, name)
        if isinstance(sub, nn.Module) and _path(sub) != was:
            if not _renamed(_path(sub), was):
                return _differs(name, _path(sub), was)
            moved.append((name, _path(sub), was))
    return None


def _held(spec: object) -> list[list[str]]:
    """[name, class] of a spec's module and of every module its arguments hold, depth first, each named by the
    path of arguments that holds it (``model.encoder.1``)."""
    found: list[list[str]] = []
    stack: list[tuple[str, object]] = [("", {"module": spec})]
    while stack:  # no recursion: a spec is as deep as JSON lets it be
        at, v = stack.pop()
        if isinstance(v, dict):  # {"module": spec}, {"tuple": [...]} or {"dict": {...}}
            ((kind, inner),) = v.items()
            if kind == "module":
                found.append([at, str(inner["class"])])
                inner = inner.get("args", {})
            children = list(inner.items() if isinstance(inner, dict) else enumerate(inner))
        else:
            children = list(enumerate(v)) if isinstance(v, list) else []
        stack.extend((f"{at}.{k}" if at else str(k), u) for k, u in reversed(children))
    return found


def _at(model: nn.Module, name: str) -> object:
    """What ``model`` holds at the argument path ``name`` (an init argument kept under another name: the class's
    ``init_renamed``; a list's item by its place), or None."""
    found: object = model
    for part in filter(None, name.split(".")):
        if isinstance(found, nn.ModuleList) and part == "modules":  # module_spec's {"modules": [...]}
            continue
        renamed = getattr(type(found), "init_renamed", None) or {}
        if part.isdigit() and isinstance(found, (nn.Sequential, nn.ModuleList, list, tuple)):
            found = found[int(part)] if int(part) < len(found) else None
        else:
            found = getattr(found, renamed.get(part, part), None)
    return found


def _difference(own: list[list[str]], recorded: list[list[str]], moved: list[tuple[str, str, str]]) -> str | None:
    """Where submodules (name, class) ``own`` first depart from ``recorded``, in words; None where the classes
    agree, in order. Those of the same name whose classes were moved or renamed (``_renamed``) go to ``moved``."""
    for (name, cls), (was_name, was) in zip(own, recorded):
        if cls != was and not (name == was_name and _renamed(cls, was)):
            return _differs(name, cls, was)
        if cls != was:
            moved.append((name, cls, was))
    if len(own) == len(recorded):
        return None
    name, cls = (own if len(own) > len(recorded) else recorded)[min(len(own), len(recorded))]
    if len(own) > len(recorded):
        return f"it has a submodule {name} (a {_short(cls, '')}) that the trained model had not"
    return f"it lacks the trained model's submodule {name} (a {_short(cls, '')})"


def _renamed(cls: str, was: str) -> bool:
    """Whether a model handed in may hold the class ``cls`` where the trained one held ``was``: the same name in
    another module (moved), or classes of your own, neither torch's nor vaekit's (renamed)."""
    library = lambda path: path.partition(":")[0].split(".")[0] in ("torch", "vaekit")  # noqa: E731
    return cls.rpartition(":")[2] == was.rpartition(":")[2] or not (library(cls) or library(was))


def _differs(name: str, cls: str, was: str) -> str:
    where = f"submodule {name}" if name else "top module"
    return f"its {where} is a {_short(cls, was)} where the trained model's is a {_short(was, cls)}"


def _short(path: str, other: str) -> str:
    """A class's name, or its full path where ``other`` has the same name."""
    name = path.rpartition(":")[2]
    return path if name == other.rpartition(":")[2] else name
