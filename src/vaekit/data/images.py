"""A folder of images: flat (no labels) or one subfolder per class (labels are sorted folder names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.data.core import RawData
from vaekit.errors import VaekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_GRAY_8BIT = ("1", "L", "LA")
_GRAY_16BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not p.name.startswith("."))


def _list(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image paths, their class indices and the class names (None, None for a flat folder)."""
    flat = _images_in(folder, recursive=False)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {d.name: _images_in(d, recursive=True) for d in subdirs}
    per_class = {k: v for k, v in per_class.items() if v}
    if flat and per_class:
        raise VaekitError(f"{folder}: mixes images at the top level with class subfolders "
                          f"({', '.join(per_class)}); use one layout")
    if flat:
        return flat, None, None
    if not per_class:
        raise VaekitError(f"{folder}: no IDX files and no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    classes = list(per_class)
    files = [p for c in classes for p in per_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in per_class[c]]
    return files, labels, classes


def read_image(path: Path) -> np.ndarray:
    """One image -> (H, W, C) float32 in [0, 1]: C = 1 for grayscale, 3 for everything else (RGB)."""
    try:
        with Image.open(path) as im:  # Pillow's decompression-bomb limit stays on
            if im.mode in _GRAY_16BIT:
                arr = np.asarray(im, dtype=np.float32) / 65535.0  # 16-bit PNGs keep their depth
            elif im.mode in _GRAY_8BIT:
                arr = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, DecompressionBombError...)
        raise VaekitError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_image_folder(folder: Path) -> RawData:
    """All images in ``folder`` -> RawData with x (N, C, H, W) in [0, 1]; sizes must agree."""
    files, labels, classes = _list(folder)
    arrays = []
    for path in files:
        arr = read_image(path)
        if arrays and arr.shape[:2] != arrays[0].shape[:2]:
            (h0, w0), (h, w) = arrays[0].shape[:2], arr.shape[:2]
            raise VaekitError(f"{path}: image size {w}x{h} differs from {w0}x{h0} of {files[0]}; "
                              "resize the images to one size")
        arrays.append(arr)
    if any(a.shape[2] == 3 for a in arrays):  # some colour images: grayscale ones join as RGB
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    x = np.stack(arrays).transpose(0, 3, 1, 2)  # (N, C, H, W)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    return RawData(x, y, str(folder), 1.0, classes=classes)
