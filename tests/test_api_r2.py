"""vaekit.fit and vaekit.train, round 2: an interrupted fit hands over its Run; a vaekit Dataset's own val split
refuses a val_fraction; a resume on labels of other classes is refused; build_model's networks are recorded as
such (a run of them trains again from its config.json); a run trained again from a resumed run's config.json
says which settings its first epochs had."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import build_parser, train_config
from vaekit.data import Dataset, Split
from vaekit.training import describe
from vaekit.training.signals import Interrupted

from .conftest import tiny_config

QUIET = dict(progress=False, pictures=False)
ABC = np.array(["a", "b", "c"] * 16)  # (48,) class names


def images(n: int = 48, side: int = 4) -> np.ndarray:
    """(n, 1, side, side) binary float32 'images'."""
    return (np.random.default_rng(0).random((n, 1, side, side)) > 0.5).astype(np.float32)


def model(side: int = 4, **settings) -> vaekit.VAEModel:
    torch.manual_seed(0)
    widths = {} if settings.get("net") == "conv" else {"hidden": [8]}
    return vaekit.build_model(input_shape=[1, side, side], likelihood="bernoulli", latent_dim=2, **widths, **settings)


class StopAt(vaekit.Callback):
    """Sends this process SIGINT at the end of step ``step`` (a Ctrl-C mid-fit), as test_notebook's StopAt."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, step, metrics, model):
        if step == self.step:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("out", [None, "run"])
def test_an_interrupted_fit_hands_over_the_run_of_what_it_trained(out, tmp_path):
    m, folder = model(), None if out is None else tmp_path / out
    with pytest.raises(Interrupted) as e:  # 3 steps an epoch: step 4 is in epoch 2
        vaekit.fit(m, (images(), ABC), epochs=3, batch_size=16, callbacks=[StopAt(4)], out=folder, **QUIET)
    run = e.value.result
    assert isinstance(run, vaekit.Run) and run.model is m and run.path == folder and run.classes == ["a", "b", "c"]
    assert run.history == e.value.history and [row["epoch"] for row in run.history] == [1]
    assert run.sample(3).shape == (3, 1, 4, 4) and run.encode(images(2)).mean.shape == (2, 2)


def test_an_interrupted_train_hands_over_its_run_too(tiny_images, tmp_path):
    with pytest.raises(Interrupted) as e:  # 54 training items, 4 steps an epoch: step 5 is in epoch 2
        vaekit.train(tiny_config(str(tiny_images), tmp_path / "run"), callbacks=[StopAt(5)], pictures=False)
    run = e.value.result
    assert run.path == tmp_path / "run" and len(run.history) == 1 and run.model is e.value.model


def test_a_datasets_own_val_split_refuses_a_val_fraction():
    x = torch.from_numpy(images())
    d = Dataset("mine", Split(x[:40], None), Split(x[40:], None), Split(x[:0], None), (1, 4, 4), "image", None)
    with pytest.raises(vaekit.VaekitError, match=r"^val_fraction cannot take effect: the Dataset 'mine' brings") as e:
        vaekit.fit(model(), d, val_fraction=0.2, epochs=1, **QUIET)
    assert e.value.key == "val_fraction" and "\n" not in str(e.value)


def test_a_resume_on_labels_of_other_classes_is_refused_naming_both(tmp_path):
    m, x, out = model(family="cvae", num_classes=3), images(), tmp_path / "run"
    counts = vaekit.fit(m, (x, ABC), epochs=1, out=out, **QUIET).class_counts  # training: 48 less 5 validation
    assert counts == json.loads((out / "class_counts.json").read_text())["counts"] and sum(counts) == 43
    said = r"classes.json: the run was trained on the classes \['a', 'b', 'c'\], and the data's labels name \['x', 'y'"
    with pytest.raises(vaekit.VaekitError, match=said):
        vaekit.fit(m, (x, np.array(["x", "y", "z"] * 16)), epochs=2, out=out, resume=True, **QUIET)
    assert json.loads((out / "classes.json").read_text()) == {"classes": ["a", "b", "c"]}
    assert len(vaekit.fit(m, (x, ABC), epochs=2, out=out, resume=True, **QUIET).history) == 2


def test_build_models_networks_are_recorded_as_such_and_train_again_from_the_config(tmp_path):
    x, m = images(side=8), model(8, net="conv", channels=[8, 16])
    run = vaekit.fit(m, x, epochs=1, out=tmp_path / "run", **QUIET)
    assert (run.config.model.net, run.config.model.channels) == ("conv", [8, 16])
    assert torch.equal(vaekit.load_run(tmp_path / "run").encode(x[:4]).mean, run.encode(x[:4]).mean)
    np.save(tmp_path / "x.npy", x)
    again = vaekit.train(run.config, out=None, data=str(tmp_path / "x.npy"), epochs=1, **QUIET)  # by the config
    assert again.config.model.channels == [8, 16] and type(again.model.encoder) is type(m.encoder)
    assert len(vaekit.fit(m, x, epochs=2, out=tmp_path / "run", resume=True, **QUIET).history) == 2


def test_a_run_recorded_custom_before_resumes_so_and_a_custom_one_without_a_folder_says_what_to_do(
    tmp_path, monkeypatch
):
    x, out = images(side=8), tmp_path / "run"
    with monkeypatch.context() as before:  # fit as it described build_model's networks before: model.json's
        before.setattr(describe, "built_in", lambda model, described: None)
        vaekit.fit(model(8, net="conv", channels=[8]), x, epochs=1, out=out, **QUIET)
    run = vaekit.fit(model(8, net="conv", channels=[8]), x, epochs=2, out=out, resume=True, **QUIET)
    assert (run.config.model.net, len(run.history), (out / "model.json").is_file()) == ("custom", 2, True)
    own = vaekit.VAE(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), nn.Linear(2, 64), latent_dim=2)
    own_run = vaekit.fit(own, x.reshape(48, 64), epochs=1, **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"^model.net 'custom' .* out is None \(no run folder\): name that"):
        vaekit.train(own_run.config, out=None, data="unread.npy", **QUIET)


def test_a_run_trained_again_from_a_resumed_runs_config_says_its_first_epochs_had_other_settings(tmp_path, capsys):
    x, out = images(), tmp_path / "a"
    vaekit.fit(model(), x, epochs=1, lr=0.01, out=out, **QUIET)
    vaekit.fit(model(), x, epochs=2, lr=0.002, out=out, resume=True, **QUIET)
    capsys.readouterr()
    argv = ["train", "--config", str(out / "config.json"), "--out", str(tmp_path / "b")]
    assert train_config(build_parser().parse_args(argv)).train.lr == 0.002
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (
        "that run was resumed with other settings, and this run trains with the last ones (train.lr 0.002) from "
        "epoch 1, while that run's epochs before 2 trained with train.lr 0.01" in err
    )
    train_config(build_parser().parse_args([*argv, "--lr", "0.01"]))  # as its first epochs: nothing to say
    assert capsys.readouterr().err == ""
