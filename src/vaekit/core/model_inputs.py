"""What the functions that take a model itself (``iwae_bound``, the anomaly scores) take: a model, not a Run;
floating-point items of the model's item shape; the items' labels as label numbers in any of the forms a run's
methods take numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import VaekitError


def check_module(model: object, what: str) -> None:
    """Refuse, in one line, a ``model`` that is no model (``what`` names the function): a Run (or another holder
    of a model in ``.model``) is named, with its model to pass instead."""
    if hasattr(model, "parameters"):
        return
    name = type(model).__name__
    if isinstance(getattr(model, "model", None), nn.Module):  # a Run: its model is what is read
        raise VaekitError(f"{what} takes a model, got a {name}: pass {name.lower()}.model", key="model")
    raise VaekitError(f"{what} takes a model (a torch.nn.Module), got {name}", key="model")


class Shaped(Protocol):
    """Items with a shape (N, *shape): a tensor, or data read lazily from files (``data.lazy.LazyArray``)."""

    @property
    def shape(self) -> Sequence[int]: ...


def model_shape(model: object) -> tuple[int, ...] | None:
    """The item shape a model declares (``input_shape``, or that of the model a wrapper such as ``Standardized``
    holds), or None (a model not built yet, or a user's own that states none)."""
    shape = getattr(model, "input_shape", None) or getattr(getattr(model, "model", None), "input_shape", None)
    return None if shape is None else tuple(shape)


def check_items(shape: Sequence[int] | None, x: Shaped, where: str = "") -> None:
    """Refuse items x (N, *shape) of another item shape than the model's ``shape`` (None: not known, nothing
    checked), in one line prefixed by ``where`` (the function's name, where given); one item without its batch
    axis is told so."""
    if shape is None or tuple(x.shape[1:]) == tuple(shape):
        return
    want, got = tuple(shape), tuple(x.shape)
    one = "; one item is x[None], with its batch axis" if got == want else ""
    raise VaekitError(
        f"{where}{': ' if where else ''}x must be (N, {', '.join(map(str, want))}): items of the model's shape "
        f"{want}; got {got}{one}"
    )


def check_batch(batch: Sequence[int], x: Shaped, where: str = "") -> None:
    """Refuse p(x|z) of batch shape ``batch`` whose first size is not the number of items x (N, ...): a decoder
    that gives fewer (one p(x|z) broadcast over the batch) would be scored on every item without a word."""
    if batch and batch[0] != x.shape[0]:
        raise VaekitError(
            f"{where}{': ' if where else ''}p(x|z) has batch shape {tuple(batch)} for {x.shape[0]} items: the "
            "decoder must give one p(x|z) per code, batch first (it gave fewer, which would be broadcast)"
        )


def float_items(x: object, p: Tensor | None) -> Tensor:
    """Items x (B, *shape) as a tensor on the device and in the float dtype of the model's parameter ``p`` (a
    tensor given stays where it is); items that are not floating point are refused in one line (uint8 images:
    scaled by the caller)."""
    x = x if isinstance(x, Tensor) else torch.as_tensor(x, device=getattr(p, "device", None))
    if not x.is_floating_point():
        raise VaekitError(
            f"iwae_bound: x has dtype {x.dtype}, not floating point: scale uint8 images to [0, 1] (x / 255) or "
            "pass the items to a run's methods (vaekit.evaluate), which read them as fit does"
        )
    return x if p is None or not p.is_floating_point() else x.to(p.dtype)


def label_tensor(y: object, n: int, device: torch.device | None = None) -> Tensor:
    """Labels of n items -> (n,) int64 label numbers on ``device``: one label (an int, a 0-d array or tensor),
    repeated n times, or one per item (a list, a numpy array, a tensor); bools as 0 and 1, whole-number floats
    as integers. Text (class names: a run's to read) or a number that is not whole is refused in one line; the
    count and the range are the model's to check (``contract.check_labels``)."""
    if isinstance(y, Tensor):
        t = y.detach()
    else:
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise VaekitError(
                f"labels y must be label numbers (integers 0..K-1), got {_kind(arr)}: a model has no class names "
                "(a run's methods read them)",
                key="y",
            )
        t = torch.as_tensor(arr)
    if t.is_complex():
        raise VaekitError(f"labels y must be label numbers (integers 0..K-1), got dtype {t.dtype}", key="y")
    t = t.reshape(1).expand(n) if t.dim() == 0 else t  # one label for every item
    if t.is_floating_point():
        odd = t[~torch.isfinite(t) | (t != t.round())]  # 1.5 is no class, nor NaN
        if len(odd):
            raise VaekitError(f"labels y must be whole numbers (label numbers), found {odd[0].item()}", key="y")
    return t.to(device, torch.long)


def _kind(arr: np.ndarray) -> str:
    """What labels that are not numbers are, for a message: text (class names), or values of their dtype."""
    return (
        "text"
        if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and any(isinstance(v, str) for v in arr.flat))
        else f"{arr.dtype} values"
    )
