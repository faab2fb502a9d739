"""The zoo's settings, round 3: a gumbel model scored in float64, total correlation of one latent variable refused,
the ladder's default levels in one place, and a refusal's hint naming the setting the user gave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig, RunConfig, refuse_conflicts, set_value, validate
from vaekit.core.discrete import GumbelSoftmax
from vaekit.errors import VaekitError
from vaekit.evaluation.scores import anomaly_scores
from vaekit.models.catalog import family_table
from vaekit.models.ladder import LADDER_DIMS, new_levels

QUIET = {"progress": False, "pictures": False}


def gumbel() -> torch.nn.Module:
    """A tiny categorical VAE: 2 variables of 3 classes over 6 binary values."""
    return vaekit.build_model(
        family="gumbel", input_shape=[6], hidden=[8], latent_dim=2, categories=3, likelihood="bernoulli"
    )


@pytest.fixture(scope="module")
def gumbel_run(tmp_path_factory):
    x = torch.bernoulli(torch.full((32, 6), 0.5), generator=torch.Generator().manual_seed(0))
    out = tmp_path_factory.mktemp("gumbel") / "run"
    vaekit.fit(gumbel(), x, epochs=1, batch_size=16, out=out, **QUIET)
    return out, x.numpy().astype(np.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_gumbel_softmax_keeps_float64_and_upcasts_low_precision(dtype):
    logits = torch.randn(5, 2, 3, dtype=torch.float64)
    q = GumbelSoftmax(logits.to(dtype), 0.5)
    want = torch.float64 if dtype == torch.float64 else torch.float32  # bf16 under autocast: float32, as before
    one_hot = q.sample()
    assert q.logits.dtype == q.rsample().dtype == q.log_prob(one_hot).dtype == want
    ref = logits.to(dtype).double().log_softmax(-1)
    tol = 0 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(q.logits.double(), ref, rtol=0, atol=tol)


def test_a_float64_gumbel_model_scores_in_float64():
    model = gumbel().double().eval()
    x = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64))
    bound = vaekit.iwae_bound(model, x, k=8)  # was: mat1 and mat2 must have the same dtype
    scores = anomaly_scores(model, x, ["neg_elbo", "iwae_nll"], iw_samples=8)
    assert bound.dtype == torch.float64 and bound.isfinite().all()
    assert all(np.isfinite(s).all() for s in scores.values())


@pytest.mark.parametrize("method", ["neg_elbo", "iwae_nll", "recon_error"])
def test_the_detector_and_encoder_of_a_gumbel_run(method, gumbel_run):
    out, x = gumbel_run
    scores = vaekit.VAEAnomalyDetector.from_run(out, method=method).fit(x).score_samples(x[:5])
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    codes = vaekit.VAEEncoder.from_run(out).fit(x).transform(x[:5])
    assert codes.dtype == np.float64 and codes.shape == (5, 6)  # was float32, the docs say float64


def config(*settings: str) -> RunConfig:
    cfg = RunConfig()
    for s in settings:
        set_value(cfg, *s.split("=", 1))
    return validate(cfg)


ONE = [
    ("train.tc_beta", ["train.tc_beta=6"]),
    ("train.objective", ["train.objective=factor"]),
    ("train.objective", ["model.family=gumbel", "train.objective=factor"]),  # one categorical variable
    ("train.tc_beta", ["model.family=cvae", "train.tc_beta=2"]),
]


@pytest.mark.parametrize("key, settings", ONE, ids=["tc", "factor", "gumbel-factor", "cvae-tc"])
def test_total_correlation_of_one_latent_variable_is_refused(key, settings):
    with pytest.raises(VaekitError, match=rf"^config: {key} and model.latent_dim cannot both take effect: .* is 0"):
        refuse_conflicts(config("model.latent_dim=1", *settings))  # tc_beta 2 and 6 trained identical weights
    refuse_conflicts(config("model.latent_dim=2", *settings))  # two variables: their total correlation counts


def test_the_ladder_default_levels_are_settled_in_one_place():
    assert new_levels(ModelConfig(family="ladder")).latent_dims == LADDER_DIMS == [32, 16]
    assert new_levels(ModelConfig(family="ladder", latent_dims=[4])).latent_dims == [4]  # given: kept
    assert new_levels(ModelConfig(family="vae")).latent_dims == []
    assert "| ladder | mlp | 32,16 |" in family_table([4])[0]  # vaekit models: the levels training settles


def test_the_models_table_names_a_registered_family_without_a_docstring_by_its_class(monkeypatch):
    from vaekit.models import MODELS

    monkeypatch.setitem(MODELS, "bare", type("Bare", (MODELS["vae"],), {"__doc__": None}))  # an IndexError
    assert any(line.startswith("| bare | mlp |") and ":Bare |" in line for line in family_table([4])[0].splitlines())


def test_build_model_builds_the_ladder_training_builds():
    model = vaekit.build_model(family="ladder", input_shape=[4], hidden=[8], likelihood="gaussian")
    assert model.latent_dims == LADDER_DIMS[::-1]  # top to bottom: z_2, z_1; was [16], one level


@pytest.mark.parametrize(
    "settings, key",
    [
        (["train.kl_balance=true", "train.warmup_epochs=1"], "train.kl_balance"),  # the family: vae, not given
        (["train.prior_epochs=2"], "train.prior_epochs"),
        (["train.gumbel_tau=0.5"], "train.gumbel_tau"),
        (["model.family=vq", "train.free_bits=0.5"], "train.free_bits"),  # both given: the setting, not the family
        (["model.family=gumbel", "train.tc_beta=2"], "train.tc_beta"),
    ],
)
def test_a_refusal_names_the_setting_given_before_a_default(settings, key):
    with pytest.raises(VaekitError, match="cannot both take effect") as e:
        refuse_conflicts(config(*settings))
    assert e.value.key == key


def test_the_cli_hint_of_kl_balance_names_its_flag(tmp_path, capsys):
    argv = ["train", "--data", "digits", "--epochs", "1", "--warmup-epochs", "1", "--set", "train.kl_balance=true"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("(--set train.kl_balance=...)") and "\n" not in err  # was: (--set model.family=...)
