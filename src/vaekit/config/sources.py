"""Where a config comes from as a user names it: a file, a run folder's config.json, or a preset by name; and
the lines that say which was meant when the name finds none, or two."""

from __future__ import annotations

import difflib
import os
import typing
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from ..errors import VaekitError

RUN_CONFIG = "config.json"  # a run folder's settings (vaekit.files.CONFIG; config sits below files in the layers)


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for the choice closest to a mistyped ``word`` (difflib), else ''."""
    close = difflib.get_close_matches(word, list(choices), 1)
    return f" (did you mean {close[0]}?)" if close else ""


def presets() -> list[str]:
    """The names of the presets the package ships (vaekit/configs/NAME.toml), for ``--config NAME``."""
    folder = resources.files("vaekit") / "configs"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped(name: str) -> Traversable | None:
    """The preset file that the bare ``name`` ('demo' or 'demo.toml') names, or None: a name with a folder in it,
    or no preset of that name."""
    if name != Path(name).name:
        return None
    preset = resources.files("vaekit") / "configs" / f"{name.removesuffix('.toml')}.toml"
    return preset if preset.is_file() else None


def preset_clash(name: str) -> str | None:
    """The line refusing ``name`` where it names both a preset ('demo') and a file beside it here (demo.toml),
    saying how to pick each; None where it names one of them (demo.toml, ./demo, a name no preset has)."""
    preset = shipped(name)
    if preset is None or name.endswith(".toml") or Path(name).exists() or not Path(f"{name}.toml").is_file():
        return None
    return (
        f"{name} names both the preset {name} and the file {name}.toml in the current folder: name the file as "
        f"./{name}.toml, or the preset by its path {preset}"
    )


def not_found(name: str) -> str:
    """Why the config ``name`` names nothing: a folder (a run's, with its config.json), a bare name whose .toml
    file is here, or the closest preset; each with the presets' names."""
    path = Path(name)
    if path.is_dir():
        inside = path / RUN_CONFIG
        said = f"its config is {inside}" if inside.is_file() else "name a TOML file, a run's config.json or a preset"
        return f"{name}: a folder: {said}"
    bare = name == path.name
    if bare and not name.endswith(".toml") and Path(f"{name}.toml").is_file():
        hint = f"did you mean {name}.toml? "
    else:
        close = difflib.get_close_matches(name.removesuffix(".toml"), presets(), 1) if bare else []
        hint = f"did you mean {close[0]}? " if close else ""
    return f"{name}: config file not found ({hint}presets: {', '.join(presets())})"


def relative_from_cwd(spec: str, config: str | os.PathLike) -> None:
    """Refuse, in one line, a data spec from the file ``config`` that names a relative path missing from the current
    folder: paths in a config are read from there, not from the config's folder."""
    from .specs import builtin_key

    path = Path(spec).expanduser()
    if not spec or path.is_absolute() or builtin_key(spec) is not None or path.exists():
        return
    raise VaekitError(
        f"{spec}: no such file in the current folder {Path.cwd()} (paths in {os.fspath(config)} are read from the "
        "current folder)",
    )
