"""Photo folders as they come: any sizes and modes, resized and centre-cropped as each image is read.

``ImageOptions`` carries the data settings (``data.image_size``, ``data.crop``, ``data.mode``,
``data.skip_unreadable``, ``data.cache``). ``FolderSource`` scans the folder once (headers only: size and mode,
no pixels), then decodes items when asked, in DataLoader workers when streamed. The aspect ratio is kept by a
centre crop, never by stretching; with ``data.crop=none`` an image of another aspect ratio is refused.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..errors import VaekitError
from .images import _list, note_once
from .images import note as note  # where the data layer imports it from
from .photo_notes import Stored, mode_line, note_frames, resized, say_chosen
from .photo_scan import HINT, as_shown, box, check_aspect, opened, shown_size, turn_of, unreadable
from .photo_scan import scan as scan  # where the tests import it from
from .pixels import HIGH, OutOfRange, to_array, to_mode

CROPS = ("center", "none")
MODES = ("auto", "L", "RGB")
RUN_ITEMS = "run_items"  # set on a scoring verb's copy of a run's DataConfig by ``at_run_items``, never saved


@dataclass(frozen=True)
class ImageOptions:
    """How a folder's images become items: ``size`` (H, W), S (S x S) or None (all must agree), ``crop`` center | none,
    ``mode`` auto | L | RGB, unreadable files skipped or refused, a uint8 cache in ``cache_dir`` or not;
    ``run_mode``: the mode is a run's channels (``at_run_items``), the images it converts said in one line."""

    size: tuple[int, int] | None = None
    crop: str = "center"
    mode: str = "auto"
    skip_unreadable: bool = False
    cache: bool = False
    cache_dir: str | None = None
    workers: int = 2  # loader processes that write the cache
    run_mode: bool = False

    @classmethod
    def of(cls, d: object) -> ImageOptions:
        """From a ``DataConfig`` (``image_size`` [] , [S] or [H, W])."""
        size = list(getattr(d, "image_size", []) or [])
        if len(size) > 2:  # as the config's check words it: [S] or [H, W]
            raise VaekitError(f"config: data.image_size must be one size or H,W, got {size!r}", key="data.image_size")
        return cls(
            size=(size[0], size[-1]) if size else None,
            crop=getattr(d, "crop", "center"),
            mode=getattr(d, "mode", "auto"),
            skip_unreadable=getattr(d, "skip_unreadable", False),
            cache=getattr(d, "cache", False),
            cache_dir=getattr(d, "data_dir", None),
            workers=getattr(d, "workers", 2),
            run_mode=getattr(d, RUN_ITEMS, False),
        )

    def __post_init__(self):
        """Each setting checked in one line; ``size`` kept as a tuple of ints (a list would never equal a shape)."""
        if self.size is not None:
            size: Any = self.size  # S (S x S) too, made the pair it is typed as
            one = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
            pair = (size, size) if one else tuple(size) if isinstance(size, (tuple, list)) else ()
            whole = (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in pair)
            if len(pair) != 2 or not all(whole):
                raise VaekitError(f"data.image_size must be (H, W), two whole numbers > 0, got {self.size!r}")
            object.__setattr__(self, "size", (int(pair[0]), int(pair[1])))
        for key, value, allowed in (("data.crop", self.crop, CROPS), ("data.mode", self.mode, MODES)):
            if value not in allowed:
                raise VaekitError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _upright(im: Image.Image, path: Path, size: tuple[int, int] | None, crop: str, mode: str) -> None:
    """Decode ``im`` in place: a JPEG at the smallest scale that still covers ``size``, then turned upright by its
    EXIF orientation, before any crop; with crop none the file's own shown size is checked against ``size``. A
    PNG's orientation is read once its pixels are loaded (its eXIf chunk may follow them: the header scan's read
    would leave Pillow an empty one to reuse); other formats hold theirs in the header."""
    late = im.format == "PNG"
    shown, turn = (None, 0) if late else (shown_size(im), turn_of(im))  # (W, H) as shown, before a draft
    if size is not None and im.format == "JPEG" and shown is not None:
        f = max(size[1] / shown[0], size[0] / shown[1])
        im.draft(mode, (math.ceil(im.width * f), math.ceil(im.height * f)))
    im.load()
    turn = turn_of(im) if late else turn
    ImageOps.exif_transpose(im, in_place=True)
    if size is not None and crop == "none":
        check_aspect(path, *(shown or im.size), size, turn)


