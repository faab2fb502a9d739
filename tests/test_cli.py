"""The command line end to end, resume, and every bad input refused in one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vaekit.cli import main

TINY = ["--model", "mlp", "--hidden", "16", "--latent-dim", "3", "--batch-size", "16", "--quiet"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_train_sample_reconstruct_end_to_end(tiny_images, tmp_path):
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "vaekit"]
    train = subprocess.run([*cli, "train", "--data", tiny_images, "--model", "conv", "--set", "model.channels=4,8",
                            "--latent-dim", "2", "--epochs", "2", "--out", run, "--quiet"],
                           capture_output=True, text=True, timeout=120)
    assert train.returncode == 0, train.stderr
    for name in ("config.json", "model.safetensors", "checkpoint.safetensors", "metrics.csv",
                 "samples.png", "reconstructions.png", "loss.png"):
        assert (run / name).stat().st_size > 0, name
    assert not list(run.glob(".*tmp"))  # atomic writes leave no temporaries
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,train_loss,train_rec,train_kl,val_loss")
    for out in ("s.png", "s.npy"):
        r = subprocess.run([*cli, "sample", run, "--n", "6", "--out", tmp_path / out], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "s.npy").shape == (6, 1, 9, 11)
    r = subprocess.run([*cli, "reconstruct", run, "--data", tiny_images, "--n", "4", "--out", tmp_path / "r.npy"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "r.npy").shape == (4, 1, 9, 11)


def test_resume_after_a_stop_gives_the_same_weights(tiny_images, tmp_path, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 4, "--out", whole)[0] == 0
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 2, "--out", part)[0] == 0
    assert run_cli(capsys, "train", "--resume", part, "--epochs", 4, "--quiet")[0] == 0
    a, b = load_file(whole / "checkpoint.safetensors"), load_file(part / "checkpoint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (part / "metrics.csv").read_text().count("\n") == 5


def bad_files(tmp):
    """Files for the bad-input table, made on the spot."""
    np.save(tmp / "nan.npy", np.full((10, 4), np.nan, dtype=np.float32))
    np.save(tmp / "fived.npy", np.zeros((4, 2, 2, 2, 2), dtype=np.float32))
    np.save(tmp / "real.npy", np.linspace(-3, 3, 40, dtype=np.float32).reshape(10, 4))
    np.save(tmp / "obj.npy", np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    (tmp / "bad-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    (tmp / "empty.csv").write_text("")


BAD = [
    (["train", "--data", "{tmp}/missing.npy"], "missing.npy"),
    (["train", "--data", "{tmp}/nan.npy"], "nan"),
    (["train", "--data", "{tmp}/fived.npy"], "shape"),
    (["train", "--data", "{tmp}/real.npy"], "support"),
    (["train", "--data", "{tmp}/obj.npy"], "obj.npy"),
    (["train", "--data", "{tmp}/bad-images-idx3-ubyte"], "bad-images-idx3-ubyte"),
    (["train", "--data", "{tmp}/empty.csv"], "empty.csv"),
    (["train", "--data", "digits", "--epochs", "0"], "train.epochs"),
    (["train", "--data", "digits", "--lr", "fast"], "train.lr"),
    (["train", "--data", "digits", "--hidden", "-4"], "model.hidden"),
    (["train", "--data", "digits", "--model", "transformer"], "model.net"),
    (["train", "--data", "digits", "--likelihood", "poisson"], "model.likelihood"),
    (["train", "--data", "digits", "--set", "nonsense=1"], "nonsense"),
    (["train", "--data", "digits", "--binarize", "maybe"], "data.binarize"),
    (["train", "--resume", "{tmp}/norun"], "norun"),
    (["train", "--config", "{tmp}/missing.toml"], "missing.toml"),
    (["train", "--data", "digits", "--no-such-flag"], "no-such-flag"),
    (["sample", "{tmp}/norun", "--out", "{tmp}/s.png"], "norun"),
    (["sample", "{tmp}/norun", "--n", "-1", "--out", "{tmp}/s.png"], "--n"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a[:3]) + f" [{n}]" for a, n in BAD])
def test_bad_input_gives_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    bad_files(tmp_path)
    out = tmp_path / "out"
    argv = [a.format(tmp=tmp_path) for a in argv] + (["--out", str(out), "--quiet"] if argv[0] == "train" and "--resume" not in argv else [])
    code, cap = run_cli(capsys, *argv)
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error:"), cap.err
    assert needle.lower() in lines[0].lower()
    assert not out.exists()  # nothing half-written


def test_run_with_a_mismatched_data_shape_is_refused(tiny_images, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 1, "--out", run)[0] == 0
    code, cap = run_cli(capsys, "reconstruct", run, "--data", "digits", "--out", tmp_path / "r.png")
    assert code == 2 and "shape" in cap.err and not (tmp_path / "r.png").exists()
    code, cap = run_cli(capsys, "train", "--data", tiny_images, *TINY, "--out", run)
    assert code == 2 and "--overwrite" in cap.err
    (run / "model.safetensors").write_bytes(b"not safetensors")
    code, cap = run_cli(capsys, "sample", run, "--out", tmp_path / "s.png")
    assert code == 2 and "model.safetensors" in cap.err
