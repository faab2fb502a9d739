"""Host memory settings for CPU work: keep freed memory in the process for reuse.

PyTorch's CPU tensors come from the C library's malloc. glibc hands each allocation above its (adaptive,
at most 32 MiB) mmap threshold a fresh mapping and trims the top of its heap eagerly, so the multi-MiB
tensors that the IWAE estimator allocates and frees again in every chunk are faulted in and zeroed anew
each time: 3.8 M page faults and 40% of the estimator's time for 1000 images x K = 1000 (MLP VAE, 2-core
EPYC: 12.1 s against 7.2 s with this module's settings). The estimator turns the settings on while it runs
(``freed_memory_kept``) and off again; training does not use them (its steps fault a few pages each, and kept
memory raised its peak: a conv fit's resident memory 437 against 382 MiB).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP = 64 << 20  # bytes: allocations below this come from the heap
# glibc's thresholds as near as mallopt sets them back (it has no getter, and a set mmap threshold no longer adapts):
# its adaptive mmap threshold's ceiling (tensors below it reused, as glibc's adaptive rule comes to after a few
# steps; 128 KiB, its start, made a conv fit 30% slower) and its default trim threshold.
GLIBC = (32 << 20, 128 << 10)
_kept: int | None = None  # the threshold keep_freed_memory set, in force now; None: glibc's


def _mallopt(mmap: int, trim: int) -> bool:
    """Set glibc's mmap and trim thresholds (bytes); whether they were set (glibc on Linux, not turned off)."""
    if os.environ.get("VAEKIT_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return (
            bool(libc.gnu_get_libc_version)  # glibc, not musl, whose mallopt does nothing
            and libc.mallopt(M_MMAP_THRESHOLD, mmap) == 1
            and libc.mallopt(M_TRIM_THRESHOLD, trim) == 1
        )
    except (OSError, AttributeError):
        return False


def keep_freed_memory(threshold: int = KEEP) -> bool:
    """Serve allocations below ``threshold`` bytes from the heap and trim it only above ``threshold`` free, for
    the rest of the process (``freed_memory_kept``: for a block alone).

    Linux with glibc only. The process's resident memory then stays near its peak after a large free (the
    memory is reused, not returned to the system). ``VAEKIT_MALLOC=default`` in the environment leaves malloc
    as it is. Returns whether the settings are in force.
    """
    global _kept
    if _kept != threshold and _mallopt(threshold, threshold):
        _kept = threshold
    return _kept == threshold


def kept() -> int | None:
    """The threshold of ``keep_freed_memory`` in force now (bytes), or None: glibc's own settings."""
    return _kept


@contextlib.contextmanager
def freed_memory_kept(threshold: int = KEEP) -> Iterator[bool]:
    """``keep_freed_memory`` while the block (or decorated function) runs, then the settings in force before
    it: glibc's (``GLIBC``) or an earlier ``keep_freed_memory``'s. Yields whether the settings are in force."""
    global _kept
    before = _kept
    on = keep_freed_memory(threshold)
    try:
        yield on
    finally:
        if on and before != threshold:
            _mallopt(*(GLIBC if before is None else (before, before)))
            _kept = before
