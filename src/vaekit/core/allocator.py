"""Host memory settings for CPU work: keep freed memory in the process for reuse.

PyTorch's CPU tensors come from the C library's malloc. glibc hands each allocation above its (adaptive,
at most 32 MiB) mmap threshold a fresh mapping and trims the top of its heap eagerly, so the multi-MiB
tensors that the IWAE estimator allocates and frees again in every chunk are faulted in and zeroed anew
each time: 3.8 M page faults and 40% of the estimator's time for 1000 images x K = 1000 (MLP VAE, 2-core
EPYC: 12.1 s against 7.2 s with this module's settings). The estimator turns the settings on; training
does not (its steps fault a few pages each, and kept memory raised its peak).

The heap is trimmed only above TRIM free: a chunk's tensors together pass KEEP (2048 rows of 1000 values:
about 70 MiB), and trimming them after each chunk faulted them in again (1.5 to 4 M faults, up to 2.5 times
the time, for 100 items, K = 5000). Nothing of a chunk may outlive it (``gathered``): a small result kept
between the chunks' freed tensors made later chunks take fresh memory, so the heap grew with K as the layout
fell, run to run (0.08 to 3 GiB above the start for the same 100 items of 1000 values, K = 10,000).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterable

from torch import Tensor

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP = 64 << 20  # bytes: allocations below this come from the heap
TRIM = 1 << 30  # bytes free at the heap's top before it is handed back: a chunk's tensors stay for the next


@functools.cache
def keep_freed_memory(threshold: int = KEEP, trim: int = TRIM) -> bool:
    """Serve allocations below ``threshold`` bytes from the heap and trim it only above ``trim`` bytes free.

    Linux with glibc only; runs once (cached). The process's resident memory then stays near its peak after
    a large free (the memory is reused, not returned to the system). ``VAEKIT_MALLOC=default`` in the
    environment leaves malloc as it is. Returns whether the settings are in force.
    """
    if os.environ.get("VAEKIT_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return (
            bool(libc.gnu_get_libc_version)  # glibc, not musl, whose mallopt does nothing
            and libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1
            and libc.mallopt(M_TRIM_THRESHOLD, trim) == 1
        )
    except (OSError, AttributeError):
        return False


def gathered(parts: Iterable[Tensor], n: int) -> Tensor:
    """Chunks (m, *shape) of work, in order, as one tensor (n, *shape): each written in as it comes, into a tensor
    made at the first, so no chunk's result outlives its chunk (pinning freed memory among the next ones')."""
    out, at = None, 0
    for part in parts:
        out = part.new_empty((n, *part.shape[1:])) if out is None else out
        out[at : at + len(part)] = part
        at += len(part)
        del part  # freed before the next chunk runs
    assert out is not None and at == n, "gathered: the chunks do not make n rows"
    return out
