"""Data larger than memory: a memory-mapped .npy or an image folder, read batch by batch in loader workers.

``data.in_memory``: "true" loads everything (the fast path), "false" streams, "auto" streams only what
would not fit (loading whole holds about 6 bytes a value, ``whole_bytes``; streaming starts past half of
the memory free). Splits are index arrays into the one source, never copies. Each batch is scaled to
float32, checked (finite, the likelihood's support) and, for fixed binarisation, binarised per item with
the counter-based draw of data in memory (``draws.fixed_draw``, keyed by the item's row in the file), so an
item looks the same whichever batch it lands in, and whether it is streamed or loaded.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from vaekit.data.builtin import builtin_name
from vaekit.data.core import (
    Dataset,
    RawData,
    Split,
    _split_indices,
    check_finite,
    check_options,
    image_scale,
    to_layout,
)
from vaekit.data.draws import fixed_draw
from vaekit.data.float32 import fits_float32
from vaekit.data.images import note_once
from vaekit.data.limits import usable_memory
from vaekit.data.photos import FolderSource, ImageOptions
from vaekit.errors import VaekitError

IN_MEMORY = ("auto", "true", "false")
WHOLE_EXTRA = 2  # bytes a value beside the float32 items: 4.9 to 5.8 in all measured (200,000 x 784 .npy, a run)
NOT_NUMERIC = "it holds Python objects (or is not a NumPy file): vaekit reads numeric arrays only, never pickles"


def numpy_error(path: Path, e: Exception) -> VaekitError:
    """The one line for a .npy/.npz file that numpy cannot load without pickle, in place of numpy's advice to load
    it unsafely (``allow_pickle``; memory-mapped: "Python objects in dtype")."""
    why = " ".join(str(e).split())
    if "allow_pickle" in why or "Python objects" in why:
        why = NOT_NUMERIC
    elif "mmap length is greater than file size" in why:  # memory-mapped: numpy's words for a cut file
        why = "the file is shorter than its header says its array is: cut short?"
    return VaekitError(f"{path}: cannot read NumPy file ({why})")


class Source(Protocol):
    """What a LazyArray reads: ``NpySource``, ``FolderSource`` or ``data.user.TorchSource``."""

    @property
    def where(self) -> str: ...  # the data's name in messages

    @property
    def shape(self) -> tuple[int, ...]: ...  # one item's shape

    def read(self, rows: np.ndarray) -> np.ndarray: ...  # (B,) item numbers -> (B, *shape) float32


class NpySource:
    """A .npy file opened memory-mapped (no pickles): items (N, D) or (N, C, H, W), any numeric dtype.

    The mapping gives the header's dtype, shape and data offset without reading the data. Items of a
    C-ordered file are then read with pread: touching a mapped item maps the page cache's whole large folio
    (up to 2 MB) into this process, so 31 random batches of 256 put 5.2 GB of a 6 GB file in its resident
    set (Linux 6.18); pread copies just the item (3.5 ms per batch of 256 against 6.6 ms through the mapping).
    """

    def __init__(self, path: Path):
        try:
            self.raw = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise numpy_error(path, e) from e
        self.where, self.x = str(path), to_layout(self.raw, str(path))  # a view: nothing is read yet
        self.shape, self.scale = tuple(self.x.shape[1:]), image_scale(self.x)
        self.item = self.raw.dtype.itemsize * math.prod(self.raw.shape[1:])  # bytes per item in the file
        self.fd = None
        if self.raw.flags.c_contiguous and hasattr(os, "preadv"):
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))  # shared by loader workers

    def __len__(self) -> int:
        return len(self.x)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(B,) item numbers -> (B, *shape) float32 divided by the dtype's scale (uint8 images: 255)."""
        order = np.argsort(rows, kind="stable")  # sorted reads walk the file forwards
        raw = np.empty((len(rows), *self.raw.shape[1:]), self.raw.dtype)
        if self.fd is not None:
            buf = raw.reshape(-1).view(np.uint8).data  # a memoryview of its bytes
            for j, r in zip(order.tolist(), rows[order].tolist()):
                if (
                    os.preadv(self.fd, [buf[j * self.item : (j + 1) * self.item]], self.raw.offset + r * self.item)
                    != self.item
                ):
                    raise VaekitError(f"{self.where}: item {r} lies past the end of the file (truncated?)")
        else:  # a Fortran-ordered file: through the mapping, handing its pages back after each batch
            raw[order] = self.raw[rows[order]]
            if getattr(self.raw, "_mmap", None) is not None:
                self.raw._mmap.madvise(mmap.MADV_DONTNEED)
        fits_float32(raw, self.where, notes=False, rows=rows)  # 1e39 would turn inf in the cast: refused, named
        out = to_layout(raw, self.where).astype(np.float32)
        if self.scale != 1.0:
            out /= np.float32(self.scale)
        return out


