"""What vaekit.fit records in config.json for a DeepVAE built in Python: its own deep_* settings (not the
defaults), which a resume is held to and the CLI trains again from (``training.describe``); so too a conditional
VAE's label embedding and learned prior."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import load_json_config, refuse_conflicts, validate
from vaekit.training.describe import DEEP_SETTINGS, describe

QUIET = dict(batch_size=16, progress=False, pictures=False)
SMALL = dict(groups=[1, 1, 0], width=4, cell_width=2, latent_channels=1, cells=0, patch=2, head_kernel=1, init="zero")


def deep(**settings) -> vaekit.DeepVAE:
    """A DeepVAE of 8 x 8 images with none of the family's default sizes."""
    torch.manual_seed(0)
    return vaekit.DeepVAE((1, 8, 8), **{**SMALL, **settings})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple:
    """(run folder, its data as a .npy): a DeepVAE fitted one epoch on 32 binary 8 x 8 images."""
    root = tmp_path_factory.mktemp("deep")
    x = (np.random.default_rng(0).random((32, 1, 8, 8)) > 0.5).astype(np.float32)
    np.save(root / "x.npy", x)
    vaekit.fit(deep(residual_posterior=True), x, epochs=1, out=root / "run", **QUIET)
    return root / "run", root / "x.npy"


def test_config_records_the_models_deep_settings(fitted):
    run, _ = fitted
    model, recorded = deep(residual_posterior=True), json.loads((run / "config.json").read_text())["model"]
    assert recorded["family"] == "deep" and recorded["latent_dims"] == []  # the groups are deep_groups'
    assert "model='deep'," in repr(vaekit.load_run(run))  # deep/mlp before: deep has no net
    assert {key: recorded[key] for key in DEEP_SETTINGS} == {k: getattr(model, a) for k, a in DEEP_SETTINGS.items()}
    refuse_conflicts(validate(load_json_config(run / "config.json")))  # a config the CLI takes


def test_resume_refuses_a_changed_residual_posterior(fitted):
    run, x = fitted
    with pytest.raises(vaekit.VaekitError, match=r"^model\.residual_posterior: a resumed run keeps") as e:
        vaekit.fit(deep(residual_posterior=False), np.load(x), epochs=2, out=run, resume=True, **QUIET)
    assert "\n" not in str(e.value)


def test_cli_trains_the_recorded_config_again(fitted, tmp_path):
    run, x = fitted
    again = tmp_path / "again"
    argv = ["train", "--config", str(run / "config.json"), "--out", str(again), "--data", str(x), "--epochs", "1"]
    assert main([*argv, "--quiet"]) == 0
    model = vaekit.load_run(again).model
    assert isinstance(model, vaekit.DeepVAE) and model.groups == SMALL["groups"] and model.residual_posterior


def test_likelihood_settings_recorded_where_the_likelihood_reads_them():
    shape = (1, 8, 8)
    assert describe(deep(likelihood="gaussian", scale="shared"), "gaussian", shape, None).scale == "shared"
    assert describe(deep(likelihood="gaussian", scale=0.5), "gaussian", shape, None).scale == "0.5"
    logistic = deep(likelihood="discretized_logistic", components=2)
    assert describe(logistic, "discretized_logistic", shape, None).likelihood_components == 2


class Mine(vaekit.DeepVAE):
    """A user's subclass: its family is 'custom'."""


def test_a_subclass_stays_custom():
    torch.manual_seed(0)
    cfg = describe(Mine((1, 8, 8), **SMALL), "bernoulli", (1, 8, 8), None)
    assert cfg.family == "custom" and cfg.deep_groups == [1, 2, 2, 0]  # model.json describes it
    x = (np.random.default_rng(0).random((32, 1, 8, 8)) > 0.5).astype(np.float32)
    run = vaekit.fit(Mine((1, 8, 8), **SMALL), x, epochs=1, **QUIET)
    assert run.sample(2, temperature=[1.0, 0.5, 0.5]).shape == (2, 1, 8, 8)  # one per resolution: was refused


