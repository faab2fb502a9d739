"""Download into the cache: streamed to a temp file, verified by SHA-256, renamed into place.

A read stalled for TIMEOUT seconds, or a download slower on average than $VAEKIT_DOWNLOAD_MIN_RATE kB/s (default
MIN_RATE_KB) once TIMEOUT seconds have passed, fails that mirror. A disk that refuses the write fails at once
(WriteError), on no other mirror. A killed download's temporary file, untouched for STALE_S seconds, is removed
by the next call for that file. A body longer than the file's known size (or MAX_BYTES) fails that mirror. A mirror
is an http(s):// or file:// URL, or an absolute folder path (read as file://); any other fails before the network.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vaekit.data.images import note
from vaekit.errors import VaekitError
from vaekit.io import atomic_write

TIMEOUT = 30.0  # seconds per connection attempt and per read; the grace before the minimum rate applies
MIN_RATE_ENV, MIN_RATE_KB = "VAEKIT_DOWNLOAD_MIN_RATE", 10.0  # kB/s; 0: no minimum
STALE_S = 600  # a temporary file untouched this long is a killed download's (as the image cache's)
MAX_BYTES = 1 << 30  # the most read of a file whose size is not known: an endless body fails the mirror, not the disk
_CHUNK = 1 << 20


class DownloadFailed(VaekitError):
    """Every mirror failed (offline, refused, too slow, wrong bytes); the disk was not at fault. ``summary``: each
    mirror's reason, checksums shortened; ``reachable``: the URLs whose failure may be the network's (offline,
    timed out, too slow, cut short), not the mirror's own (refused, an HTTP error, other bytes, no usable URL)."""

    def __init__(self, message: str, summary: str = "", reachable: Sequence[str] = ()):
        super().__init__(message)
        self.summary, self.reachable = summary, list(reachable)


class _BadDownload(Exception):
    """One mirror failed: the network, a short body, too slow, or bytes that do not hash to the expected SHA-256;
    ``network``: whether the network between may be at fault, not the mirror."""

    def __init__(self, message: str, network: bool = False):
        super().__init__(message)
        self.network = network


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def min_rate() -> float:
    """Bytes per second below which a download is given up after TIMEOUT seconds ($VAEKIT_DOWNLOAD_MIN_RATE)."""
    text = os.environ.get(MIN_RATE_ENV, "").strip()
    try:
        rate = float(text) if text else MIN_RATE_KB
    except ValueError:
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise VaekitError(f"{MIN_RATE_ENV}={text!r}: expected a rate in kB/s such as 10 (0: no minimum)")
    return rate * 1000


def _size(length: str) -> str:
    """' (26.4 MB)' for a Content-Length, '' where the server gave none."""
    if not length.strip().isdigit():
        return ""
    n = int(length)
    return f" ({n / 1e6:.1f} MB)" if n >= 1e6 else f" ({-(-n // 1000)} kB)"


def _fetch(url: str, tmp: Path, sha256: str, rate: float, name: str, size: int | None = None) -> None:
    """Stream ``url`` into ``tmp``, hashing as it goes; raise _BadDownload for a network error, a body shorter than
    the Content-Length announced (http.client then just ends it), one longer than ``size`` (MAX_BYTES when not
    known), one too slow, or a wrong hash. An error of the disk (writing ``tmp``) is an OSError, which
    atomic_write names."""
    h, got, start, most = hashlib.sha256(), 0, time.monotonic(), size or MAX_BYTES
    try:  # a malformed URL (ValueError) fails this mirror, not the download
        request = urllib.request.Request(_as_url(url), headers={"User-Agent": "vaekit"})
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise _BadDownload(_reason(url, e), _network(e)) from None
    with response, open(tmp, "wb") as f:
        length = response.headers.get("Content-Length", "")
        encoding = response.headers.get("Content-Encoding", "").strip()
        note(f"downloading {name}{_size(length)} from {url}")
        while chunk := _read(response, url):
            h.update(chunk)
            f.write(chunk)
            got += len(chunk)
            if got > most:  # an oversized or endless body: not the file, whatever the disk holds
                raise _BadDownload(f"{url}: more than the {most} bytes of {name}; not the file")
            elapsed = time.monotonic() - start
            if elapsed > TIMEOUT and got < rate * elapsed:  # a trickle that each read's timeout lets through
                raise _BadDownload(
                    f"too slow ({got} bytes in {elapsed:.0f} s, under {MIN_RATE_ENV}={rate / 1000:g} kB/s) from {url}",
                    network=True,
                )
    if length.strip().isdigit() and got < int(length):
        raise _BadDownload(f"incomplete download ({got} of {int(length)} bytes) from {url}", network=True)
    if h.hexdigest() != sha256.lower():
        on_the_fly = encoding.lower() not in ("", "identity")
        how = f"; the server compressed the file on the fly (Content-Encoding: {encoding})" if on_the_fly else ""
        raise _BadDownload(f"checksum mismatch from {url}: expected {sha256.lower()}, got {h.hexdigest()}{how}")


def _read(response: http.client.HTTPResponse, url: str) -> bytes:
    """The bytes that have arrived (up to _CHUNK; read1 returns them without waiting for a whole chunk)."""
    try:
        return response.read1(_CHUNK)
    except (OSError, http.client.HTTPException) as e:  # cut off midway
        raise _BadDownload(_reason(url, e), network=True) from None


