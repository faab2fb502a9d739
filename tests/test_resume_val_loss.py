"""A resume under a val_loss that measures something else sets the old best aside and counts patience afresh;
the line that names the settings changed, added or removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.files import WEIGHTS
from vaekit.training.val_loss import measure_changed

from .conftest import tiny_config
from .test_compat_draws import aged, checkpoint_state


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory) -> Path:
    """A two-epoch elbo run (beta 1) on 60 random items (9, 11)."""
    root = tmp_path_factory.mktemp("measured")
    np.save(root / "x.npy", np.random.default_rng(0).random((60, 9, 11)).astype(np.float32))
    return vaekit.train(tiny_config(str(root / "x.npy"), root / "run", epochs=2), pictures=False).path


@pytest.mark.parametrize(
    "key, value, note",
    [
        ("beta", 0.5, "(train.beta 1 -> 0.5)"),
        ("objective", "mmd", "(train.objective elbo -> mmd, train.mmd_weight (not read) -> 10, train.mmd_kernel"),
        (
            "capacity_max",
            5.0,
            "(train.capacity_max 0 -> 5, train.gamma (not read) -> 1000, train.beta 1 -> (not read))",
        ),
        ("lr", 2e-3, None),  # the same val_loss: compared with the best, as ever
        ("measure", 0.5, None),  # beta 0.5, a checkpoint of an earlier vaekit (no measure): as before
    ],
)
def test_a_resume_that_changes_what_val_loss_measures_sets_its_best_aside(
    key, value, note, measured_run, tmp_path, capsys
):
    """A lower best (1) and 5 epochs without one: a resume under another val_loss picks its best weights and counts
    train.patience afresh, said in one line; under the same val_loss it stays stopped early (patience 2)."""
    run = aged(measured_run, tmp_path, best_val=1.0, bad_epochs=5, **({"measure": None} if key == "measure" else {}))
    weights = (run / WEIGHTS).read_bytes()
    cfg = tiny_config(str(measured_run.parent / "x.npy"), run, epochs=3, patience=2)
    setattr(cfg.train, "beta" if key == "measure" else key, value)
    capsys.readouterr()
    rows = vaekit.train(cfg, resume=True, pictures=False).history
    err, state = capsys.readouterr().err, checkpoint_state(run)
    if note is None:
        assert len(rows) == 2 and state["best_val"] == 1.0 and err == "", err
        assert (run / WEIGHTS).read_bytes() == weights
        return
    assert "best validation loss 1 set aside" in err and note in err and err.count("\n") == 2, err
    assert "resumed with other settings from epoch 3 on" in err  # and the change is named
    assert "(it had stopped early on the old measure: it trains on)" in err  # 5 epochs without a better one
    assert len(rows) == 3 and state["best_val"] == pytest.approx(rows[-1]["val_loss"], rel=1e-5)
    assert (run / WEIGHTS).read_bytes() != weights and state["measure"]["objective"] == cfg.train.objective


@pytest.mark.parametrize(
    "saved, now, said",
    [
        ({"objective": "elbo", "beta": 1.0}, {"objective": "elbo", "beta": 4.0}, "train.beta 1 -> 4"),
        ({"objective": "elbo"}, {"objective": "elbo", "beta": 1.0}, "train.beta (not read) -> 1"),
        ({"objective": "elbo", "beta": 1.0, "x": "a"}, {"objective": "elbo", "beta": 1.0}, "train.x a -> (not read)"),
    ],
)
def test_what_val_loss_measures_names_the_settings_changed_added_or_removed(saved, now, said):
    """Settings only one side reads were left out: '... since its checkpoint ()'."""
    assert measure_changed(saved, now).endswith(f"since its checkpoint ({said})")