def test_a_run_recorded_before_resumes_as_its_model_describes_it(fitted, tmp_path):
    run, x = fitted
    old = shutil.copytree(run, tmp_path / "old")
    record = json.loads((old / "config.json").read_text())
    record["model"].update(latent_dims=[4, 1], deep_groups=[1, 2, 2, 0], deep_patch=1, residual_posterior=False)
    (old / "config.json").write_text(json.dumps(record))  # as fit wrote it before: the ladder's field, defaults
    vaekit.fit(deep(residual_posterior=True), np.load(x), epochs=2, out=old, resume=True, **QUIET)
    assert json.loads((old / "config.json").read_text())["model"]["deep_groups"] == SMALL["groups"]


def test_an_old_record_of_a_gaussian_scale_resumes_by_model_json(tmp_path):
    """fit recorded a vaekit family's scale at its default before: model.json's init arguments hold the truth."""
    x = np.random.default_rng(0).random((32, 1, 8, 8)).astype(np.float32)
    run = tmp_path / "run"
    vaekit.fit(deep(likelihood="gaussian", scale="shared"), x, epochs=1, out=run, **QUIET)
    record = json.loads((run / "config.json").read_text())
    record["model"]["scale"] = "learned"
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(vaekit.VaekitError, match=r"^model\.scale: a resumed run keeps"):  # another scale: refused
        vaekit.fit(deep(likelihood="gaussian"), x, epochs=2, out=run, resume=True, **QUIET)
    vaekit.fit(deep(likelihood="gaussian", scale="shared"), x, epochs=2, out=run, resume=True, **QUIET)


def test_a_custom_run_is_trained_again_by_the_model_json_beside_its_config(fitted, tmp_path):
    """``vaekit train --config A/config.json --out B``: a model of networks from Python (a subclass: ``custom``)
    is built by A's model.json, into a new folder or over another run (whose stale model.json it built)."""
    run, x = fitted
    vaekit.register_module(Mine)
    mine = vaekit.fit(
        Mine((1, 8, 8), **{**SMALL, "groups": [1, 2, 0]}), np.load(x), epochs=1, out=tmp_path / "a", **QUIET
    )
    shutil.copytree(run, tmp_path / "b")  # another run, of groups [1, 1, 0]
    for out, more in (("b", ["--overwrite"]), ("c", [])):
        argv = ["train", "--config", str(mine.path / "config.json"), "--out", str(tmp_path / out), "--data", str(x)]
        assert main([*argv, "--epochs", "1", "--quiet", *more]) == 0
        assert vaekit.load_run(tmp_path / out).model.groups == [1, 2, 0]
    with pytest.raises(vaekit.VaekitError, match=r"networks .* cannot take effect: a resumed run is built by its own"):
        vaekit.train(resume=True, out=tmp_path / "c", networks=mine.path)
    with pytest.raises(vaekit.VaekitError, match=r"d: model.net 'custom' .* this folder has none: name that run"):
        vaekit.train(load_json_config(mine.path / "config.json"), out=tmp_path / "d", data=str(x))


def test_a_conditional_vaes_label_embedding_and_prior_are_recorded_and_held(tmp_path):
    x, y = (np.random.default_rng(0).random((48, 1, 8, 8)) > 0.5).astype(np.float32), np.arange(48) % 3

    def cvae(learned_prior: bool) -> vaekit.ConditionalVAE:
        nets = (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8)), torch.nn.Linear(6, 64))
        return vaekit.ConditionalVAE(*nets, 2, 3, label_embedding=4, learned_prior=learned_prior, input_shape=(64,))

    vaekit.fit(cvae(False), (x.reshape(48, 64), y), epochs=1, out=tmp_path / "run", **QUIET)
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert (model["learned_prior"], model["label_embedding"]) == (False, 4)  # True and 0 before: the defaults
    with pytest.raises(vaekit.VaekitError, match=r"^model\.learned_prior: a resumed run keeps"):
        vaekit.fit(cvae(True), (x.reshape(48, 64), y), epochs=2, out=tmp_path / "run", resume=True, **QUIET)
