"""benchmarks/deep.py --carry-on: a run folder trained on other settings than those asked is refused, in one line,
before the budget says whether another epoch trains (a folder with no room for one was scored and published
under a command that asked other settings). Faked run folders: nothing trains."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import pytest
import torch

from vaekit.config.formats import FORMAT

ROOT = Path(__file__).resolve().parents[1]
FLAT = "flat conv VAE"


class Trained(Exception):
    """deep.train was called: the run trained (or would have)."""


@pytest.fixture
def deep(monkeypatch):
    """benchmarks/deep.py as the scripts import it, its training replaced by a record of the config asked."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    module = importlib.import_module("deep")
    asked = []

    def train(cfg, **kwargs):
        asked.append(cfg)
        raise Trained

    monkeypatch.setattr(module, "train", train)
    module.asked = asked
    return module


def args(out: Path, limit: int | None) -> argparse.Namespace:
    return argparse.Namespace(out=str(out), limit=limit, carry_on=True, minutes=0.5)


def settings(deep, name: str = FLAT, **more: object) -> dict:
    """Model ``name``'s settings on binarised mnist5k, as nll_part asks them, ``more`` over them."""
    return {**deep.MODELS[name][1], "data.spec": "mnist5k", "data.binarize": "dynamic", **more}


def fake_run(deep, out: Path, limit: int | None, seconds: float = 60.0, name: str = f"x-{FLAT}", **more) -> Path:
    """A run folder ``name`` as train_for leaves one: the config it asks (settled by the data; for "x-deep", the
    deep preset's, with the latent size and empty widths training records) and one epoch of ``seconds`` in
    metrics.csv (60 s: no room for another in a 0.5-minute budget)."""
    fresh = argparse.Namespace(**{**vars(args(out, limit)), "carry_on": False})
    model = "deep" if name == "x-deep" else FLAT
    with pytest.raises(Trained):
        deep.train_for(name, deep.MODELS[model][0], settings(deep, model, **more), fresh)
    cfg = deep.asked.pop()
    cfg.model.input_shape, cfg.model.likelihood = [1, 28, 28], "bernoulli"  # what the data settles ('auto' asked)
    if model == "deep":
        cfg.model.latent_dim, cfg.model.hidden, cfg.model.channels = 1440, [], []
    path = Path(cfg.out)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"format": FORMAT, **cfg.to_dict()}))
    (path / "metrics.csv").write_text(f"epoch,seconds,val_loss\n1,{seconds},100.0\n")
    return path


def unscored(deep, monkeypatch) -> None:
    """Loading the run to score it fails the test: a run on other settings was scored."""
    monkeypatch.setattr(deep.Run, "load", lambda *a, **k: pytest.fail("a run on other settings was scored"))


def test_a_folder_trained_on_other_items_is_refused_though_no_epoch_trains(deep, tmp_path, monkeypatch):
    path = fake_run(deep, tmp_path, limit=3000)
    unscored(deep, monkeypatch)
    with pytest.raises(SystemExit) as refused:
        deep.train_for(f"x-{FLAT}", None, settings(deep), args(tmp_path, limit=1000))
    message = str(refused.value)
    assert "data.limit 3000" in message and "asks 1000" in message and str(path) in message
    assert "\n" not in message and not deep.asked  # one line, and nothing trained


@pytest.mark.parametrize(
    ("key", "value"), [("data.spec", "fashion-mnist"), ("model.latent_dim", 8), ("data.binarize", "fixed")]
)
def test_other_data_or_model_settings_are_refused(deep, tmp_path, monkeypatch, key, value):
    fake_run(deep, tmp_path, limit=3000)
    unscored(deep, monkeypatch)
    with pytest.raises(SystemExit, match=f"with {key} .* asks {value!r}"):
        deep.train_for(f"x-{FLAT}", None, settings(deep, **{key: value}), args(tmp_path, limit=3000))


def test_the_same_settings_carry_on(deep, tmp_path, monkeypatch):
    fake_run(deep, tmp_path, limit=3000)
    model = torch.nn.Linear(2, 3)
    monkeypatch.setattr(deep.Run, "load", lambda *a, **k: argparse.Namespace(model=model))
    _, info = deep.train_for(f"x-{FLAT}", None, settings(deep), args(tmp_path, limit=3000))
    assert (info["carried"], info["epochs"], info["parameters"]) == (1, 1, 9) and not deep.asked
    fake_run(deep, tmp_path / "short", limit=3000, seconds=1.0)  # room for another epoch: it trains, resumed
    with pytest.raises(Trained):
        deep.train_for(f"x-{FLAT}", None, settings(deep), args(tmp_path / "short", limit=3000))


def test_a_deep_folder_carries_on_with_the_sizes_its_training_recorded(deep, tmp_path, monkeypatch):
    """config.json records the hierarchy's latent size and no widths; the preset asks neither: no refusal."""
    fake_run(deep, tmp_path, limit=3000, name="x-deep")
    monkeypatch.setattr(deep.Run, "load", lambda *a, **k: argparse.Namespace(model=torch.nn.Linear(2, 3)))
    _, info = deep.train_for("x-deep", deep.MODELS["deep"][0], settings(deep, "deep"), args(tmp_path, limit=3000))
    assert info["carried"] == 1 and not deep.asked


@pytest.mark.parametrize("limit", [3000, None])
def test_the_later_parts_refuse_a_folder_on_other_settings_or_none(deep, tmp_path, monkeypatch, limit):
    if limit:  # the flat model's folder as --parts nll left it, on 3000 items; this command asks 1000
        fake_run(deep, tmp_path, limit=limit, name=f"fashion-mnist-{FLAT}", **{"data.spec": "fashion-mnist"})
    unscored(deep, monkeypatch)
    with pytest.raises(
        SystemExit, match="^--parts without nll: .*" + ("data.limit 3000" if limit else "no trained run")
    ):
        deep.trained_runs(args(tmp_path, limit=1000))
