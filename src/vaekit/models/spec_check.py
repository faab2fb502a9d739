"""Whether a model's spec (``models.spec``) truly rebuilds it: the twin built from the spec must have the model's
structure and, with the model's state loaded, give its outputs on two probe items: their tensors, and the kinds
of the distributions its submodules, ``forward``, ``encode``, ``decode`` and ``prior`` give (classes, those inside
``Independent`` too, batch and event shapes: a Laplace(0, 1) holds a Normal(0, 1)'s tensors). A module whose init
argument is kept under no attribute of its name is recorded without it, and rebuilt with its default
(``ScaledEnc(gain=5)`` keeping ``self._gain``): the repr and the weights' shapes may agree while the outputs do
not. Where they differ, the reason names the module and the init arguments that could not be read back."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Transform

from ..core.contract import VAEModule
from ..core.reading import probing
from ..errors import VaekitError
from ..io import read_json
from .spec import _at, _differs, _held, build, module_classes, module_spec, structure, unread_args
from .standardized import Standardized
from .trust import trusting

RTOL, ATOL = 1e-3, 1e-5  # loose enough for a GPU's kernels run twice, tight against another argument's value
Held = tuple[list[Tensor], list[object]]  # an output's tensors, and its distributions' kinds (``_kind``)


def rebuildable_spec(
    model: nn.Module, shape: Sequence[int] | None = None, classes: int = 0
) -> tuple[dict | None, str, bool]:
    """(spec, "", False) where ``model`` rebuilds from its spec: the same structure and, given the items' ``shape``
    (and ``classes``, for a model that needs labels), the same outputs on two probe items with its state loaded.
    Else (None, the reason, rebuilt): ``rebuilt`` True where a spec was recorded but builds another model (worth
    saying at once: the folder then loads only into an instance), False where none could be recorded."""
    try:
        spec = module_spec(model)
    except Exception as e:  # noqa: BLE001 - any failure to record means: load with a skeleton
        return None, str(e) if isinstance(e, VaekitError) else f"{type(e).__name__}: {e}", False
    try:
        with torch.random.fork_rng(devices=[]), trusting():  # the caller's RNG kept; the live model's own classes
            twin = build(spec)
    except Exception as e:  # noqa: BLE001 - a rebuild that fails: the module at fault, else what it raised
        return (
            None,
            culprit(model, spec) or (str(e) if isinstance(e, VaekitError) else f"{type(e).__name__}: {e}"),
            True,
        )
    if structure(twin) != structure(model):
        why = f"{spec['class']} built from its recorded arguments differs from the trained model"
        return None, culprit(model, spec) or why, True
    name = None if shape is None else first_difference(model, twin, shape, classes)
    if name is not None:
        return None, blame(name, model, spec, "gives other outputs than the trained one"), True
    return spec, "", False


def culprit(model: nn.Module, spec: dict) -> str:
    """In words, the innermost module that ``spec`` records of ``model`` that its own spec does not build again with
    its structure; "" where each does."""
    held = recorded(model, spec)
    for name, sub in reversed(list(model.named_modules())):  # a module's submodules before it
        if id(sub) not in held or _layer(sub):
            continue
        try:
            with torch.random.fork_rng(devices=[]), trusting():
                same = structure(build(module_spec(sub))) == structure(sub)
        except Exception:  # noqa: BLE001 - a rebuild that fails differs
            same = False
        if not same:
            return blame(name, model, spec, "differs from the trained one")
    return ""


def recorded(model: nn.Module, spec: dict) -> set[int]:
    """The ids of the modules of ``model`` that ``spec`` records (itself, and those its arguments hold)."""
    return {id(_at(model, path)) for path, _ in _held(spec)}


def blame(name: str, model: nn.Module, spec: dict, what: str) -> str:
    """``model``'s submodule ``name`` (its innermost enclosing module that ``spec`` records, not a torch.nn layer)
    rebuilt from model.json ``what``, and the init arguments it keeps under no attribute of their names."""
    held = recorded(model, spec)
    while name and (_layer(model.get_submodule(name)) or id(model.get_submodule(name)) not in held):
        name = name.rpartition(".")[0]
    sub = model.get_submodule(name)
    cls = type(sub).__qualname__
    said = f"{'its submodule ' + name if name else 'the model'} ({type(sub).__module__}:{cls}), built from model.json,"
    unread = unread_args(sub)
    if not unread:
        return f"{said} {what}: its init arguments as recorded do not build it again"
    one, keep = len(unread) == 1, ", ".join(f"self.{n}" for n in unread)
    args = f"argument {unread[0]} under no attribute of that name" if one else f"arguments {', '.join(unread)} under"
    args += "" if one else " no attributes of those names"
    methods = [n for n in unread if callable(getattr(sub, n, None))]  # prior: the contract's method, not a value
    advice = f"keep {keep}, or give {cls} an init_args() that returns them"
    if methods:
        named = ", ".join(f"self.{n}" for n in methods)
        advice = f"{named} {'is a method' if len(methods) == 1 else 'are methods'}: give {cls} an init_args() "
        advice += "that returns its init arguments"
    return (
        f"{said} {what}: {cls} keeps its init {args}, so model.json cannot record {'it' if one else 'them'} and "
        f"the rebuild takes {'its default' if one else 'their defaults'} ({advice})"
    )


def first_difference(model: nn.Module, twin: nn.Module, shape: Sequence[int], classes: int) -> str | None:
    """The name of the first submodule of ``model`` (in the order their calls end) whose outputs on two probe items
    (uniform in [0, 1), labels 0, 1 where it needs labels) differ from ``twin``'s, ``model``'s state loaded into it;
    None where all agree, or where ``model`` itself cannot take such items (nothing to compare). Both run in eval
    mode from one seed; the RNGs are as they were after."""
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(0)).to(device)
    y = (torch.arange(2) % max(classes, 1)).to(device) if getattr(model, "needs_labels", False) else None
    try:
        own = _outputs(model, x, y)
    except Exception:  # noqa: BLE001 - a model that takes no such items: its check is the dry run's
        return None
    twin.load_state_dict(model.state_dict())
    try:
        other = _outputs(twin.to(device), x, y)
    except Exception:  # noqa: BLE001 - the twin fails where the model ran: the first call that did not end differs
        other = {}
    return next((name for name, out in own.items() if not _same(out, other.get(name))), None)


def _outputs(model: nn.Module, x: Tensor, y: Tensor | None) -> dict[str, Held]:
    """Every submodule's output tensors and distributions' kinds of its first call, by name, in the order the calls
    end; the model's own ("") with what its ``encode``, ``decode`` and ``prior`` give after ``forward``."""
    seen: dict[str, Held] = {}
    hooks = [m.register_forward_hook(partial(_keep, seen, name)) for name, m in model.named_modules()]
    try:
        with probing(model), torch.no_grad():
            torch.manual_seed(0)
            model(x, y)
            tensors, kinds = seen.get("", ([], []))
            seen[""] = (tensors, [*kinds, *_contract(model, x, y, tensors)])
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _contract(model: nn.Module, x: Tensor, y: Tensor | None, tensors: list[Tensor]) -> list[object]:
    """The kinds of the distributions ``encode(x, y)``, ``decode(z, y)`` (z drawn from the former) and
    ``prior(y)`` give, their tensors added to ``tensors``: a prior of another family with the same parameters
    (Laplace(0, 1) for Normal(0, 1)) differs. A call that raises gives the name of what it raised."""
    vae = cast(VAEModule, model)  # the contract's methods, as ``check_model`` found them
    try:
        qz = vae.encode(x, y)
        made = [qz, vae.decode(qz.sample(), y), vae.prior(y)]
    except Exception as e:  # noqa: BLE001 - the model's and its twin's failures are compared as such
        return [f"raised {type(e).__name__}"]
    kinds: list[object] = []
    for d in made:
        tensors += _parts(d, kinds)
    return kinds


