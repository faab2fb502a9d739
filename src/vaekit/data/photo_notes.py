"""What loading a photo folder chose, said in one line: how many images were cropped and upscaled to
data.image_size (the largest factor), and the mode data.mode=auto took and why (images whose pixels are all
grey, R = G = B, are one channel however stored, where the pixels are decoded before training)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import note_once
from .photo_scan import box
from .pixels import HIGH

GREY = ("1", "L", "LA", *HIGH)  # modes stored grey


@dataclass(frozen=True)
class Stored:
    """How a folder's images are stored, from their headers: (N,) whether each is in a colour mode, and the
    colour modes' names ('RGB', 'P/RGB')."""

    colour: np.ndarray
    names: str

    @classmethod
    def of(cls, modes: list[str]) -> Stored:
        return cls(np.array([m not in GREY for m in modes], bool), "/".join(sorted(set(modes) - set(GREY))))


def colour_items(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W) images -> (B,) whether each has colour: a pixel whose R, G and B differ (C = 1: none)."""
    if x.shape[1] < 3:
        return np.zeros(len(x), bool)
    return ((x[:, 0] != x[:, 1]) | (x[:, 0] != x[:, 2])).reshape(len(x), -1).any(1)


def resized(sizes: list[tuple[int, int]], size: tuple[int, int] | None, crop: str) -> str:
    """'24 images made 16x16: 20 cropped to their aspect ratio, 6 upscaled (by up to 2.5x)': what making images
    of (W, H) ``sizes`` ``size`` (H, W) does to them, said W x H; '' where none is cropped or upscaled (or no size
    is set)."""
    if size is None:
        return ""
    h, w = size
    cut, up, most = 0, 0, 1.0
    for w0, h0 in sizes:
        left, top, right, bottom = box(w0, h0, size, crop)
        cut += (right - left, bottom - top) != (w0, h0)
        f = max(w / (right - left), h / (bottom - top))  # target pixels per source pixel
        up, most = up + (f > 1), max(most, f)
    ratio = f"{cut} cropped to {'its' if cut == 1 else 'their'} aspect ratio"  # the size's
    done = [ratio] * bool(cut) + [f"{up} upscaled (by up to {most:.3g}x)"] * bool(up)
    n = len(sizes)
    return f"{n} image{'s' * (n != 1)} made {w}x{h}: {', '.join(done)}" if done else ""


def _name(path: Path, where: str) -> str:
    return os.path.relpath(path, where) if str(path).startswith(where) else str(path)


def mode_line(stored: Stored, colour: np.ndarray | None, files: list[Path], where: str) -> str:
    """What data.mode=auto took for ``files`` stored as ``stored`` says and why: from the pixels where they were
    decoded (``colour`` (N,): whether each has colour), else (None: streamed) from the headers; '' where every
    image is stored grey, or (pixels) every image has colour."""
    n, k = len(stored.colour), int(stored.colour.sum())
    if k == 0:
        return ""
    if colour is None:
        which = f"{k} of {n} images are" if k < n else f"its {n} images are"
        first = f" (first: {_name(files[int(np.argmax(stored.colour))], where)})" * (k < n)
        return (
            f"mode RGB: {which} stored in colour{first}; streamed, their pixels are not checked for grey "
            "(data.mode=L reads grey images stored as RGB in one channel)"
        )
    c = int(colour.sum())
    if c == n:
        return ""
    if c == 0:
        return f"mode L: all {n} images are grey ({f'{k} ' * (k < n)}stored as {stored.names})"
    first = _name(files[int(np.argmax(colour))], where)
    return f"mode RGB: {c} of {n} images {'has' if c == 1 else 'have'} colour (first: {first})"


def say_chosen(where: str, *parts: str) -> str:
    """Say the non-empty ``parts`` in one line of ``where``; returns the line ('' where there is none)."""
    line = f"{where}: {'; '.join(p for p in parts if p)}" if any(parts) else ""
    if line:
        note_once(line)
    return line


def note_frames(where: str, files: list[Path]) -> None:
    """One line where files hold several frames (animated, multi-page): the first frame of each is read."""
    if files:
        n = len(files)
        note_once(
            f"{where}: {n} file{'s' * (n != 1)} of several frames (animated GIF, WebP or PNG, multi-page TIFF): "
            f"the first frame of each is read, first {files[0]}"
        )
