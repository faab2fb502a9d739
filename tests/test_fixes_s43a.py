"""Fixes: latent-map's --grid is held to a picture's line limit before any work; models lists every family, a
family that cannot be built on the shape saying why in its row (counted on the meta device); export's full disk
names the file being written, not its hidden temporary copy."""

from __future__ import annotations

import errno
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from vaekit.cli import main

from .conftest import train_argv


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-epoch run on 40 random 8x8 images."""
    tmp = tmp_path_factory.mktemp("s43a")
    np.save(tmp / "x.npy", np.random.default_rng(0).random((40, 8, 8)).astype(np.float32))
    assert main(train_argv(tmp / "x.npy", tmp / "run", "--hidden", "16", "--latent-dim", "2")) == 0
    return tmp / "run"


def test_latent_map_refuses_a_grid_over_the_line_limit_before_reading_the_run(tmp_path, capsys):
    missing = str(tmp_path / "no-run")  # the grid is refused first: no run, no data, no decoding
    assert main(["latent-map", missing, "--grid", "1000", "--out", str(tmp_path / "l.png")]) == 2
    err = capsys.readouterr().err
    assert err == "vaekit: error: --grid 1000: over 256, the most a picture's row or column shows (--grid)\n"
    assert main(["latent-map", missing, "--grid", "256"]) == 2  # the limit itself is taken: the run is missing
    assert "--grid" not in capsys.readouterr().err


def test_models_lists_a_family_its_shape_does_not_fit_with_the_reason(capsys):
    assert main(["models", "--shape", "1,3,3"]) == 0
    out = capsys.readouterr().out
    (deep,) = [line for line in out.splitlines() if line.startswith("| deep |")]
    assert deep.startswith("| deep | conv | - | does not fit 3 x 3 images: model.deep_groups lists 4 resolutions")
    assert "| vae | mlp | 16 | 348,041 |" in out


def test_models_counts_huge_families_without_allocating_them(capsys, monkeypatch):
    monkeypatch.setattr("vaekit.data.limits.usable_memory", lambda: 1 << 30)  # the same answer on any machine
    assert main(["models", "--shape", "3,100000,100000"]) == 0  # 48 TB for vae's first layer, were it allocated
    out = capsys.readouterr().out
    assert "| vae | mlp | 16 | too large to build here (24,030,000,340,832 parameters) |" in out
    assert "| deep | conv | 25000000004 in 5 groups | 117,331 |" in out
    assert main(["models", "--shape", "100000000"]) == 2  # every row too large: the table, then one line
    out, err = capsys.readouterr()
    assert out.count("too large to build here") == 5
    assert err == "vaekit: error: --shape 100000000: no family can be built on it here (the table says why)\n"


@pytest.mark.skipif(find_spec("onnx") is None or find_spec("onnxruntime") is None, reason="needs onnx")
def test_export_on_a_full_disk_names_the_file_and_leaves_nothing(run, tmp_path, monkeypatch, capsys):
    import onnx

    def full(proto, path, *a, **k):  # half the graph written, then the disk is full
        Path(path).write_bytes(proto.SerializeToString()[:100])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(onnx, "save", full)
    out = tmp_path / "x"
    out.mkdir()
    assert main(["export", str(run), "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"vaekit: error: {out / 'encoder.onnx'}: cannot write (No space left on device)\n"
    assert list(out.iterdir()) == []
