"""A user's own model with distributions vaekit does not know (a Beta p(x|z), a Laplace q(z|x)): left as built,
and each fault named in one line for what it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Beta, Independent, Laplace, Normal

import vaekit
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
    [("edge", r"infinite for 108 of 108 items: data at the edge"), ("nan", r"NaN for 108 of 108 items: NaN from the")],
)
def test_a_loss_not_finite_before_any_update_names_the_term_not_the_learning_rate(x, fault, line):
    model = BetaVAE()
    if fault == "edge":
        x[:, 0] = 0.0  # a Beta's log-density is infinite at exactly 0
    else:
        model.dec.bias.data[0] = float("nan")  # the decoder gives NaN
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(vaekit.VaekitError, match=r"at epoch 1, batch 1, before any update .*log p\(x\|z\) is " + line):
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
