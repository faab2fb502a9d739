"""A photo folder's files decoded in order, CHUNK at a time in DataLoader workers (``decoded``), and written once
into its cache (``write_cache``): a .npy of the rows, in the mode they become, beside a .json.

Under data.mode=auto the images decoded whole are checked for colour: where every one has R = G = B in every
pixel (grey photos stored as RGB), the set is one channel (L), as the in-memory read makes it (``read_folder``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import VaekitError
from ..io import WriteError, atomic_write, atomic_write_json
from .photo_notes import colour_items
from .photo_scan import HINT
from .photos import FolderSource, drop_empty, note

CHUNK = 64  # images per loader item
HEADER = 128  # bytes of the .npy header, fixed so that the row count can be written last


class _Chunks(torch.utils.data.Dataset):
    """Loader items: CHUNK of ``rows`` decoded -> (uint8 rows, [(row, error)] of the unreadable ones)."""

    def __init__(self, source: FolderSource, rows: np.ndarray):
        self.source, self.rows = source, rows

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / CHUNK)

    def __getitem__(self, k: int):
        rows, bad = [], []
        for r in self.rows[k * CHUNK : (k + 1) * CHUNK].tolist():
            try:
                rows.append(self.source.read_raw(np.array([r]))[0])
            except VaekitError as e:
                if not self.source.opts.skip_unreadable:  # a worker's exception comes back with its traceback
                    return f"{e}; {HINT}" if "cannot read image (" in str(e) else str(e)
                bad.append((r, str(e)[len(str(self.source.files[r])) + 2 :]))
        return (np.stack(rows) if rows else np.empty((0, *self.source.shape), np.uint8)), bad


def decoded(
    source: FolderSource, workers: int, rows: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, list[int], list[dict]]]:
    """The images ``rows`` of ``source`` (default: all) decoded in order, CHUNK at a time in ``workers`` loader
    processes: (rows (B, C, H, W), their item numbers, the unreadable files {file, error} skipped among them)."""
    rows = np.arange(len(source)) if rows is None else rows
    loader = torch.utils.data.DataLoader(
        _Chunks(source, rows), batch_size=None, num_workers=workers, collate_fn=lambda item: item
    )
    for k, item in enumerate(loader):
        if isinstance(item, str):
            raise VaekitError(item)
        x, bad = item
        lost = {r for r, _ in bad}
        kept = [r for r in rows[k * CHUNK : (k + 1) * CHUNK].tolist() if r not in lost]
        yield x, kept, [{"file": str(source.files[r]), "error": e} for r, e in bad]


def write_cache(source: FolderSource, workers: int, paths: Callable[[str], tuple[Path, Path]]) -> Path:
    """Decode every image of ``source`` once into the cache ``paths(mode)`` (.npy, .json) of the mode the images
    become (``FolderSource.pixel_mode``: L for grey pixels read as RGB under data.mode=auto); returns the .json."""
    dtype = np.dtype(np.uint16 if source.deep else np.uint8)
    kept: list[int] = []
    skipped, colour = list(source.skipped), []
    npy, meta_path = paths(source.mode)
    n = len(source)
    note(f"{source.where}: caching {n} image{'s' * (n != 1)} at {source.shape} in {npy.parent}")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(b"\0" * HEADER)
            for rows, rows_kept, bad in decoded(source, workers):
                f.write(np.ascontiguousarray(rows, dtype=dtype).tobytes())
                kept.extend(rows_kept)
                skipped.extend(bad)
                colour.append(colour_items(rows))
            if not kept:
                raise VaekitError(f"{source.where}: none of its image files can be read")
            f.seek(0)
            f.write(_header(dtype, (len(kept), *source.shape)))

    _atomic(npy, write)
    has = np.concatenate(colour)  # (N,) whether each kept image has colour
    mode = source.pixel_mode(has)
    if mode != source.mode:  # grey pixels stored as RGB: the first channel, as the in-memory read keeps
        rgb, (npy, meta_path) = npy, paths(mode)
        _atomic(npy, lambda tmp: _first_channel(rgb, tmp))
        rgb.unlink(missing_ok=True)
    y, classes, gone = drop_empty(None if source.labels is None else source.labels[kept], source.classes)
    meta = {"labels": None if y is None else y.tolist(), "classes": classes, "mode": mode, "deep": source.deep}
    meta["auto"] = ("RGB" if has.any() else "L") if source.mode == "RGB" else source.auto  # L rows: as stored
    meta["emptied"] = [*source.emptied, *gone]  # the classes left with no readable file, named on every open
    meta["skipped"], meta["said"] = skipped, source.chosen(has, np.asarray(kept))  # said on every open too
    atomic_write_json(meta_path, meta)
    return meta_path


def _atomic(npy: Path, write: Callable[[Path], None]) -> None:
    try:
        atomic_write(npy, write)
    except WriteError as e:  # a read-only or full cache folder
        e.args = (f"{e}; set VAEKIT_CACHE (or data.data_dir) to a writable folder, or data.cache=false",)
        raise


def _first_channel(rgb: Path, tmp: Path) -> None:
    """Write the first channel of the (N, 3, H, W) .npy ``rgb`` as an (N, 1, H, W) .npy at ``tmp``."""
    x = np.load(rgb, mmap_mode="r", allow_pickle=False)
    with open(tmp, "wb") as f:
        f.write(_header(x.dtype, (len(x), 1, *x.shape[2:])))
        for i in range(0, len(x), 1024):
            f.write(np.ascontiguousarray(x[i : i + 1024, :1]).tobytes())


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A .npy (version 1.0) header of exactly HEADER bytes for a C-ordered array."""
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": shape})
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", HEADER - 10) + text.ljust(HEADER - 11).encode() + b"\n"
