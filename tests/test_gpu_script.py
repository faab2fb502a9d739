"""tools/gpu.sh, the one prepared script for a lent GPU machine, run here with stand-ins for python3 and
nvidia-smi: its stages in order, their time limits, the options it passes on, and the eager fallback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import cpu_quota

SCRIPT = Path(__file__).parents[1] / "tools" / "gpu.sh"
FAKE_PYTHON = """#!/bin/bash
if [ "$1" = "-c" ]; then exec {python} "$@"; fi
echo "$*" >> {calls}
case "$*" in *deep_gpu.py*compile=off*) exit 0;; *deep_gpu.py*) exit {deep_rc};; esac
"""


@pytest.mark.parametrize(("deep_rc", "peer"), [(0, True), (1, True), (0, False)])
def test_stages_run_in_order_within_their_limits_and_a_failed_deep_run_falls_back_to_eager(tmp_path, deep_rc, peer):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "python3").write_text(FAKE_PYTHON.format(python=sys.executable, calls=tmp_path / "calls", deep_rc=deep_rc))
    (bin_ / "nvidia-smi").write_text("#!/bin/bash\necho 'a GPU, 1 MiB'\n")
    for path in bin_.iterdir():
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PEER_SECONDS"}  # gpu.sh's own, when the suite runs in it
    env.update({"PATH": f"{bin_}:{os.environ['PATH']}", "DEEP_ARGS": "--set train.precision=bf16"})
    env.update({} if peer else {"PEER_SECONDS": "0"})
    out = tmp_path / "out"
    subprocess.run(["bash", str(SCRIPT), str(out), "1", "100"], cwd=tmp_path, env=env, check=True, capture_output=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    tests = [call for call in calls if call.startswith("-m pytest -v -n ")]  # alongside, on the other cores
    calls = [call for call in calls if call not in tests]
    assert len(tests) == 1 and len(calls) == 1 + peer + deep_rc
    if peer:
        assert calls.pop(0).startswith("benchmarks/peer.py --device cuda --rounds 1 --json")
    assert re.fullmatch(r"benchmarks/deep_gpu\.py .* --set train\.precision=bf16 --minutes 1", calls[0])
    if deep_rc:
        assert calls[1].endswith(".png --minutes 2 --set train.compile=off")  # the preset, without DEEP_ARGS
    stages = (out / "machine.txt").read_text()
    limits = dict(re.findall(r"^([a-z-]+): exit \d+ after \d+ s \(limit (\d+) s\)$", stages, re.M))
    assert "a GPU, 1 MiB" in stages and re.search(rf"^deep: exit {deep_rc} ", stages, re.M)
    stages = [*(["peer"] if peer else []), "deep", *(["deep-eager"] if deep_rc else [])]
    assert [name for name in limits if name != "pytest"] == stages
    assert (
        limits.get("peer", "220") == "220" and limits["deep"] == "180"
    )  # the deep budget, then two minutes to evaluate
    assert limits["pytest"] == "100"  # the suite runs alongside the benchmarks, within the whole run's limit


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_suite_counts_a_containers_cpu_quota_for_its_workers(files, cores, tmp_path):
    """make test's ``-n auto`` reads a cgroup v2 or v1 CPU quota; without one the cores are counted as seen."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == cores
