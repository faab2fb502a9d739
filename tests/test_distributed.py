"""Two CPU processes under torchrun (gloo): the same weights as one process with the same global batch, rank 0
alone writes the run folder, and a run stopped by SIGTERM resumes to the weights of one never stopped. Without
torchrun: each process's share of one process's batches, the per-process batch an objective needs, a lost peer's
cause, workers that die with their launcher, and warnings said once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import VERBS, build_parser, run_command, train_config
from vaekit.config import TrainConfig
from vaekit.data.batching import batch_count, batches
from vaekit.data.lazy import LazyArray
from vaekit.errors import VaekitError
from vaekit.training import capture, distributed, launcher, trainer
from vaekit.training.checkpoint import load_latest_checkpoint, save_checkpoint
from vaekit.training.guard import StepGuard

from .conftest import train_run
from .noiseless_vaekit import loc_sample
from .test_zoo_edges import CPU, Rows

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
    # one epoch of 514 items in 9 global batches, the last of 2: one item in each process (cutting its own 257
    # items into batches of 32, with a lone last item folded in, each process took 8 steps, 1e-2 away)
    # z = loc, so no process draws noise the other lacks
    # float32: under bf16 autocast half batches round differently from the whole batch (2.4e-5 apart here)
    flags = [*FLAGS, "--binarize", "none", "--limit", "642", "--epochs", "1", "--precision", "fp32"]
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
    rows = [list(csv.DictReader((f / "metrics.csv").read_text().splitlines())) for f in (tmp_path / "whole", stopped)]
    whole, resumed = ([(r["train_loss"], r["val_loss"]) for r in x] for x in rows)
    assert whole == resumed  # the interrupted epoch's mean too (its sums restarted on rank 0 alone)


@pytest.mark.skipif(sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_the_launcher_s_child_dies_with_it():
    """What --nproc starts (torchrun, and through it the workers) gets SIGTERM when the launcher dies, even by
    SIGKILL: here a child that would sleep a minute, of a parent that exits at once."""
    parent = (
        "import subprocess; from vaekit.training.launcher import die_with_parent; "
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


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("least", [1, 2])
@pytest.mark.parametrize("n,size,world", [(898, 64, 2), (898, 64, 4), (17, 8, 2), (19, 8, 4), (5, 2, 2), (64, 8, 8)])
def test_each_process_takes_its_share_of_one_process_s_batches(n, size, world, least, lazy):
    """As many batches in every process as in one (898 items in batches of 64: 15, where cutting each process's
    449 items into batches of 32 gave 14); batch b's shares are one process's batch b, its last padded with the
    epoch's first items only to as many in each process, and to ``least`` where whole batches give as many."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    x = LazyArray(Rows(), np.arange(n)) if lazy else torch.arange(n, dtype=torch.float32)[:, None]
    one = [xb.flatten().long() for _, xb, _ in batches(x, None, perm, size, 0, 0, CPU)]
    shares = [
        [xb.flatten().long() for _, xb, _ in batches(x, None, perm, size, 0, 0, CPU, rank=r, world=world, least=least)]
        for r in range(world)
    ]
    assert len(one) == batch_count(n, size) and all(len(s) == len(one) for s in shares)
    for b, whole in enumerate(one):
        together = torch.stack([s[b] for s in shares], 1).flatten()  # rank r's share: every world-th from r
        pad = len(together) - len(whole)
        assert torch.equal(together[: len(whole)], whole) and torch.equal(together[len(whole) :], perm[:pad])
        assert pad == 0 or b == len(one) - 1
        assert len(shares[0][b]) == max(-(-len(whole) // world), min(least, size // world))
    resumed = [
        xb.flatten().long()
        for _, xb, _ in batches(x, None, perm, size, len(one) - 1, 0, CPU, rank=1, world=world, least=least)
    ]
    assert len(resumed) == 1 and torch.equal(resumed[0], shares[1][-1])  # a mid-epoch resume: the same share


@pytest.mark.parametrize("rank,objective,last", [(0, "elbo", 1), (1, "mmd", 2)])
def test_a_process_of_two_trains_on_its_share_of_each_of_one_process_s_steps(rank, objective, last, monkeypatch):
    """66 training items in batches of 64: two steps an epoch in one process, and in each of two (32 items, then
    one of the last 2, or under MMD, which compares pairs, 2 after padding), where each process cut its own 33
    items into batches of 32 and took one step."""
    x = np.random.default_rng(0).random((70, 1, 2, 2)).astype(np.float32)
    steps: list[int] = []
    real = trainer.batches

    def recorded(*args, **kw):
        for b, xb, yb in real(*args, **kw):
            steps.append(len(xb))
            yield b, xb, yb

    monkeypatch.setattr(trainer, "batches", recorded)
    monkeypatch.setattr(distributed, "world", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: rank)  # no process group: every collective stays local
    model = vaekit.build_model(input_shape=(1, 2, 2), latent_dim=2, hidden=[4], likelihood="gaussian")
    vaekit.fit(
        model, x[:66], val_data=x[66:], epochs=2, batch_size=64, objective=objective, progress=False, device="cpu"
    )
    assert steps == [32, last] * 2


@pytest.mark.parametrize(
    "train,size,refused",
    [
        (TrainConfig(objective="mmd"), 2, "MMD"),
        (TrainConfig(objective="factor"), 2, "discriminator"),
        (TrainConfig(tc_beta=2.0), 2, "beta-TCVAE"),
        (TrainConfig(objective="mmd"), 4, None),
        (TrainConfig(), 2, None),
    ],
)
def test_a_batch_level_objective_needs_two_items_per_process(train, size, refused):
    if refused is None:
        distributed.check_batch(size, 2, train)
        return
    with pytest.raises(
        VaekitError, match=rf"^train.batch_size 2 over 2 processes is a batch of 1 per process.*{refused}"
    ):
        distributed.check_batch(size, 2, train)


def test_nproc_refuses_a_per_process_batch_the_objective_cannot_take_before_any_worker(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(launcher, "launch", lambda *a: pytest.fail("torchrun was started"))
    argv = [*FLAGS, "--objective", "mmd", "--batch-size", "2", "--nproc", "2", "--out", str(tmp_path / "run")]
    assert run_command(argv) == 2
    assert "batch of 1 per process" in capsys.readouterr().err


def test_a_lost_peer_s_line_keeps_gloo_s_cause_and_leaves_its_advice(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")  # the other ranks stop with it, silently
    cause = "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:39049: "
    cause += "Connection reset by peer"
    advice = ". This is typically caused by a remote worker hanging or bugs in the application. Check the logs of "
    advice += "the remote worker before reporting an error. GLHF! \N{BEACH WITH UMBRELLA}\ufe0f"

    def lost(args):
        raise RuntimeError(cause + advice)

    lost.__module__ = "vaekit.cli.train"  # where the help orders it
    monkeypatch.setattr(VERBS["train"], "run", lost)
    assert run_command(["train", "--data", "digits", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip() == f"vaekit: error: rank 0 lost a process of its run ({cause})"


@pytest.mark.skipif(sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_worker_asks_for_sigterm_when_its_launcher_dies():
    """A torchrun started by hand and SIGKILLed would leave its workers training: each, joining, asks Linux for
    SIGTERM on its parent's death (then it checkpoints and stops, as on any SIGTERM)."""
    worker = (
        "import ctypes, torch, torch.distributed as dist; from vaekit.training import distributed; "
        "dist.init_process_group = lambda *a, **kw: None; distributed.init(torch.device('cpu'), 64); "
        "sig = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(sig)); print(sig.value)"  # PR_GET_PDEATHSIG
    )
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True, check=True, env=env)
    assert int(done.stdout) == signal.SIGTERM


def damaged_checkpoint(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt, path = torch.optim.Adam(model.parameters()), tmp_path / "checkpoint.safetensors"
    for _ in range(2):  # the second keeps the first as checkpoint.prev.safetensors
        save_checkpoint(path, model, opt, {})
    path.write_bytes(b"damaged")
    load_latest_checkpoint(path, model, opt)  # every rank falls back to the previous one


def skipped_steps(tmp_path: Path) -> None:
    guard = StepGuard(8)  # warns at 2 in a row
    for b in range(2):
        assert not guard.ok(torch.tensor(float("nan")), f"epoch 1, batch {b + 1}")


def no_compiler(tmp_path: Path) -> None:
    from torch._inductor import config

    with config.patch({"cpp.cxx": ("no-such-c++",)}):
        capture.CompiledStep("compile", torch.device("cpu"))


@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("warned", [damaged_checkpoint, skipped_steps, no_compiler])
def test_a_warning_every_rank_sees_alike_is_said_once_by_rank_0(monkeypatch, capsys, tmp_path, warned, rank):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))  # no process group: this process is that rank of two
    warned(tmp_path)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == (rank == 0) and all(line.startswith("vaekit: warning: ") for line in lines), lines
    assert not any("warning: rank" in line for line in lines)  # the same in every rank: no rank named


@pytest.mark.parametrize("world", [1, 2])
def test_a_compiled_step_that_fails_in_one_rank_says_so_naming_it(monkeypatch, capsys, world):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("RANK", str(world - 1))
    monkeypatch.setattr(capture, "train_step", lambda *args: None)  # the eager step it falls back to
    step = capture.CompiledStep("compile", torch.device("cpu"))
    step.why, step.warm = None, True  # compiled from its second step on, here where a compiler may be absent

    def fails(*args):
        raise OSError("no space left on device")

    step.step = fails
    t = TrainConfig()
    step(SimpleNamespace(critic=None, t=t), torch.zeros(1), None, SimpleNamespace(beta=t.beta), "epoch 1, batch 2")
    named = "rank 1: " if world == 2 else ""
    assert (
        capsys.readouterr().err
        == f"vaekit: warning: {named}train.compile: the step runs eagerly: OSError: no space left on device\n"
    )