def _keep(seen: dict[str, Held], name: str, module: nn.Module, args: object, output: object) -> None:
    if name not in seen:
        kinds: list[object] = []
        seen[name] = (_parts(output, kinds), kinds)


def _parts(v: object, kinds: list[object], depth: int = 0) -> list[Tensor]:
    """The tensors an output holds: in lists, tuples, dicts, dataclasses (VAEOutput) and distributions; each
    distribution's kind (``_kind``: those inside Independent too) and each transform's class go to ``kinds``."""
    if isinstance(v, Tensor):
        return [v.detach()]
    if depth > 6:
        return []
    if isinstance(v, (list, tuple)):
        items = list(v)
    elif isinstance(v, dict):
        items = list(v.values())
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        items = [getattr(v, f.name) for f in dataclasses.fields(v)]
    elif isinstance(v, (Distribution, Transform)):
        kinds.append(_kind(v))
        items = list(vars(v).values())
    else:
        return []
    return [t for u in items for t in _parts(u, kinds, depth + 1)]


def _kind(v: Distribution | Transform) -> tuple:
    """A distribution's class, batch and event shapes; a transform's class."""
    cls = f"{type(v).__module__}:{type(v).__qualname__}"
    if not isinstance(v, Distribution):
        return (cls,)
    return cls, tuple(getattr(v, "batch_shape", ())), tuple(getattr(v, "event_shape", ()))  # () where not set