@dataclass
class LazyArray:
    """Items ``index`` of a source, read when indexed: ``x[rows]`` -> (B, *shape) float32 tensor on ``device``.

    Stands in for a split's tensor wherever the trainer slices one (``len``, ``shape``, ``device``, ``to``).
    """

    source: Source
    index: np.ndarray  # (N,) item numbers in the source
    device: torch.device = torch.device("cpu")
    check: Callable[[Tensor], None] | None = None  # e.g. the likelihood's support, per batch
    binarize_seed: int | None = None  # fixed per-item Bernoulli draws when set (draws.fixed_draw)
    part: int = 0  # the source's part in that draw's key: 1 for a second source (vaekit.fit's val_data)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.source.shape)

    def __len__(self) -> int:
        return len(self.index)

    def to(self, device: torch.device | str) -> LazyArray:
        return replace(self, device=torch.device(device))

    def subset(self, key) -> LazyArray:
        """A view on some of the items (a slice or positions): the index is cut, the data is not copied."""
        return replace(self, index=self.index[key])

    def __getitem__(self, key) -> Tensor:
        rows = np.atleast_1d(self.index[key.cpu().numpy() if isinstance(key, Tensor) else key])
        return self.read(rows).to(self.device)

    def read(self, rows: np.ndarray) -> Tensor:
        """(B,) item numbers -> (B, *shape) float32 CPU tensor, checked and (if set) binarised."""
        x = self.source.read(rows)
        check_finite(x, self.source.where, rows)  # the item named by its number in the source
        xt = torch.from_numpy(x)
        if self.check is not None:
            self.check(xt)
        if self.binarize_seed is not None:
            xt = fixed_draw(xt, rows, self.binarize_seed, self.part)
        return xt


def head(x: Tensor | LazyArray, n: int | None) -> Tensor | LazyArray:
    """The first ``n`` items (all for None): a view for lazily read data (nothing is read), a slice otherwise."""
    return x.subset(slice(0, n)) if isinstance(x, LazyArray) else x[:n]


def head_split(s: Split, n: int | None) -> Split:
    """The first ``n`` items of ``s`` (all for None), with their labels and rows (fixed binarisation's key)."""
    rows, part = None if s.rows is None else s.rows[:n], s.part[:n] if isinstance(s.part, np.ndarray) else s.part
    return replace(s, x=head(s.x, n), y=None if s.y is None else s.y[:n], rows=rows, part=part)


def drawn_once(s: Split, seed: int) -> Split:
    """``s`` binarised once as fixed binarisation draws its items (``binarized_once``, by their rows and part)."""
    return replace(s, x=binarized_once(s.x, seed, s.rows, s.part), fixed=True)


def binarized_once(
    x: Tensor | LazyArray, seed: int, rows: np.ndarray | None = None, part: int | np.ndarray | None = None
) -> Tensor | LazyArray:
    """x ~ Bernoulli(x) drawn once by ``draws.fixed_draw``, item i keyed by ``rows[i]`` (default: its position
    0..N-1) of source ``part`` (default 0; (N,) for items of both sources); lazily read data per item as it is
    read, keyed by its row in its one source (``index``) and its own part unless ``part`` is given."""
    if isinstance(x, LazyArray):
        return replace(x, binarize_seed=seed, part=x.part if part is None else int(part))  # one source: one part
    return fixed_draw(x, np.arange(len(x)) if rows is None else rows, seed, 0 if part is None else part)


def every_item(spec: str, in_memory: str, images: ImageOptions = ImageOptions()) -> LazyArray | None:
    """Every item of a streamed source in file order, or None when ``spec`` is to be loaded whole."""
    source = open_streamed(spec, in_memory, images)
    return None if source is None else LazyArray(source, np.arange(len(source)))


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable), or free pages where /proc is absent."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _open(path: Path, images: ImageOptions) -> NpySource | FolderSource | None:
    if path.is_file() and path.suffix.lower() == ".npy":
        return NpySource(path)
    from vaekit.data.image_cache import image_folder  # it builds on NpySource

    return image_folder(path, images) if path.is_dir() else None


