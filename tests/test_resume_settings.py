"""What a resume may change and what it says: changed training settings named in one line and kept in
config.json, a schedule counted from the run's start refused, a diverged run warned of, the guard's stop after
non-finite skips, and the step numbers a resumed fit's callbacks get."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import vaekit
from vaekit.config import RunConfig
from vaekit.config.resume import keep_recorded, keep_settings, recorded
from vaekit.errors import VaekitError
from vaekit.training import distributed
from vaekit.training.first_step import TrainingStopped
from vaekit.training.guard import StepGuard
from vaekit.training.resumes import change_line

from .conftest import tiny_config

DOCS = Path(__file__).parents[1] / "docs" / "guides" / "training.md"


@pytest.fixture
def warned(monkeypatch) -> list[str]:
    """The lines ``distributed.warn`` says, in order."""
    lines: list[str] = []
    monkeypatch.setattr(distributed, "warn", lambda message, own=False: lines.append(message))
    return lines


@pytest.fixture
def trained(tiny_images, tmp_path) -> RunConfig:
    """A finished run of 2 epochs (3 steps each), warmed up over 1 epoch, and its config."""
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=2, warmup_epochs=1.0)
    vaekit.train(cfg, pictures=False)
    return cfg


def config_json(cfg: RunConfig) -> dict:
    return json.loads((Path(cfg.out) / "config.json").read_text())


def test_a_resume_with_other_settings_says_each_and_config_json_records_them(trained, warned):
    vaekit.train(trained, resume=True, pictures=False, epochs=3, lr=0.01, ema=0.9)
    assert warned == [
        "resumed with other settings from epoch 3 on: train.lr 0.001 -> 0.01, train.ema 0 -> 0.9; config.json "
        "records each change, from its epoch, under written_by.resumes"
    ]
    first = {"epoch": 3, "batch": 0, "changed": {"train.lr": [0.001, 0.01], "train.ema": [0.0, 0.9]}}
    saved = config_json(trained)
    assert saved["train"]["lr"] == 0.01 and saved["written_by"]["resumes"] == [first]
    warned.clear()
    vaekit.train(trained, resume=True, pictures=False, epochs=4, lr=0.01, ema=0.9, patience=3)  # when it stops
    assert warned == [] and config_json(trained)["written_by"]["resumes"] == [first]
    vaekit.train(trained, resume=True, pictures=False, epochs=5, lr=0.002, ema=0.9)
    assert [r["changed"] for r in config_json(trained)["written_by"]["resumes"]] == [
        first["changed"],
        {"train.lr": [0.01, 0.002]},
    ]
    assert change_line({"train.lr_schedule": ["none", "cosine"]}, 3, 2).startswith(
        "resumed with other settings from epoch 3, batch 3 on: train.lr_schedule none -> cosine;"  # mid-epoch
    )
    again = vaekit.train(
        vaekit.load_run(trained.out).config, out=str(Path(trained.out).parent / "again"), epochs=1, pictures=False
    )
    assert "resumes" not in config_json(again.config)["written_by"] and again.config.train.lr == 0.002


@pytest.mark.parametrize("warmup", [10.0, 0.5, 0.0])
def test_a_warm_up_changed_on_resume_is_refused(trained, warmup):
    """Longer (it would cut the KL weight back), shorter or none (no effect: the warm-up is over)."""
    with pytest.raises(VaekitError, match=r"train\.warmup_epochs: a resumed run keeps its KL warm-up \(1\.0 epochs"):
        vaekit.train(trained, resume=True, pictures=False, epochs=3, warmup_epochs=warmup)
    assert config_json(trained)["train"]["warmup_epochs"] == 1.0


@pytest.mark.parametrize("key", ["train.warmup_epochs", "train.dimwise_warmup_epochs", "train.capacity_epochs"])
def test_a_schedule_is_held_to_the_checkpoint_and_to_config_json(key):
    """The checkpoint's record (``keep_recorded``), and config.json for a checkpoint that records none."""
    saved, asked = RunConfig(), RunConfig()
    setattr(asked.train, key.split(".")[1], 3.0)
    for check in (lambda: keep_recorded(recorded(saved), asked), lambda: keep_settings(saved, asked)):
        with pytest.raises(VaekitError, match=rf"{key}: a resumed run keeps its .* \(0\.0 epochs, 3\.0 asked\)"):
            check()
    assert recorded(asked)[key] == 3.0 and keep_recorded({}, asked)[key] == 3.0  # an older record: unchecked


