"""Reading settings: TOML files, config.json, and key=value overrides converted to each field's type."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import platform
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from importlib import metadata, resources
from pathlib import Path

from ..errors import VaekitError
from ..io import read_plain
from .formats import upgrade
from .keys import misplaced, table_hint
from .schema import SECTIONS, RunConfig
from .sources import did_you_mean, not_found, shipped
from .sources import presets as presets  # re-exported: vaekit.config.parse.presets
from .specs import stored_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WRITTEN_BY = "written_by"  # config.json's record of the vaekit, torch and Python that wrote it
RESUMES = "resumes"  # ... and of what each resume changed (training.resumes.RESUMES, which writes it)
# text settings whose documented values include a flag (true | false) or a number (a column's index, a scale)
TEXT_OF = {
    "data.in_memory": (bool,),
    "data.standardize": (bool,),
    "data.label_column": (int,),
    "model.scale": (int, float),
}


def _as_table(name: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise VaekitError(f"config: section {name!r} must be a table")
    return value


def _field(section: typing.Any, key: str) -> dataclasses.Field:  # section: one of RunConfig's dataclasses
    for f in fields(section):
        if f.name == key:
            return f
    name = type(section).__name__.removesuffix("Config").lower()  # TrainConfig: [train]
    hint = table_hint(name, key) or did_you_mean(key, [f.name for f in fields(section)]).replace(
        "mean ", f"mean {name}."
    )
    hint = hint or f" (the keys of [{name}]: {', '.join(f.name for f in fields(section))})"
    raise VaekitError(f"config: unknown key {key!r} in [{name}]{hint}", key=f"{name}.{key}")


def _resolve(cfg: RunConfig, key: str) -> tuple[object, str]:
    """Find the section holding ``key`` ('train.lr' or an unambiguous bare 'lr')."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            hint = did_you_mean(key, [f"{s}.{f.name}" for s in SECTIONS for f in fields(getattr(cfg, s))])
            raise VaekitError(f"config: unknown section {section!r} in {key!r}{hint}")
        return getattr(cfg, section), name
    owners = [s for s in SECTIONS if any(f.name == key for f in fields(getattr(cfg, s)))]
    if len(owners) != 1:
        what = "unknown" if not owners else f"ambiguous ({', '.join(owners)})"
        names = {f.name: f"{s}.{f.name}" for s in SECTIONS for f in fields(getattr(cfg, s))}
        close = difflib.get_close_matches(key.replace("-", "_"), list(names), 1) if not owners else []
        hint = f" (did you mean {names[close[0]]}?)" if close else ""
        raise VaekitError(f"config: {what} key {key!r}{hint}")
    return getattr(cfg, owners[0]), key


def set_value(cfg: RunConfig, key: str, value: object, strict: bool = False, given: bool = False) -> None:
    """Set one setting, converting strings (from --set) to the field's type; ``strict`` (a TOML file or
    config.json, whose values keep their types) refuses a string where a number, flag or list is due. ``given``:
    the user gave it (a flag, --set, a keyword, their TOML file), recorded in ``cfg.given`` (``checks.given``)."""
    if key == "out":
        cfg.out = _coerce(key, value, str)
        return
    section, name = _resolve(cfg, key)
    hints = typing.get_type_hints(type(section))
    full = next(f"{s}.{name}" for s in SECTIONS if getattr(cfg, s) is section)
    setattr(section, name, _coerce(key, _as_text(full, value), hints[_field(section, name).name], strict))
    if given:
        cfg.given.add(full)


def _as_text(key: str, value: object) -> object:
    """A flag or number given for a text setting that documents such values (``TEXT_OF``) as its text: False as
    'false', 0.5 as '0.5'; any other value as it is."""
    kinds = TEXT_OF.get(key, ())
    if isinstance(value, bool):
        return ("true" if value else "false") if bool in kinds else value
    numbers = tuple(k for k in kinds if k is not bool)
    return str(value) if numbers and isinstance(value, numbers) else value


T = typing.TypeVar("T")


