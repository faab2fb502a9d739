"""vaekit under unusual environments: a float64 default dtype, a closed or ASCII-only stdout, odd run paths,
an unguarded script under the spawn start method."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import vaekit
from vaekit import cli
from vaekit.training.fit import default_dtype

from .conftest import tiny_config, train_argv


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for one test, restored after."""
    with default_dtype(torch.float64):
        yield


def test_train_under_float64_default_builds_float32(tiny_images, tmp_path, float64_default):
    run = vaekit.train(tiny_config(str(tiny_images), tmp_path / "r", epochs=1))
    assert {p.dtype for p in run.model.parameters()} == {torch.float32}
    assert torch.get_default_dtype() == torch.float64  # the user's default is left as it was


def test_commands_with_stdout_closed_exit_0_without_a_traceback():
    """``vaekit models >&-``: Python starts with sys.stdout None; the lines are dropped, the work is done."""
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -m vaekit models >&-', sys.executable], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_progress_lines_without_a_stdout(monkeypatch, capsys):
    from vaekit.training.progress import Lines, interactive

    monkeypatch.setattr("sys.stdout", None)
    lines = Lines(True)
    lines.say("epoch 1")  # dropped, said once on stderr
    assert not interactive() and lines.muted
    assert "training goes on" in capsys.readouterr().err


def test_result_line_escapes_what_stdout_cannot_show(tiny_images, tmp_path, monkeypatch):
    """An ASCII-only stdout and a run folder named with 'é' and a newline: one line, each character escaped."""
    out = tmp_path / "d\u00e9\nx"
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr("sys.stdout", stdout)
    assert cli.main(train_argv(tiny_images, out, "--hidden", "8")) == 0
    stdout.flush()
    text = stdout.buffer.getvalue().decode("ascii")
    assert text == f"run written to {tmp_path}/d\\xe9\\nx\n"


def test_tensorboard_goes_on_without_a_folder_it_cannot_encode(tmp_path, capsys):
    from vaekit.config import RunConfig
    from vaekit.data import Dataset, Split
    from vaekit.training import FitInfo
    from vaekit.viz import tensorboard

    tb = tensorboard.TensorBoard()
    if not tb.active:
        pytest.skip("tensorboard is not installed")
    folder = tmp_path / b"bad\xff".decode("utf-8", "surrogateescape")  # a name that is not UTF-8
    folder.mkdir()
    x = Split(torch.zeros(2, 1, 3, 3), None)
    tb.on_fit_start(None, FitInfo(folder, RunConfig(), Dataset("x", x, x, x, (1, 3, 3), "image", None), False))
    tb.on_epoch_end(1, {"epoch": 1, "loss": 1.0}, None)
    assert tb.writer is None and "TensorBoard logging stopped" in capsys.readouterr().err


def test_an_unguarded_script_under_spawn_is_refused_in_its_worker(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 9, 11)).astype(np.float32))
    (tmp_path / "script.py").write_text(
        "import multiprocessing, vaekit\n"
        'multiprocessing.set_start_method("spawn", force=True)\n'
        'vaekit.train(data="x.npy", epochs=1, out="r", progress=False, workers=1, in_memory=False,\n'
        "             pictures=False, hidden=[8], latent_dim=2, batch_size=16)\n"
    )
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "vaekit.train was called while a worker process started (spawn) imported your script" in done.stderr
    assert "another vaekit process" not in done.stderr


def test_a_report_picture_is_closed(tmp_path):
    from PIL import Image

    from vaekit.viz.report import _img

    Image.new("L", (5, 3)).save(tmp_path / "a.png")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        assert 'style="width:10px"' in _img(tmp_path / "a.png", "a")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
