"""Runs from earlier vaekits resumed and evaluated today: checkpoints made old by removing what old versions did
not write (the data fingerprint, the validation items' draw, the dtype), as they wrote them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file

import vaekit
from vaekit import files
from vaekit.errors import VaekitError
from vaekit.evaluation.metrics import evaluate
from vaekit.evaluation.outputs import prepared_split
from vaekit.training.checkpoint import read_tensors

from .conftest import tiny_config

OLD_DRAW = "fixed-binarised by an earlier vaekit's draw"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two-epoch runs of today's vaekit, binarised fixed and dynamic, on 60 grey items (9, 11)."""
    root = tmp_path_factory.mktemp("compat")
    np.save(root / "grey.npy", np.random.default_rng(0).random((60, 9, 11)).astype(np.float32))
    return {
        mode: vaekit.train(config(root, root / mode, mode, 2), pictures=False).path for mode in ("fixed", "dynamic")
    }


def config(root: Path, out: Path, binarize: str, epochs: int, **train):
    cfg = tiny_config(str(root / "grey.npy"), out, epochs=epochs, **train)
    cfg.model.likelihood, cfg.data.binarize = "bernoulli", binarize
    return cfg


def aged(run: Path, tmp_path: Path, **state) -> Path:
    """A copy of ``run`` whose checkpoint's loop state is updated by ``state``, a value None removing its key (as
    an earlier vaekit, which did not write it, left it); its previous checkpoint removed."""
    out = Path(shutil.copytree(run, tmp_path / run.name))
    (out / files.PREVIOUS_CHECKPOINT).unlink()
    tensors, meta = read_tensors(out / files.CHECKPOINT)
    saved = json.loads(meta["state"])
    for key, value in state.items():
        saved.pop(key) if value is None else saved.update({key: value})
    save_file(tensors, str(out / files.CHECKPOINT), metadata=meta | {"state": json.dumps(saved)})
    return out


def checkpoint_state(run: Path) -> dict:
    return json.loads(read_tensors(run / files.CHECKPOINT)[1]["state"])


@pytest.mark.parametrize("binarize", ["fixed", "dynamic"])
def test_a_fixed_run_from_before_the_fingerprint_is_refused_as_drawn_otherwise(binarize, runs, tmp_path):
    run = aged(runs[binarize], tmp_path, data=None)  # every checkpoint without it predates the row-keyed draw
    cfg = config(runs[binarize].parent, run, binarize, 3)
    if binarize == "dynamic":  # trained on grey items: nothing drawn that changed
        assert len(vaekit.train(cfg, resume=True, pictures=False).history) == 3
        return
    with pytest.raises(VaekitError, match="fixed binarisation's draw changed since it was written") as e:
        vaekit.train(cfg, resume=True, pictures=False)
    assert e.value.key == "out" and "train the run again in another out folder" in str(e.value)


@pytest.mark.parametrize("fingerprint", ["none", "without fixed_draw", "today's"])
def test_evaluating_a_run_fixed_binarised_by_an_earlier_draw_says_so(fingerprint, runs, tmp_path, capsys):
    saved = checkpoint_state(runs["fixed"])["data"]
    data = {"none": None, "without fixed_draw": {k: v for k, v in saved.items() if k != "fixed_draw"}}
    run = aged(runs["fixed"], tmp_path, data=data.get(fingerprint, saved))
    capsys.readouterr()
    evaluate(vaekit.load_run(run), k=2, limit=8)
    err = capsys.readouterr().err
    assert (OLD_DRAW in err) == (fingerprint != "today's"), err
    assert err.count("\n") == (fingerprint != "today's")
    prepared_split(vaekit.load_run(run), None, "all", limit=8)  # anomaly, reconstruct, encode read items so
    assert (OLD_DRAW in capsys.readouterr().err) == (fingerprint != "today's")
    np.save(tmp_path / "other.npy", np.random.default_rng(1).random((5, 9, 11)).astype(np.float32))
    prepared_split(vaekit.load_run(run), str(tmp_path / "other.npy"), "all")  # not its items: nothing to say
    assert OLD_DRAW not in capsys.readouterr().err


