"""What a checkpoint must hold before resuming restores anything from it: its metadata (the loop's state, the
optimiser's groups and scalars) and its optimiser and RNG tensors, as ``checkpoint.save_checkpoint`` writes them.
A checkpoint from elsewhere is data: a field of another type is one line, not a traceback from torch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import VaekitError
from ..io import parse_json

METADATA = ("sha256", "state", "param_groups", "optim_scalars")
ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}  # what Adam keeps per parameter (amsgrad: max_exp_avg_sq too)


class Unlike(Exception):
    """A part of a checkpoint that is not as vaekit writes it; the message says which."""


def metadata(
    path: str | Path, meta: dict[str, str], check: Callable[[dict], str] | None = None
) -> tuple[dict, object, object]:
    """(the loop's state, the optimiser's param_groups, its scalars) from a checkpoint's metadata, the state checked
    by ``check`` (which says what is wrong, "" where nothing is); anything else is refused in one line: "PATH: not
    a vaekit checkpoint (why)"."""
    try:
        missing = next((k for k in METADATA if k not in meta), None)
        if missing is not None:
            raise Unlike(f"metadata {missing!r} missing")
        state, groups, scalars = (_json(meta, k) for k in ("state", "param_groups", "optim_scalars"))
        if not isinstance(state, dict):
            raise Unlike("its state is not a JSON object")
        why = check(state) if check is not None else ""
        if why:
            raise Unlike(f"state: {why}")
    except Unlike as e:
        raise VaekitError(f"{path}: not a vaekit checkpoint ({e})") from None
    return state, groups, scalars


def optimizer_state(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    groups: object,
    scalars: object,
    optimizer: torch.optim.Optimizer,
) -> tuple[list, dict[int, dict]]:
    """(param_groups, state by parameter number) for ``optimizer.load_state_dict``, checked against ``optimizer``
    with the torch RNG state, or one line: "PATH: not a vaekit checkpoint (why)"."""
    try:
        groups, params = _check_groups(groups, optimizer)
        opt_state = _optimizer_state(tensors, scalars, params, _expected(optimizer))
        _check_rng(tensors)
    except Unlike as e:
        raise VaekitError(f"{path}: not a vaekit checkpoint ({e})") from None
    return groups, opt_state


def _json(meta: dict[str, str], key: str) -> object:
    try:
        return parse_json(meta[key], "metadata", key)
    except VaekitError as e:
        raise Unlike(str(e)) from None


def _kind(v: object) -> object:
    """What a param_groups value must stay: a number, a flag (bool or None), text, or a list of that many numbers."""
    if isinstance(v, (bool, type(None))):
        return "flag"
    if isinstance(v, numbers.Real):
        return "number"
    if isinstance(v, (list, tuple)):
        return ("list", len(v)) if all(_kind(u) == "number" for u in v) else "list"
    return type(v).__name__


def _check_groups(groups: object, optimizer: torch.optim.Optimizer) -> tuple[list, dict[int, torch.Tensor]]:
    """Refuse param_groups other than ``optimizer``'s own in number, parameters or kinds of value; returns them
    and the optimiser's parameters by the numbers the checkpoint's state uses."""
    own = optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(own) or not all(isinstance(g, dict) for g in groups):
        raise Unlike(f"param_groups is not a list of {len(own)} group(s)")
    for g, o in zip(groups, own):
        if g.get("params") != o["params"]:
            raise Unlike("param_groups number other parameters than the model's")
        for k in sorted(o.keys() - {"params"}):  # one missing (a setting a newer torch added) takes the optimiser's
            if k not in g:
                g[k] = o[k]
            elif _kind(g[k]) != _kind(o[k]) or (isinstance(g[k], float) and not math.isfinite(g[k])):
                raise Unlike(f"param_groups' {k} is {str(g[k])[:60]}")
    return groups, {i: p for o, live in zip(own, optimizer.param_groups) for i, p in zip(o["params"], live["params"])}


def _expected(optimizer: torch.optim.Optimizer) -> set[str] | None:
    """The state names each parameter of an Adam ``optimizer`` holds once stepped; None for other optimisers."""
    if not isinstance(optimizer, torch.optim.Adam):
        return None
    return ADAM_STATE | ({"max_exp_avg_sq"} if optimizer.defaults.get("amsgrad") else set())


def _optimizer_state(
    tensors: dict[str, torch.Tensor], scalars: object, params: dict[int, torch.Tensor], names: set[str] | None
) -> dict[int, dict]:
    """The optimiser's state by parameter number from the ``optim.<i>.<name>`` tensors and the JSON ``scalars``:
    each tensor a finite float, a scalar or of its parameter's shape; each scalar a number or a flag."""
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            i, _, name = k.removeprefix("optim.").partition(".")
            p = params.get(int(i)) if i.isdecimal() and name else None
            if p is None or not v.is_floating_point() or v.shape not in (torch.Size([]), p.shape):
                raise Unlike(f"tensor {k!r} is no state of the optimiser's parameters")
            if not v.isfinite().all():
                raise Unlike(f"tensor {k!r} holds NaN or infinite values")
            state.setdefault(int(i), {})[name] = v
    if not isinstance(scalars, dict):
        raise Unlike("optim_scalars is not a JSON object")
    for i, s in scalars.items():
        if not (i.isdecimal() and int(i) in params and isinstance(s, dict)):
            raise Unlike(f"optim_scalars names {i!r}, no parameter of the optimiser's")
        if not all(_kind(v) in ("number", "flag") for v in s.values()):
            raise Unlike(f"optim_scalars of parameter {i}: {str(s)[:60]}")
        state.setdefault(int(i), {}).update(s)
    bad = next((i for i, s in state.items() if names is not None and set(s) != names), None)
    if bad is not None:
        raise Unlike(f"the optimiser's state of parameter {bad} holds {sorted(state[bad])}, not {sorted(names or ())}")
    return state


def _check_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose torch RNG state is missing or not one (checked on a generator of its own)."""
    rng = tensors.get("rng.torch")
    if rng is None:
        raise Unlike("no torch RNG state (rng.torch)")
    if rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise Unlike(f"rng.torch is no torch RNG state ({tuple(rng.shape)} {rng.dtype})")
    try:
        torch.Generator().set_state(rng)
    except RuntimeError as e:
        raise Unlike(f"rng.torch: {e}") from None
    cuda = next(
        (k for k, v in tensors.items() if k.startswith("rng.cuda.") and (v.dtype != torch.uint8 or v.dim() != 1)), None
    )
    if cuda is not None:
        raise Unlike(f"{cuda} is not a CUDA RNG state")
