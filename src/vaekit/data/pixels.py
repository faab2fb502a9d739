"""How an opened image's pixels become an array: its mode (L or RGB) and its depth, grey deeper than 8 bits
(16-bit, 32-bit I, float F) kept at 16 bits or rounded to 8, on the way through Pillow's resizing; and rows of
pixels of an image dtype (N, S*S) that are read as a table, said (``flat_images``).

``data.photos`` reads a folder's images through these; ``data.containers`` a PIL image handed over as an item.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image

from ..errors import VaekitError

DEEP = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16-bit grey (I: 32-bit, read when it holds 0..65535)
HIGH = (*DEEP, "F")  # grey deeper than 8 bits (F: float, read when in [0, 1]): kept at 16 bits where all are
RANGES = {"F": (0.0, 1.0, "[0, 1]"), "I": (0, 65535, "0..65535")}  # values a float or 32-bit image is read in
CHANNELS = (1, 2, 3, 4)  # an image's channel counts: grey, grey + alpha (PIL's LA), RGB, RGBA
FLAT_SIDE = 16  # the smallest side of an image taken to lie flattened in a row: 256 = 16x16 (narrower uint8 rows:
# as likely a table of counts or codes; 8x8 digits come as images)


class OutOfRange(VaekitError):
    """A float (F) or 32-bit (I) image whose values lie outside the range vaekit reads it in (``RANGES``)."""


def on_8_bit_scale(im: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit (I) or float (F) grey image -> (H, W) float32 on the 8-bit scale (0..255); an I or F image
    outside ``RANGES`` raises ``OutOfRange`` naming its mode and its values' range."""
    a = np.asarray(im)
    lo_ok, hi_ok, want = RANGES.get(im.mode, (0, 65535, ""))
    if im.mode in RANGES and (not np.isfinite(a).all() or a.min() < lo_ok or a.max() > hi_ok):
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        raise OutOfRange(
            f"mode {im.mode} values in [{lo:.6g}, {hi:.6g}]{' and NaN' * (finite.size < a.size)} lie outside "
            f"{want}; vaekit reads float images in [0, 1] and 32-bit ones in 0..65535 (as 16-bit)"
        )
    return a.astype(np.float32) * np.float32(255.0) if im.mode == "F" else a.astype(np.float32) / np.float32(257.0)


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """``im`` in ``mode`` (L or RGB); 16-bit, 32-bit and float grey become float (mode F) on the 8-bit scale, so
    that resizing and reducing keep the depth (``to_array`` takes it back), or are rounded to 8 bits for RGB.
    A palette's transparency is dropped by way of RGBA: converted straight to L or RGB, bytes of transparency
    make Pillow warn on every image; RGBA's transparent pixels keep their stored colour (no background)."""
    if im.mode in HIGH:
        a = on_8_bit_scale(im)
        if mode == "L":
            return Image.fromarray(a, "F")
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert(mode)


def to_array(im: Image.Image, deep: bool) -> np.ndarray:
    """An image from ``to_mode`` (resized or not) -> (H, W, C) uint8, or uint16 when ``deep`` (an 8-bit image's
    levels times 257, so that dividing by 65,535 gives what dividing by 255 would)."""
    arr = np.asarray(im)
    if arr.dtype == np.float32:  # a 16-bit image, on the 8-bit scale: back to 16 bits or down to 8
        arr = np.clip(np.round(arr * (257.0 if deep else 1.0)), 0, 65535 if deep else 255)
    elif deep:
        arr = arr.astype(np.uint16) * np.uint16(257)  # an 8-bit image among 16-bit ones
    arr = arr.astype(np.uint16 if deep else np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def flat_images(shape: tuple[int, ...], dtype: npt.DTypeLike, where: str) -> str:
    """The note for items (N, D) of an image dtype (uint8, uint16: divided as images are when 4-D) whose width D is
    S * S or 3 * S * S (S >= FLAT_SIDE: 784 = 28 x 28, 3,072 = 3 x 32 x 32): read as a table of D numbers as they
    are, and how to have them read as images; '' for other arrays (the shape alone decides: nothing is read). It
    names no N: said by ``note_once`` for each batch of a streamed file, it is said once."""
    from .item_arrays import IMAGE_SCALES  # it imports torch: not at import time

    scale = IMAGE_SCALES.get(np.dtype(dtype))
    if scale is None or len(shape) != 2:
        return ""
    width = shape[1]
    channels = 3 if width % 3 == 0 and math.isqrt(width // 3) ** 2 == width // 3 else 1
    side = math.isqrt(width // channels)
    if side * side * channels != width or side < FLAT_SIDE:
        return ""
    grid = f"{side}, {side}"
    how = (
        f"(N, 3, {grid}) (x.reshape(-1, 3, {grid})), or (N, {grid}, 3) where each pixel's R, G, B lie together"
        if channels == 3
        else f"(N, {grid}) or (N, 1, {grid}) (x.reshape(-1, {grid}))"
    )
    return (
        f"{where}: {np.dtype(dtype)} items (N, {width}) are read as a table of {width:,} numbers, as they "
        f"are (0..{scale:.0f}, not divided by {scale:,.0f} as images are); if each row is a {side}x{side}"
        f"{' colour' * (channels == 3)} image flattened, reshape the array to {how} to have it read as images"
    )
