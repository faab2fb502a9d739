"""Discrete latents: the VQ-VAE (EMA codebook, straight-through, commitment, PixelCNN prior in a second stage) and
the categorical VAE (Gumbel-softmax)."""

from __future__ import annotations

import math

import pytest
import torch

import vaekit
from vaekit.config import RunConfig, refuse_conflicts
from vaekit.core import elbo, iwae_bound
from vaekit.core.discrete import GumbelSoftmax
from vaekit.core.schedules import tau_at
from vaekit.evaluation.scores import anomaly_scores
from vaekit.models.pixelcnn import GatedPixelCNN
from vaekit.training.prior import fit_prior_on

SMALL = {"codebook_size": 8, "code_dim": 4, "pixelcnn_channels": 8, "pixelcnn_layers": 2}


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(24, 1, 8, 8, generator=g) > 0.5).float()


def vq(net: str = "mlp", **settings):
    nets = {"hidden": [16], "latent_dim": 4} if net == "mlp" else {"channels": [4, 8]}
    return vaekit.build_model(
        family="vq", net=net, input_shape=[1, 8, 8], likelihood="bernoulli", **nets, **{**SMALL, **settings}
    )


def quantisation_error(model, x):
    qz, ze = model.quantize(x)
    return (ze.flatten(1) - qz.loc).pow(2).sum(1).mean().item()


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_codebook_ema_moves_codes_to_the_encoder_outputs(net, x):
    model = vq(net, codebook_decay=0.8).train()
    before = quantisation_error(model, x)
    with torch.no_grad():
        for _ in range(15):  # the encoder stays fixed: the EMA alone runs k-means on its outputs
            model(x)
    assert quantisation_error(model, x) < 0.5 * before
    assert model.cluster_size.sum() > 0 and model.codebook.isfinite().all()


def test_commitment_term_moves_the_loss_and_straight_through_reaches_the_encoder(x):
    model = vq().eval()  # no EMA step: both losses see the same codebook
    out = model(x)
    commit = out.extra["commitment"]  # (B,) = 0.25 * ||z_e - sg(e)||^2
    assert commit.shape == (24,) and (commit > 0).all()
    model.commitment = 0.0
    out0 = model(x)
    assert torch.allclose(elbo(out, x)["loss"] - elbo(out0, x)["loss"], commit.mean())
    elbo(out0, x)["loss"].backward()  # no commitment: the encoder's gradient comes through z_q alone
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.pixelcnn.parameters())  # the ELBO never trains the prior


def test_kl_is_the_uniform_constant_and_the_bound_is_the_same_for_every_k(x):
    model = vq().eval()
    terms = elbo(model(x), x)
    assert torch.allclose(terms["kl"], torch.full((24,), 4 * math.log(8)))  # h * w * log K
    assert torch.allclose(iwae_bound(model, x, k=5), terms["rec"] - terms["kl"], atol=1e-4)  # q is one point


def test_pixelcnn_is_causal_in_raster_order():
    torch.manual_seed(0)
    net = GatedPixelCNN(5, channels=16, layers=3, kernel=5)
    torch.nn.init.normal_(net.head[-1].weight)  # it starts at zero (uniform), which would hide every path
    e = torch.randn(1, 16, 4, 5, requires_grad=True)
    for i in range(4):
        for j in range(5):
            (grad,) = torch.autograd.grad(net.logits_of(e)[0, :, i, j].sum(), e)
            seen = grad[0].abs().sum(0).flatten() > 0  # (h * w,) positions this output reads
            # every position before (i, j) in raster order and none from it on: causal, and no blind spot
            assert torch.equal(seen, torch.arange(20) < i * 5 + j), f"position {(i, j)}"


def test_second_stage_lowers_the_prior_nll_and_generate_draws_from_it(x):
    model = vq().eval()
    uniform = 4 * math.log(8)
    history = fit_prior_on(model, x, epochs=4, batch_size=8, lr=1e-2)
    assert history[-1] < history[0] <= uniform + 1e-4 and model.fitted
    assert all(not p.requires_grad for p in model.pixelcnn.parameters())
    kl = elbo(model(x), x)["kl"]
    assert torch.allclose(kl, model.prior_nll(model.codes(x)))  # KL(q || p) = -log p(codes)
    assert kl.mean() < uniform
    assert model.generate(3).mean.shape == (3, 1, 8, 8)
    assert torch.equal(model.generate(2, temperature=0).mean, model.generate(2, temperature=0).mean)


def test_fit_prior_gives_the_run_the_digest_of_its_new_weights(x):
    run = vaekit.fit(vq(), x, epochs=1, batch_size=8, progress=False, pictures=False)
    before = run.digest
    vaekit.fit_prior(run, x, epochs=1, batch_size=8, progress=False)  # the weights changed in place
    assert run.digest != before and run.digest == vaekit.Run(None, run.config, run.model).digest