@typing.overload
def _coerce(key: str, value: object, tp: type[T], strict: bool = False) -> T: ...
@typing.overload
def _coerce(key: str, value: object, tp: object, strict: bool = False) -> object: ...
def _coerce(key: str, value: object, tp: typing.Any, strict: bool = False) -> object:  # tp: a type or annotation
    """Convert ``value`` to type ``tp`` (str, int, float, bool, list[int], X | None); ``strict``: only strings
    are parsed (those of --set), a value that has a type (TOML's, JSON's) must be of ``tp``'s."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        said_none = (
            isinstance(value, str) and value.lower() in ("none", "null", "") and not (strict and str not in args)
        )
        return None if value is None or said_none else _coerce(key, value, args[0], strict)
    if origin is list:
        items = [value] if isinstance(value, int) else value  # strict: a list or tuple as it is
        if isinstance(value, str):  # --set k=1,2 or k=[1,2]; '' and '[]' are []
            text = value.strip()[1:-1] if value.strip()[:1] + value.strip()[-1:] == "[]" else value
            items = text.split(",") if text.strip() else []
        empty = isinstance(items, (list, tuple)) and any(isinstance(v, str) and not v.strip() for v in items)
        size = key.endswith("image_size") and type(value) is int  # one size S (S x S) as a number too, no bool
        if empty or not isinstance(items, (list, tuple)) or (strict and items is not value and not size):  # 64,,32
            raise VaekitError(
                f"config: {key} must be a list (e.g. [64, 32]; no empty item), got {_short(value)}", key=key
            )
        return [_coerce(key, v, typing.get_args(tp)[0], strict) for v in items]
    if strict and isinstance(value, str) and tp is not str:
        raise VaekitError(
            f"config: {key} must be {getattr(tp, '__name__', tp)}, got the string {_short(value)}", key=key
        )
    try:
        if tp is bool:
            return _to_bool(value)
        if tp in (int, float) and isinstance(value, bool):
            raise ValueError  # JSON true is not a number
        if tp is int and isinstance(value, float) and (strict or not value.is_integer()):
            raise ValueError  # a value that has a type keeps it: 1.0 is no int, as "1.0" is not
        if tp is str and isinstance(value, (str, os.PathLike)):  # a pathlib.Path for data.spec or out
            return os.path.expanduser(os.fspath(value)) if key == "out" else str(os.fspath(value))  # out: ~ is home
        if tp is str:
            raise ValueError
        return tp(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        raise VaekitError(
            f"config: {key} must be {getattr(tp, '__name__', tp)}, got {_short(value)}{_advice(key, value)}",
            key=key,
        ) from None


def _advice(key: str, value: object) -> str:
    """What to do instead, where a value of the wrong type says what was meant: data in memory for data.spec."""
    if key != "data.spec" or isinstance(value, (str, int, float, bool)):
        return ""
    return (
        "; data.spec names a file, folder or built-in set: hand arrays, tensors and numeric data frames to "
        "vaekit.fit(model, data), or write a table with text columns or gaps to CSV "
        "(df.to_csv('table.csv', index=False)) and train on data='table.csv'"
    )


def _short(value: object) -> str:
    """repr of a bad value, cut so that the error stays one readable line (a value whose repr takes several
    lines, as a data frame's or an array's, by its type and shape)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str limit
        if not isinstance(value, int):
            raise
        return f"an integer of {value.bit_length()} bits"
    if "\n" in text:  # a data frame, an array: its type and shape, not its printout
        shape = getattr(value, "shape", None)
        text = type(value).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
    return text if len(text) <= 60 else text[:57] + "..."


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError


def load_toml(path: str | Path) -> dict:
    """Read a TOML config file into a dict of sections (a FIFO, a device or a file too big: one line, as
    ``load_json_config`` says it, before a byte is waited for)."""
    try:
        return tomllib.loads(read_plain(path).decode("utf-8-sig"))  # utf-8-sig: a byte-order mark
    except VaekitError:  # a FIFO, a device, too big
        raise
    except FileNotFoundError:
        raise VaekitError(f"{path}: config file not found") from None
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError, or an int past the 4300-digit limit
        raise VaekitError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:  # tables or arrays nested thousands deep
        raise VaekitError(f"{path}: not valid TOML (nested too deeply)") from None
    except OSError as e:  # a folder, no permission
        raise VaekitError(f"{path}: cannot read config file ({e.strerror or e})") from None