def test_a_diverged_run_is_warned_of_once_naming_the_epoch_and_the_setting(tiny_images, tmp_path, warned):
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=2, lr=50.0)
    vaekit.train(cfg, pictures=False)
    assert len(warned) == 1 and warned[0].startswith("epoch 1: the training loss ")
    assert "the run diverged; lower train.lr (now 50) or set train.clip_grad" in warned[0]
    warned.clear()
    vaekit.train(tiny_config(str(tiny_images), tmp_path / "calm", epochs=2), pictures=False)
    assert warned == []


def guard_at(start: float, **kwargs) -> StepGuard:
    """A guard whose first kept step had the loss ``start`` (no norm), with an update applied since."""
    guard = StepGuard(20, **kwargs)
    guard.opt = SimpleNamespace(state={0: "updated"})  # type: ignore[assignment]
    assert guard.ok(torch.tensor(start), "epoch 1, batch 1")
    return guard


def test_the_divergence_rule_reads_the_first_step_s_loss_and_a_resume_keeps_it(warned):
    """An epoch's loss FAR (100) x max(|start|, 1) above the first step's, or its KL past that, warns once."""
    means = lambda loss, kl: torch.tensor([loss, 0.0, kl])  # noqa: E731 (loss, rec, kl sums over 1 item)
    guard = guard_at(-3.0)  # a Gaussian's negative loss: the size of it counts
    guard.epoch_means(means(296.0, 299.0), 1, 1)  # 299 above, KL 299: not past 300
    assert warned == []
    twin = StepGuard(20)
    twin.load_state_dict(json.loads(json.dumps(guard.state_dict())))  # a resumed run's, through its checkpoint
    twin.epoch_means(means(0.0, 301.0), 1, 2)
    twin.epoch_means(means(1e9, 1e9), 1, 3)
    assert len(warned) == 1 and warned[0].startswith("epoch 2: the training KL 301 per item")
    assert "first step's loss, -3" in warned[0]


@pytest.mark.parametrize(
    ("kwargs", "value", "fix"),
    [
        ({}, math.nan, "lower train.lr (now 5) or set train.clip_grad"),
        ({"skip_grad": 1.0}, 1.0, "raise train.skip_grad"),
    ],
)
def test_an_epoch_of_skipped_steps_stops_with_the_advice_its_skips_call_for(kwargs, value, fix):
    """Non-finite steps with no threshold set: the warning's advice, not the threshold's."""
    guard = guard_at(40.0, lr=5.0, **kwargs)
    for _ in range(3):
        assert not guard.ok(torch.tensor(value + 2.0), "epoch 2, batch 1", torch.tensor(2.0))
    with pytest.raises(TrainingStopped, match="every step of it was skipped") as stop:
        guard.epoch_means(torch.zeros(3), 0, 2)
    assert str(stop.value).endswith(fix) and stop.value.key == "train.lr"


def test_a_resumed_fit_s_steps_go_on_from_the_run_s_as_the_docs_say(trained):
    class Steps(vaekit.Callback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, step, metrics, model):
            self.steps.append(step)

    steps = Steps()
    vaekit.train(trained, resume=True, pictures=False, epochs=3, callbacks=[steps])
    assert steps.steps == [6, 7, 8]  # 3 steps an epoch, 2 epochs before
    said = " ".join(DOCS.read_text().split()) + " ".join(vaekit.Callback.__doc__.split())
    assert "counts the run's steps from 0" in said and "fit's steps" not in said
