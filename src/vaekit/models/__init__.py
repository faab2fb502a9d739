"""Model families, one registry, ``build_model(config)``, and the built-in network factories.

Every family is one class built from an encoder and a decoder ``nn.Module``; the built-in MLP and conv nets
are factories of such modules (``mlp_nets``, ``conv_nets``), and ``build_model`` picks them from a config.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import numbers
import typing
from collections.abc import Callable
from dataclasses import fields, replace
from typing import TypeVar

import torch
from torch import Tensor, nn

from ..config import CHOICES, NON_NEGATIVE, ModelConfig, RunConfig, refuse_conflicts, set_value, validate
from ..config.registered import unregistered
from ..core.contract import VAEModule
from ..errors import VaekitError

T = TypeVar("T")
MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model family (a class with ``from_config(ModelConfig)``) under ``name``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = cls
        return cls

    return add


def build_model(cfg: ModelConfig | None = None, **settings) -> VAEModule:
    """The registered family ``cfg.family`` with the built-in networks, for ``cfg.input_shape``.

    ``settings`` are ModelConfig fields (``model`` names a family or network, as ``vaekit.train`` takes it),
    alone or over ``cfg``, each of its field's type and checked as a
    config's are, two that cannot both take effect refused (a ``cfg`` alone builds as written, as a saved
    run's does); the likelihood must be named (only training chooses one from the data):
    ``build_model(net="conv", input_shape=(1, 28, 28), likelihood="bernoulli")``.
    """
    cfg = model_config(cfg, settings)
    if cfg.family not in MODELS:  # one of the user's, registered in another process: how to make it known
        raise VaekitError(unregistered("model.family", cfg.family, sorted(MODELS)), key="model.family")
    if not cfg.input_shape:
        raise VaekitError("model.input_shape is not set (it comes from the data)", key="model.input_shape")
    if cfg.likelihood == "auto":
        raise VaekitError(
            "likelihood 'auto' is chosen from the data (vaekit train and vaekit.train do it); name "
            "one to build a model alone: bernoulli, cbernoulli, gaussian or discretized_logistic",
            key="model.likelihood",
        )
    return MODELS[cfg.family].from_config(cfg)  # type: ignore[attr-defined]  # register() documents from_config


def family_needs_labels(cfg: ModelConfig) -> bool:
    """Whether the registered family ``cfg.family`` reads labels (a name not registered: False). Its class's
    ``needs_labels`` as a plain attribute; a property (the contract allows one) is read on an instance: a bare one
    where the property reads no state the class sets up, else one built from ``cfg`` on the meta device (no
    memory), which needs ``cfg.input_shape``."""
    cls = MODELS.get(cfg.family)
    found = inspect.getattr_static(cls, "needs_labels", False) if cls is not None else False
    if cls is None or not hasattr(type(found), "__get__"):  # a plain value on the class (or none)
        return bool(found)
    with contextlib.suppress(Exception):  # a property that reads the model's state: not on a bare instance
        return bool(cls.__new__(cls).needs_labels)
    if not cfg.input_shape:
        raise VaekitError(
            f"model family {cfg.family!r}: its needs_labels is a property that reads the model, which is built once "
            "the data is read; make it a class attribute (needs_labels = True or False)",
            key="model.family",
        )
    try:
        with torch.device("meta"):  # no memory taken
            return bool(cls.from_config(cfg).needs_labels)  # type: ignore[attr-defined]  # register() documents it
    except (RuntimeError, NotImplementedError):  # an operation the meta device lacks: built for real
        return bool(cls.from_config(cfg).needs_labels)  # type: ignore[attr-defined]


def model_config(cfg: ModelConfig | None, settings: dict[str, object]) -> ModelConfig:
    """A copy of ``cfg`` (default: ModelConfig()) with ``settings`` over it, every field of its type (a Python
    value is not parsed: "4" is no int) and validated as a config is, ``settings`` held to the model settings'
    conflicts too (two that cannot both take effect); one line naming a setting otherwise."""
    if cfg is not None and not isinstance(cfg, ModelConfig):
        raise VaekitError(f"build_model takes a ModelConfig (or keyword settings), got a {type(cfg).__name__}")
    run = RunConfig(model=replace(cfg or ModelConfig()))
    hints, settings = typing.get_type_hints(ModelConfig), _named(settings)
    for key, value in settings.items():
        if key not in hints:
            close = difflib.get_close_matches(key, hints, 1)
            hint = f" (did you mean {close[0]}?)" if close else " (see vaekit.config.ModelConfig)"
            raise VaekitError(f"unknown model setting {key!r}{hint}", key=f"model.{key}")
        setattr(run.model, key, value)
    for f in fields(ModelConfig):
        value, hint = getattr(run.model, f.name), hints[f.name]
        if not of_type(value, hint):
            text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise VaekitError(f"model.{f.name} must be {type_name(hint)}, got {text}", key=f"model.{f.name}")
        set_value(run, f"model.{f.name}", value)  # tuples as lists, numpy integers as int
    if settings:  # settings given here: held to the conflicts training checks (a ModelConfig builds as written,
        run.given = {f"model.{key}" for key in settings}  # as a saved run's must), at any value, as train holds them
        refuse_conflicts(run, ("model",))
    return new_levels(validate(run).model) if settings else validate(run).model  # a new ladder's default levels


def _named(settings: dict[str, object]) -> dict[str, object]:
    """``settings`` with ``model=`` taken as ``vaekit.train`` takes it: a registered family's name sets family,
    anything else net; one also given by its own name is refused in one line."""
    if "model" not in settings:
        return settings
    from .catalog import model_key  # here: the families register first, in their import order

    key = model_key(settings["model"]).split(".")[1]
    if key in settings:
        raise VaekitError(
            f"model and {key} both set model.{key}: give it once (the last would win unseen)", key=f"model.{key}"
        )
    return {key if k == "model" else k: v for k, v in settings.items()}


def of_type(value: object, hint: object) -> bool:
    """Whether ``value`` is of the ModelConfig field type ``hint`` (bool, int, float, str, list[int]...)."""
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if typing.get_origin(hint) is list:
        return isinstance(value, (list, tuple)) and all(of_type(v, typing.get_args(hint)[0]) for v in value)
    kinds: dict[object, type] = {int: numbers.Integral, float: numbers.Real, str: str}
    return isinstance(value, kinds.get(hint, object))


def type_name(hint: object) -> str:
    """'int', 'a list of int'... for a ModelConfig field type."""
    if typing.get_origin(hint) is list:
        return f"a list of {type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def as_int(n: T) -> T | int:
    """``n`` as a Python int where it is an integer scalar (numpy's np.int64, a 0-d torch integer tensor; not a
    bool), else as given: as ``positive`` and ``allowed`` read it (a config keeps plain ints)."""
    v = n.item() if isinstance(n, Tensor) and n.dim() == 0 else n  # a float or bool tensor's value: refused
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else n


def positive(n: int, name: str) -> int:
    """``n`` (an integer scalar as an int: ``as_int``) if it is a positive integer, else one line naming the
    setting ``model.<name>``."""
    n = as_int(n)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise VaekitError(f"{name} must be a positive integer, got {n!r}", key=f"model.{name}")
    return n


def allowed(value: T, name: str) -> T:
    """``value`` if the config's own tables allow it for ``model.<name>`` (its CHOICES, or an integer >= 0 for
    NON_NEGATIVE), else one line naming the setting: a model built in Python is checked as a config is."""
    key, value = f"model.{name}", typing.cast(T, as_int(value))  # a numpy integer as an int
    if key in CHOICES and value not in CHOICES[key]:
        raise VaekitError(f"{name} must be one of {', '.join(CHOICES[key])}, got {value!r}", key=key)
    if key in NON_NEGATIVE and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise VaekitError(f"{name} must be an integer >= 0, got {value!r}", key=key)
    return value


from .conditional import ConditionalVAE  # noqa: E402
from .deep import DeepVAE  # noqa: E402
from .gumbel import GumbelVAE  # noqa: E402
from .ladder import LadderVAE, new_levels  # noqa: E402
from .nets import conv_nets, mlp_nets  # noqa: E402
from .vae import VAE  # noqa: E402  (each family registers itself)
from .vq import VQVAE  # noqa: E402

__all__ = [
    "MODELS",
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "DeepVAE",
    "GumbelVAE",
    "LadderVAE",
    "build_model",
    "conv_nets",
    "family_needs_labels",
    "mlp_nets",
    "register",
]