def load_json_config(path: str | Path) -> RunConfig:
    """Read a run's config.json, the settings an older one lacks filled in as its vaekit behaved
    (``formats.upgrade``: ``cfg.stored`` says its format and which)."""
    path = Path(path)
    try:
        d = json.loads(read_plain(path).decode("utf-8"))
    except VaekitError:  # a FIFO, a device, too big
        raise
    except (FileNotFoundError, NotADirectoryError):
        if path.parent.is_file():  # RUN/config.json of a RUN that is a file (train --resume afile.txt)
            raise VaekitError(f"{path.parent}: a file, not a run folder") from None
        raise VaekitError(f"{path}: not found (is this a vaekit run folder?)") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, or an int past the 4300-digit limit
        raise VaekitError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:  # config and io are sibling layers: io.read_json's guard, kept here
        raise VaekitError(f"{path}: not valid JSON (nested too deeply)") from None
    except OSError as e:
        raise VaekitError(f"{path}: cannot read ({e.strerror or e})") from None
    if isinstance(d, dict):
        d.pop(WRITTEN_BY, None)  # the versions that wrote it: a record, no setting
    with settings_from(path):
        stored = upgrade(d)
        cfg = RunConfig.from_dict(d)
    cfg.stored, stored.loaded = stored, True
    cfg.data.spec = stored_spec(cfg.data.spec, path.parent.parent)
    return cfg


def written_by() -> dict[str, str]:
    """config.json's ``written_by``: the versions of vaekit, torch (as installed) and Python that wrote it."""
    found = {}
    for name in ("vaekit", "torch"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # a source tree on the path, not installed
            found[name] = "unknown"
    return found | {"python": platform.python_version()}


def first_settings(path: str | Path) -> tuple[dict[str, object], int]:
    """The settings a run's config.json (``path``) records its resumes changed (``written_by.resumes``), at the
    values the run trained with before the first change, and the epoch that change trained from; ({}, 0) where
    it records none or cannot be read (its settings are read, and their faults said, elsewhere)."""
    first: dict[str, object] = {}
    try:
        records = json.loads(read_plain(path))[WRITTEN_BY][RESUMES]
        for record in records:
            for key, (old, _) in record["changed"].items():
                first.setdefault(key, old)
        return first, int(records[0]["epoch"])
    except (OSError, ValueError, LookupError, TypeError, AttributeError, RecursionError):  # ValueError: VaekitError
        return {}, 0


def recorded_progress(run: Path, progress: bool) -> bool:
    """train.progress as the config.json in the folder ``run`` records it (a resumed run's), else ``progress``: a
    display setting, which each command resuming a run picks for itself (--quiet), is no change to the run."""
    try:
        saved = json.loads((run / "config.json").read_text(encoding="utf-8"))["train"]["progress"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        saved = None
    return saved if isinstance(saved, bool) else progress


def load_toml_config(path: str | Path) -> RunConfig:
    """Read a TOML config file (tables [data], [model], [train]) into a RunConfig; a .json file is a run's
    config.json (``load_json_config``: the run it records, trained again); a bare name that is no file
    ('deep-mnist' or 'deep-mnist.toml') is one of the presets the package ships (``presets()``)."""
    name = os.fspath(path)
    preset = shipped(name)  # a bare name, no folder in it: a file here, else perhaps a preset
    if preset is not None and not Path(name).is_file():
        with resources.as_file(preset) as file, settings_from(file):
            return RunConfig.from_dict(misplaced(load_toml(file)))
    if name.lower().endswith(".json") and Path(name).is_file():  # a run's config.json: that run trained again
        return load_json_config(name)
    if not Path(name).exists() or Path(name).is_dir():  # a folder: a run's, whose config.json is named
        raise VaekitError(not_found(name))
    with settings_from(path):  # the user's file: its keys are given (a preset's are not: checks.given)
        return RunConfig.from_dict(misplaced(load_toml(path)), given=True)


@contextmanager
def settings_from(path: str | Path) -> Iterator[None]:
    """Errors about settings read from ``path`` name that file instead of 'config'; one that names another file
    beside it (a run's table.json, read as its model is built) names that file alone."""
    try:
        yield
    except VaekitError as e:
        msg = str(e).removeprefix("config: ")
        named = msg.startswith((f"{path}:", os.path.join(Path(path).parent, "")))
        raise VaekitError(msg if named else f"{path}: {msg}") from None
