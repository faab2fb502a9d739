"""One contract over every registered model, and a linear-Gaussian VAE that must reach the PPCA likelihood."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.distributions import Bernoulli, Independent

import vaekit
from vaekit.config import ModelConfig, RunConfig
from vaekit.core import elbo
from vaekit.core.cbernoulli import LogitContinuousBernoulli
from vaekit.core.likelihoods import MIN_SCALE, Likelihood
from vaekit.data import Dataset, Split
from vaekit.models import MODELS, VAE, build_model, mlp_nets
from vaekit.models.priors import PriorSettings, build_prior
from vaekit.training import fit_config
from vaekit.training.checkpoint import load_weights, save_weights

SHAPES = {"mlp": (1, 9, 11), "conv": (3, 9, 11)}
CASES = [
    (family, net, lik)
    for family in sorted(MODELS)
    for net in ("mlp", "conv")
    for lik in ("bernoulli", "cbernoulli", "gaussian")
]


def make(family, net, likelihood, scale="learned"):
    cfg = ModelConfig(
        family=family,
        net=net,
        likelihood=likelihood,
        scale=scale,
        latent_dim=3,
        hidden=[16],
        channels=[4, 8],
        input_shape=list(SHAPES[net]),
        num_classes=4,
        latent_dims=[3, 2],
    )
    return build_model(cfg)


@pytest.mark.parametrize("family,net,likelihood", CASES)
def test_model_contract(family, net, likelihood, tmp_path):
    model = make(family, net, likelihood)
    x = torch.rand(5, *SHAPES[net])
    y = torch.tensor([0, 1, 2, 3, 1]) if model.needs_labels else None  # labels only for conditional models
    out = model(x, y)
    assert out.px.log_prob(x).shape == (5,)
    assert all(q.batch_shape == (5,) and z.shape == (5, *q.event_shape) for q, z in zip(out.qz, out.z))
    terms = elbo(out, x)
    assert terms["loss"].isfinite() and (terms["kl"] >= 0).all()
    terms["loss"].backward()
    assert all(
        p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad
    )  # frozen ones (the VQ-VAE's PixelCNN prior, fitted in a second stage) aside
    assert model.generate(4, y=None if y is None else y[:4]).sample().shape == (4, *SHAPES[net])
    assert model.encode(x, y).mean.shape == (5, sum(model.latent_dims))
    save_weights(model, tmp_path / "w.safetensors")
    twin = make(family, net, likelihood)
    load_weights(twin, tmp_path / "w.safetensors")
    model.eval(), twin.eval()
    z = torch.randn(5, sum(model.latent_dims))
    assert torch.equal(model.encode(x, y).mean, twin.encode(x, y).mean)
    assert torch.equal(model.decode(z, y).mean, twin.decode(z, y).mean)


def tiny_vae(**settings) -> VAE:
    return VAE(*mlp_nets((4,), 2, [8]), 2, "gaussian", **settings)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: build_model(foo=1), r"unknown model setting 'foo'"),
        (lambda: build_model(lattent_dim=2), r"'lattent_dim' \(did you mean latent_dim\?\)"),
        (lambda: build_model(model="ladder", family="vae"), r"^model and family both set model.family: give it once"),
        (
            lambda: build_model(input_shape=10, likelihood="gaussian"),
            r"model.input_shape must be a list of int, got 10",
        ),
        (lambda: build_model(input_shape=[4], latent_dim="4", likelihood="gaussian"), r"model.latent_dim must be int"),
        (lambda: build_model(input_shape=[4], latent_dim=-1, likelihood="gaussian"), r"model.latent_dim must be > 0"),
        (
            lambda: build_model(
                family="ladder", input_shape=[4], latent_dims=[4, 2], latent_dim=5, likelihood="gaussian"
            ),
            r"model.latent_dim and model.latent_dims cannot both take effect",
        ),
        (lambda: tiny_vae(prior="vamp", pseudo_init="bogus"), r"pseudo_init must be one of data, noise, got 'bogus'"),
        (lambda: tiny_vae(prior="mixture", prior_components=-1), r"prior_components must be an integer >= 0, got -1"),
        (lambda: build_prior("mixture", 2, (4,), PriorSettings(components=-1)), r"prior_components must be a positive"),
        (lambda: build_prior("vamp", 2, (4,), PriorSettings(pseudo_init="bogus")), r"pseudo_init must be one of"),
        (lambda: vaekit.MLflow(every=0), r"every must be a positive integer"),
        (
            lambda: vaekit.fit_sampler(None, "gmm", bogus=1),
            r"gmm has no setting 'bogus' \(its settings: components, seed\)",
        ),
    ],
    ids=[
        "build_model-unknown",
        "build_model-typo",
        "build_model-model-twice",
        "build_model-input_shape",
        "build_model-latent_dim-str",
        "build_model-latent_dim-range",
        "build_model-conflict",
        "vae-pseudo_init",
        "vae-prior_components",
        "mixture-components",
        "vamp-pseudo_init",
        "mlflow-every",
        "fit_sampler-unknown",
    ],
)
def test_the_python_api_refuses_a_bad_setting_in_one_line_naming_it(call, match):
    with pytest.raises(vaekit.VaekitError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_build_models_docstring_example_builds_and_settings_keep_their_types():
    example = re.search(r"``(build_model\(.*?\))``", build_model.__doc__).group(1)
    model = eval(example, {"build_model": build_model})
    assert model.input_shape == (1, 28, 28) and model.latent_dims == [16]
    again = build_model(ModelConfig(hidden=[8]), input_shape=torch.zeros(2, 5).shape[1:], likelihood="gaussian")
    assert again.input_shape == (5,) and again.encoder(torch.zeros(2, 5)).shape == (2, 8)
    ladder = build_model(model="ladder", input_shape=[4], likelihood="gaussian")  # as vaekit.train takes it
    assert (
        type(ladder).__name__ == "LadderVAE"
        and "Conv" in type(build_model(model="conv", input_shape=[1, 8, 8], likelihood="bernoulli").encoder).__name__
    )


@pytest.mark.parametrize("scale,n_params", [("learned", 99), ("shared", 1), ("0.2", 0)])
def test_gaussian_scale_settings(scale, n_params):
    lik = make("vae", "mlp", "gaussian", scale).likelihood
    assert sum(p.numel() for p in lik.parameters()) == n_params
    px = lik(torch.zeros(2, 1, *SHAPES["mlp"]))
    assert torch.allclose(px.stddev, torch.full_like(px.stddev, 0.2 if n_params == 0 else 1.0), atol=1e-3)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_gaussian_decoded_scale_comes_from_the_decoder(net):
    """model.scale=decoded: the decoder emits loc and a raw scale per dimension; no scale parameter of its own."""
    model = make("vae", net, "gaussian", "decoded")
    assert model.likelihood.n_params == 2 and not list(model.likelihood.parameters())
    params = torch.zeros(2, 2, *SHAPES[net])
    params[1, 1] = 3.0
    std = model.likelihood(params).stddev
    assert torch.allclose(std[0], torch.ones_like(std[0]), atol=1e-3)
    assert torch.allclose(std[1], torch.nn.functional.softplus(torch.tensor(3.0 + math.log(math.e - 1))) + MIN_SCALE)
    px = model.decode(torch.randn(4, 3))
    assert px.event_shape == SHAPES[net] and px.stddev.std(0).max() > 0  # the scale moves with z


def test_bernoulli_likelihood_matches_torch_in_value_and_gradient():
    """x * l - softplus(l) is torch's Bernoulli log-probability, for binary and grey targets and extreme logits."""
    logits = torch.cat(
        [torch.randn(4, 1, 28, 28) * 5, torch.full((1, 1, 28, 28), 60.0), torch.full((1, 1, 28, 28), -60.0)]
    ).requires_grad_(True)
    x = torch.cat([(torch.rand(3, 1, 28, 28) < 0.5).float(), torch.rand(3, 1, 28, 28)])
    ours = Likelihood("bernoulli", (1, 28, 28))(logits.unsqueeze(1)).log_prob(x)
    ref = Independent(Bernoulli(logits=logits, validate_args=False), 3).log_prob(x)
    assert ours.shape == (6,) and torch.allclose(ours, ref, rtol=1e-5, atol=1e-3)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