def load(path: Path, size: tuple[int, int] | None, crop: str, mode: str, deep: bool) -> np.ndarray:
    """One image -> (H, W, C) uint8 (uint16 when ``deep``): turned upright (EXIF), converted to ``mode`` (L or RGB),
    centre-cropped and resized to ``size`` with Lanczos filtering (none: as stored). RGBA and palette images lose
    their alpha."""
    try:
        with opened(path) as im:
            _upright(im, path, size, crop, mode)
            im = to_mode(im, mode)
            if size is not None:
                region = box(im.width, im.height, size, crop)
                im = im.resize((size[1], size[0]), Image.Resampling.LANCZOS, box=region, reducing_gap=3.0)
            return to_array(im, deep)
    except OutOfRange as e:
        raise VaekitError(f"{path}: cannot read image ({e})") from None
    except VaekitError:
        raise
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, DecompressionBombError...)
        raise unreadable(path, e) from e


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
        found = scan(files, opts.skip_unreadable)
        self.skipped = found.skipped
        if not found.kept:
            n, first = len(files), found.skipped[0]  # of several files, the first named with why
            none = "its one image file cannot be read" if n == 1 else f"none of its {n} image files can be read"
            raise VaekitError(f"{folder}: {none}" + f"; first {first['file']}: {first['error']}" * (n > 1))
        self.files = [files[i] for i in found.kept]
        y = None if labels is None else np.asarray(labels, dtype=np.int64)[found.kept]
        self.labels, self.classes, self.emptied = drop_empty(y, self.classes)
        note_emptied(self.where, self.emptied)
        _check_sizes(self.files, found.sizes, found.turns, opts)
        note_frames(self.where, [self.files[j] for j in found.frames])
        self.stored = Stored.of(found.modes)
        self.auto = "RGB" if self.stored.colour.any() else "L"  # what data.mode=auto chooses from the headers
        self.mode = opts.mode if opts.mode != "auto" else self.auto
        self.deep = self.mode == "L" and _deep(folder, self.files, found.modes)
        self.sizes = found.sizes  # (W, H) of each file as shown: made ``opts.size``, said at load (``chosen``)
        w, h = found.sizes[0] if opts.size is None else opts.size[::-1]
        self.shape, self.scale = (3 if self.mode == "RGB" else 1, h, w), 1.0

    def __len__(self) -> int:
        return len(self.files)

    def head(self, n: int) -> FolderSource:
        """Its first ``n`` items alone, unlabelled (a copy; nothing decoded): a limit of the items in file order
        applied before decoding. Their labels are ``labels[:n]``, numbered over every file."""
        cut = copy.copy(self)
        cut.files, cut.labels, cut.classes, cut.emptied = self.files[:n], None, None, []
        return cut

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
                raise VaekitError(f"{e}; {HINT}") from None
            raise VaekitError(
                f"{e}; its header read, so the folder's scan kept it: set data.cache=true to decode "
                "every file before training (unreadable ones are then skipped)"
            ) from None
        return x.astype(np.float32) / np.float32(65535.0 if self.deep else 255.0)

    def pixel_mode(self, colour: np.ndarray) -> str:
        """The mode of decoded items (``colour`` (B,): whether each has colour): L where data.mode=auto read
        them as RGB (some stored in colour) and none has colour, else ``mode``."""
        return "L" if self.opts.mode == "auto" and self.mode == "RGB" and not colour.any() else self.mode

    def chosen(self, colour: np.ndarray | None = None, rows: np.ndarray | None = None) -> str:
        """Say in one line (once) what loading chose: how many images were cropped and upscaled and, under
        data.mode=auto, the mode and why (``photo_notes``), from the pixels of the decoded items ``rows``
        (default all; ``colour`` (B,): whether each has colour), else (None: streamed) from the headers."""
        rows = np.arange(len(self)) if rows is None else rows
        stored = Stored(self.stored.colour[rows], self.stored.names)
        files = [self.files[int(i)] for i in rows]
        if self.opts.mode == "auto":
            why = mode_line(stored, colour, files, self.where)
        else:  # at a run of arrays' channels (at_run_items): the images that converts
            why = _converted(stored.colour, self.mode) if self.opts.run_mode else ""
        made = resized([self.sizes[int(i)] for i in rows], self.opts.size, self.opts.crop)  # the items decoded
        return say_chosen(self.where, made, why)


