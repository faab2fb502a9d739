"""Deep settings refused or kept: the one conflict table, the constructor's one-line refusals, the autoregressive
window, and resumes that may switch checkpoint_cells and nothing else."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import ModelConfig, RunConfig, keep_settings, refuse_conflicts, validate
from vaekit.evaluation.scores import anomaly_scores, scores_that_apply
from vaekit.models.standardized import Standardized

from .test_deep import SHAPE, tiny


@pytest.mark.parametrize(
    "setting, match",
    [
        ({"model.deep_width": 16}, "model.deep_width and model.family"),
        ({"model.family": "deep", "model.latent_dim": 8}, "model.latent_dim and model.family"),
        ({"model.family": "deep", "model.hidden": [7]}, "model.hidden and model.family"),
        ({"model.family": "deep", "model.net": "conv"}, "model.net and model.family"),
        ({"model.family": "vq", "train.beta": 4.0}, "train.beta and model.family"),
        ({"train.skip_grad": 100, "train.clip_grad": 200}, "train.skip_grad and train.clip_grad"),
        ({"model.family": "deep", "train.kl_balance": True}, "train.kl_balance and train.warmup_epochs"),
        (
            {"model.family": "deep", "model.deep_groups": [0, 1], "train.kl_balance": True, "train.warmup_epochs": 1},
            "model.deep_groups and train.kl_balance cannot both take effect: .* these make one group",
        ),
        ({"train.skip_ratio": 1}, r"train.skip_ratio must be 0 \(off\) or > 1"),
    ],
)
def test_settings_that_cannot_take_effect_are_refused(setting, match):
    cfg = RunConfig()
    for key, value in setting.items():
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)
    with pytest.raises(vaekit.VaekitError, match=match):
        refuse_conflicts(validate(cfg))


@pytest.mark.parametrize(
    "settings, match",
    [
        *(({"patch": p}, rf"^model.deep_patch must be a positive integer, got {p}$") for p in (0, -2, 2.0)),
        ({"residual_posterior": "yes"}, r"^model.residual_posterior must be True or False, got 'yes'$"),
        ({"checkpoint_cells": 1}, r"^model.checkpoint_cells must be True or False, got 1$"),
        ({"ar_kernel": 5}, r"^model.deep_ar_kernel and model.deep_ar_channels cannot both take effect: .* off"),
        ({"scale": "shared"}, r"^scale 'shared' belongs to the gaussian likelihood, not bernoulli$"),  # was kept
        ({"components": 3}, r"^components 3 belong to the discretized_logistic likelihood, not bernoulli$"),
    ],
)
def test_the_constructor_refuses_each_setting_in_one_line_naming_it(settings, match):
    with pytest.raises(vaekit.VaekitError, match=match):
        tiny(**settings)


def test_the_autoregressive_window_is_read_with_the_head_and_an_older_run_s_unused_one_still_builds():
    assert tiny(ar_channels=2, ar_kernel=5).ar.kernel == 5
    assert vaekit.DeepVAE.__init__.__kwdefaults__["ar_kernel"] == ModelConfig().deep_ar_kernel  # one default
    cfg = ModelConfig(family="deep", input_shape=list(SHAPE), deep_groups=[1, 2, 0], deep_ar_kernel=7)
    cfg.likelihood = "bernoulli"
    assert vaekit.build_model(cfg).ar is None  # a run saved before the refusal: its config builds as written


def test_a_resume_may_switch_checkpoint_cells_and_nothing_else_of_the_model():
    saved = RunConfig()
    saved.model.family = "deep"
    for on in (True, False):  # recomputed activations: the same weights, so either way
        asked = copy.deepcopy(saved)
        asked.model.checkpoint_cells = on
        keep_settings(saved, asked)
    asked.model.deep_width = 16
    with pytest.raises(vaekit.VaekitError, match=r"^model.deep_width: a resumed run keeps"):
        keep_settings(saved, asked)
    flat, asked = RunConfig(), RunConfig()
    asked.model.checkpoint_cells = True  # held to the table: a vae has no cells to recompute
    with pytest.raises(vaekit.VaekitError, match=r"model.checkpoint_cells and model.family cannot both"):
        keep_settings(flat, asked)


def test_a_deep_run_resumes_with_checkpoint_cells_turned_on(tmp_path):
    small = dict(data="digits", model="deep", limit=40, batch_size=32, deep_groups=[1, 1, 0], deep_width=8)
    small |= dict(deep_cell_width=4, deep_latent_channels=2, out=tmp_path, progress=False, pictures=False)
    vaekit.train(epochs=1, **small)
    run = vaekit.train(epochs=2, resume=True, checkpoint_cells=True, **small)
    assert len(run.history) == 2 and run.model.checkpoint_cells and run.config.model.checkpoint_cells


def test_a_deep_run_resumes_from_the_config_it_was_trained_with(tmp_path):
    """Training records the hierarchy's latent size and empty widths in config.json; a resume from the same
    RunConfig (which leaves them at their defaults) was refused for 'changing' them."""
    cfg = RunConfig()
    small = dict(spec="digits", family="deep", limit=40, batch_size=32, deep_groups=[1, 1, 0], deep_width=8)
    small |= dict(deep_cell_width=4, deep_latent_channels=2, progress=False, epochs=1)
    for key, value in small.items():
        vaekit.config.set_value(cfg, key, value)
    cfg.out = str(tmp_path)
    vaekit.train(cfg, pictures=False)
    cfg.train.epochs = 2
    run = vaekit.train(cfg, resume=True, pictures=False)
    assert len(run.history) == 2 and run.config.model.latent_dim == sum(run.model.latent_dims)


def test_a_standardised_hierarchy_keeps_its_llr_score():
    """data.standardize=true wraps the model (Standardized): llr was refused as 'not a hierarchy' and left out."""
    torch.manual_seed(0)
    inner = vaekit.DeepVAE((1, 8, 8), groups=[1, 2, 0], width=8, cell_width=4, latent_channels=2, likelihood="gaussian")
    x = torch.rand(6, 1, 8, 8) * 50 + 100  # far from standardised units
    model = Standardized.fitted(inner, x).eval()
    assert "llr" in scores_that_apply(model, True, x[:1])
    got = anomaly_scores(model, x, ["llr"], seed=0)["llr"]  # the standardisation's Jacobian cancels in the ratio
    np.testing.assert_allclose(got, anomaly_scores(inner.eval(), model.inside(x), ["llr"], seed=0)["llr"], rtol=1e-4)


def test_kl_balance_of_one_group_and_scores_of_items_off_the_levels_are_refused():
    x = (torch.rand(40, *SHAPE, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    with pytest.raises(vaekit.VaekitError, match=r"model.deep_groups and train.kl_balance .* one group"):
        vaekit.fit(tiny(groups=[0, 1]), x, epochs=1, warmup_epochs=2, kl_balance=True, progress=False, pictures=False)
    model = tiny(likelihood="discretized_logistic").eval()  # was: neg_elbo ~1e5 of floats 0..255, no message
    with pytest.raises(vaekit.VaekitError, match=r"^data items: values in \[0, 255\] lie outside the discretized"):
        anomaly_scores(model, x * 255, "neg_elbo")
