"""Photo folders as they come: any sizes and modes, resized and centre-cropped as each image is read.

``ImageOptions`` carries the data settings (``data.image_size``, ``data.crop``, ``data.mode``,
``data.skip_unreadable``, ``data.cache``). ``FolderSource`` scans the folder once (headers only: size and mode,
no pixels), then decodes items when asked, in DataLoader workers when streamed. The aspect ratio is kept by a
centre crop, never by stretching; with ``data.crop=none`` an image of another aspect ratio is refused.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import VaekitError
from .images import _list, note_once
from .images import note as note  # where the data layer imports it from
from .pixels import HIGH, OutOfRange, to_array, to_mode

CROPS = ("center", "none")
MODES = ("auto", "L", "RGB")
GREY = ("1", "L", "LA", *HIGH)
PALETTE_STRIDES = {"RGB": 3, "BGR": 3, "RGBA": 4, "RGBX": 4, "BGRA": 4, "BGRX": 4}  # bytes per palette colour
ORIENTATION, ROTATED = 0x0112, (5, 6, 7, 8)  # the EXIF tag, and its values that swap width and height


@dataclass(frozen=True)
class ImageOptions:
    """How a folder's images become items: ``size`` (H, W) or None (all must agree), ``crop`` center | none,
    ``mode`` auto | L | RGB, unreadable files skipped or refused, a uint8 cache in ``cache_dir`` or not."""

    size: tuple[int, int] | None = None
    crop: str = "center"
    mode: str = "auto"
    skip_unreadable: bool = False
    cache: bool = False
    cache_dir: str | None = None
    workers: int = 2  # loader processes that write the cache

    @classmethod
    def of(cls, d: object) -> ImageOptions:
        """From a ``DataConfig`` (``image_size`` [] , [S] or [H, W])."""
        size = list(getattr(d, "image_size", []) or [])
        return cls(
            size=(size[0], size[-1]) if size else None,
            crop=getattr(d, "crop", "center"),
            mode=getattr(d, "mode", "auto"),
            skip_unreadable=getattr(d, "skip_unreadable", False),
            cache=getattr(d, "cache", False),
            cache_dir=getattr(d, "data_dir", None),
            workers=getattr(d, "workers", 2),
        )

    def __post_init__(self):
        """Each setting checked in one line; ``size`` kept as a tuple of ints (a list would never equal a shape)."""
        if self.size is not None:
            pair = tuple(self.size) if isinstance(self.size, (tuple, list)) else ()
            whole = (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in pair)
            if len(pair) != 2 or not all(whole):
                raise VaekitError(f"data.image_size must be (H, W), two whole numbers > 0, got {self.size!r}")
            object.__setattr__(self, "size", (int(pair[0]), int(pair[1])))
        for key, value, allowed in (("data.crop", self.crop, CROPS), ("data.mode", self.mode, MODES)):
            if value not in allowed:
                raise VaekitError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _unreadable(path: Path, e: Exception) -> VaekitError:
    return VaekitError(f"{path}: cannot read image ({type(e).__name__}: {' '.join(str(e).split())})")


def shown_size(im: Image.Image) -> tuple[int, int]:
    """(W, H) of an opened image as shown, after its EXIF orientation, from the header alone (``Image.getexif``:
    PNG's own decodes the pixels to look for an eXIf chunk after them). A TIFF's size is taken from its own
    width and length tags: Pillow 13 reports it turned already (and turns the pixels as it loads them)."""
    tags = getattr(im, "tag_v2", None) if im.format == "TIFF" else None
    w, h = (tags[256], tags[257]) if tags is not None and 256 in tags and 257 in tags else im.size
    return (h, w) if Image.Image.getexif(im).get(ORIENTATION) in ROTATED else (w, h)


def check_aspect(path: Path, w0: int, h0: int, size: tuple[int, int]) -> None:
    """With data.crop=none a (w0, h0) image must have the aspect ratio of ``size`` (H, W) within a pixel."""
    h, w = size
    if abs(w0 * h / w - h0) > 1 and abs(h0 * w / h - w0) > 1:
        raise VaekitError(
            f"{path}: image size {w0}x{h0} has another aspect ratio than data.image_size {w}x{h} "
            "and data.crop=none; set data.crop=center (images are never stretched)"
        )


def _box(w0: int, h0: int, size: tuple[int, int], crop: str) -> tuple[int, int, int, int]:
    """The region of a (w0, h0) image resized to ``size`` (H, W): the centred largest box of the target's aspect
    ratio, or (crop none, whose aspect ratio `_upright` checks) the whole image."""
    h, w = size
    if crop == "none":
        return 0, 0, w0, h0
    s = min(w0 / w, h0 / h)  # source pixels per target pixel
    cw, ch = min(w0, round(w * s)), min(h0, round(h * s))
    left, top = (w0 - cw) // 2, (h0 - ch) // 2
    return left, top, left + cw, top + ch


def _upright(im: Image.Image, path: Path, size: tuple[int, int] | None, crop: str, mode: str) -> None:
    """Decode ``im`` in place: a JPEG at the smallest scale that still covers ``size``, then turned upright by its
    EXIF orientation, before any crop; with crop none the file's own shown size is checked against ``size``."""
    shown = shown_size(im)
    if size is not None and crop == "none":
        check_aspect(path, *shown, size)
    if size is not None and im.format == "JPEG":
        f = max(size[1] / shown[0], size[0] / shown[1])
        im.draft(mode, (math.ceil(im.width * f), math.ceil(im.height * f)))
    ImageOps.exif_transpose(im, in_place=True)


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


def load(path: Path, size: tuple[int, int] | None, crop: str, mode: str, deep: bool) -> np.ndarray:
    """One image -> (H, W, C) uint8 (uint16 when ``deep``): turned upright (EXIF), converted to ``mode`` (L or RGB),
    centre-cropped and resized to ``size`` with Lanczos filtering (none: as stored). RGBA and palette images lose
    their alpha."""
    try:
        with opened(path) as im:
            _upright(im, path, size, crop, mode)
            im = to_mode(im, mode)
            if size is not None:
                box = _box(im.width, im.height, size, crop)
                im = im.resize((size[1], size[0]), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
            return to_array(im, deep)
    except OutOfRange as e:
        raise VaekitError(f"{path}: cannot read image ({e})") from None
    except VaekitError:
        raise
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, DecompressionBombError...)
        raise _unreadable(path, e) from e


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


def scan(files: list[Path], skip: bool) -> tuple[list[int], list[tuple[int, int]], list[str], list[dict]]:
    """Read each file's header (no pixels): kept positions, their (W, H) and modes (a palette of greys as L), and
    the skipped files {file, error}. An unreadable file is one VaekitError line unless ``skip``."""
    kept, sizes, modes, skipped = [], [], [], []
    for i, path in enumerate(files):
        try:
            with opened(path, scan=True) as im:
                sizes.append(shown_size(im))
                modes.append("L" if grey_palette(im) else im.mode)
        except Exception as e:
            err = _unreadable(path, e)
            if not skip:
                raise VaekitError(f"{err}; set data.skip_unreadable=true to skip such files") from e
            skipped.append({"file": str(path), "error": str(err).split(": ", 1)[1]})
            continue
        kept.append(i)
    return kept, sizes, modes, skipped


def drop_empty(
    y: np.ndarray | None, classes: list[str] | None
) -> tuple[np.ndarray | None, list[str] | None, list[str]]:
    """Labels (N,) and their class names without the classes left with no item (all their files unreadable):
    (the labels renumbered 0..K-1 with the names, the names kept, the names dropped)."""
    used = set() if y is None or classes is None else set(np.unique(y).tolist())
    if y is None or classes is None or len(used) == len(classes):
        return y, classes, []
    number = np.cumsum([i in used for i in range(len(classes))]) - 1  # each kept class's new number
    return (
        number[y],
        [c for i, c in enumerate(classes) if i in used],
        [c for i, c in enumerate(classes) if i not in used],
    )


def note_emptied(where: str, names: list[str]) -> None:
    """One line naming the classes whose files were all unreadable, left out (data.skip_unreadable)."""
    if names:
        them = f"class{'es' * (len(names) != 1)} {', '.join(names)}"
        note_once(f"{where}: {them} left with no readable images (data.skip_unreadable): left out of the classes")


class FolderSource:
    """A folder of images (flat, or one subfolder per class) read file by file: ``read(rows)`` gives
    (B, C, H, W) float32 in [0, 1]. ``mode`` is L or RGB, ``skipped`` the files left out by the scan, ``emptied``
    the classes it left with no file."""

    def __init__(self, folder: Path, opts: ImageOptions = ImageOptions()):
        self.where, self.opts = str(folder), opts
        files, labels, self.classes = _list(folder)
        kept, sizes, modes, self.skipped = scan(files, opts.skip_unreadable)
        if not kept:
            raise VaekitError(f"{folder}: none of its {len(files)} image files can be read")
        self.files = [files[i] for i in kept]
        y = None if labels is None else np.asarray(labels, dtype=np.int64)[kept]
        self.labels, self.classes, self.emptied = drop_empty(y, self.classes)
        note_emptied(self.where, self.emptied)
        if opts.size is None:
            _same_size(self.files, sizes)
        elif opts.crop == "none":  # refused even with skip_unreadable: these files read, the setting is wrong
            for path, (w, h) in zip(self.files, sizes):
                check_aspect(path, w, h, opts.size)
        self.auto = "RGB" if any(m not in GREY for m in modes) else "L"  # what data.mode=auto chooses
        self.mode = opts.mode if opts.mode != "auto" else self.auto
        self.deep = self.mode == "L" and _deep(folder, modes)
        w, h = sizes[0] if opts.size is None else opts.size[::-1]
        self.shape, self.scale = (3 if self.mode == "RGB" else 1, h, w), 1.0

    def __len__(self) -> int:
        return len(self.files)

    def read_raw(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, C, H, W) uint8 (uint16 for 16-bit grey folders), as stored after resizing."""
        size = self.opts.size or self.shape[1:]
        items = [
            load(self.files[int(i)], size if self.opts.size else None, self.opts.crop, self.mode, self.deep)
            for i in rows
        ]
        for i, a in zip(rows, items):
            if a.shape[:2] != size:  # the file changed since the scan
                raise VaekitError(
                    f"{self.files[int(i)]}: image size {a.shape[1]}x{a.shape[0]} differs from "
                    f"{size[1]}x{size[0]} of {self.files[0]}; set data.image_size to resize"
                )
        return np.stack(items).transpose(0, 3, 1, 2) if items else np.empty((0, *self.shape), np.uint8)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, C, H, W) float32 in [0, 1]."""
        try:
            x = self.read_raw(rows)
        except VaekitError as e:
            if "cannot read image" not in str(e):
                raise
            if not self.opts.skip_unreadable:  # worded as the scan's and the cache's refusal
                raise VaekitError(f"{e}; set data.skip_unreadable=true to skip such files") from None
            raise VaekitError(
                f"{e}; its header read, so the folder's scan kept it: set data.cache=true to decode "
                "every file before training (unreadable ones are then skipped)"
            ) from None
        return x.astype(np.float32) / np.float32(65535.0 if self.deep else 255.0)


def _deep(folder: Path, modes: list[str]) -> bool:
    """Whether a grey folder is kept at 16 bits: when all its images are deeper than 8 bits; a folder that mixes
    them with 8-bit ones is read at 8 bits, said in one line, so that one likelihood fits all its images."""
    n = sum(m in HIGH for m in modes)
    if 0 < n < len(modes):
        note_once(
            f"{folder}: {n} of its {len(modes)} images are 16-bit, 32-bit or float grey, the others 8-bit: all "
            "are read at 8 bits (rounded), so that one likelihood fits them"
        )
    return n == len(modes)


def _same_size(files: list[Path], sizes: list[tuple[int, int]]) -> None:
    """Without data.image_size every image must have the first one's size."""
    (w0, h0) = sizes[0]
    for path, (w, h) in zip(files, sizes):
        if (w, h) != (w0, h0):
            raise VaekitError(
                f"{path}: image size {w}x{h} differs from {w0}x{h0} of {files[0]}; "
                "set data.image_size to resize (and crop) the images to one size"
            )