def at_run_items(d: Any, shape: Sequence[int]) -> None:
    """Make a scoring verb's copy of a run's DataConfig ``d`` read a photo folder other than the run's data at the
    H, W of its items ``shape`` (C, H, W), where it set no data.image_size; a run of arrays (data.mode auto) at
    their channels too (L for 1, RGB for 3), before any image is decoded, marked ``RUN_ITEMS``: the images that
    converts are said, and its own file, no folder, is read as it is, not refused for image settings."""
    if len(shape) != 3 or d.image_size:
        return
    if d.mode == "auto":
        d.mode = {1: "L", 3: "RGB"}.get(shape[0], "auto")
        setattr(d, RUN_ITEMS, True)
    d.image_size = list(shape[1:])


def _converted(colour: np.ndarray, mode: str) -> str:
    """'mode L: its 3 images stored in colour made grey': the images of ``colour`` (N,) (whether each is stored in
    colour) that reading them in ``mode`` converts; '' where it converts none."""
    n, k = len(colour), int(colour.sum()) if mode == "L" else int((~colour).sum())
    which = f"{k} of {n} images" if k < n else f"its {n} images" if n > 1 else "its image"
    made = "stored in colour made grey" if mode == "L" else "stored grey made RGB (three equal channels)"
    return f"mode {mode}: {which} {made}" if k else ""


def _deep(folder: Path, files: list[Path], modes: list[str]) -> bool:
    """Whether a grey folder is kept at 16 bits: when all its images whose pixels read are deeper than 8 bits; a
    folder that mixes them with 8-bit ones is read at 8 bits, said in one line, so that one likelihood fits all
    its images. Its 8-bit files are decoded until one reads (an unreadable one, skipped, does not count)."""
    high = [m in HIGH for m in modes]
    n = sum(high)
    low = [f for f, h in zip(files, high) if not h]
    if not n or not any(map(_pixels_read, low)):
        return bool(n)
    note_once(
        f"{folder}: {n} of its {len(modes)} images are 16-bit, 32-bit or float grey, the others 8-bit: all "
        "are read at 8 bits (rounded), so that one likelihood fits them"
    )
    return False


def _pixels_read(path: Path) -> bool:
    """Whether the pixels of a file whose header reads can be decoded (not a truncated JPEG)."""
    try:
        with opened(path) as im:
            im.load()
    except Exception:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, DecompressionBombError...)
        return False
    return True


def _check_sizes(files: list[Path], sizes: list[tuple[int, int]], turns: list[int], opts: ImageOptions) -> None:
    """Without data.image_size every image must have the first one's size (W, H) as shown; with data.crop=none
    the aspect ratio of data.image_size (refused even with skip_unreadable: these files read, the setting is
    wrong). An image its EXIF orientation turns is named with its size as stored too."""
    if opts.size is not None:
        if opts.crop == "none":
            for path, (w, h), turn in zip(files, sizes, turns):
                check_aspect(path, w, h, opts.size, turn)
        return
    first = as_shown(*sizes[0], turns[0])
    for path, (w, h), turn in zip(files, sizes, turns):
        if (w, h) != sizes[0]:
            raise VaekitError(
                f"{path}: image size {as_shown(w, h, turn)} differs from {first} of {files[0]}; "
                "set data.image_size to resize (and crop) the images to one size"
            )
