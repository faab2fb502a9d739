"""Download into the cache: streamed to a temp file, verified by SHA-256, renamed into place."""

from __future__ import annotations

import functools
import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vaekit.errors import VaekitError
from vaekit.io import atomic_write

TIMEOUT = 30.0  # seconds per connection attempt and per read
_CHUNK = 1 << 20


class _BadDownload(Exception):
    """The downloaded bytes fall short of the Content-Length or do not hash to the expected SHA-256."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, tmp: Path, sha256: str) -> None:
    """Stream ``url`` into ``tmp``, hashing as it goes; raise _BadDownload when the server stopped before the
    Content-Length it announced (http.client then just ends the body) or on a wrong hash."""
    h, got = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "vaekit"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(tmp, "wb") as f:
        length = response.headers.get("Content-Length", "")
        while chunk := response.read(_CHUNK):
            h.update(chunk)
            f.write(chunk)
            got += len(chunk)
    if length.strip().isdigit() and got < int(length):
        raise _BadDownload(f"incomplete download ({got} of {int(length)} bytes) from {url}")
    if h.hexdigest() != sha256.lower():
        raise _BadDownload(f"checksum mismatch from {url}: expected {sha256.lower()}, got {h.hexdigest()}")


def _reason(url: str, e: Exception) -> str:
    plain_url_error = isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError)
    why = e.reason if plain_url_error and isinstance(e, urllib.error.URLError) else e
    return " ".join(f"{url}: {why}".split())  # one line, whatever the exception held


def download(url_list: Sequence[str], filename: str, sha256: str, cache_dir: str | Path) -> Path:
    """Return ``cache_dir/filename`` holding bytes with the given SHA-256, downloading if needed.

    A cached file with the right hash is returned without network; a wrong one is deleted.
    Mirrors are tried in order; nothing unverified is ever left in ``cache_dir``.
    """
    target = Path(cache_dir) / filename
    if target.is_file():
        if sha256_of(target) == sha256.lower():
            return target
        target.unlink()
    reason = "no mirror URL given"
    for url in url_list:
        try:
            return atomic_write(target, functools.partial(_fetch, url, sha256=sha256))
        except _BadDownload as e:
            reason = str(e)
        except (OSError, ValueError, http.client.HTTPException) as e:
            reason = _reason(url, e)
    raise VaekitError(f"{filename}: download failed from every mirror; last error: {reason}")