@pytest.mark.parametrize("val_draw", ["today's", "none", "another"])
def test_a_dynamic_run_resumed_on_other_validation_draws_picks_its_best_weights_afresh(
    val_draw, runs, tmp_path, capsys
):
    saved = checkpoint_state(runs["dynamic"])["data"]
    assert len(saved["val_sha256"]) == 64  # recorded from the start
    drawn = {"today's": saved, "none": {k: v for k, v in saved.items() if k != "val_sha256"}}
    data = drawn.get(val_draw, {**saved, "val_sha256": "0" * 64})
    run = aged(runs["dynamic"], tmp_path, data=data, best_val=1.0, bad_epochs=5)  # the old draw: lower; stopped
    weights = (run / files.WEIGHTS).read_bytes()
    capsys.readouterr()
    cfg = config(runs["dynamic"].parent, run, "dynamic", 3, patience=2)
    rows = vaekit.train(cfg, resume=True, pictures=False).history
    err, state = capsys.readouterr().err, checkpoint_state(run)
    if val_draw == "today's":  # measured on the same items: it stopped early, and stays stopped
        assert len(rows) == 2 and state["best_val"] == 1.0 and state["bad_epochs"] == 5 and err == ""
        assert (run / files.WEIGHTS).read_bytes() == weights
        return
    assert "best validation loss 1 set aside" in err and "from epoch 3 on" in err and err.count("\n") == 1, err
    assert "(it had stopped early on the old measure: it trains on)" in err and len(rows) == 3  # was: stopped
    assert state["best_val"] == pytest.approx(rows[-1]["val_loss"], rel=1e-5) and state["bad_epochs"] == 0
    assert (run / files.WEIGHTS).read_bytes() != weights  # the best of the epochs on today's draw
    assert state["data"]["val_sha256"] == saved["val_sha256"]  # recorded: a later resume keeps its best


@pytest.mark.parametrize("recorded, precision", [(False, "auto"), (False, "fp32"), (True, "auto")])
def test_a_checkpoint_without_a_dtype_says_which_one_auto_picks_today(recorded, precision, runs, tmp_path, capsys):
    run = aged(runs["dynamic"], tmp_path, **({} if recorded else {"precision": None}))
    cfg = config(runs["dynamic"].parent, run, "dynamic", 3, precision=precision)
    capsys.readouterr()
    vaekit.train(cfg, resume=True, pictures=False)
    err, now = capsys.readouterr().err, checkpoint_state(run)["precision"]
    said = f"the checkpoint records no dtype (an earlier vaekit's): its steps run in {now.replace('fp', 'float')}"
    assert (said in err) == (not recorded and precision == "auto"), err
    assert "choose one with train.precision (--precision fp32 or bf16)" in err or said not in err


@pytest.mark.parametrize("recorded", [True, False])
def test_a_step_schedule_resumed_keeps_the_rule_its_checkpoint_was_written_under(recorded, runs, tmp_path):
    """An earlier vaekit halved the step schedule's rate every epochs // 4 epochs (every epoch for fewer than 8)
    and recorded no rule: resumed, such a run keeps that rule rather than jump to today's quarters."""
    root = runs["dynamic"].parent
    run = vaekit.train(config(root, tmp_path / "step", "dynamic", 2, lr_schedule="step"), pictures=False).path
    assert checkpoint_state(run)["lr_rule"] == 2  # recorded from the start
    old = aged(run, tmp_path / "old", **({} if recorded else {"lr_rule": None}))
    rows = vaekit.train(config(root, old, "dynamic", 5, lr_schedule="step"), resume=True, pictures=False).history
    halvings = [0, 2, 1, 2, 3] if recorded else [0, 2, 2, 3, 4]  # epochs 1, 2 as trained; 3 to 5 of 5 epochs
    assert [r["lr"] for r in rows] == pytest.approx([1e-3 * 0.5**h for h in halvings])
    assert checkpoint_state(old)["lr_rule"] == (2 if recorded else 1)  # kept to the run's end