def _decide(
    spec: str, in_memory: str, images: ImageOptions, folders: bool = False
) -> tuple[NpySource | FolderSource | None, bool]:
    """(the source opened to decide, whether to stream it); (None, False) for data to load whole by the readers.
    With ``folders`` an image folder is opened under data.in_memory=true too, to be loaded whole from it. A
    folder streamed says what its loading chose (``FolderSource.chosen``, from its headers). Under auto, loading
    whole (``whole_bytes``) must fit in half the memory free (``limits.usable_memory``: MemAvailable, the
    address-space limit, the cgroup's), said in one note where it streams or takes an eighth of it."""
    if in_memory not in IN_MEMORY:
        raise VaekitError(f"data.in_memory must be one of {', '.join(IN_MEMORY)}, got {in_memory!r}")
    path = Path(spec).expanduser()
    if in_memory == "true" and not (folders and path.is_dir()):
        return None, False
    source = _open(path, images) if path.exists() and builtin_name(spec) is None else None
    if source is None:
        if in_memory == "false":
            raise VaekitError(f"{spec}: data.in_memory=false streams .npy files and image folders only")
        return None, False
    free, need = usable_memory(), whole_bytes(source)
    stream = in_memory == "false" or (in_memory == "auto" and need > free // 2)
    if in_memory == "auto" and (stream or need >= free // 8):  # why, once; a load under an eighth: no word
        size = f"about {need / 1e9:,.2f} GB at its peak, {'more than' if stream else 'within'} half the"
        size = f"{size} {free / 1e9:,.2f} GB of memory free here"
        how = f"streams it, reading each batch as needed: loaded whole it would take {size}"
        note_once(f"{source.where}: data.in_memory=auto {how if stream else f'loads it whole: {size}'}")
    if stream and isinstance(source, FolderSource):
        source.chosen()
    return source, stream


def whole_bytes(source: NpySource | FolderSource) -> int:
    """Bytes that loading ``source`` whole holds at its peak, as measured: its items as float32 (4 a value) and
    WHOLE_EXTRA a value, with a folder's decoded (or cached) uint8 or uint16 items beside them; a .npy file's
    pages are handed back as its items are cast (``item_arrays.chunks``)."""
    mine = isinstance(source, NpySource) and not getattr(source, "mode", None)  # not a folder's cache: read whole
    held = 0 if mine else source.raw.dtype.itemsize if isinstance(source, NpySource) else 1 + source.deep
    return len(source) * math.prod(source.shape) * (4 + held + WHOLE_EXTRA)


def open_streamed(spec: str, in_memory: str, images: ImageOptions = ImageOptions()) -> NpySource | FolderSource | None:
    """The source to stream, or None when the data should be loaded whole (by setting or because it fits)."""
    source, stream = _decide(spec, in_memory, images)
    return source if stream else None


def load_streamed(
    spec: str,
    in_memory: str,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None,
    images: ImageOptions = ImageOptions(),
    label_column: str | int | None = None,
) -> Dataset | None:
    """Like ``load_dataset`` but with LazyArray splits; None when the data is to be loaded whole by
    ``load_dataset``. An image folder loaded whole is read from the source opened to decide (its header scan
    not done twice), only the items of ``limit``'s draw decoded (``image_cache.read_folder``); one with a
    ``label_column`` is left to ``load_dataset``, which refuses it."""
    check_options(val_fraction, test_fraction, seed, "none", limit)
    source, stream = _decide(spec, in_memory, images, folders=True)
    if source is None or (label_column is not None and not stream):
        return None
    if not stream:
        from vaekit.data.image_cache import load_whole

        return load_whole(spec, source, val_fraction, test_fraction, seed, limit, images)
    y = getattr(source, "labels", None)
    idx = _split_indices(
        RawData(np.empty(0), y, source.where), len(source), len(source), val_fraction, test_fraction, seed, limit
    )
    splits = {k: Split(LazyArray(source, i), None if y is None else torch.from_numpy(y[i])) for k, i in idx.items()}
    classes = getattr(source, "classes", None)
    return Dataset(
        Path(spec).name,
        splits["train"],
        splits["val"],
        splits["test"],
        source.shape,
        "table" if len(source.shape) == 1 else "image",
        None if y is None or classes is None else len(classes),
        classes,
        getattr(source, "skipped", None),
        getattr(source, "mode", None),
    )
