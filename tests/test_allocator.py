"""vaekit.allocator: freed CPU memory is kept for reuse, so repeated large allocations stop faulting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, torch
from vaekit.core.allocator import keep_freed_memory
on = keep_freed_memory()
faults = []
for _ in range(12):  # 48 MiB: above glibc's largest adaptive mmap threshold (32 MiB), below vaekit's
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(12 << 20)
    del t
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"on": on, "again": keep_freed_memory(), "faults": faults}))
"""


def probe(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    tuned, default = probe({}), probe({"VAEKIT_MALLOC": "default"})
    if not tuned["on"]:
        pytest.skip("not glibc")
    assert tuned["again"] and not default["on"] and not default["again"]
    pages = (48 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert min(default["faults"]) > pages // 2  # glibc maps and faults in every 48 MiB tensor afresh
    # kept: once the heap has grown, its pages are reused. The heap faults in a second 48 MiB copy at the 2nd
    # or 3rd round in most runs, now and then up to the 5th (4 runs in 30 here); so the last
    # rounds fault nothing, and all rounds together fault less than half of what glibc's default does.
    assert max(tuned["faults"][-4:]) < pages // 20
    assert sum(tuned["faults"]) < sum(default["faults"]) / 2
