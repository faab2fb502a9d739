"""Faults around resuming: a failed first epoch, a run that stopped early, other data, a stop between renames, a
Ctrl-C at start-up, a checkpoint whose metadata or optimiser tensors were made so (one line, nothing restored), JSON
nested too deeply, the longest run of skipped steps kept over a resume."""

from __future__ import annotations

import argparse
import copy
import errno
import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import vaekit
from vaekit.__main__ import console
from vaekit.cli import main, resume_hint
from vaekit.io import atomic_write, atomic_write_bytes, read_json
from vaekit.training import checkpoint, fit, step
from vaekit.training.checkpoint import save_checkpoint
from vaekit.training.folder import is_run, recorded_class
from vaekit.training.state import state_problem
from vaekit.training.step import make_optimizer
from vaekit.viz.report import saved_eval

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


def test_a_taken_folder_is_refused_before_the_data_is_read(tiny_images, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(train_argv(tiny_images, out, *SMALL)) == 0
    capsys.readouterr()
    monkeypatch.setattr(vaekit.api, "prepare_data", lambda *a, **k: pytest.fail("the data was read"))
    assert main(train_argv(tiny_images, out, *SMALL)) == 2  # its notes would print before the refusal
    assert capsys.readouterr().err.splitlines() == [
        f"vaekit: error: {out}: already holds a run; resume it or overwrite it (--resume RUN or --overwrite)"
    ]


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


def stepped(tmp_path) -> tuple[Path, dict, dict]:
    """A checkpoint of a tiny model after one Adam step, its tensors and its metadata."""
    model = vaekit.build_model(input_shape=[5], hidden=[4], latent_dim=2, likelihood="bernoulli")
    opt = make_optimizer(model, 1e-3)
    model(torch.rand(3, 5)).px.log_prob(torch.zeros(3, 5)).sum().neg().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"epoch": 1, "data": {}})
    with safe_open(str(tmp_path / "c.safetensors"), "pt") as f:
        return tmp_path / "c.safetensors", load_file(tmp_path / "c.safetensors"), f.metadata()


CRAFTED = {  # what a checkpoint made so holds -> what the one line says (a traceback before)
    "state [1,2]": (lambda t, m: m.update(state="[1, 2]"), "its state is not a JSON object"),
    "state.epoch text": (lambda t, m: m.update(state='{"epoch": "x"}'), "state: epoch is 'x'"),
    "state.data types": (lambda t, m: m.update(state='{"data": {"items": 3}}'), "state: data is"),
    "state 10^5 deep": (lambda t, m: m.update(state="[" * 10**5 + "]" * 10**5), "nested too deeply"),
    "groups without params": (lambda t, m: m.update(param_groups='[{"lr": 0.1}]'), "param_groups number other"),
    "lr text": (lambda t, m: m.update(param_groups=m["param_groups"].replace('"lr": 0.001', '"lr": "a"')), "lr is a"),
    "scalars 'abc'": (lambda t, m: m.update(optim_scalars='{"abc": {}}'), "optim_scalars names 'abc'"),
    "tensor optim.x.y": (lambda t, m: t.update({"optim.x.y": torch.zeros(1)}), "tensor 'optim.x.y' is no state"),
    "moments of no shape": (lambda t, m: t.update({"optim.0.exp_avg": torch.zeros(7)}), "'optim.0.exp_avg' is no"),
    "moments missing": (lambda t, m: t.pop("optim.0.exp_avg_sq"), "parameter 0 holds \\['exp_avg', 'step'\\]"),
    "rng missing": (lambda t, m: t.pop("rng.torch"), "no torch RNG state"),
    "rng short": (lambda t, m: t.update({"rng.torch": torch.zeros(9, dtype=torch.uint8)}), "rng.torch is no torch"),
    "rng invalid": (lambda t, m: t.update({"rng.torch": torch.full((5056,), 255, dtype=torch.uint8)}), "mt19937"),
}


def test_a_checkpoint_lacking_an_optimiser_setting_takes_the_optimisers_own(tmp_path):
    path, tensors, meta = stepped(tmp_path)  # as an older torch wrote it: a setting fewer
    groups = [{k: v for k, v in g.items() if k != "eps"} for g in json.loads(meta["param_groups"])]
    save_file(tensors, path, metadata={**meta, "param_groups": json.dumps(groups)})
    model = vaekit.build_model(input_shape=[5], hidden=[4], latent_dim=2, likelihood="bernoulli")
    opt = make_optimizer(model, 1e-3)
    checkpoint.load_checkpoint(path, model, opt, partial(state_problem, sums=4))
    assert opt.param_groups[0]["eps"] == 1e-8 and opt.state


