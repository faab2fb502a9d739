"""Items as other libraries hand them over: dicts (Hugging Face datasets, torch pipelines), channels-last images,
data frames, and what of a torch DataLoader fit can take (its dataset, batch size and workers).

A dict item's data is the entry ``x_key`` names, else the first of ``X_NAMES`` it holds; its label the entry
``y_key`` names, else the first of ``Y_NAMES`` (or none). Entries may be arrays, tensors or PIL images.

Channels-last images (H, W, C) with C in 1, 2, 3, 4 (``pixels.CHANNELS``; 2: grey + alpha) are moved to (C, H, W),
with one line saying so, when the model takes (C, H, W) items; for a model whose input shape is not known yet (one
built from its first batch), when the items look like images: the first axis is not itself 1 to 4 (which would
read as channels-first) and either the dtype is uint8 or the two image sides are at least 8 pixels.
"""

from __future__ import annotations

import decimal
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn

from ..core.contract import probing
from ..errors import VaekitError
from .photos import note
from .pixels import CHANNELS, DEEP, to_array, to_mode

NUMBERS = (numbers.Real, decimal.Decimal, np.bool_)  # what a frame's column of dtype object may hold as numbers
X_NAMES = ("pixel_values", "image", "input", "x")
Y_NAMES = ("label", "labels", "y")
ITERABLE = (  # what works instead: a Subset or a sampler cannot make an iterable dataset indexable
    "an iterable-style dataset cannot be split, shuffled or resumed: give a map-style Dataset (with len and "
    "indexing), or its items read into an array or an (x, y) pair"
)


PIL_MODES = {  # a PIL image's mode -> the mode it is read in, as a folder's images are; others (F) are kept
    **dict.fromkeys(("1", "L", "LA", *DEEP), "L"),
    **dict.fromkeys(("RGB", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr"), "RGB"),
}


def as_array(value: object) -> np.ndarray:
    """An item's array: tensors come to the CPU; PIL images are read as a folder's images are: turned upright by
    their EXIF orientation (a copy: the caller's image stays as it is), then (``pixels.to_mode``) (H, W) grey or
    (H, W, 3) RGB uint8 (palette, alpha, CMYK and 1-bit modes converted), 16-bit grey (modes I;16 and I) as
    (H, W) float32 divided by 65,535."""
    if isinstance(value, Image.Image):
        value = ImageOps.exif_transpose(value)  # loads the pixels first: a PNG's eXIf chunk may follow them
    if isinstance(value, Image.Image) and value.mode in PIL_MODES:
        deep = value.mode in DEEP
        arr = to_array(to_mode(value, PIL_MODES[value.mode]), deep)  # (H, W, C) uint8, uint16 when deep
        arr = arr[:, :, 0] if arr.shape[2] == 1 else arr
        return arr.astype(np.float32) / np.float32(65535.0) if deep else arr
    return np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value)


def is_frame(x: object) -> bool:
    """A data frame (pandas, polars): a table of columns that ``to_numpy`` gives as rows."""
    return hasattr(x, "columns") and callable(getattr(x, "to_numpy", None))


def frame_array(frame: Any, where: str) -> np.ndarray:
    """A data frame's rows (N, D) as an array, columns of dtype object holding numbers alone read as numbers
    (``holds_numbers``); refused in one line when a column is not numeric (numbers written as text: said so)."""
    kinds = [getattr(dtype, "kind", "O") for dtype in frame.dtypes]  # Categorical: 'O'
    objects = {j: frame.iloc[:, j] for j, dtype in enumerate(frame.dtypes) if dtype == np.dtype(object)}
    text = [j for j, k in enumerate(kinds) if k not in "biuf" and not (j in objects and holds_numbers(objects[j]))]
    if text:
        names = ", ".join(str(frame.columns[j]) for j in text[:5])
        if all(j in objects and as_numbers(objects[j]) for j in text):
            raise VaekitError(
                f"{where}: the frame's columns {names} are of dtype object, numbers written as text: make them "
                "numbers (df.astype(float))"
            )
        raise VaekitError(
            f"{where}: the frame's columns {names} are not numeric (text or categories): write it as CSV "
            "(df.to_csv(path, index=False)) and train on that file, which reads categories and gaps"
        )
    arr = np.asarray(frame.to_numpy())
    # pandas' nullable Int64/boolean columns come as objects: as floats, their NA as NaN (refused as a gap)
    return arr if arr.dtype.kind in "biuf" else np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan))


def holds_numbers(column: Any) -> bool:
    """Whether a frame's column of dtype object holds numbers alone (bool, int, float, Decimal, NumPy's) or gaps
    (None, NaN, pandas' NA): ``frame_array`` reads them as float64."""
    return all(isinstance(v, NUMBERS) or v is None or type(v).__name__ == "NAType" for v in column.tolist())


def as_numbers(column: Any) -> bool:
    """Whether every value of a frame's column of dtype object is a number or text float() reads as one."""
    try:
        [float(v) for v in column.tolist() if v is not None and type(v).__name__ != "NAType"]
    except (TypeError, ValueError):
        return False
    return True