@pytest.mark.parametrize("family", ["vq", "gumbel"])
def test_a_run_folder_gives_identical_outputs(family, x, tmp_path):
    settings = SMALL if family == "vq" else {"categories": 3}
    run = vaekit.fit(
        vaekit.build_model(
            family=family, input_shape=[1, 8, 8], hidden=[16], latent_dim=4, likelihood="bernoulli", **settings
        ),
        x,
        epochs=2,
        batch_size=8,
        out=tmp_path / "run",
        progress=False,
        pictures=False,
        **({"prior_epochs": 2} if family == "vq" else {"gumbel_tau": 2.0}),
    )
    again = vaekit.load_run(tmp_path / "run")
    assert getattr(again.model, "fitted", True)  # the PixelCNN's weights and its fitted flag came back
    if family == "vq":  # a resume with nothing left to train leaves the weights and their fitted prior alone
        weights = (tmp_path / "run" / "model.safetensors").read_bytes()
        vaekit.fit(
            again.model,
            x,
            epochs=2,
            batch_size=8,
            out=tmp_path / "run",
            resume=True,
            prior_epochs=2,
            progress=False,
            pictures=False,
        )
        assert (tmp_path / "run" / "model.safetensors").read_bytes() == weights
    for a, b in ((run.encode(x).mean, again.encode(x).mean), (run.reconstruct(x), again.reconstruct(x))):
        assert torch.equal(a, b)
    samples = []
    for m in (run.model, again.model):
        torch.manual_seed(3)
        samples.append(m.generate(4).mean)
    assert torch.equal(*samples)
    assert anomaly_scores(again.model, x[:4], ["neg_elbo", "iwae_nll"], samples=2, iw_samples=3)["iwae_nll"].shape == (
        4,
    )
    with pytest.raises(vaekit.VaekitError, match="likelihood_regret re-fits a Gaussian"):
        anomaly_scores(again.model, x[:4], ["likelihood_regret"], steps=1)


def test_vq_trains_from_settings_and_samples_from_its_fitted_prior(tiny_images, tmp_path):
    settings = {
        "model.net": "conv",
        "model.channels": [4, 8],
        "train.epochs": 1,
        "train.batch_size": 16,
        "train.progress": False,
        "train.prior_epochs": 1,
        **{f"model.{k}": v for k, v in SMALL.items()},
    }
    run = vaekit.train(data=str(tiny_images), model="vq", out=str(tmp_path / "vq"), pictures=False, **settings)
    again = vaekit.load_run(run.path)
    assert again.model.fitted and again.model.grid == (3, 3)  # 9 x 11 halved twice
    assert again.sample(2).shape == (2, 1, 9, 11)


def test_gumbel_softmax_kl_temperature_and_log_prob():
    torch.manual_seed(0)
    q, p = GumbelSoftmax(torch.randn(2, 3, 4), tau=1.0), GumbelSoftmax(torch.zeros(3, 4), tau=1.0)
    z = q.sample((20000,))  # one-hots
    assert z.sum(-1).eq(3).all() and torch.isfinite(q.log_prob(z)).all()
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(torch.distributions.kl_divergence(q, p), mc, atol=0.03)  # analytic = Monte Carlo
    assert torch.allclose(torch.distributions.kl_divergence(p, p), torch.zeros(()))
    for tau, low, high in ((0.05, 0.9, 1.0), (5.0, 0.25, 0.6)):  # cold: near one-hot; hot: near the centre
        top = GumbelSoftmax(torch.zeros(1000, 1, 4), tau).rsample().max(-1).values.mean()
        assert low < top <= high
    assert tau_at(0, 2.0, 0.5, 10) == 2.0 and tau_at(10, 2.0, 0.5, 10) == 0.5 and tau_at(5, 2.0, 0.5, 10) == 1.0


def test_gumbel_relaxed_in_training_one_hot_in_eval_and_annealed_by_the_trainer(x):
    model = vaekit.build_model(
        family="gumbel", input_shape=[1, 8, 8], hidden=[16], latent_dim=4, categories=3, likelihood="bernoulli"
    )
    assert not torch.isin(model.train()(x).z[0], torch.tensor([0.0, 1.0])).all()  # relaxed
    assert torch.isin(model.eval()(x).z[0], torch.tensor([0.0, 1.0])).all()  # exact one-hots
    vaekit.fit(model, x, epochs=2, batch_size=8, progress=False, pictures=False, gumbel_tau=2.0, gumbel_tau_end=0.5)
    assert model.tau == pytest.approx(tau_at(1 + 2 / 3, 2.0, 0.5, 2))  # its last batch: 3rd of 3 in epoch 2
    with pytest.raises(vaekit.VaekitError, match="a categorical prior has no scale to temper"):
        model.generate(2, temperature=0.5)  # refused, not ignored


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"model.family": "vae", "model.codebook_size": 16}, "model.codebook_size and model.family"),
        ({"model.family": "vq", "model.categories": 4}, "model.categories and model.family"),
        ({"model.family": "gumbel", "train.prior_epochs": 2}, "model.family and train.prior_epochs"),
        ({"model.family": "vae", "train.gumbel_tau": 2.0}, "model.family and train.gumbel_tau"),
        ({"model.family": "vq", "train.tc_beta": 2.0}, "model.family and train.tc_beta"),
        ({"model.family": "vq", "train.free_bits": 0.5}, "model.family and train.free_bits"),
        ({"model.family": "gumbel", "train.objective": "iwae"}, "train.objective and model.family"),
        ({"model.family": "vq", "model.latent_dims": [4, 2]}, "model.latent_dims and model.family"),
        ({"model.family": "vq", "model.net": "conv", "model.latent_dim": 4}, "model.latent_dim and model.net"),
    ],
)
def test_settings_that_cannot_take_effect_are_refused(settings, match):
    cfg = RunConfig()
    for key, value in settings.items():
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)
    with pytest.raises(vaekit.VaekitError, match=match):
        refuse_conflicts(cfg)
