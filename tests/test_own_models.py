"""A user's own model with distributions vaekit does not know (a Beta p(x|z), a Laplace q(z|x)): left as built,
and each fault named in one line for what it is."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Beta, Independent, Laplace, Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, SigmoidTransform

import vaekit
from vaekit.config import RunConfig, validate
from vaekit.data import load_dataset
from vaekit.evaluation.metrics import evaluate
from vaekit.evaluation.scores import anomaly_scores

from .conftest import OwnModel

QUIET = dict(epochs=1, progress=False, pictures=False)


class BetaVAE(OwnModel):
    """Items (16,) in (0, 1): Normal (or Laplace) q(z|x), N(0, I) prior, Beta p(x|z)."""

    needs_labels, latent_dims = False, [2]

    def __init__(self, q: type = Normal):
        super().__init__()
        self.q, self.enc, self.dec = q, nn.Linear(16, 4), nn.Linear(2, 32)

    def encode(self, x, y=None):
        loc, raw = self.enc(x).chunk(2, -1)
        return Independent(self.q(loc, F.softplus(raw) + 1e-3), 1)

    def decode(self, z, y=None):
        a, b = (F.softplus(self.dec(z)) + 1e-3).chunk(2, -1)
        return Independent(Beta(a, b), 1)

    def prior(self, y=None):
        return Independent(Normal(torch.zeros(2), torch.ones(2)), 1)


@pytest.fixture
def x() -> np.ndarray:
    """(120, 16) proportions in (0, 1): a table no Normal p(x|z) models."""
    return np.random.default_rng(0).beta(2, 5, (120, 16)).astype(np.float32)


def test_a_likelihood_vaekit_does_not_know_is_trained_as_built_and_named_by_its_own_name(x, tmp_path):
    run = vaekit.fit(BetaVAE(), x, out=tmp_path / "run", **QUIET)
    assert type(run.model) is BetaVAE  # not wrapped to standardise its columns, nor binarised
    assert (run.config.data.standardize, run.config.data.binarize) == ("false", "none")
    again = vaekit.load_run(tmp_path / "run", model=BetaVAE())
    assert torch.equal(again.encode(x[:3]).mean, run.encode(x[:3]).mean)
    with pytest.raises(vaekit.VaekitError, match=r"lie outside the Beta likelihood's support \[0, 1\]$"):
        vaekit.fit(BetaVAE(), x * 3, standardize="false", **QUIET)  # its own support, named as it is
    with pytest.raises(vaekit.VaekitError, match=r"'true' .* Normal p\(x\|z\); BetaVAE.decode gives a Beta"):
        vaekit.fit(BetaVAE(), x, standardize="true", **QUIET)


@pytest.mark.parametrize(
    "fault, line",
    [
        ("edge", r"train split\): item \d+ has value 0 \(and 107 more items\), at the end of the Beta likelihood's"),
        ("nan", r"at epoch 1, batch 1, before any update .*log p\(x\|z\) is NaN for 108 of 108 items: NaN from the"),
    ],
)
def test_a_loss_not_finite_before_any_update_names_the_term_not_the_learning_rate(x, fault, line):
    model = BetaVAE()
    if fault == "edge":
        x[:, 0] = 0.0  # a Beta's log-density is infinite at exactly 0
    else:
        model.dec.bias.data[0] = float("nan")  # the decoder gives NaN
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(vaekit.VaekitError, match=line):  # the edge: fit's data check, before the first step
        vaekit.fit(model, x, standardize="false", **QUIET)
    assert all(torch.allclose(a, b, equal_nan=True) for a, b in zip(before, model.parameters()))  # nothing moved


def test_a_float64_model_and_a_laplace_q_are_refused_for_what_they_are(x):
    with pytest.raises(vaekit.VaekitError, match="BetaVAE's parameters are float64, and fit's items are float32"):
        vaekit.fit(BetaVAE().double(), x, **QUIET)
    with pytest.raises(
        vaekit.VaekitError, match=r"re-fits a Gaussian q\(z\|x\).*this model's is an Independent\(Laplace\)"
    ):
        anomaly_scores(BetaVAE(q=Laplace), x[:4], ["likelihood_regret"], steps=1)
    with pytest.raises(vaekit.VaekitError, match=r"this model's is an Independent\(Laplace\): leave eps out"):
        vaekit.iwae_bound(BetaVAE(q=Laplace), x[:4], eps=torch.zeros(3, 2))


@pytest.fixture
def beta_run(x, tmp_path) -> vaekit.Run:
    """A one-epoch BetaVAE run, loaded back from its folder into a fresh BetaVAE."""
    vaekit.fit(BetaVAE(), x, out=tmp_path / "run", **QUIET)
    return vaekit.load_run(tmp_path / "run", model=BetaVAE())


def test_config_records_the_users_own_likelihood_and_it_loads_and_resumes(beta_run, x, tmp_path):
    path = tmp_path / "run" / "config.json"
    assert (json.loads(path.read_text())["model"]["likelihood"], beta_run.config.model.likelihood) == ("own:Beta",) * 2
    assert math.isfinite(evaluate(beta_run, x, k=2)["elbo"])  # data inside the Beta's support is evaluated
    old = json.loads(path.read_text().replace('"own:Beta"', '"gaussian"'))  # as vaekit wrote it before: format 1
    path.write_text(json.dumps({k: v for k, v in old.items() if k != "format"}))
    assert vaekit.load_run(tmp_path / "run", model=BetaVAE()).config.model.likelihood == "own:Beta"  # its model's
    resumed = vaekit.fit(BetaVAE(), x, out=tmp_path / "run", resume=True, **{**QUIET, "epochs": 2})
    assert resumed.config.model.likelihood == json.loads(path.read_text())["model"]["likelihood"] == "own:Beta"


@pytest.mark.parametrize("prepared", [False, True], ids=["items", "dataset"])
def test_evaluation_checks_the_data_against_the_models_own_support(beta_run, x, tmp_path, prepared):
    """Items given (checked as evaluate prepares them), and a Dataset prepared by name already (``vaekit
    evaluate --data``'s path): both refused by the Beta's support, not let through as a Gaussian's."""
    np.save(tmp_path / "far.npy", x * 3)
    data, mode = (load_dataset(str(tmp_path / "far.npy")), "none") if prepared else (x * 3, None)
    with pytest.raises(vaekit.VaekitError, match=r"lie outside the Beta likelihood's support \[0, 1\]$"):
        evaluate(beta_run, data, k=2, mode=mode)


@pytest.mark.parametrize(
    "net, likelihood, refused",
    [
        ("custom", "own:Beta", None),
        ("custom", "gaussian", None),  # the configs written before still load
        ("mlp", "own:Beta", r"own:Beta is the p\(x\|z\) of a model built in Python \(model.net custom\)"),
        ("custom", "own:", "model.likelihood must be one of"),
        ("custom", "Beta", "model.likelihood must be one of"),
    ],
)
def test_a_likelihood_of_the_users_own_is_admitted_for_networks_built_in_python_only(net, likelihood, refused):
    cfg = RunConfig()
    cfg.model.net, cfg.model.likelihood = net, likelihood
    if refused is None:
        assert validate(cfg) is cfg
    else:
        with pytest.raises(vaekit.VaekitError, match=refused):
            validate(cfg)


class LogitNormalVAE(BetaVAE):
    """A logit-normal p(x|z) and a q(z|x) through an identity transform: neither has a ``.mean`` in torch."""

    def encode(self, x, y=None):
        loc, raw = self.enc(x).chunk(2, -1)
        return Independent(TransformedDistribution(Normal(loc, F.softplus(raw) + 1e-3), [AffineTransform(0.0, 1.0)]), 1)

    def decode(self, z, y=None):
        loc, raw = self.dec(z).chunk(2, -1)
        return Independent(TransformedDistribution(Normal(loc, F.softplus(raw) + 1e-3), [SigmoidTransform()]), 1)


def test_distributions_without_a_mean_are_read_by_the_mean_of_seeded_draws(x, tmp_path):
    """Pictures at the end of fit, reconstruct, sample and evaluate take ``mean_of``: the mean of 64 draws under a
    fixed seed where torch gives no mean, the same on every call, the caller's RNG untouched."""
    run = vaekit.fit(LogitNormalVAE(), x, out=tmp_path / "run", epochs=1, progress=False)  # pictures on
    assert (tmp_path / "run" / "samples.png").is_file() and (tmp_path / "run" / "reconstructions.png").is_file()
    state = torch.get_rng_state()
    rec = run.reconstruct(x[:3])
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(rec, run.reconstruct(x[:3]))
    assert rec.shape == (3, 16) and bool(((rec > 0) & (rec < 1)).all())  # inside the logit-normal's support
    torch.manual_seed(1)
    drawn = run.sample(4)
    torch.manual_seed(1)
    assert torch.equal(drawn, run.sample(4)) and bool(drawn.isfinite().all())
    assert math.isfinite(evaluate(run, x, k=2)["elbo"])  # its codes' means (active units) drawn as well
    assert np.isfinite(anomaly_scores(run.model, x[:3], ["recon_error"])["recon_error"]).all()  # its mean too


def tied_vae() -> vaekit.VAE:
    """A VAE whose encoder and decoder share one layer (tied weights), seeded."""
    torch.manual_seed(0)
    shared = nn.Linear(8, 8)
    enc = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), shared, nn.Tanh())
    return vaekit.VAE(enc, nn.Sequential(nn.Linear(2, 8), nn.Tanh(), shared, nn.Linear(8, 16)), latent_dim=2)


def test_weights_tied_between_encoder_and_decoder_are_saved_loaded_and_resumed_as_one(tmp_path):
    x = (np.random.default_rng(0).random((40, 16)) > 0.5).astype(np.float32)
    opts = dict(progress=False, pictures=False, batch_size=16)
    straight = vaekit.fit(tied_vae(), x, epochs=2, out=tmp_path / "a", **opts)  # its checkpoints: one tensor twice
    vaekit.fit(tied_vae(), x, epochs=1, out=tmp_path / "b", **opts)
    resumed = vaekit.fit(tied_vae(), x, epochs=2, out=tmp_path / "b", resume=True, **opts)
    assert resumed.model.encoder[2] is resumed.model.decoder[2]  # still one layer
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit as the run never stopped
    again = vaekit.load_run(tmp_path / "b", model=tied_vae())
    assert torch.equal(again.reconstruct(x[:4]), resumed.reconstruct(x[:4]))
