"""Edges of training under torchrun: fits that follow one another in a process group (vaekit's or the user's),
ranks given other settings or data, KL balancing over the global batch, and what the CLI asks of a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from vaekit.cli import run_command
from vaekit.config import RunConfig
from vaekit.errors import VaekitError
from vaekit.training import distributed, launcher
from vaekit.training.stability import balanced_kl

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
FIT = """
import faulthandler, os, sys
import numpy as np, torch, torch.distributed as dist
from sklearn.datasets import load_digits
import vaekit
faulthandler.dump_traceback_later(100, exit=True)  # a hang ends the worker, not the test session
r = int(os.environ["RANK"])
x = (load_digits().images[:200, None] / 16).astype(np.float32)
def fit(**kw):
    model = vaekit.build_model(input_shape=(1, 8, 8), latent_dim=3, hidden=[8], likelihood="bernoulli")
    return vaekit.fit(model, kw.pop("x", x), epochs=1, batch_size=64, progress=False, **kw)
"""


def torchrun(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    # leave as vaekit's CLI workers do (cli.exit_now): gloo's teardown at interpreter exit aborts now and then
    script.write_text(FIT + textwrap.dedent(body) + "sys.stdout.flush()\nos._exit(0)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOGLEVEL": "CRITICAL"}
    return subprocess.run([*TORCHRUN, str(script)], capture_output=True, text=True, timeout=150, env=env, check=False)


def test_two_fits_in_one_script_finish_and_leave_the_user_s_group_to_them(tmp_path):
    # the first fit destroyed the group; the second then set up one anew and hung there
    done = torchrun(
        tmp_path,
        """
        dist.init_process_group("gloo")
        fit(beta=1.0)
        fit(beta=4.0)
        t = torch.ones(1)
        dist.all_reduce(t)  # the user's group, still theirs
        print(f"rank {r} ok {dist.is_initialized()} {t.item()}", flush=True)
        dist.destroy_process_group()
        """,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert all(f"rank {r} ok True 2.0" in done.stdout for r in (0, 1)), done.stdout  # workers' lines may interleave


def test_ranks_with_other_data_are_refused_in_one_line_before_training(tmp_path):
    done = torchrun(
        tmp_path,
        """
        try:
            fit(x=x if r == 0 else x[:150])
        except vaekit.VaekitError as e:
            print(f"rank {r} {type(e).__name__}: {e}", flush=True)
        """,
    )
    want = "rank 1's data differs from rank 0's (135 training items vs 180): every process must read the same data"
    for line in (f"rank 0 VaekitError: {want}", f"rank 1 Stopped: {want}"):  # the workers' writes may interleave
        assert done.stdout.count(line) == 1, done.stdout


def gathered(monkeypatch, other: dict) -> None:
    """Two processes in this one: rank 0 is this process, rank 1 sends ``other``."""
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "world", lambda: 2)
    monkeypatch.setattr(distributed, "is_main", lambda: True)
    monkeypatch.setattr(
        distributed.dist, "all_gather_object", lambda out, mine: out.__setitem__(slice(None), [mine, other])
    )


DATA = {"items": [1000, 100, 100], "sha256": "a"}


@pytest.mark.parametrize(
    "settings, data, line",
    [
        ({"train.lr": 0.002}, DATA, r"rank 1's train.lr differs from rank 0's \(0.002 vs 0.001\)"),
        ({"train.lr": 0.001}, {**DATA, "items": [1300, 100, 100]}, r"\(1300 training items vs 1000\)"),
        ({"train.lr": 0.001}, {**DATA, "sha256": "b"}, r"rank 1's data differs from rank 0's \(other items, as many\)"),
    ],
)
def test_a_rank_s_other_setting_or_data_is_named(monkeypatch, settings, data, line):
    gathered(monkeypatch, {"settings": settings, "data": data})
    with pytest.raises(VaekitError, match=line):
        distributed.check_same({"train.lr": 0.001}, DATA)
    gathered(monkeypatch, {"settings": {"train.lr": 0.001}, "data": DATA})
    distributed.check_same({"train.lr": 0.001}, DATA)  # the same: no word


def test_two_processes_weigh_the_kl_groups_as_one_process_weighs_the_global_batch():
    torch.manual_seed(0)
    kl = [torch.rand(8, requires_grad=True), torch.rand(8, requires_grad=True)]  # (B,) per group
    with torch.no_grad():
        kl[1][:4] += 5.0  # the first process's items carry much more KL in the second group
    z = [torch.zeros(8, 4), torch.zeros(8, 2)]
    halves = [slice(0, 4), slice(4, 8)]

    def shared(sums: torch.Tensor, n: int) -> tuple[torch.Tensor, int]:  # an all-reduce of both halves' sums
        return torch.stack([torch.stack([k.detach()[h].sum() for k in kl]) for h in halves]).sum(0), 2 * n

    one = torch.autograd.grad(balanced_kl(kl, z), kl)
    two = sum(balanced_kl([k[h] for k in kl], [t[h] for t in z], shared) for h in halves) / 2  # DDP's mean
    for a, b in zip(one, torch.autograd.grad(two, kl)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_verb_other_than_train_is_refused_under_torchrun_by_rank_0_alone(monkeypatch, capsys, tmp_path, rank):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    assert run_command(["curves", str(tmp_path)]) == 2  # the CLI: rank 0's one line, the others silent
    said = "vaekit: error: vaekit curves runs in one process: start it without torchrun\n"
    assert capsys.readouterr().err == ("" if rank == "1" else said)
    with pytest.raises(VaekitError, match="vaekit evaluate runs in one process: start it without torchrun") as e:
        launcher.refuse_launched("evaluate")
    assert launcher.silent(e.value) == (rank == "1")
    assert launcher.silent(KeyboardInterrupt()) == (rank == "1")  # torchrun stopped every rank: rank 0 says so
    assert not launcher.silent(VaekitError("its own data"))


def test_the_launcher_checks_the_data_spec_and_the_folder_before_any_worker(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(launcher, "launch", lambda *a: pytest.fail("torchrun was started"))
    argv = ["train", "--data", str(tmp_path / "none.npy"), "--nproc", "2", "--out", str(tmp_path / "r")]
    assert run_command(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line from the launcher, none from workers
    cfg = RunConfig()
    cfg.data.spec, cfg.out = str(tmp_path / "none.npy"), str(tmp_path / "run")
    with pytest.raises(VaekitError, match=r"none\.npy: no such file or folder"):
        launcher.precheck(cfg, 2, resume=False, overwrite=False)
    cfg.data.spec = "digits"
    with pytest.raises(VaekitError, match=r"no checkpoint\.safetensors to resume from"):
        launcher.precheck(cfg, 2, resume=True, overwrite=False)
    launcher.precheck(cfg, 2, resume=False, overwrite=False)


def test_a_second_signal_to_the_launcher_does_not_cut_its_exit_short(tmp_path):
    # a stand-in for torchrun exits 130 at once on SIGINT; a SIGTERM after it found the launcher's handlers
    # given back on its way out, and killed it by default
    stand_in = (
        "import signal, sys, time; signal.signal(2, lambda *a: sys.exit(130)); print(1, flush=True); time.sleep(30)"
    )
    code = (
        "import sys, time; from vaekit.training import launcher; "
        f"launcher.torchrun_command = lambda a, n: ([sys.executable, '-c', {stand_in!r}], None); "
        "code = launcher.launch([], 2); time.sleep(2); sys.exit(code)"  # the CLI's way out after it
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