@pytest.mark.parametrize("craft", CRAFTED)
def test_a_checkpoint_of_crafted_metadata_is_refused_before_anything_is_restored(craft, tmp_path):
    path, tensors, meta = stepped(tmp_path)
    edit, said = CRAFTED[craft]
    edit(tensors, meta)
    save_file(tensors, path, metadata={**meta, "sha256": checkpoint.tensor_digest(tensors)})  # checksum right
    model = vaekit.build_model(input_shape=[5], hidden=[4], latent_dim=2, likelihood="bernoulli")
    opt, before, rng = make_optimizer(model, 1e-3), copy.deepcopy(model.state_dict()), torch.get_rng_state()
    with pytest.raises(vaekit.VaekitError, match=f"c.safetensors: not a vaekit checkpoint \\(.*{said}") as e:
        checkpoint.load_checkpoint(path, model, opt, partial(state_problem, sums=4))
    assert "\n" not in str(e.value) and not opt.state and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_resuming_a_crafted_checkpoint_is_one_line_and_writes_nothing(tiny_images, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv(tiny_images, run, *SMALL)) == 0
    tensors, meta = checkpoint.read_tensors(run / "checkpoint.safetensors")
    save_file(tensors, run / "checkpoint.safetensors", metadata={**meta, "state": '{"epoch": "x"}'})
    files = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.safetensors: not a vaekit checkpoint (state: epoch is 'x')" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == files


def test_json_nested_too_deeply_is_one_line_or_no_run_wherever_it_is_read(tmp_path):
    deep = "[" * 10**5 + "]" * 10**5  # a RecursionError traceback where readers caught ValueError alone
    for name in ("config.json", "model.json", "eval.json", "x.json"):
        (tmp_path / name).write_text(deep)
    assert not is_run(tmp_path) and recorded_class(tmp_path) is None and saved_eval(tmp_path / "eval.json") == {}
    with pytest.raises(vaekit.VaekitError, match=r"x.json: the state is not valid JSON \(nested too deeply\)$"):
        read_json(tmp_path / "x.json", "the state")
    (tmp_path / "x.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(vaekit.VaekitError, match=r"x.json: not valid JSON \(not UTF-8 text\)$"):
        read_json(tmp_path / "x.json")


def test_the_longest_run_of_skips_before_a_checkpoint_is_reported_after_a_resume(tiny_images, tmp_path, monkeypatch):
    """``Fitted.most_skipped`` of a resumed run is the whole run's longest run of skips in a row (``StepGuard.most``
    is saved); a checkpoint from before it was saved loads, the longest run starting from its skips in a row."""
    norms, calls = step.total_norm, []

    def norm(grads):  # steps 2 to 4 of the first epoch's 6 have an infinite gradient norm
        calls.append(1)
        return norms(grads) * (float("inf") if 2 <= len(calls) <= 4 else 1.0)

    monkeypatch.setattr(step, "total_norm", norm)
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=1, batch_size=8)
    assert fit.fit_config(cfg).most_skipped == 3
    cfg.train.epochs = 2  # an epoch of no skips: the 3 in a row before the checkpoint still the longest
    assert fit.fit_config(cfg, resume=True).most_skipped == 3 and len(calls) == 12
    path = tmp_path / "run" / "checkpoint.safetensors"
    tensors, meta = checkpoint.read_tensors(path)
    state = json.loads(meta["state"])
    assert state["guard"]["most"] == 3
    state["guard"] = {"in_row": 2, "skipped": 5, "large": 0}  # as a checkpoint from before ``most`` was saved
    save_file(tensors, path, metadata={**meta, "state": json.dumps(state)})
    cfg.train.epochs = 3
    assert fit.fit_config(cfg, resume=True).most_skipped == 2


@pytest.mark.parametrize("damage", ["a byte flipped", "truncated"])
def test_damaged_best_weights_are_refused_when_the_run_is_opened(damage, tiny_images, tmp_path, capsys):
    """Best weights that fail their checksum or cannot be read: one line before an epoch trains, nothing written
    (they were found only where the resumed epochs ended, a checkpoint and a metrics row written by then)."""
    run = tmp_path / "run"
    assert main(train_argv(tiny_images, run, *SMALL)) == 0
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (run / "model.safetensors").write_bytes(data if damage == "a byte flipped" else data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.safetensors" in err and "best weights are damaged" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("how", ["chmod", "the disk"])
def test_overwriting_a_read_only_run_folder_is_one_line_and_removes_nothing(
    how, tiny_images, tmp_path, monkeypatch, capsys
):
    """A folder whose files cannot be removed: one line (a traceback before), each of its files left."""
    if how == "chmod" and os.geteuid() == 0:
        pytest.skip("root ignores a folder's permissions")
    run = tmp_path / "run"
    assert main(train_argv(tiny_images, run, *SMALL)) == 0
    before = sorted(p.name for p in run.iterdir())

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    if how == "chmod":
        run.chmod(0o555)
    else:
        monkeypatch.setattr(Path, "unlink", read_only)
    try:
        assert main([*train_argv(tiny_images, run, *SMALL), "--overwrite"]) == 1
    finally:
        run.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write (" in err and "Errno" not in err
    assert sorted(p.name for p in run.iterdir()) == before
