"""Items as other libraries hand them over: dicts (Hugging Face datasets, torch pipelines) and channels-last images.

A dict item's data is the entry ``x_key`` names, else the first of ``X_NAMES`` it holds; its label the entry
``y_key`` names, else the first of ``Y_NAMES`` (or none). Entries may be arrays, tensors or PIL images.

Channels-last images (H, W, C) with C in 1, 3, 4 are moved to (C, H, W), with one line saying so, when the model
takes (C, H, W) items; for a model whose input shape is not known yet (one built from its first batch), when the
items look like images: the first axis is not itself 1, 3 or 4 (which would read as channels-first) and either
the dtype is uint8 or the two image sides are at least 8 pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..errors import VaekitError
from .photos import DEEP, note, to_array, to_mode

X_NAMES = ("pixel_values", "image", "input", "x")
Y_NAMES = ("label", "labels", "y")


PIL_MODES = {  # a PIL image's mode -> the mode it is read in, as a folder's images are; others (F) are kept
    **dict.fromkeys(("1", "L", "LA", *DEEP), "L"),
    **dict.fromkeys(("RGB", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr"), "RGB"),
}


def as_array(value: object) -> np.ndarray:
    """An item's array: tensors come to the CPU; PIL images are read as a folder's images are (``photos.to_mode``):
    (H, W) grey or (H, W, 3) RGB uint8 (palette, alpha, CMYK and 1-bit modes converted), 16-bit grey (modes I;16
    and I) as (H, W) float32 divided by 65,535."""
    if isinstance(value, Image.Image) and value.mode in PIL_MODES:
        deep = value.mode in DEEP
        arr = to_array(to_mode(value, PIL_MODES[value.mode]), deep)  # (H, W, C) uint8, uint16 when deep
        arr = arr[:, :, 0] if arr.shape[2] == 1 else arr
        return arr.astype(np.float32) / np.float32(65535.0) if deep else arr
    return np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value)


def grey_channel(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> bool:
    """Whether items of ``shape`` (H, W) are grey images that the model, taking (1, H, W), needs a channel added to."""
    return expected is not None and len(shape) == 2 and tuple(expected) == (1, *shape)


def split_item(item: object, i: int, where: str, x_key: str | None, y_key: str | None) -> tuple[object, object]:
    """(x, y or None) of one Dataset item: a dict, an (x, y) pair, an (x,) tuple or x itself."""
    if isinstance(item, Mapping):
        keys = ", ".join(map(repr, item))
        xk = x_key or next((k for k in X_NAMES if k in item), None)
        if xk not in item:
            wanted = f"no entry {x_key!r}" if x_key else f"none of {', '.join(X_NAMES)}"
            raise VaekitError(f"{where}: item {i} is a dict with keys {keys}: {wanted}; pass x_key")
        if y_key is not None and y_key not in item:
            raise VaekitError(f"{where}: item {i} is a dict with keys {keys}: no entry {y_key!r} (y_key)")
        yk = y_key or next((k for k in Y_NAMES if k in item), None)
        return item[xk], None if yk is None else item[yk]
    if x_key is not None or y_key is not None:
        raise VaekitError(
            f"{where}: x_key and y_key name the entries of dict items; item {i} is a {type(item).__name__}"
        )
    if isinstance(item, (tuple, list)) and len(item) == 1:  # TensorDataset(x) yields (x_i,)
        item = item[0]
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    return item, None


def channels_last(shape: tuple[int, ...], dtype: np.dtype, expected: tuple[int, ...] | None) -> bool:
    """Whether items of ``shape`` are channels-last images (H, W, C) to move to (C, H, W) (see the module's rule)."""
    if len(shape) != 3 or shape[2] not in (1, 3, 4):
        return False
    moved = (shape[2], shape[0], shape[1])
    if expected is not None:
        return tuple(expected) == moved and tuple(expected) != tuple(shape)
    return shape[0] not in (1, 3, 4) and (dtype == np.uint8 or min(shape[:2]) >= 8)


def moved_note(where: str, shape: tuple[int, ...]) -> None:
    note(
        f"{where}: items of shape {tuple(shape)} read as channels-last images, moved to "
        f"{(shape[2], shape[0], shape[1])}"
    )


@torch.no_grad()
def input_shape_of(model: nn.Module) -> tuple[int, ...] | None:
    """The item shape ``model`` takes: its ``input_shape`` when set, else the event shape of p(x|z) for one draw
    from its prior (``generate``); None while unknown (a model built from its first batch). RNGs stay as they were."""
    shape = getattr(model, "input_shape", None)
    if shape is not None or hasattr(model, "input_shape"):
        return None if shape is None else tuple(shape)
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[]):
            model.eval()
            p = next(model.parameters(), None)
            y = torch.zeros(1, dtype=torch.long, device=p.device if p is not None else None)
            px = model.generate(1, y=y if getattr(model, "needs_labels", False) else None)  # type: ignore[operator]
        return tuple(px.event_shape) or None
    except Exception:  # noqa: BLE001 - a model that cannot generate before it sees data: the probe tries it
        return None
    finally:
        model.train(was_training)