@pytest.mark.parametrize("logit", [-30.0, -20.0, -5.0, -1e-3, 0.0, 0.5, 15.0, 20.0, 30.0])
def test_the_continuous_bernoulli_integrates_to_one_with_the_mean_it_states(logit):
    """In float32, at the logits a trained decoder reaches (torch's own is frozen past |l| ~ 15.9)."""
    x = torch.linspace(0, 1, 100001)
    px = Likelihood("cbernoulli", (1,))(torch.full((100001, 1, 1), logit))  # one value per item, (B, 1, 1)
    density = px.log_prob(x[:, None]).exp()
    assert abs(torch.trapezoid(density, x).item() - 1) < 1e-4
    assert abs(torch.trapezoid(density * x, x).item() - px.mean[0, 0].item()) < 1e-4


@pytest.mark.parametrize("logit", [-30.0, -20.0, -5.0, -0.3, 0.0, 1e-7, 0.5, 15.0, 20.0, 30.0])
def test_the_continuous_bernoulli_draws_and_spreads_as_its_density_says(logit):
    """Variance, entropy, cdf, quantiles and draws against the float32 density on a fine grid; torch's come from
    probs frozen past |l| ~ 15.9 (at l = 30: variance 0.0039 for 0.0011, draws averaging 0.937 for 0.967)."""
    x = torch.linspace(0, 1, 100001, dtype=torch.float64)
    px = Likelihood("cbernoulli", (1,))(torch.full((100001, 1, 1), logit)).base_dist  # float32, as trained
    density = px.log_prob(x[:, None].float()).double().exp().flatten()
    mean = torch.trapezoid(density * x, x)
    assert abs(torch.trapezoid(density * (x - mean) ** 2, x) - px.variance[0, 0]) < 1e-4 * px.variance[0, 0]
    assert abs(-torch.trapezoid(density * density.log(), x) - px.entropy()[0, 0]) < 1e-4
    cdf = torch.cat([x.new_zeros(1), torch.cumulative_trapezoid(density, x)])
    assert (px.cdf(x[:, None].float()).double().flatten() - cdf).abs().max() < 1e-4
    u = (torch.arange(100001.0) + 0.5)[:, None] / 100001  # the quantiles' average is the mean
    assert abs(px.icdf(u).double().mean() - mean) < 1e-4 and (px.cdf(px.icdf(u)) - u).abs().max() < 1e-6
    draws = px.rsample()  # 100001 draws: the mean within 5e-3 (4 standard errors at l = 0)
    assert draws.min() >= 0 and draws.max() <= 1 and abs(draws.double().mean() - mean) < 5e-3


