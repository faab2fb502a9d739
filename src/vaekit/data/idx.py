"""IDX files (the MNIST format): magic 0x00 0x00 dtype ndim, big-endian uint32 dims, then the data."""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.core import RawData, image_scale, to_layout
from vaekit.data.limits import usable_memory
from vaekit.errors import VaekitError

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 1 << 32  # a header declaring more data than 4 GiB is refused, not allocated
_CHUNK = 1 << 24


def _open(path: Path) -> io.BufferedIOBase:
    """Open raw or gzipped (told by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.GzipFile(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file, raw or gzipped, into an array of its declared dims and a native dtype."""
    path = Path(path)
    try:
        with _open(path) as f:
            return _parse(f, path)
    except (OSError, EOFError, zlib.error) as e:
        raise VaekitError(f"{path}: cannot read IDX file ({e})") from e
    except MemoryError:
        raise VaekitError(f"{path}: too big to read in the memory free here") from None


def _read_exact(f: io.BufferedIOBase, n: int) -> bytes:
    """Read up to n bytes in chunks, so a lying header never allocates n bytes up front."""
    parts, left = [], n
    while left > 0:
        part = f.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _parse(f: io.BufferedIOBase, path: Path) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise VaekitError(f"{path}: not an IDX file (magic bytes {head.hex() or 'missing'})")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        raise VaekitError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise VaekitError(f"{path}: IDX header declares 0 dimensions")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise VaekitError(f"{path}: truncated IDX header ({ndim} dims declared)")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = np.dtype(IDX_DTYPES[code])
    nbytes = dtype.itemsize * math.prod(dims)
    if nbytes > MAX_IDX_BYTES:
        raise VaekitError(f"{path}: dims {dims} declare {nbytes} bytes, over the {MAX_IDX_BYTES}-byte limit")
    if nbytes > (free := usable_memory()):
        raise VaekitError(f"{path}: dims {dims} declare {nbytes:,} bytes, more than the {free:,} free in memory")
    data = _read_exact(f, nbytes)
    if len(data) != nbytes:
        raise VaekitError(f"{path}: truncated, dims {dims} need {nbytes} data bytes but the file has {len(data)}")
    if f.read(1):  # also reads to the end of a gzip stream, which checks its CRC
        raise VaekitError(f"{path}: more data than the {nbytes} bytes its dims {dims} declare")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _labels(path: Path | None, n: int, images: Path) -> np.ndarray | None:
    if path is None:
        return None
    y = read_idx(path)
    if y.ndim != 1 or len(y) != n:
        raise VaekitError(f"{path}: labels of shape {y.shape} do not match the {n} items in {images.name}")
    return y


def read_idx_set(
    where: str,
    images: Path,
    labels: Path | None = None,
    test_images: Path | None = None,
    test_labels: Path | None = None,
) -> RawData:
    """Images (N, ...) with optional labels, and optionally an official test pair."""
    x = to_layout(read_idx(images), str(images))
    raw = RawData(x, _labels(labels, len(x), images), where, image_scale(x))
    if test_images is not None:
        raw.x_test = to_layout(read_idx(test_images), str(test_images))
        raw.y_test = _labels(test_labels, len(raw.x_test), test_images)
    return raw


def starts_as_idx(path: Path) -> bool:
    """Whether ``path`` (raw or gzipped) opens as IDX does: two zero bytes, a known dtype code, 1+ dims."""
    try:
        with _open(path) as f:
            head = f.read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return len(head) == 4 and head[:2] == b"\0\0" and head[2] in IDX_DTYPES and head[3] > 0


def idx_files(folder: Path) -> list[Path]:
    """Files in ``folder`` that are IDX: idx or ubyte in the name and IDX contents, so that a photo folder's
    backup.tar.gz or idx notes leave it a photo folder; raw preferred over .gz."""
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        low = p.name.lower()
        if p.is_file() and not low.startswith(".") and ("idx" in low or "ubyte" in low) and starts_as_idx(p):
            found.setdefault(low.removesuffix(".gz"), []).append(p)
    return [min(ps, key=lambda p: p.suffix == ".gz") for ps in found.values()]


def _part(path: Path) -> str | None:
    low = path.name.lower()
    return "train" if "train" in low else "test" if ("t10k" in low or "test" in low) else None


def _pair(files: list[Path], folder: Path, kind: str) -> tuple[Path, Path]:
    """The one train and one test file among ``files``, or a VaekitError."""
    parts = [_part(p) for p in files]
    if sorted(parts, key=str) != ["test", "train"]:
        names = ", ".join(p.name for p in files)
        raise VaekitError(f"{folder}: cannot tell one train and one test {kind} file apart among {names}")
    return files[parts.index("train")], files[parts.index("test")]


def read_idx_folder(folder: Path) -> RawData:
    """A folder of IDX files: one images file (+labels) is the whole set; two give train/test."""
    files = idx_files(folder)
    images = [p for p in files if "images" in p.name.lower()]
    labels = [p for p in files if "labels" in p.name.lower()]
    if not images:
        raise VaekitError(f"{folder}: no IDX images file (a name with 'images' and 'idx' or 'ubyte')")
    if len(images) == 1:
        if len(labels) > 1:
            raise VaekitError(f"{folder}: one images file but {len(labels)} labels files")
        return read_idx_set(str(folder), images[0], labels[0] if labels else None)
    train, test = _pair(images, folder, "images")
    if not labels:
        return read_idx_set(str(folder), train, None, test, None)
    if len(labels) == 1 and _part(labels[0]) is not None:  # one split's labels: name the other's
        given, lacking = (train, test) if _part(labels[0]) == "train" else (test, train)
        want = lacking.name.replace("images", "labels").replace("idx3", "idx1")
        raise VaekitError(
            f"{folder}: labels for {_part(labels[0])} only ({labels[0].name}, for {given.name}); add the labels of "
            f"{lacking.name} ({want}), or remove {labels[0].name} to read the images without labels"
        )
    train_y, test_y = _pair(labels, folder, "labels")
    return read_idx_set(str(folder), train, train_y, test, test_y)