def grey_channel(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> bool:
    """Whether items of ``shape`` (H, W) are grey images that the model, taking (1, H, W), needs a channel added to."""
    return expected is not None and len(shape) == 2 and tuple(expected) == (1, *shape)


def split_item(item: object, i: int, where: str, x_key: str | None, y_key: str | None) -> tuple[object, object]:
    """(x, y or None) of one Dataset item: a dict, an (x, y) pair, an (x,) tuple or x itself (a tuple of 3+ values
    too: a row); a tuple of 3+ entries holding arrays, (x, y, index), is refused in one line."""
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
    if isinstance(item, (tuple, list)) and len(item) > 2 and not all(_scalar(v) for v in item):  # (x, y, index)
        raise VaekitError(
            f"{where}: item {i} is a {type(item).__name__} of {len(item)} entries: items must be x, (x,), (x, y), or a "
            f"dict with x under x_key (else one of {', '.join(X_NAMES)}) and y under y_key (else {', '.join(Y_NAMES)})"
        )
    return item, None


def _scalar(value: object) -> bool:
    """Whether an item's entry is one value (a row's cell), not an array, tensor or image."""
    return isinstance(value, (int, float, str)) or getattr(value, "ndim", None) == 0


def check_split_shape(where: str, x: np.ndarray, other: np.ndarray, split: str = "test") -> None:
    """Refuse in one line a source whose ``split`` items (M, ...) have another shape than its train items (N, ...)."""
    if other.shape[1:] != x.shape[1:]:
        raise VaekitError(f"{where}: {split} items have shape {other.shape[1:]}, train items {x.shape[1:]}")


def channels_last(shape: tuple[int, ...], dtype: np.dtype, expected: tuple[int, ...] | None) -> bool:
    """Whether items of ``shape`` are channels-last images (H, W, C) to move to (C, H, W) (see the module's rule)."""
    if len(shape) != 3 or shape[2] not in CHANNELS:
        return False
    moved = (shape[2], shape[0], shape[1])
    if expected is not None:
        return tuple(expected) == moved and tuple(expected) != tuple(shape)
    return shape[0] not in CHANNELS and (dtype == np.uint8 or min(shape[:2]) >= 8)


def moved_note(where: str, shape: tuple[int, ...]) -> None:
    """The note that items of ``shape`` (H, W, C) were moved to (C, H, W) (``photos.note``: one process says it)."""
    alpha = " (grey + alpha)" if shape[2] == 2 else ""  # 2 channels: PIL's LA
    note(
        f"{where}: items of shape {tuple(shape)} read as channels-last images{alpha}, moved to "
        f"{(shape[2], shape[0], shape[1])}"
    )


@torch.no_grad()
def input_shape_of(model: nn.Module) -> tuple[int, ...] | None:
    """The item shape ``model`` takes: its ``input_shape`` when set, else the event shape of p(x|z) for one draw
    from its prior (``generate``); None while unknown (a model built from its first batch). RNGs stay as they were."""
    shape = getattr(model, "input_shape", None)
    if shape is not None or hasattr(model, "input_shape"):
        return None if shape is None else tuple(shape)
    try:
        with probing(model) as device:
            y = torch.zeros(1, dtype=torch.long, device=device)
            px = model.generate(1, y=y if getattr(model, "needs_labels", False) else None)  # type: ignore[operator]
        return tuple(px.event_shape) or None
    except Exception:  # noqa: BLE001 - a model that cannot generate before it sees data: the probe tries it
        return None


def loader_refusal(loader: torch.utils.data.DataLoader) -> str | None:
    """What of a DataLoader given to fit cannot take effect, with what to do instead, or None. vaekit reads the
    loader's dataset item by item, and shuffles (by the run's seed), batches (every item once an epoch) and
    shards (across processes) it itself: a sampler, a batch sampler, unbatched loading, a collate_fn, a
    worker_init_fn or a generator would be silently lost."""
    tud, sampler = torch.utils.data, loader.sampler
    if isinstance(loader.dataset, tud.IterableDataset):
        return ITERABLE
    if loader.batch_size is None and loader.batch_sampler is None:
        return (
            "batch_size=None (its items one by one, unbatched) cannot take effect: vaekit cuts the dataset's items "
            "into batches itself; give the loader a batch_size, or pass the Dataset with fit's batch_size"
        )
    if isinstance(sampler, tud.DistributedSampler):
        return (
            "its DistributedSampler cannot take effect: vaekit shards the data across the processes itself (each "
            "takes its share of every batch); pass the loader without it"
        )
    odd = type(sampler) is tud.RandomSampler and (sampler.replacement or sampler._num_samples is not None)
    if loader.batch_size is None or odd or type(sampler) not in (tud.RandomSampler, tud.SequentialSampler):
        name = type(sampler).__name__ + (" with replacement or num_samples" if odd else "")
        what = "a batch_sampler" if loader.batch_size is None else f"its sampler ({name})"
        return (
            f"{what} cannot take effect: vaekit draws seeded batches of every item of the loader's dataset, once an "
            "epoch; pass a torch.utils.data.Subset of it, or fit's batch_size"
        )
    if loader.collate_fn is not tud.default_collate:
        return "its collate_fn cannot take effect: vaekit reads the dataset's items one by one"
    if loader.worker_init_fn is not None:
        return (
            "its worker_init_fn cannot take effect: vaekit reads the dataset in loader processes of its own; do that "
            "set-up in the Dataset (on its first read in a process)"
        )
    if loader.generator is not None:
        return (
            "its generator cannot take effect: vaekit draws the order of the items from fit's seed; pass seed instead"
        )
    return None


def loader_note(loader: torch.utils.data.DataLoader) -> None:
    """One note for drop_last=True, which vaekit's own batches replace (it trains on every item, a lone last one
    joining the batch before). Its order is replaced too, shuffled every epoch by the run's seed (fit's docstring
    and the data guide say so): not noted, since shuffle=False is a DataLoader's default, not a choice made."""
    if loader.drop_last:
        note(
            "DataLoader: drop_last=True not kept: vaekit trains on every item (a lone last item joins the batch before)"
        )
