"""Kill-safe runs: SIGKILL at random moments, SIGTERM, a damaged checkpoint; the resumed run ends bit for bit equal."""

from __future__ import annotations

import io
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.models import build_model
from vaekit.training.checkpoint import load_checkpoint, save_checkpoint
from vaekit.training.prior import fit_prior_on
from vaekit.training.step import make_optimizer

FLAGS = [
    "--data",
    "digits",
    "--model",
    "mlp",
    "--hidden",
    "64",
    "--latent-dim",
    "4",
    "--batch-size",
    "8",
    "--epochs",
    "6",
    "--quiet",
    "--set",
    "train.checkpoint_every=20",
    "--set",
    "train.checkpoint_minutes=0",
]
VAEKIT = [sys.executable, "-m", "vaekit", "train"]


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*VAEKIT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_after_next_checkpoint(proc: subprocess.Popen, ckpt, signum: int, delay: float) -> None:
    """Wait until ``proc`` writes a checkpoint of its own, then ``delay`` seconds, then send ``signum``."""
    before = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
    deadline = time.monotonic() + 60
    while (not ckpt.exists() or ckpt.stat().st_mtime_ns == before) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    time.sleep(delay)
    assert proc.poll() is None, "the run ended before it could be stopped: make it longer"
    proc.send_signal(signum)
    proc.wait(timeout=60)


def test_killed_stopped_and_damaged_runs_resume_to_the_same_weights(tmp_path, capsys):
    """The last resume runs in this process (no interpreter start-up); the run never stopped finishes first, so
    the stopped run's checkpoint deadlines hold on a loaded machine."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    baseline = start([*FLAGS, "--out", str(whole)])
    assert baseline.wait(timeout=300) == 0, baseline.stderr.read()
    rng, ckpt = random.Random(7), run / "checkpoint.safetensors"
    proc = start([*FLAGS, "--out", str(run)])
    for _ in range(3):  # SIGKILL at three random moments, resuming after each
        stop_after_next_checkpoint(proc, ckpt, signal.SIGKILL, rng.uniform(0.0, 0.4))
        assert proc.returncode == -signal.SIGKILL
        proc = start(["--resume", str(run)])
    stop_after_next_checkpoint(proc, ckpt, signal.SIGTERM, rng.uniform(0.0, 0.3))
    # one line, the stop: a SIGKILL at any moment, between a checkpoint's renames too, leaves the newest whole
    lines = proc.stderr.read().strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM and len(lines) == 1 and "stopped by SIGTERM" in lines[0], lines
    damage(ckpt)  # the newest checkpoint is unusable: the previous one takes over
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    final = capsys.readouterr().err
    assert "checksum mismatch" in final and "checkpoint.prev.safetensors" in final
    for name in ("checkpoint.safetensors", "model.safetensors"):
        a, b = load_file(whole / name), load_file(run / name)
        keys = [k for k in a if not k.startswith("rng.")] if name.startswith("checkpoint") else list(a)
        assert all(torch.equal(a[k], b[k]) for k in keys), name
    assert (run / "metrics.csv").read_text().count("\n") == 7


def damage(path) -> None:
    """Flip bytes in the tensor data of a safetensors file, leaving its header readable."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 64, len(data) - 32):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_refused_before_anything_is_restored(tmp_path):
    cfg = ModelConfig(hidden=[8], latent_dim=2, input_shape=[5], likelihood="bernoulli")
    model = build_model(cfg)
    opt = make_optimizer(model, 1e-3)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"epoch": 1})
    twin = build_model(cfg)
    state, _ = load_checkpoint(tmp_path / "c.safetensors", twin, make_optimizer(twin, 1e-3))
    assert state == {"epoch": 1}
    damage(tmp_path / "c.safetensors")
    fresh = build_model(cfg)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(Exception, match="checksum mismatch"):
        load_checkpoint(tmp_path / "c.safetensors", fresh, make_optimizer(fresh, 1e-3))
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


class Refusing(io.StringIO):
    """A stdout that takes the epochs' lines and refuses the prior stage's as ``error`` says: a full disk, a
    closed pipe, a closed file."""

    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        if text.startswith("prior epoch"):
            raise self.error
        return super().write(text)


REFUSALS = [
    OSError(28, "No space left on device"),
    BrokenPipeError(32, "Broken pipe"),
    ValueError("I/O on closed file"),
]


def tiny_vq() -> tuple[torch.nn.Module, torch.Tensor]:
    """A VQ-VAE small enough to train in a blink, and 16 binary 8 x 8 items (16, 1, 8, 8)."""
    x = (torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    sizes = {"hidden": [8], "latent_dim": 4, "codebook_size": 4, "code_dim": 2, "pixelcnn_channels": 4}
    return vaekit.build_model(family="vq", input_shape=[1, 8, 8], likelihood="bernoulli", pixelcnn_layers=1, **sizes), x


@pytest.mark.parametrize("error", REFUSALS, ids=["full", "pipe", "closed"])
def test_the_vq_prior_stage_outlives_a_stdout_that_fails_and_says_so_once(error, capsys, monkeypatch):
    model, x = tiny_vq()
    monkeypatch.setattr("sys.stdout", Refusing(error))
    assert len(fit_prior_on(model, x, epochs=3, batch_size=16, progress=True)) == 3 and model.fitted
    said = f"vaekit: progress lines cannot be written ({error}); training goes on without them\n"
    assert capsys.readouterr().err == said  # once, for three lines refused


def test_a_stdout_failing_in_the_prior_stage_of_training_ends_its_lines_alone(capsys, monkeypatch):
    model, x = tiny_vq()
    monkeypatch.setattr("sys.stdout", out := Refusing(REFUSALS[1]))
    run = vaekit.fit(model, x, epochs=1, prior_epochs=2, batch_size=16, pictures=False, progress=True)
    assert capsys.readouterr().err.count("progress lines cannot be written (") == 1 and run.model.fitted
    assert out.getvalue().startswith("epoch 1/1")  # the epochs' lines were written: the trainer's own go on
