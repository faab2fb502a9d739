"""How much memory a data file may take as it is read: the memory available on this machine, held to what the
process's address-space limit (``ulimit -v``, ``prlimit --as``) and its memory cgroup (a container's or a
systemd unit's limit: v2 ``memory.max``, v1 ``memory.limit_in_bytes``, less what the group uses) still leave."""

from __future__ import annotations

import resource
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")  # this process's cgroups: "hierarchy:controllers:path" a line
V1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")  # limit, usage, page cache
V2 = ("memory.max", "memory.current", "inactive_file")
NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as the largest page count it holds (9223372036854771712)


def usable_memory() -> int:
    """Bytes a reader may still allocate: MemAvailable, or less under an address-space limit or a memory cgroup's
    limit (the strictest of them)."""
    from vaekit.data.lazy import available_memory  # lazy builds on the readers that call this

    free = min(available_memory(), cgroup_free())
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return free if soft == resource.RLIM_INFINITY else min(free, max(0, soft - _address_space()))


def cgroup_free() -> int:
    """Bytes this process's memory cgroups still allow (its own and each above it): limit less usage, the page
    cache the kernel would reclaim (inactive files) not counted as used; a very large number where none is set."""
    free = NO_LIMIT
    try:
        lines = MEMBERSHIP.read_text().splitlines()
    except OSError:
        return free
    for line in lines:
        _, controllers, path = line.split(":", 2)
        v2 = controllers == ""  # "0::/path": the unified hierarchy
        if not v2 and "memory" not in controllers.split(","):
            continue
        root = CGROUPS if v2 else CGROUPS / "memory"
        files = V2 if v2 else V1
        folder = root if ".." in path else root / path.strip("/")  # a container's own root: its limit
        for d in (folder, *folder.parents[: len(folder.parts) - len(root.parts)]):
            free = min(free, _group_free(d, *files))
    return free


def _group_free(folder: Path, limit_file: str, usage_file: str, inactive: str) -> int:
    """One cgroup's limit less its usage (less its reclaimable page cache), NO_LIMIT where it sets none."""
    try:
        limit = (folder / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= NO_LIMIT:
            return NO_LIMIT
        used = int((folder / usage_file).read_text())
    except (OSError, ValueError):
        return NO_LIMIT
    try:
        stat = (line.split(" ", 1) for line in (folder / "memory.stat").read_text().splitlines())
        cache = next((int(v) for k, v in stat if k == inactive), 0)
    except (OSError, ValueError):
        cache = 0
    return max(0, int(limit) - used + cache)


def _address_space() -> int:
    """This process's mapped address space in bytes (VmSize), 0 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