@pytest.mark.parametrize("logit", [-100.0, -89.0, -50.0, -1e-7, 0.0, 3e-7, 0.5, 100.0])
def test_the_continuous_bernoulli_cdf_and_draws_have_their_gradient_in_the_logits(logit):
    """The cdf's gradient was NaN below l ~ -88 (e^(l (x - 1)) overflowing in the branch not taken), and the draws'
    0 for |l| < 1e-6, where it is u (1 - u) / 2: each against a central difference of the float64 formula."""
    x = torch.tensor([0.1, 0.3, 0.7, 0.9])
    lg = torch.full((4,), logit, requires_grad=True)
    torch.manual_seed(0)
    u = torch.rand(4)  # the draws' quantiles
    torch.manual_seed(0)
    draws = LogitContinuousBernoulli(logits=lg).rsample()
    for value, at, exact in (
        (LogitContinuousBernoulli(logits=lg).cdf(x), x, lambda k, v: torch.expm1(k * v) / torch.expm1(k)),
        (draws, u, lambda k, v: torch.log1p(v * torch.expm1(k)) / k),
    ):
        (grad,) = torch.autograd.grad(value.sum(), lg)
        k, h = torch.tensor(logit, dtype=torch.float64), 1e-4 * max(1.0, abs(logit))
        numeric = (exact(k + h, at.double()) - exact(k - h, at.double())) / (2 * h)
        assert torch.isfinite(grad).all(), grad
        assert torch.allclose(grad.double(), numeric, rtol=1e-3, atol=1e-7), (grad, numeric)  # float32: 1e-7 off


