"""A photo folder's headers, read without the pixels: each image's size as shown (after its EXIF orientation),
mode and frames, and the one line for a file Pillow cannot read. ``photos`` builds its sources on them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..errors import VaekitError
from .images import note_once

PALETTE_STRIDES = {"RGB": 3, "BGR": 3, "RGBA": 4, "RGBX": 4, "BGRA": 4, "BGRX": 4}  # bytes per palette colour
ORIENTATION, ROTATED = 0x0112, (5, 6, 7, 8)  # the EXIF tag, and its values that swap width and height
HINT = "set data.skip_unreadable=true to skip such files"


class Headers(NamedTuple):
    """What ``scan`` reads of a folder's files: per file whose header reads (``kept``, positions in the list
    scanned), its (W, H) as shown, mode (a palette of greys as L) and EXIF orientation (0: none); the files
    left out {file, error}; the positions among ``kept`` of files of several frames (animated, multi-page)."""

    kept: list[int]
    sizes: list[tuple[int, int]]
    modes: list[str]
    skipped: list[dict]
    turns: list[int]
    frames: list[int]


def unreadable(path: Path, e: Exception) -> VaekitError:
    """The one line for a file Pillow cannot read: an empty file said so, else Pillow's error without the path
    it repeats ("cannot identify image file 'x.png'")."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    why = "empty file (0 bytes)" if empty else f"{type(e).__name__}: {str(e).replace(f' {str(path)!r}', '')}"
    return VaekitError(f"{path}: cannot read image ({' '.join(why.split())})")


def turn_of(im: Image.Image) -> int:
    """The EXIF orientation of an opened image (1-8; 0: none), from its header."""
    turn = Image.Image.getexif(im).get(ORIENTATION)
    return turn if isinstance(turn, int) else 0


def shown_size(im: Image.Image) -> tuple[int, int]:
    """(W, H) of an opened image as shown, after its EXIF orientation, from the header alone (``Image.getexif``:
    PNG's own decodes the pixels to look for an eXIf chunk after them). So a PNG whose eXIf chunk follows its
    pixels is sized here as stored; decoding turns it (``photos._upright``), which can change its size. A TIFF's
    size is taken from its own width and length tags: Pillow 13 reports it turned already (and turns the pixels
    as it loads them)."""
    tags = getattr(im, "tag_v2", None) if im.format == "TIFF" else None
    w, h = (tags[256], tags[257]) if tags is not None and 256 in tags and 257 in tags else im.size
    return (h, w) if turn_of(im) in ROTATED else (w, h)


def as_shown(w: int, h: int, turn: int = 0) -> str:
    """'WxH' of an image as shown; one its EXIF orientation turns says so, with its size as stored."""
    return f"{w}x{h} as shown (EXIF orientation {turn}; stored {h}x{w})" if turn in ROTATED else f"{w}x{h}"


def check_aspect(path: Path, w0: int, h0: int, size: tuple[int, int], turn: int = 0) -> None:
    """With data.crop=none a (w0, h0) image must have the aspect ratio of ``size`` (H, W) within a pixel."""
    h, w = size
    if abs(w0 * h / w - h0) > 1 and abs(h0 * w / h - w0) > 1:
        raise VaekitError(
            f"{path}: image size {as_shown(w0, h0, turn)} has another aspect ratio than data.image_size {w}x{h} "
            "and data.crop=none; set data.crop=center (images are never stretched)"
        )


def box(w0: int, h0: int, size: tuple[int, int], crop: str) -> tuple[int, int, int, int]:
    """The region of a (w0, h0) image resized to ``size`` (H, W): the centred largest box of the target's aspect
    ratio, or (crop none, whose aspect ratio ``check_aspect`` checks) the whole image."""
    h, w = size
    if crop == "none":
        return 0, 0, w0, h0
    s = min(w0 / w, h0 / h)  # source pixels per target pixel
    cw, ch = min(w0, round(w * s)), min(h0, round(h * s))
    left, top = (w0 - cw) // 2, (h0 - ch) // 2
    return left, top, left + cw, top + ch


def grey_palette(im: Image.Image) -> bool:
    """Whether a palette image's colours all have R == G == B, from the palette in its header (``getpalette``
    would decode the pixels)."""
    pal = im.palette if im.mode in ("P", "PA") else None
    stride = PALETTE_STRIDES.get(pal.rawmode or pal.mode) if pal is not None else None
    if pal is None or stride is None:
        return False
    rgb = np.frombuffer(bytes(pal.palette), np.uint8)
    rgb = rgb[: len(rgb) // stride * stride].reshape(-1, stride)[:, :3]  # (colours, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


@contextmanager
def opened(path: Path, scan: bool = False) -> Iterator[Image.Image]:
    """``Image.open(path)`` without Pillow's two-line DecompressionBombWarning: the scan says it in one line (above
    twice that many pixels Pillow's DecompressionBombError makes the file unreadable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            limit = Image.MAX_IMAGE_PIXELS
            if scan and limit and im.width * im.height > limit:
                note_once(
                    f"{path}: {im.width}x{im.height} pixels, above Pillow's decompression-bomb warning limit of "
                    f"{limit:,}; read all the same"
                )
            yield im


def _layered(im: Image.Image) -> bool:
    """Whether an opened image holds several frames (an animated GIF, WebP or PNG, a multi-page TIFF); a camera's
    MPO JPEG (a picture and its previews) is one image."""
    return im.format != "MPO" and bool(getattr(im, "is_animated", False))


def scan(files: list[Path], skip: bool) -> Headers:
    """Read each file's header (no pixels). Unreadable files are left out where ``skip``; else the first is one
    VaekitError line, which counts the others (every header is read first: the cost of a good folder's scan)."""
    h = Headers([], [], [], [], [], [])
    bad: list[tuple[Path, VaekitError]] = []
    for i, path in enumerate(files):
        try:
            with opened(path, scan=True) as im:
                size, mode, turn = shown_size(im), "L" if grey_palette(im) else im.mode, turn_of(im)
                several = _layered(im)
        except Exception as e:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, DecompressionBomb...)
            bad.append((path, unreadable(path, e)))
            continue
        if several:
            h.frames.append(len(h.kept))
        h.kept.append(i)
        h.sizes.append(size)
        h.modes.append(mode)
        h.turns.append(turn)
    if bad and not skip:
        more = f"; {len(bad) - 1} other file{'s' * (len(bad) != 2)} cannot be read either" if len(bad) > 1 else ""
        raise VaekitError(f"{bad[0][1]}{more}; {HINT}")
    h.skipped.extend({"file": str(path), "error": str(e)[len(str(path)) + 2 :]} for path, e in bad)
    return h
