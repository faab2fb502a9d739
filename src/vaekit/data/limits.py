"""How much memory a data file may take as it is read: the memory available on this machine, held to what the
process's address-space limit (``ulimit -v``, ``prlimit --as``) still leaves where one is set."""

from __future__ import annotations

import resource
from pathlib import Path


def usable_memory() -> int:
    """Bytes a reader may still allocate: MemAvailable, or less under an address-space limit."""
    from vaekit.data.lazy import available_memory  # lazy builds on the readers that call this

    free = available_memory()
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return free if soft == resource.RLIM_INFINITY else min(free, max(0, soft - _address_space()))


def _address_space() -> int:
    """This process's mapped address space in bytes (VmSize), 0 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
