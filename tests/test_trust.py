"""Run folders survive races, full disks, kills and stale state (settings refused: test_conflicts.py).

The fault matrix (kills just before a write lands, ENOSPC at a write, a real full tmpfs) resumes after each fault
and compares the final weights with a run that never stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.distributions import Beta, Independent, Normal

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.evaluation import metrics
from vaekit.files import DIGEST, WEIGHTS

from .conftest import OwnModel, train_argv
from .faulty_vaekit import inject

FAULTY = str(Path(__file__).with_name("faulty_vaekit.py"))
FLAGS = [
    "--data",
    "digits",
    "--model",
    "mlp",
    "--hidden",
    "32",
    "--latent-dim",
    "3",
    "--batch-size",
    "32",
    "--epochs",
    "3",
    "--quiet",
    "--set",
    "train.checkpoint_every=15",
    "--set",
    "train.checkpoint_minutes=0",
]
CLI = [sys.executable, "-m", "vaekit", "train"]


def cli(args: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=240, **kw)


def here(args: list, capsys, fault: str | None = None) -> subprocess.CompletedProcess:
    """``vaekit train <args>`` in this process (a fault injected as faulty_vaekit.py does, for the duration): the
    same training as in a fresh process, without its start-up."""
    saved = os.replace, os.fsync
    if fault is not None:
        kind, n = fault.split(":")
        inject(kind, int(n))
    capsys.readouterr()
    try:
        code = main(["train", *[str(a) for a in args]])
    finally:
        os.replace, os.fsync = saved
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_non_finite_gradients_are_skipped_without_clipping():
    """A gradient that turns NaN while the loss stays finite is caught with train.clip_grad = 0 (the default)."""
    x = (np.random.default_rng(0).random((64, 6)) > 0.5).astype(np.float32)
    torch.manual_seed(0)
    model = vaekit.build_model(input_shape=[6], hidden=[8], latent_dim=2, likelihood="bernoulli")
    steps = {"n": 0}

    def poison(grad):  # every step from the 3rd on
        steps["n"] += 1
        return grad * float("nan") if steps["n"] >= 3 else grad

    model.decoder.net[0].weight.register_hook(poison)
    with pytest.raises(vaekit.VaekitError, match="4 steps in a row with a non-finite loss or gradient"):
        vaekit.fit(model, x, epochs=5, batch_size=16, max_bad_steps=4, progress=False, pictures=False)
    assert all(p.isfinite().all() for p in model.parameters())  # the skipped steps changed nothing


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """The uninterrupted run every faulted run must end equal to, trained in this process as the resumed runs are
    (a process of its own gives the same weights, after its start-up)."""
    out = tmp_path_factory.mktemp("baseline") / "run"
    assert main(["train", *FLAGS, "--out", str(out)]) == 0
    return out


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


ERRORS = {"enospc": "No space left on device", "eacces": "Permission denied", "erofs": "Read-only file system"}


@pytest.mark.parametrize(
    "fault", ["kill:3", "kill:7", "kill:12", "enospc:3", "enospc:6", "enospc:11", "eacces:5", "erofs:9"]
)
def test_a_fault_at_a_write_resumes_to_the_weights_of_a_run_never_stopped(fault, baseline, tmp_path, capsys):
    """A kill needs a process of its own; an error at a write and the resumed runs are as well taken here."""
    run = tmp_path / "run"
    if fault.startswith("kill"):
        broken = cli([sys.executable, FAULTY, "train", *FLAGS, "--out", run], env={**os.environ, "VAEKIT_FAULT": fault})
    else:
        broken = here([*FLAGS, "--out", run], capsys, fault)
    if fault.startswith("kill"):
        assert broken.returncode == -9
    else:  # one line naming the file and the error, exit 1, nothing half-written
        err = broken.stderr.strip().splitlines()
        assert broken.returncode == 1 and len(err) == 1 and ERRORS[fault.split(":")[0]] in err[0], broken.stderr
        assert f"{run}/" in err[0]
        assert not list(run.glob(".*.tmp"))
    resumed = here(["--resume", run], capsys)
    assert resumed.returncode == 0, resumed.stderr
    assert same_weights(baseline, run)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_room(baseline, tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        full = here([*FLAGS, "--out", disk / "run"], capsys)
        err = full.stderr.strip().splitlines()
        assert full.returncode == 1 and len(err) == 1 and "No space left on device" in err[0], full.stderr
        assert str(disk / "run") in err[0] and not list((disk / "run").glob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)  # a read-only disk: the same
        readonly = here(["--resume", disk / "run"], capsys)
        assert readonly.returncode == 1 and "Read-only file system" in readonly.stderr, readonly.stderr
        subprocess.run(["mount", "-o", "remount,rw,size=8m", str(disk)], check=True)
        resumed = here(["--resume", disk / "run"], capsys)
        assert resumed.returncode == 0, resumed.stderr
        assert same_weights(baseline, disk / "run")
    finally:
        subprocess.run(["umount", str(disk)])


def test_one_writer_per_run_folder_and_the_lock_dies_with_its_holder(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [*CLI, *FLAGS, "--set", "train.epochs=200", "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (run / "config.json").exists():
        assert time.monotonic() < deadline and first.poll() is None, "the first run did not start"
        time.sleep(0.05)
    second = here([*FLAGS, "--out", run, "--overwrite"], capsys)
    err = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(err) == 1 and f"another vaekit process (pid {first.pid})" in err[0]
    deadline = time.monotonic() + 180  # a first epoch on a loaded machine
    while not (run / WEIGHTS).exists():  # a verb that writes into the folder is refused before its work
        assert time.monotonic() < deadline and first.poll() is None, "the first run wrote no weights"
        time.sleep(0.05)
    monkeypatch.setattr(metrics, "evaluate", lambda *a, **k: pytest.fail("evaluated a folder being written"))
    assert main(["evaluate", str(run), "--limit", "5"]) == 2
    assert f"another vaekit process (pid {first.pid})" in capsys.readouterr().err
    first.kill()
    first.wait()
    assert here([*FLAGS, "--set", "train.epochs=1", "--out", run, "--overwrite"], capsys).returncode == 0


def test_a_start_stopped_before_its_first_checkpoint_leaves_nothing_and_starts_afresh(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    x[3, 2] = np.nan  # found by the streamed first epoch, after the run folder was started
    np.save(tmp_path / "nan.npy", x)
    run, streamed = tmp_path / "run", ["--set", "data.in_memory=false", "--set", "data.workers=0", "--quiet"]
    assert main(["train", "--data", str(tmp_path / "nan.npy"), *streamed, "--epochs", "1", "--out", str(run)]) == 2
    assert not run.exists()  # the folder the start made is removed with what it wrote
    tiny = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--quiet", "--out", str(run)]
    assert main(["train", *tiny]) == 0
    for name in ("model.safetensors", "checkpoint.safetensors"):  # as a kill in the first epoch leaves it
        (run / name).unlink()
    assert main(["train", *tiny]) == 0 and (run / "model.safetensors").is_file()  # no --overwrite needed


def test_overwrite_removes_what_vaekit_wrote_and_the_report_never_shows_other_weights(tmp_path):
    run, tiny = tmp_path / "run", ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--quiet"]
    assert main(["train", *tiny, "--epochs", "1", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--iw-samples", "10", "--limit", "50"]) == 0
    assert main(["interpolate", str(run)]) == 0 and main(["export", str(run)]) == 0
    old = files.stamp(run / "eval.json")
    assert old and files.stamp(run / "interpolation.png") == old == files.stamp(run / "decoder.onnx")
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert vaekit.load_run(run).stale_files() == ["eval.json", "interpolation.png", "encoder.onnx", "decoder.onnx"]
    assert main(["report", str(run), "--limit", "50"]) == 0  # recomputes eval.json for the new weights
    fresh = vaekit.load_run(run)
    assert files.stamp(run / "eval.json") == fresh.digest != old and files.stamp(run / "report.html") == fresh.digest
    (run / "sampler-gmm.json").write_text("{}")  # a post-hoc sampler's files, as fit_sampler writes them
    (run / "sampler-gmm.safetensors").write_bytes(b"")
    assert main(["train", *tiny, "--epochs", "1", "--out", str(run), "--overwrite"]) == 0
    gone = ("eval.json", "report.html", "interpolation.png", "decoder.onnx", "sampler-gmm.json")
    gone += ("sampler-gmm.safetensors",)
    assert not any((run / n).exists() for n in gone)


def test_an_error_stays_one_line_when_stdout_is_a_file(tmp_path):
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run(
            [*CLI, "--data", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "r")],
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "missing.npy" in done.stderr


def test_the_api_leaves_its_inputs_alone(tmp_path):
    x = (np.random.default_rng(0).random((40, 1, 4, 4)) > 0.5).astype(np.float32)
    before = x.copy()
    run = vaekit.fit(
        vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli"),
        x,
        epochs=1,
        binarize="fixed",
        progress=False,
        out=tmp_path / "run",
    )
    assert np.array_equal(x, before)
    model = run.model.train()
    from vaekit.evaluation.scores import anomaly_scores
    from vaekit.export.onnx import export_onnx

    anomaly_scores(model, torch.from_numpy(x[:4]), ["neg_elbo"], samples=2)
    export_onnx(run, tmp_path / "onnx")
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert files.stamp(tmp_path / "onnx" / "encoder.onnx") == run.digest and DIGEST


def test_damaged_files_of_a_run_are_refused_or_recomputed(tmp_path, capsys):
    """model.json of Python-built networks damaged: one line; eval.json damaged: the report computes it again."""
    x = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)
    vaekit.fit(
        vaekit.VAE(torch.nn.Linear(6, 4), torch.nn.Linear(2, 6), latent_dim=2),
        x,
        epochs=1,
        progress=False,
        out=tmp_path / "api",
    )
    for text in ("{not json", '{"class": "os:system", "spec": {"class": "os:system", "args": {"command": "true"}}}'):
        (tmp_path / "api" / "model.json").write_text(text)
        assert main(["sample", str(tmp_path / "api"), "--out", str(tmp_path / "s.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("model.json" in err[0] or "not a torch.nn.Module" in err[0]), err
    run = tmp_path / "run"
    assert main(train_argv("digits", run, "--hidden", "8", "--latent-dim", "2")) == 0
    (run / "eval.json").write_text('{"split": "test", "da')  # a damaged earlier evaluation
    assert main(["report", str(run), "--limit", "20", "--iw-samples", "4"]) == 0
    assert files.stamp(run / "eval.json") == vaekit.load_run(run).digest


def test_weights_replaced_while_read_are_read_whole(tmp_path, monkeypatch):
    """A reader of a run being written (its weights renamed into place) gets the old file or the new one, whole:
    its digest was read from one and its tensors from the other ("checksum mismatch (the file is damaged)")."""
    import safetensors

    from vaekit.training.checkpoint import read_tensors, save_weights

    path, other = tmp_path / WEIGHTS, tmp_path / "new.safetensors"
    save_weights(nn.Linear(2, 2), path)
    save_weights(nn.Linear(2, 2), other)
    real = safetensors.safe_open

    def replaced_once_open(*args, **kwargs):  # the writer renames its new file into place just after this open
        handle = real(*args, **kwargs)
        if other.exists():
            os.replace(other, path)
        return handle

    monkeypatch.setattr(safetensors, "safe_open", replaced_once_open)
    monkeypatch.setattr("vaekit.training.checkpoint.safe_open", replaced_once_open, raising=False)
    tensors, meta = read_tensors(path)
    assert set(tensors) == {"weight", "bias"} and "sha256" in meta


class EdgeBeta(OwnModel):
    """Items (4,) in (0, 1): N(0, I) q(z|x) and prior, a Beta p(x|z) (an open support that torch declares [0, 1])."""

    needs_labels, latent_dims = False, [1]

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 2), nn.Linear(1, 8)

    def encode(self, x, y=None):
        loc, raw = self.enc(x).chunk(2, -1)
        return Independent(Normal(loc, raw.exp()), 1)

    def decode(self, z, y=None):
        a, b = (nn.functional.softplus(self.dec(z)) + 1e-3).chunk(2, -1)
        return Independent(Beta(a, b), 1)

    def prior(self, y=None):
        return Independent(Normal(torch.zeros(1), torch.ones(1)), 1)


def test_an_item_at_the_end_of_an_open_support_is_refused_before_training_wherever_it_lies():
    """Row 0 at a Beta's 0, outside the first batch of the shuffled data: refused by name before any step (it made
    its batch's loss infinite, skipped every epoch without a word)."""
    torch.manual_seed(0)
    x = torch.rand(40, 4) * 0.9 + 0.05
    x[0, 2] = 0.0
    with pytest.raises(vaekit.VaekitError, match=r"item 0 has value 0, at the end of the Beta likelihood's support"):
        vaekit.fit(EdgeBeta(), x, epochs=2, batch_size=8, progress=False, pictures=False)
    x[0, 2] = 0.5  # inside: trains
    run = vaekit.fit(EdgeBeta(), x, epochs=1, batch_size=8, progress=False, pictures=False)
    assert run.history[-1]["skipped_steps"] == 0
