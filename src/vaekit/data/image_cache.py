"""A photo folder opened as a source: decoded file by file, or (``data.cache``) from a uint8 cache of the resized set.

The cache is one .npy (N, C, H, W) beside a .json (labels, classes, mode, skipped files), in the data folder
(``data.data_dir``, where it or its parent exists), else $VAEKIT_CACHE, else ~/.cache/vaekit (``cache_meta``).
Its name holds a hash of the folder's file list, each file's size and mtime, the size and crop settings, the mode
the images become (data.mode=auto resolved) and the cache's FORMAT: a file added, removed or changed, another
setting, or a vaekit that decodes files otherwise makes a new cache (the caches of the folder's older contents and
of an older FORMAT are removed, and a killed build's temporary file once untouched for STALE_S seconds). A cache
that cannot be read (a cut .json or .npy, one holding what vaekit never writes) is built again. The first pass
decodes every file in DataLoader workers and writes the rows in order (atomically); later epochs and runs read
the rows with pread.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import VaekitError
from ..io import WriteError, atomic_write, atomic_write_json
from .cache_meta import cache_root, read_meta
from .core import RawData
from .idx import idx_files
from .images import _list
from .lazy import NpySource
from .photos import FolderSource, ImageOptions, drop_empty, note, note_emptied

CHUNK = 64  # images per loader item while the cache is written
HEADER = 128  # bytes of the .npy header, fixed so that the row count can be written last
STALE_S = 600  # a cache's temporary file untouched this long is a killed build's: removed by the next build
FORMAT = 2  # how files become rows: 2 reads a folder mixing 8- and 16-bit files at 8 bits, float and rotated TIFFs
HINT = "set data.skip_unreadable=true to skip such files"
_skipped: dict[tuple[str, ImageOptions], list[dict]] = {}  # (folder, options) -> files its last read left out


class CachedSource(NpySource):
    """The cached rows of a folder: ``read(rows)`` -> (B, C, H, W) float32 in [0, 1], no decoding."""

    def __init__(self, npy: Path, meta: dict, where: str):
        super().__init__(npy)
        self.where, self.mode, self.skipped = where, meta["mode"], meta["skipped"]
        y = None if meta["labels"] is None else np.asarray(meta["labels"], dtype=np.int64)
        self.labels, self.classes, gone = drop_empty(y, meta["classes"])  # gone: a cache an older vaekit wrote
        note_emptied(where, [*meta.get("emptied", []), *gone])
        if meta["deep"]:
            self.scale = 65535.0


def _keys(folder: Path) -> tuple[str, str]:
    """(the folder's key, the key of its file list, sizes and mtimes)."""
    h = hashlib.sha256()
    for p in _list(folder)[0]:
        st = p.stat()  # a name's own bytes (os.fsencode): a name that is not UTF-8 hashes too
        h.update(os.fsencode(p.relative_to(folder)) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return hashlib.sha256(os.fsencode(folder.resolve())).hexdigest()[:12], h.hexdigest()[:16]


def _paths(stem: Path, opts: ImageOptions, mode: str, form: int | None = None) -> tuple[Path, Path]:
    """(.npy, .json) of the cache for ``opts`` whose images become ``mode`` (L or RGB, never auto): a run trained
    with data.mode=auto and its verbs, which read the resolved mode from config.json, share one cache. ``form``:
    the FORMAT of the name (default FORMAT; 1: before FORMAT was in it, when ``mode`` could also be auto)."""
    form = FORMAT if form is None else form
    settings = [opts.size, opts.crop, mode] if form < 2 else [form, opts.size, opts.crop, mode]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:8]
    return stem.with_name(f"{stem.name}-{key}.npy"), stem.with_name(f"{stem.name}-{key}.json")


def _cached(stem: Path, opts: ImageOptions, folder: Path) -> CachedSource | None:
    """The cache already written for ``opts`` (of its mode, or with auto of the mode auto chose for these files),
    or None where there is none or it cannot be read (a cut .json or .npy, labels that miss rows)."""
    for mode in ("L", "RGB") if opts.mode == "auto" else (opts.mode,):
        npy, meta_path = _paths(stem, opts, mode)
        meta = read_meta(meta_path) if npy.is_file() else None
        if meta is None or (opts.mode == "auto" and meta["auto"] != mode):
            continue
        try:
            source = CachedSource(npy, meta, str(folder))
        except (VaekitError, TypeError, ValueError):  # a .npy cut short or garbled; labels that are no numbers
            return None
        if source.labels is None or len(source.labels) == len(source):
            return source
        if source.fd is not None:
            os.close(source.fd)
    return None


def image_folder(folder: Path, opts: ImageOptions) -> FolderSource | CachedSource | None:
    """``open_folder``, or None for a folder of IDX files (told by their names and contents)."""
    return None if idx_files(folder) else open_folder(folder, opts)


def open_folder(folder: Path, opts: ImageOptions) -> FolderSource | CachedSource:
    """The folder as a source: its cache (written first when missing or stale) with ``opts.cache``, else decoded
    file by file."""
    if not opts.cache:
        source = FolderSource(folder, opts)
        _skipped[_read_key(folder, opts)] = list(source.skipped)  # more if decoding skips any (read_folder)
        return source
    root = cache_root(opts.cache_dir)
    folder_key, files_key = _keys(folder)
    stem = root / f"images-{folder_key}-{files_key}"
    cached = _cached(stem, opts, folder)
    if cached is None:  # none yet, or a damaged one: (re)built
        source = FolderSource(folder, opts)
        npy, meta_path = _paths(stem, opts, source.mode)
        _write(source, opts, npy, meta_path)
        cached = CachedSource(npy, json.loads(meta_path.read_text()), str(folder))  # as later reads see it
        _remove_old(root, folder_key, stem, opts)
    _remove_killed(root, folder_key)
    if cached.skipped and not opts.skip_unreadable:
        bad = cached.skipped[0]
        raise VaekitError(f"{bad['file']}: {bad['error']}; {HINT}")  # error: 'cannot read image (...)'
    _skipped[_read_key(folder, opts)] = cached.skipped
    return cached


def _remove_old(root: Path, folder_key: str, stem: Path, opts: ImageOptions) -> None:
    """Remove the folder's caches of older contents (another file list), and those of these contents and ``opts``
    that an older FORMAT wrote (no vaekit that reads this FORMAT reads them); caches of other settings stay."""
    for old in root.glob(f"images-{folder_key}-*"):
        if not old.name.startswith(f"{stem.name}-"):
            old.unlink(missing_ok=True)
    for form in range(1, FORMAT):
        for mode in ("L", "RGB", "auto"):
            for old in _paths(stem, opts, mode, form):
                old.unlink(missing_ok=True)


def _remove_killed(root: Path, folder_key: str) -> None:
    """Remove the temporary files (``.NAME.XXXX.tmp``, atomic_write's) of the folder's killed cache builds, those
    untouched for STALE_S seconds (another process may be writing a fresh one now): one glob per opening."""
    for tmp in root.glob(f".images-{folder_key}-*.tmp"):
        try:
            if tmp.stat().st_mtime < time.time() - STALE_S:
                tmp.unlink(missing_ok=True)
        except OSError:  # gone meanwhile: its build finished or was cleaned up
            pass


def _read_key(folder: Path, opts: ImageOptions) -> tuple[str, ImageOptions]:
    return str(folder.resolve()), opts


def read_skipped(folder: Path, opts: ImageOptions) -> list[dict] | None:
    """The files {file, error} that the last read of ``folder`` with ``opts`` in this process left out as
    unreadable (headers or pixels), or None where it was not read."""
    return _skipped.get(_read_key(folder, opts)) if folder.is_dir() else None


def row_files(folder: Path, opts: ImageOptions) -> tuple[list[str], list[dict]]:
    """(the file of each item of ``folder`` read with ``opts``, relative to it, in item order; the files left out
    as unreadable {file, error}): those its last read in this process skipped (headers or pixels unreadable),
    else those its cache records or (no cache) a pass decoding every file finds."""
    skipped = read_skipped(folder, opts)
    if skipped is None:  # not read yet: what its cache records, else what decoding every file finds
        source = open_folder(folder, opts)
        bad = [] if isinstance(source, CachedSource) else [b for _, _, f in decoded(source, opts.workers) for b in f]
        skipped = _skipped[_read_key(folder, opts)] = [*source.skipped, *bad]
    gone = {Path(s["file"]).parts for s in skipped}
    files = [f.relative_to(folder) for f in _list(folder)[0]]
    return [str(f) for f in files if not any(g[-len(f.parts) :] == f.parts for g in gone)], skipped


class _Chunks(torch.utils.data.Dataset):
    """Loader items: CHUNK consecutive images decoded -> (uint8 rows, [(row, error)] of the unreadable ones)."""

    def __init__(self, source: FolderSource):
        self.source = source

    def __len__(self) -> int:
        return math.ceil(len(self.source) / CHUNK)

    def __getitem__(self, k: int):
        rows, bad = [], []
        for r in range(k * CHUNK, min((k + 1) * CHUNK, len(self.source))):
            try:
                rows.append(self.source.read_raw(np.array([r]))[0])
            except VaekitError as e:
                if not self.source.opts.skip_unreadable:  # a worker's exception comes back with its traceback
                    return f"{e}; {HINT}" if "cannot read image (" in str(e) else str(e)
                bad.append((r, str(e).split(": ", 1)[1]))
        return (np.stack(rows) if rows else np.empty((0, *self.source.shape), np.uint8)), bad


def decoded(source: FolderSource, workers: int) -> Iterator[tuple[np.ndarray, list[int], list[dict]]]:
    """Every image of ``source`` decoded in order, CHUNK at a time in ``workers`` loader processes: (rows
    (B, C, H, W), their item numbers, the unreadable files {file, error} skipped among them)."""
    loader = torch.utils.data.DataLoader(
        _Chunks(source), batch_size=None, num_workers=workers, collate_fn=lambda item: item
    )
    for k, item in enumerate(loader):
        if isinstance(item, str):
            raise VaekitError(item)
        rows, bad = item
        lost = {r for r, _ in bad}
        kept = [r for r in range(k * CHUNK, min((k + 1) * CHUNK, len(source))) if r not in lost]
        yield rows, kept, [{"file": str(source.files[r]), "error": e} for r, e in bad]


def _write(source: FolderSource, opts: ImageOptions, npy: Path, meta_path: Path) -> None:
    """Decode every image of ``source`` once into ``npy`` (rows in file order) and ``meta_path``."""
    folder = source.where
    dtype = np.dtype(np.uint16 if source.deep else np.uint8)
    kept: list[int] = []
    skipped = list(source.skipped)
    note(f"{folder}: caching {len(source)} images at {source.shape} in {npy.parent}")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(b"\0" * HEADER)
            for rows, rows_kept, bad in decoded(source, opts.workers):
                f.write(np.ascontiguousarray(rows, dtype=dtype).tobytes())
                kept.extend(rows_kept)
                skipped.extend(bad)
            if not kept:
                raise VaekitError(f"{folder}: none of its image files can be read")
            f.seek(0)
            f.write(_header(dtype, (len(kept), *source.shape)))

    try:
        atomic_write(npy, write)
    except WriteError as e:  # a read-only or full cache folder
        e.args = (f"{e}; set VAEKIT_CACHE (or data.data_dir) to a writable folder, or data.cache=false",)
        raise
    y, classes, gone = drop_empty(None if source.labels is None else source.labels[kept], source.classes)
    atomic_write_json(
        meta_path,
        {
            "labels": None if y is None else y.tolist(),
            "classes": classes,
            "emptied": [*source.emptied, *gone],  # the classes left with no readable file, named on every open
            "mode": source.mode,
            "auto": source.auto,  # the mode data.mode=auto gives these files
            "deep": source.deep,
            "skipped": skipped,
        },
    )


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A .npy (version 1.0) header of exactly HEADER bytes for a C-ordered array."""
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": shape})
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", HEADER - 10) + text.ljust(HEADER - 11).encode() + b"\n"


def read_folder(folder: Path, opts: ImageOptions = ImageOptions()) -> RawData:
    """Every image of ``folder`` held in memory: RawData with x (N, C, H, W) uint8 (uint16 for 16-bit grey)."""
    source = open_folder(folder, opts)
    if isinstance(source, CachedSource):
        return RawData(
            np.array(source.raw),
            source.labels,
            str(folder),
            source.scale,
            classes=source.classes,
            skipped=source.skipped,
            image_mode=source.mode,
        )
    parts, kept, skipped = [], [], list(source.skipped)
    for rows, rows_kept, bad in decoded(source, 0):  # in this process: the whole set is wanted here
        parts.append(rows)
        kept.extend(rows_kept)
        skipped.extend(bad)
    if not kept:
        raise VaekitError(f"{folder}: none of its image files can be read")
    _skipped[_read_key(folder, opts)] = skipped
    y, classes, gone = drop_empty(None if source.labels is None else source.labels[kept], source.classes)
    note_emptied(str(folder), gone)
    return RawData(
        np.concatenate(parts),
        y,
        str(folder),
        65535.0 if source.deep else 255.0,
        classes=classes,
        skipped=skipped,
        image_mode=source.mode,
    )
