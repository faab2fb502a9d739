"""Kill-safe runs: SIGKILL at random moments, SIGTERM, a damaged checkpoint; the resumed run ends bit for bit equal.
Weights of another dtype, not finite (buffers too) or no safetensors file, and a gmm sampler of no mixture, are one
line."""

from __future__ import annotations

import io
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.models import build_model
from vaekit.samplers.gmm import GMMSampler
from vaekit.training.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights, tensor_digest
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
    """The run never stopped and the last resume run in this process (no interpreter start-up); the first finishes
    before the stopped run starts, so its checkpoint deadlines hold on a loaded machine."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert main(["train", *FLAGS, "--out", str(whole)]) == 0
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


class Scaled(torch.nn.Module):
    """A layer and a buffer, as a Standardized model's scale or a sampler's covariances."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(3, 2)
        self.register_buffer("scale", torch.ones(2))


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("scale", lambda v: v * float("nan"), "scale holds NaN or infinite values"),  # a buffer: sample wrote -2**63
        ("scale", lambda v: v / 0, "scale holds NaN or infinite values"),
        ("net.bias", lambda v: v.to(torch.float8_e4m3fn), "net.bias holds float8_e4m3fn values, and the model's are "),
        ("net.bias", lambda v: v.to(torch.complex64), "net.bias holds complex64 values, and the model's are float32"),
        ("net.bias", lambda v: v.double() * 1e300, "net.bias holds NaN or infinite values"),  # inf once cast
        ("net.bias", lambda v: v.double(), None),  # float widths are cast, as load_state_dict casts them
        ("net.bias", lambda v: v.half(), None),
        ("net.bias", lambda v: v.bool(), "net.bias holds bool values"),
        ("net.bias", lambda v: v.long(), "net.bias holds int64 values"),
    ],
)
def test_weights_of_another_dtype_or_not_finite_buffers_are_refused_in_one_line(tmp_path, name, value, match):
    path = tmp_path / "w.safetensors"
    save_weights(Scaled(), path)
    tensors = load_file(path)
    tensors[name] = value(tensors[name])
    save_file(tensors, path, metadata={"sha256": tensor_digest(tensors)})  # its checksum right: made so
    model = Scaled()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if match is None:
        load_weights(model, path)
        return torch.testing.assert_close(model.net.bias, tensors[name].float())
    with pytest.raises(vaekit.VaekitError, match=match) as e:
        load_weights(model, path)
    assert "\n" not in str(e.value) and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("edit", [lambda s: s.covariances.neg_(), lambda s: s.weights.neg_()], ids=["cov", "weights"])
def test_a_gmm_sampler_of_no_mixture_is_refused_in_one_line(edit):
    sampler = GMMSampler(components=2).build(3)
    assert sampler.sample(4).shape == (4, 3)
    edit(sampler)  # as a sampler-gmm.safetensors made so loads (finite, other values): a LinAlgError before
    with pytest.raises(vaekit.VaekitError, match=r"gmm sampler: its saved weights or covariances are not a Gaus"):
        sampler.sample(4)


DAMAGED = {"truncated": lambda b: b[:1000], "empty": lambda b: b"", "huge header": lambda b: b"\xff" * 8 + b[8:]}


@pytest.mark.parametrize("how", DAMAGED)
def test_weights_that_are_no_safetensors_file_are_named_damaged(tmp_path, how):
    model = build_model(ModelConfig(hidden=[8], latent_dim=2, input_shape=[5], likelihood="bernoulli"))
    run = vaekit.fit(model, torch.rand(40, 5).round(), epochs=1, out=tmp_path / "run", progress=False, pictures=False)
    weights = run.path / "model.safetensors"
    weights.write_bytes(DAMAGED[how](weights.read_bytes()))
    with pytest.raises(vaekit.VaekitError, match=r"model.safetensors: damaged: it cannot be read as a safetensors"):
        vaekit.load_run(run.path)  # not "config.json builds a model of 1.6 MB, and model.safetensors holds 0.0 kB"
