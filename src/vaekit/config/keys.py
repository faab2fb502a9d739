"""Settings given as Python keywords (``vaekit.train(lr=...)``, ``vaekit.fit(..., **settings)``): each name resolved
to its full key first, so that one setting given under two names is refused, not decided by the last one."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import fields

from ..errors import VaekitError
from .schema import SECTIONS, RunConfig

OWNERS = {f.name: s for s in SECTIONS for f in fields(getattr(RunConfig(), s))}  # no bare name is in two sections
# the data settings vaekit.fit takes: the rest say how a data spec is read, and fit's data comes from Python
DATA_OF_FIT = ("data.val_fraction", "data.binarize", "data.standardize", "data.workers")


def full_keys(
    settings: Mapping[str, object] | Iterable[tuple[str, object]], aliases: dict[str, str] | None = None
) -> dict[str, object]:
    """``settings`` (a mapping, or (name, value) pairs: --set's, where a name may come twice) by full key: 'lr' and
    'train.lr' are 'train.lr', ``aliases`` name others ('data': 'data.spec'). A name that is no setting stays as it
    is, for ``set_value`` to refuse; one setting given twice, or under two names, is refused in one line naming both."""
    found: dict[str, tuple[str, object]] = {}  # full key: (the name given, its value)
    for name, value in settings.items() if isinstance(settings, Mapping) else settings:
        key = (aliases or {}).get(name) or (f"{OWNERS[name]}.{name}" if name in OWNERS else name)
        if key in found:
            both = f"{key} is given twice" if found[key][0] == name else f"{found[key][0]} and {name} both set {key}"
            raise VaekitError(f"config: {both}: give it once (the last would win unseen)", key=key)
        found[key] = (name, value)
    return {key: value for key, (_, value) in found.items()}


def misplaced(d: dict) -> dict:
    """``d`` (a TOML file's tables), refusing a setting written above its table (``epochs = 1`` at the top of the
    file) in one line naming the table it belongs in (``[train] epochs``)."""
    for name in d:
        if name in OWNERS and not isinstance(d[name], dict):  # no section or out is named as a setting
            raise VaekitError(f"config: unknown section or key {name!r} (did you mean [{OWNERS[name]}] {name}?)")
    return d


def table_hint(table: str, name: str) -> str:
    """' (did you mean [train] seed?)' for a setting ``name`` written in another ``table`` than its own, and where
    out goes for an out written in a table; '' for a name that is no setting."""
    if name == "out":
        return " (out is no table's: it goes at the top of the file, above the first table)"
    owner = OWNERS.get(name)
    return f" (did you mean [{owner}] {name}?)" if owner is not None and owner != table else ""


def refuse_unfit(given: dict[str, object], model: object = None, arguments: Mapping[str, str] | None = None) -> None:
    """Refuse, in one line, a setting (a full key of ``given``) that ``vaekit.fit`` cannot honour: one of the model,
    built already, or one of the data's other than ``DATA_OF_FIT``, which say how a data spec is read. A model
    setting is named as the init argument of ``model``'s class that takes it (``arguments``: setting -> argument
    where they differ, as DeepVAE's groups for deep_groups), else as ``vaekit.build_model`` takes it."""
    for key in given:
        section, name = key.split(".", 1) if "." in key else ("", key)
        if section == "model":
            raise VaekitError(
                f"{key} is a setting of the model, built already: build it with the setting "
                f"({built_with(name, model, arguments or {})}), or train by settings: vaekit.train({name}=...)",
                key=key,
            )
        if section == "data" and key not in DATA_OF_FIT:
            raise VaekitError(
                f"{key} cannot take effect: fit trains on the data passed to it as it is (its data settings: "
                f"{', '.join(k.split('.')[1] for k in DATA_OF_FIT)}); prepare the data in Python, or train by "
                f"settings: vaekit.train(data=..., {name}=...)",
                key=key,
            )


def built_with(name: str, model: object, arguments: Mapping[str, str]) -> str:
    """The call that builds a model with the setting ``name``: ``model``'s class with the init argument that takes
    it ('DeepVAE(groups=...)'), else, for a class that takes none (or no model), ``vaekit.build_model``."""
    arg = arguments.get(name, name)
    try:
        takes = model is not None and arg in inspect.signature(type(model)).parameters
    except (TypeError, ValueError):  # a class whose signature cannot be read
        takes = False
    return f"{type(model).__name__}({arg}=...)" if takes else f"vaekit.build_model({name}=...)"