def _same(a: Held, b: Held | None) -> bool:
    """Whether two outputs hold distributions of the same kinds and tensors of the same shapes and values."""
    if b is None or a[1] != b[1]:
        return False
    ours, theirs = a[0], b[0]
    if len(ours) != len(theirs) or any(s.shape != t.shape for s, t in zip(ours, theirs)):
        return False
    wide = lambda t: t.to(torch.float64) if not t.is_complex() else torch.view_as_real(t).to(torch.float64)  # noqa: E731
    return all(torch.allclose(wide(s), wide(t), RTOL, ATOL, equal_nan=True) for s, t in zip(ours, theirs))


def _layer(module: nn.Module) -> bool:
    """Whether ``module`` is one of torch.nn's layers (which keep their init arguments)."""
    return type(module).__module__.split(".")[:2] == ["torch", "nn"]


def resumed_difference(model: nn.Module, record: Path) -> str | None:
    """The first submodule of ``model``, given to resume a run, whose class is not that of the submodule of its name
    that the run's model.json (``record``) lists, in words (a standardised table's: those the wrapper held); None
    where they agree or the record lists none. Names on one side only (a likelihood built on first use) count not."""
    try:
        saved = read_json(record)
    except (OSError, VaekitError):  # none, or unreadable
        return None
    listed = saved.get("modules") if isinstance(saved, dict) else None
    if not (
        isinstance(listed, list) and all(isinstance(r, list) and [type(v) for v in r] == [str, str] for r in listed)
    ):
        return None
    was, wrapper = dict(listed), f"{Standardized.__module__}:{Standardized.__qualname__}"
    if was.get("") == wrapper and not isinstance(model, Standardized):  # the model given goes inside the wrapper
        was = {n.partition(".")[2]: c for n, c in was.items() if n.split(".")[0] == "model"}
    return next((_differs(n, c, was[n]) for n, c in module_classes(model) if was.get(n, c) != c), None)


def other_likelihood(model: nn.Module, name: str) -> str | None:
    """That ``model`` (inside a Standardized wrapper) has another likelihood than ``name``, a run's, in words."""
    given = getattr(model.model if isinstance(model, Standardized) else model, "likelihood_name", None)
    if not isinstance(given, str) or given in (name, "auto"):
        return None
    return f"the run's likelihood is {name}, the model given has {given}: build it with likelihood={name!r}"
