"""Faults around resuming: a failed first epoch, a run that stopped early, other data, a stop between renames, a
Ctrl-C at start-up."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

import numpy as np
import pytest

import vaekit
from vaekit.__main__ import console
from vaekit.cli import main, resume_hint
from vaekit.io import atomic_write, atomic_write_bytes
from vaekit.training import checkpoint, fit

from .conftest import tiny_config, train_argv

SMALL = ("--hidden", "16", "--latent-dim", "2")


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_full_disk_at_the_first_checkpoint_leaves_nothing_at_a_later_one_a_run_to_resume(
    fail_at, tiny_images, tmp_path, monkeypatch, capsys
):
    out, calls, save = tmp_path / "run", [], checkpoint._save

    def full_disk(tensors, path, metadata=None):  # the checkpoint's write number ``fail_at`` finds the disk full
        if "checkpoint" in path.name:
            calls.append(path)
            if len(calls) == fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "_save", full_disk)
    assert main(train_argv(tiny_images, out, *SMALL, "--set", "train.epochs=2")) == 1
    assert "checkpoint.safetensors: cannot write (No space left on device)" in capsys.readouterr().err
    monkeypatch.setattr(checkpoint, "_save", save)  # room again
    if fail_at == 1:  # nothing to resume: nothing left, and the same command starts afresh
        assert not out.exists()
        assert main(train_argv(tiny_images, out, *SMALL)) == 0
    else:  # the first epoch's checkpoint stays, and the run goes on from it
        assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "metrics.csv").read_text().count("\n") == 1 + fail_at
    for name in ("checkpoint.safetensors", "checkpoint.prev.safetensors"):  # a finished run without checkpoints
        (out / name).unlink(missing_ok=True)
    assert main(train_argv(tiny_images, out, *SMALL)) == 2  # is never cleared but by --overwrite
    assert "already holds a run" in capsys.readouterr().err and (out / "model.safetensors").is_file()


def test_a_run_that_stopped_early_trains_no_further_on_resume_but_with_more_patience(tiny_images, tmp_path):
    cfg = tiny_config(str(tiny_images), tmp_path / "es", lr=1e-9, patience=1, epochs=40)
    rows = len(vaekit.train(cfg, pictures=False).history)
    weights = (tmp_path / "es" / "model.safetensors").read_bytes()
    assert rows < 40
    assert len(vaekit.train(cfg, resume=True, pictures=False).history) == rows  # as a finished run: nothing more
    assert (tmp_path / "es" / "model.safetensors").read_bytes() == weights
    cfg.train.patience = 3  # two more epochs without a better validation loss at least
    assert len(vaekit.train(cfg, resume=True, pictures=False).history) >= rows + 2


@pytest.mark.parametrize("other", ["values", "count"])
def test_resuming_with_other_data_is_refused_in_one_line(other, tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.random((60, 9, 11)).astype(np.float32)  # binarised dynamically: the fingerprint comes before the draws
    b = rng.random(a.shape).astype(np.float32) if other == "values" else a[:50]
    for name, x in (("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", x)
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "a.npy", run, *SMALL)) == 0
    assert main(["train", "--resume", str(run), "--data", str(tmp_path / "a.npy"), "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--data", str(tmp_path / "b.npy"), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    why = "as many, other values" if other == "values" else "48 training, 6 validation, 6 test items, and the data"
    assert err.startswith("vaekit: error: data: a resumed run trains on the data") and why in err, err
    assert len(err.splitlines()) == 1 and err.endswith("(--data)")
    assert json.loads((run / "config.json").read_text())["data"]["spec"] == str(tmp_path / "a.npy")
    model = vaekit.build_model(input_shape=[1, 9, 11], latent_dim=2, hidden=[16], likelihood="bernoulli")
    vaekit.fit(model, a, epochs=1, out=tmp_path / "fit", progress=False, pictures=False)
    with pytest.raises(vaekit.VaekitError, match="data: a resumed run trains on the data its checkpoint rests on"):
        vaekit.fit(model, b, epochs=2, out=tmp_path / "fit", resume=True, progress=False, pictures=False)


@pytest.mark.parametrize("links", [True, False])
def test_a_stop_between_the_renames_never_leaves_the_newest_checkpoint_absent(links, tmp_path, monkeypatch):
    path, backup, replace = tmp_path / "checkpoint.safetensors", tmp_path / "checkpoint.prev.safetensors", os.replace
    if not links:  # a file system without hard links: the backup is a copy
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    atomic_write_bytes(path, b"old")

    def stopped(src, dst):  # a Ctrl-C (or kill -9) just before the new file is renamed into place
        if str(dst) == str(path):
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda tmp: tmp.write_bytes(b"new"), backup=backup)
    assert path.read_bytes() == b"old"
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(path, lambda tmp: tmp.write_bytes(b"new"), backup=backup)
    assert (path.read_bytes(), backup.read_bytes()) == (b"new", b"old")
    assert sorted(p.name for p in tmp_path.iterdir()) == [backup.name, path.name]  # no temporary file stays
    path.unlink()  # as a stop between the renames left it before: the hint still names the run
    assert "--resume" in resume_hint(argparse.Namespace(command="train", out=str(tmp_path), resume=None))


def test_a_ctrl_c_at_start_up_is_one_line_and_leaves_no_folder(tiny_images, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "Trainer", interrupted)  # after the run folder is locked, before anything is written
    (tmp_path / "kept").mkdir()
    for name in ("new", "kept"):
        assert main(train_argv(tiny_images, tmp_path / name, *SMALL)) == 130
        assert capsys.readouterr().err == "vaekit: interrupted\n"
    assert not (tmp_path / "new").exists() and (tmp_path / "kept").is_dir()  # only the folder it made goes

    class Stopped:  # the command line's modules imported while Ctrl-C comes
        def find_spec(self, name, *args):
            if name == "vaekit.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "vaekit.cli")
    monkeypatch.setattr(sys, "meta_path", [Stopped(), *sys.meta_path])
    assert console() == 130 and capsys.readouterr().err == "vaekit: interrupted\n"
