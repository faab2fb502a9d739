"""A photo folder opened as a source: decoded file by file, or (``data.cache``) from a uint8 cache of the resized set.

The cache is one .npy (N, C, H, W) beside a .json (labels, classes, mode, skipped files), in the data folder
(``data.data_dir``, where it or its parent exists), else $VAEKIT_CACHE, else ~/.cache/vaekit (``cache_meta``).
Its name holds a hash of the folder's file list, each file's size and mtime, the size and crop settings, the mode
the images become (data.mode=auto resolved) and the cache's FORMAT: a file added, removed or changed, another
setting, or a vaekit that decodes files otherwise makes a new cache (the caches of the folder's older contents and
of an older FORMAT are removed, and a killed build's temporary file once untouched for STALE_S seconds). A cache
that cannot be read (a cut .json or .npy, one holding what vaekit never writes) is built again. The first pass
decodes every file in DataLoader workers and writes the rows in order (atomically, ``folder_decode``); later
epochs and runs read the rows with pread. A folder loaded whole without a cache (``read_folder``) is decoded in
this process, only the items of a limit's draw; both make images whose pixels are all grey one channel under
data.mode=auto.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VaekitError
from .cache_meta import cache_root, read_meta
from .core import Dataset, RawData, build_dataset
from .dsprites import _used
from .folder_decode import decoded, write_cache
from .idx import idx_files
from .images import _list, note_once
from .lazy import NpySource
from .photo_notes import colour_items
from .photo_scan import HINT
from .photos import FolderSource, ImageOptions, drop_empty, note, note_emptied

if TYPE_CHECKING:
    from .tables import TableOptions

STALE_S = 600  # a cache's temporary file untouched this long is a killed build's: removed by the next build
FORMAT = 3  # how files become rows: 2 reads a folder mixing 8- and 16-bit files at 8 bits, float and rotated
# TIFFs; 3 makes images whose pixels are all grey (R = G = B, stored as RGB) one channel under data.mode=auto
SAY_FROM = 2000  # images: a terminal is told what the silent seconds of decoding more are for
_skipped: dict[tuple[str, ImageOptions], list[dict]] = {}  # (folder, options) -> files its last read left out


class CachedSource(NpySource):
    """The cached rows of a folder: ``read(rows)`` -> (B, C, H, W) float32 in [0, 1], no decoding."""

    def __init__(self, npy: Path, meta: dict, where: str):
        super().__init__(npy)
        self.where, self.mode, self.skipped = where, meta["mode"], meta["skipped"]
        y = None if meta["labels"] is None else np.asarray(meta["labels"], dtype=np.int64)
        self.labels, self.classes, gone = drop_empty(y, meta["classes"])  # gone: a cache an older vaekit wrote
        note_emptied(where, [*meta.get("emptied", []), *gone])
        if isinstance(meta.get("said"), str) and meta["said"]:  # what loading chose (``FolderSource.chosen``)
            note_once(meta["said"])
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
        meta_path = write_cache(source, opts.workers, partial(_paths, stem, opts))
        cached = CachedSource(meta_path.with_suffix(".npy"), json.loads(meta_path.read_text()), str(folder))
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
    files = [f.relative_to(folder) for f in _list(folder)[0]]
    gone = {_relative(Path(s["file"]), folder, set(files)) for s in skipped}
    return [str(f) for f in files if f not in gone], skipped


def _relative(file: Path, folder: Path, names: set[Path]) -> Path | None:
    """A skipped ``file``'s path relative to ``folder``, one of ``names`` (every file's), compared whole: under the
    folder as named now, else as absolute or resolved paths (a cache written from another spelling of the folder),
    else the longest of ``names`` that ends its path (one file alone: ``a/sub/x.png`` is never ``sub/x.png``)."""
    pairs = [(file, folder), (Path(os.path.abspath(file)), Path(os.path.abspath(folder)))]
    for path, root in [*pairs, (file.resolve(), folder.resolve())]:
        if path.is_relative_to(root) and path.relative_to(root) in names:
            return path.relative_to(root)
    tails = [f for f in names if file.parts[-len(f.parts) :] == f.parts]
    return max(tails, key=lambda f: len(f.parts), default=None)


def read_folder(
    folder: Path,
    opts: ImageOptions = ImageOptions(),
    split: TableOptions | None = None,
    source: FolderSource | CachedSource | None = None,
) -> RawData:
    """Every image of ``folder`` held in memory: RawData with x (N, C, H, W) uint8 (uint16 for 16-bit grey).

    ``source``: the folder opened already (its header scan is not done again). ``split`` (``val_fraction``,
    ``test_fraction``, ``seed``, ``limit``, as ``TableOptions`` carries them) with a limit below the item count
    decodes only the items its seeded draw takes, split as reading every file splits them (``dsprites._used``);
    where a drawn file's pixels cannot be read (data.skip_unreadable) every file is decoded, as without it.
    Under data.mode=auto, images whose pixels are all grey (R = G = B) are one channel however stored."""
    source = source or open_folder(folder, opts)
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
    used, fixed = _used(len(source), source.where, split)
    x, kept, skipped = _decode(source, used)
    if fixed is not None and len(kept) < len(used):  # the draw is then over the files that decode, as ever
        (x, kept, skipped), fixed = _decode(source, np.arange(len(source))), None
    _skipped[_read_key(folder, opts)] = skipped
    has = colour_items(x)  # (N,) whether each image has colour
    mode = source.pixel_mode(has)
    x = np.ascontiguousarray(x[:, :1]) if mode != source.mode else x  # grey pixels stored as RGB: one channel
    source.chosen(has, np.asarray(kept))
    y = None if source.labels is None else source.labels[kept]
    y, classes, gone = (y, source.classes, []) if fixed is not None else drop_empty(y, source.classes)
    note_emptied(str(folder), gone)
    scale = 65535.0 if source.deep else 255.0
    rows = None if fixed is None else used  # each drawn item's row among the files
    return RawData(x, y, str(folder), scale, fixed=fixed, classes=classes, skipped=skipped, image_mode=mode, rows=rows)


def _decode(source: FolderSource, rows: np.ndarray) -> tuple[np.ndarray, list[int], list[dict]]:
    """Items ``rows`` of ``source`` decoded in this process (the whole set is wanted here): (x (B, C, H, W), the
    rows kept, every file left out {file, error}); a terminal is told what many silent seconds are for."""
    if len(rows) >= SAY_FROM and sys.stderr.isatty():
        note(f"{source.where}: decoding {len(rows):,} images ...")
    parts, kept, skipped = [], [], list(source.skipped)
    for x, rows_kept, bad in decoded(source, 0, rows):
        parts.append(x)
        kept.extend(rows_kept)
        skipped.extend(bad)
    if not kept:
        first = f"; first {skipped[0]['file']}: {skipped[0]['error']}" if skipped else ""
        raise VaekitError(f"{source.where}: none of its image files can be read{first}")
    return np.concatenate(parts), kept, skipped


def load_whole(
    spec: str,
    source: object,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None,
    images: ImageOptions,
) -> Dataset | None:
    """An image folder's ``source`` (read file by file or from its cache), opened already, loaded whole as
    ``load_dataset`` loads it, the items of ``limit``'s draw alone decoded; None for another source."""
    if not isinstance(source, (FolderSource, CachedSource)):
        return None
    from .tables import TableOptions

    path = Path(spec).expanduser()
    split = TableOptions(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, limit=limit)
    try:
        raw = read_folder(path, images, split, source)
        return build_dataset(
            path.name,
            raw,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            binarize="none",
            limit=limit,
        )
    except MemoryError as e:
        raise VaekitError(f"{spec}: too big to load whole in the memory free here ({e or 'MemoryError'})") from None