def _as_url(url: str) -> str:
    """``url``, an absolute folder path given as a mirror read as file://; any other scheme than http(s):// and
    file:// refused before any network access, as anything else without a scheme."""
    if "://" in url:
        if url.split("://", 1)[0].lower() not in ("http", "https", "file"):
            raise ValueError("not an http(s):// or file:// URL, nor an absolute folder")
        return url
    if os.path.isabs(os.path.expanduser(url)):
        return Path(os.path.expanduser(url)).as_uri()
    raise ValueError("not a URL (a mirror is an http(s):// or file:// URL, or an absolute folder path)")


def _network(e: Exception) -> bool:
    """Whether the error ``e`` of opening a URL may be the network's (no name lookup, no route, timed out), not the
    mirror's own answer (a refused connection, an HTTP error, a missing file, a URL that is not one)."""
    why = e.reason if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError) else e
    down = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)
    timed_out = isinstance(why, TimeoutError) or "timed out" in str(why)
    return timed_out or isinstance(why, socket.gaierror) or getattr(why, "errno", None) in down


def shortened(text: str) -> str:
    """``text`` with each SHA-256 (64 hex digits) cut to its first 12: 'got 3aede38d6186...'."""
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1...", text)


def _reason(url: str, e: Exception) -> str:
    plain_url_error = isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError)
    why = e.reason if plain_url_error and isinstance(e, urllib.error.URLError) else e
    if isinstance(why, TimeoutError) or "timed out" in str(why):
        why = f"timed out after {TIMEOUT:g} s"
    return " ".join(f"{url}: {why}".split())  # one line, whatever the exception held


def _remove_stale(target: Path) -> None:
    """Remove killed downloads' temporary files of ``target`` (``.NAME.XXXX.tmp``, atomic_write's) untouched for
    STALE_S seconds; a fresher one may be another process's download in progress."""
    for tmp in glob.glob(os.path.join(glob.escape(str(target.parent)), f".{glob.escape(target.name)}.*.tmp")):
        with contextlib.suppress(OSError):  # gone meanwhile, or a disk that refuses: only space is lost
            if os.stat(tmp).st_mtime < time.time() - STALE_S:
                os.unlink(tmp)


def download(
    url_list: str | Sequence[str], filename: str, sha256: str, cache_dir: str | Path, size: int | None = None
) -> Path:
    """Return ``cache_dir/filename`` holding bytes with the given SHA-256 (and at most ``size`` bytes), downloading
    if needed from ``url_list`` (one URL, or mirrors tried in order); ``fetch``, returning the path only."""
    return fetch(url_list, filename, sha256, cache_dir, size)[0]


def cached(target: Path, sha256: str, hint: str = "") -> bool:
    """Whether ``target`` is in the cache with the right SHA-256; a killed download's stale temporary files of it
    are removed. One that fails the hash is said in one line (and kept until a verified copy replaces it)."""
    if target.parent.is_dir():
        _remove_stale(target)
    if not target.is_file():
        return False
    if sha256_of(target) == sha256.lower():
        return True
    note(f"{target} in the cache fails its SHA-256 (a re-compressed or damaged copy?){'; ' + hint if hint else ''}")
    return False


def fetch(
    url_list: str | Sequence[str],
    filename: str,
    sha256: str,
    cache_dir: str | Path,
    size: int | None = None,
    hint: str = "",
) -> tuple[Path, str | None]:
    """(``cache_dir/filename``, the URL it came from, None from the cache): ``download``; ``hint`` ends the line
    said of a cached copy that fails the hash.

    A cached file with the right hash is returned without network; a wrong one stays until a verified copy
    replaces it. Nothing unverified is ever left in ``cache_dir``, nor a folder made for a download that failed.
    DownloadFailed when every mirror failed; WriteError at once when the disk refuses the file.
    """
    urls = [url_list] if isinstance(url_list, str) else list(url_list)
    target = Path(cache_dir) / filename
    if cached(target, sha256, hint):
        return target, None
    rate = min_rate()
    made = []  # the folders this download makes, deepest first: removed again (when empty) if it fails
    for folder in (target.parent, *target.parent.parents):
        if folder.exists():
            break
        made.append(folder)
    try:
        return _from_mirrors(urls, target, sha256, rate, size)
    except BaseException:
        for folder in made:
            with contextlib.suppress(OSError):  # not empty (another process's download), or gone
                folder.rmdir()
        raise


def _from_mirrors(url_list: list[str], target: Path, sha256: str, rate: float, size: int | None) -> tuple[Path, str]:
    """``target`` fetched from the first mirror that gives the right bytes, and that mirror's URL; a disk error is
    raised at once. A mirror failing before another is tried: one line; every mirror failing: each one's reason,
    the checksums of those said already shortened (each said once in full)."""
    reasons, reachable = [], []
    for i, url in enumerate(url_list):
        write = functools.partial(_fetch, url, sha256=sha256, rate=rate, name=target.name, size=size)
        try:
            return atomic_write(target, write), url
        except _BadDownload as e:
            reasons.append(str(e))
            reachable += [url] * e.network
            if i + 1 < len(url_list):
                note(f"{e}; trying the next mirror")
    said = [*map(shortened, reasons[:-1]), *reasons[-1:]] or ["no mirror URL given"]
    expected = f"expected {shortened(sha256.lower())}, "  # once in the summary: each mirror expects the same
    first, found, rest = "; ".join(map(shortened, reasons)).partition(expected)
    summary = (first + found + rest.replace(expected, "")) or "no mirror URL given"
    raise DownloadFailed(f"{target.name}: download failed from every mirror: {'; '.join(said)}", summary, reachable)
