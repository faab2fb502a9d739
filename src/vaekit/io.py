"""Files in a run folder: atomic writes (every file appears whole or not at all), one line for a disk that
refuses a write, the folder's lock (one writer at a time), one reader of JSON files and one guard for the text
cells of CSV files."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import VaekitError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS: no lock
    fcntl = None  # type: ignore[assignment]  # the lock is skipped where the module is missing

# a full disk, a read-only or forbidden folder: the disk's fault, not the input's
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
# a path that cannot be written as asked, the input's fault: errno -> why, in words
PATH_ERRNOS = {
    errno.EEXIST: "a file stands where a folder of this path must be",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "a folder of this path cannot be made",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many symbolic links",
}


# a cell a spreadsheet takes for a formula (Excel, LibreOffice, Google Sheets), and a plain number, which it never does
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(text: str) -> str:
    """A text cell of a CSV file as a spreadsheet shows it, never runs it: one that starts with = + - @, a tab or
    a carriage return gets a single quote before it (OWASP's advice against formula injection); a plain number
    written as text ("-1.5") is left as it is. Number cells are written as they are, without this."""
    return "'" + text if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text) else text


# characters a terminal acts on rather than shows: C0 and C1 controls (ANSI escapes, carriage returns), DEL, and
# the bidirectional overrides that reorder what follows them
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` (a name read from a file: a class, a column, a folder) as it may be printed to a terminal: each
    control character written as its escape ('\\x1b', '\\r', '\\u202e'), so it shows and does nothing."""
    return CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def parse_json(text: str | bytes, where: str | Path, what: str = "") -> object:
    """The JSON value ``text`` holds, or one line naming ``where`` (and ``what`` it should be): text that is not
    JSON, not UTF-8, or nested too deeply for Python's parser (a RecursionError, not a traceback)."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except RecursionError:
        why = "nested too deeply"
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except ValueError as e:
        why = str(e)
    raise VaekitError(f"{where}: {what or 'not'}{' is not' if what else ''} valid JSON ({why})")


def read_json(path: str | Path, what: str = "") -> object:
    """The JSON value in the file at ``path`` (``parse_json``: one VaekitError line where it holds none; one
    also for a file that is no plain file or is too big, ``read_plain``); a file that cannot be read raises its
    OSError."""
    return parse_json(read_plain(path), path, what)


# a JSON or CSV file of a run folder: far above any vaekit writes (a metrics.csv of 100,000 epochs is ~20 MB)
MAX_TEXT_BYTES = 64 * 2**20


def read_plain(path: str | Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them. A FIFO (which would wait for a writer
    forever), a device (a link to /dev/zero, endless) or a socket, or a file over ``limit`` bytes is one
    VaekitError line naming it, before a byte is read; a missing file or a folder raises its OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, with no writer waited for
    try:
        mode, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None
            raise VaekitError(f"{path}: not a plain file ({kind or 'a socket'}): vaekit reads plain files only")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1) if size <= limit else b""
    finally:
        os.close(fd)
    if size > limit or len(data) > limit:  # grown while read
        raise VaekitError(f"{path}: {max(size, len(data)):,} bytes or more; vaekit reads at most {limit:,} here")
    return data


class WriteError(VaekitError):
    """The disk refused a write (full, read-only, forbidden); the CLI exits with 1. Nothing half-written stays."""

    exit_code = 1

    def __init__(self, path: str | Path, error: OSError):
        super().__init__(f"{path}: cannot write ({error.strerror or error})")
        self.errno = error.errno


def write_error(path: str | Path, error: OSError) -> OSError | VaekitError:
    """``error`` as a WriteError when the disk is at fault, as a VaekitError (bad input) when the path is (a file
    where a folder must be, a folder where a file must be, a parent that cannot exist), else as it was."""
    if error.errno in WRITE_ERRNOS:
        return WriteError(path, error)
    if error.errno in PATH_ERRNOS:
        return VaekitError(f"{path}: cannot write there ({PATH_ERRNOS[error.errno]})")
    return error


def atomic_write(
    path: str | Path, write: Callable[[Path], object], backup: str | Path | None = None, shown: Path | None = None
) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place; the file it
    replaces is kept as ``backup`` (when given) once the new one is whole. ``path`` is never absent: the backup
    is made as a link to (or a copy of) the old file before the new one is renamed over it. A disk that refuses
    the write raises WriteError naming ``path`` (or ``shown``: the file a caller's temporary ``path`` becomes),
    and leaves ``path`` (and ``backup``) as they were."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions of a new file
        if backup is not None and path.is_file():
            keep_copy(path, Path(backup))
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(shown or path, e) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def keep_copy(path: Path, backup: Path) -> None:
    """Make ``backup`` the file ``path`` holds now, atomically, leaving ``path`` in place: a hard link (no data
    copied), or a copy where the file system has no links. A stop at any moment leaves both names whole."""
    tmp = backup.with_name(f".{backup.name}.{secrets.token_hex(6)}.tmp")
    try:
        try:
            os.link(path, tmp)
        except OSError:  # no links on this file system (EPERM, ENOTSUP...): a copy; a full disk fails it too
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, backup)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; a character UTF-8 cannot hold (a surrogate: the byte of a
    file name that is not UTF-8) is written as a backslash escape, never a traceback."""
    return atomic_write_bytes(path, text.encode("utf-8", "backslashreplace"))


def atomic_write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_held: dict[Path, tuple[int, int]] = {}  # folder -> (fd, depth): a process may take its own lock again


@contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s exclusive lock while writing it: ``flock`` on the folder itself, so no file is written.

    A second writer gets one line naming the process that holds the folder (read from /proc/locks); the
    kernel frees the lock when that process ends, however it ends. Re-entrant within a process. A folder the
    lock made is removed again when it is let go empty.
    """
    folder = Path(folder).resolve()
    made = folder not in _held and not folder.exists()  # this lock makes the folder: it goes if left empty
    if folder not in _held and fcntl is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder, os.O_RDONLY)
        except OSError as e:
            raise write_error(folder, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(fd)
            os.close(fd)
            raise VaekitError(f"{folder}: another vaekit process ({holder}) is writing this run folder") from None
        _held[folder] = (fd, 0)
    fd, depth = _held.get(folder, (-1, 0))
    _held[folder] = (fd, depth + 1)
    try:
        yield
    finally:
        if made:  # a start stopped before it wrote anything (a Ctrl-C, bad input) leaves no empty folder
            with contextlib.suppress(OSError):  # not empty (or gone): kept as it is
                folder.rmdir()
        fd, depth = _held.pop(folder)
        if depth > 1:
            _held[folder] = (fd, depth - 1)
        elif fd >= 0:
            os.close(fd)  # closing the only descriptor frees the flock


def lock_holder(fd: int) -> str:
    """'pid N' of the process holding a flock on ``fd``'s file, from /proc/locks (Linux), else 'pid unknown'."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if "FLOCK" in parts and parts[-3] == inode:
                return f"pid {parts[-4]}"
    except OSError:
        pass
    return "pid unknown"