@pytest.mark.parametrize("scale", ["1e-20", "1e-300", "inf"])
def test_a_fixed_gaussian_scale_float32_cannot_square_is_refused_in_one_line(scale):
    """1e-20 gave log-densities of -inf (NaN at 1e-30) and a first step stopped for 'a Beta's support'."""
    with pytest.raises(vaekit.VaekitError, match=r"^config: model.scale .*: a fixed Gaussian scale must be finite"):
        Likelihood("gaussian", (3,), scale=scale)
    lp = Likelihood("gaussian", (3,), scale="1e-15")(torch.zeros(1, 3)).log_prob(torch.tensor([[0.0, 1e-15, 1.0]]))
    assert torch.isfinite(lp).all() and abs(lp.item() / -5e29 - 1) < 1e-5


def ppca_data(n=2000, d=6, k=2, sigma=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    w, mu = torch.randn(d, k, generator=g), torch.randn(d, generator=g)
    return torch.randn(n, k, generator=g) @ w.T + mu + sigma * torch.randn(n, d, generator=g)


def ppca_log_likelihood(x: torch.Tensor, k: int) -> float:
    """Closed-form maximum-likelihood PPCA (Tipping & Bishop 1999), mean log p(x) per example."""
    d = x.shape[1]
    s = torch.cov(x.T, correction=0).double()
    evals, evecs = torch.linalg.eigh(s)  # ascending
    sigma2 = evals[: d - k].mean()
    w = evecs[:, d - k :] * (evals[d - k :] - sigma2).sqrt()
    c = w @ w.T + sigma2 * torch.eye(d, dtype=torch.float64)
    return float(-0.5 * (d * math.log(2 * math.pi) + torch.logdet(c) + torch.trace(torch.linalg.solve(c, s))))


def test_linear_gaussian_vae_reaches_the_ppca_log_likelihood():
    x = ppca_data()
    data = Dataset("ppca", Split(x, None), Split(x[:200], None), Split(x[:200], None), (6,), "table", None)
    cfg = RunConfig(out="")  # no run folder: 150 epochs of files to write (half the time) check nothing here
    cfg.model.likelihood, cfg.model.scale, cfg.model.hidden, cfg.model.latent_dim = "gaussian", "shared", [], 2
    cfg.data.standardize = "false"  # PPCA's noise is isotropic in the data's own units
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.lr_schedule = 150, 100, 1e-2, "cosine"
    cfg.train.progress = False
    model = fit_config(cfg, data=data).model
    with torch.no_grad():
        vae_elbo = torch.stack([-elbo(model(x), x)["loss"] for _ in range(100)]).mean().item()
    exact = ppca_log_likelihood(x, 2)
    print(f"PPCA exact {exact:.4f}, VAE ELBO {vae_elbo:.4f}, gap {exact - vae_elbo:.4f} nats")
    assert exact - 0.05 < vae_elbo < exact + 0.01, (vae_elbo, exact)
