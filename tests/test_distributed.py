"""Two CPU processes under torchrun (gloo): the same weights as one process with the same global batch, rank 0
alone writes the run folder, and a run stopped by SIGTERM resumes to the weights of one never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vaekit.cli import build_parser, train_config

from .conftest import train_run
from .noiseless_vaekit import loc_sample

NOISELESS = str(Path(__file__).with_name("noiseless_vaekit.py"))
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
FLAGS = ["train", "--data", "digits", "--hidden", "32", "--latent-dim", "3", "--quiet", "--device", "cpu"]
TOLERANCE = 1e-5  # largest weight difference allowed; float sums in another order differ by ~3e-8 here


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    # a rank that aborts dumps its Python threads' stacks (faulthandler) above torchrun's summary
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=240, env=env, **kw)
    assert done.returncode == 0, done.stderr[-8000:]
    return done


def max_difference(a: Path, b: Path) -> float:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert sorted(x) == sorted(y)
    return max(float((x[k] - y[k]).abs().max()) for k in x)


def test_two_processes_follow_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    # one epoch of 480 items in 8 global batches; z = loc, so no process draws noise the other lacks
    # float32: under bf16 autocast half batches round differently from the whole batch (2.4e-5 apart here)
    flags = [*FLAGS, "--binarize", "none", "--limit", "600", "--epochs", "1", "--precision", "fp32"]
    two = run([*TORCHRUN, NOISELESS, *flags, "--batch-size", "64", "--out", str(tmp_path / "two")])
    monkeypatch.setattr(torch.distributions.Normal, "rsample", loc_sample)
    for batch in ("64", "32"):  # one process, in this one
        train_run(
            train_config(build_parser().parse_args([*flags, "--batch-size", batch, "--out", str(tmp_path / batch)]))
        )
    same = max_difference(tmp_path / "two", tmp_path / "64")
    per_process = max_difference(tmp_path / "two", tmp_path / "32")  # what a per-process batch of 64 would do
    assert same < TOLERANCE < per_process / 100, (same, per_process)
    # rank 0 alone wrote the folder: the one-process run's files, one event file, one line on stdout
    assert files(tmp_path / "two") == files(tmp_path / "64") and two.stdout.count("run written") == 1


def files(run: Path) -> list[str]:
    """The names in a run folder, TensorBoard's (named by host and process) as one."""
    return sorted("events" if p.name.startswith("events.out") else p.name for p in run.iterdir())


@pytest.mark.slow
def test_a_two_process_run_stopped_by_sigterm_resumes_exactly(tmp_path):
    flags = [
        *FLAGS,
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--set",
        "train.checkpoint_every=20",
        "--set",
        "train.checkpoint_minutes=0",
    ]
    run([*TORCHRUN, "-m", "vaekit", *flags, "--out", str(tmp_path / "whole")])
    stopped, ckpt = tmp_path / "stopped", tmp_path / "stopped" / "checkpoint.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaekit", *flags, "--nproc", "2", "--out", str(stopped)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # the launcher hands it to torchrun, which hands it to both ranks
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.count("stopped by SIGTERM") == 1  # both ranks stopped at one step; rank 0 wrote and said so
    run([*TORCHRUN, "-m", "vaekit", "train", "--resume", str(stopped)])
    for name in ("model.safetensors", "checkpoint.safetensors"):  # every rank's RNG state came back
        a, b = load_file(tmp_path / "whole" / name), load_file(stopped / name)
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a), name
    assert (stopped / "metrics.csv").read_text().count("\n") == 3


@pytest.mark.skipif(sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_the_launcher_s_child_dies_with_it():
    """What --nproc starts (torchrun, and through it the workers) gets SIGTERM when the launcher dies, even by
    SIGKILL: here a child that would sleep a minute, of a parent that exits at once."""
    parent = (
        "import subprocess; from vaekit.training.distributed import die_with_parent; "
        "print(subprocess.Popen(['sleep', '60'], stdout=-3, stderr=-3, preexec_fn=die_with_parent).pid, flush=True)"
    )
    pid = int(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout)
    for _ in range(50):
        time.sleep(0.1)
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return  # dead, not yet reaped by its new parent
        except (FileNotFoundError, ProcessLookupError):
            return
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the child outlived its parent")


def test_the_launched_workers_import_no_file_of_the_working_directory(tmp_path):
    (tmp_path / "safetensors.py").write_text("raise SystemExit(99)\n")  # a folder someone sent: shadows a module
    script = Path(sys.executable).with_name("vaekit")  # the console script, as a user runs it
    tiny = ["--limit", "100", "--epochs", "1", "--nproc", "1", "--out", "run"]
    done = run([str(script), *FLAGS, *tiny], cwd=tmp_path)
    assert (tmp_path / "run" / "model.safetensors").is_file(), done.stderr[-2000:]
