"""One contract over every registered family and over users' own models: everything works from it alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vaekit
from vaekit.core import diag_normal, elbo, gaussian, iwae_bound
from vaekit.core.contract import check_output, flat
from vaekit.evaluation.scores import anomaly_scores, normal_q, settings_for
from vaekit.export.onnx import export_onnx
from vaekit.models import MODELS

from .conftest import OwnModel


@vaekit.register_module  # a run folder may name it (model.json), so it loads without a skeleton
class TinyGaussianVAE(OwnModel):
    """A user's own model meeting the contract without any vaekit base class: linear nets, Gaussian p(x|z).

    Its init arguments are kept as attributes of the same names, so a run rebuilds it from model.json.
    """

    needs_labels = False

    def __init__(self, features: int, latent: int = 2):
        super().__init__()
        self.features, self.latent = features, latent
        self.enc, self.dec = nn.Linear(features, 2 * latent), nn.Linear(latent, features)
        self.latent_dims = [latent]
        self.register_buffer("zeros", torch.zeros(latent), persistent=False)  # moves with the model

    def encode(self, x, y=None):
        return diag_normal(self.enc(x))

    def decode(self, z, y=None):
        loc = self.dec(z)
        return gaussian(loc, torch.ones_like(loc))

    def prior(self, y=None):
        return gaussian(self.zeros, torch.ones_like(self.zeros))


def signal_nets() -> tuple[nn.Module, nn.Module]:
    """A user's own encoder and decoder for 1-D signals (1, 16)."""
    return (
        nn.Sequential(nn.Conv1d(1, 4, 3, 2, 1), nn.ReLU(), nn.Flatten()),
        nn.Sequential(nn.Linear(3, 32), nn.Unflatten(1, (4, 8)), nn.ConvTranspose1d(4, 1, 4, 2, 1)),
    )


def make(case: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None]:
    """(model, x (40, *shape), labels or None) for a registered family or a user's model."""
    g = torch.Generator().manual_seed(0)
    if case == "user-nets":
        return (
            vaekit.VAE(*signal_nets(), latent_dim=3, likelihood="gaussian"),
            torch.randn(40, 1, 16, generator=g),
            None,
        )
    if case == "user-model":
        return TinyGaussianVAE(5), torch.randn(40, 5, generator=g), None
    sizes = {"ladder": {"latent_dims": [3, 2], "hidden": [16]}, "deep": {}}.get(case, {"latent_dim": 3, "hidden": [16]})
    sizes |= {"num_classes": 3} if case == "cvae" else {}  # only the conditional VAE reads labels (others refuse it)
    model = vaekit.build_model(family=case, input_shape=[1, 6, 6], likelihood="bernoulli", **sizes)
    x = (torch.rand(40, 1, 6, 6, generator=g) > 0.5).float()
    return model, x, torch.arange(40) % 3 if model.needs_labels else None


CASES = [*sorted(MODELS), "user-nets", "user-model"]


@pytest.mark.parametrize("case", CASES)
def test_every_model_works_everywhere_through_the_contract(case, tmp_path):
    torch.manual_seed(0)
    model, x, y = make(case)
    xb, yb = x[:8], None if y is None else y[:8]
    terms = elbo(check_output(model, model(xb, yb), xb), xb)
    assert terms["loss"].isfinite() and terms["rec"].shape == (8,)
    terms["loss"].backward()
    assert all(
        p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad
    )  # frozen ones (the VQ-VAE's PixelCNN prior, fitted in a second stage) aside
    with torch.no_grad():  # IWAE >= ELBO, up to the noise of the two estimates
        model.eval()
        lower = torch.stack([elbo(model(x, y), x)["rec"] - elbo(model(x, y), x)["kl"] for _ in range(20)]).mean()
        assert iwae_bound(model, x, k=64, y=y).mean() >= lower - 0.05 * lower.abs() - 0.1
    run = vaekit.fit(
        model, x if y is None else (x, y), epochs=1, batch_size=16, out=tmp_path / "run", progress=False, pictures=False
    )
    assert len(run.history) == 1 and run.path == tmp_path / "run"
    again = vaekit.load_run(tmp_path / "run")  # every case here records its class and init arguments
    z = torch.randn(5, sum(model.latent_dims))
    assert torch.equal(
        run.encode(x[:5], None if y is None else y[:5]).mean, again.encode(x[:5], None if y is None else y[:5]).mean
    )
    assert torch.equal(
        run.model.decode(z, yb[:5] if yb is not None else None).mean,
        again.model.decode(z, yb[:5] if yb is not None else None).mean,
    )
    assert set(export_onnx(again, tmp_path / "onnx")) == {"encoder", "decoder"}  # checked in onnxruntime
    gaussian_q = normal_q(again.model.encode(x[:1], None if y is None else y[:1]))  # the regret re-fits one
    names = ["neg_elbo", "iwae_nll", "recon_error"] + (["likelihood_regret"] if gaussian_q and flat(model) else [])
    shaping = settings_for(names, samples=2, iw_samples=4, steps=2)
    scores = anomaly_scores(again.model, x[:6], names, **shaping, y=None if y is None else y[:6])
    assert all(s.shape == (6,) and torch.isfinite(torch.as_tensor(s)).all() for s in scores.values())


def test_a_model_without_the_contract_s_members_is_named_in_one_line():
    class NoPrior(nn.Module):
        latent_dims, needs_labels = [2], False

    with pytest.raises(vaekit.VaekitError, match=r"NoPrior .* lacks encode, decode, prior"):
        vaekit.fit(NoPrior(), torch.rand(20, 3), epochs=1)


Normal, Independent = torch.distributions.Normal, torch.distributions.Independent
BREAKS = {  # a user's model that gets one part of the contract wrong -> the one line that names it
    "px item dims in the batch": (
        "decode",
        lambda m: lambda z, y=None: Normal(m.dec(z), 1.0),
        r"log_prob\(x\) has shape \(\d+, 5\), the contract wants \(\d+,\): declare the item dims",
    ),
    "px event shape": (
        "decode",
        lambda m: lambda z, y=None: Independent(Normal(m.dec(z).unsqueeze(-1), 1.0), 2),
        r"TinyGaussianVAE.decode's p\(x\|z\) has event shape \(5, 1\) while the items are \(5,\)",
    ),
    "prior event shape": (
        "prior",
        lambda m: lambda y=None: gaussian(torch.zeros(3), torch.ones(3)),
        r"prior\(\) has event shape \(3,\), q\(z\|x\) has \(2,\): the contract wants both \(D,\) with batch",
    ),
    "prior without Independent": (
        "prior",
        lambda m: lambda y=None: Normal(torch.zeros(2), 1.0),
        r"prior\(\) has batch shape \(2,\) and event shape \(\): .*Independent",
    ),
    "q without Independent": (
        "encode",
        lambda m: lambda x, y=None: diag_normal(m.enc(x)).base_dist,
        r"q\(z\|x\) has batch shape \(\d+, 2\) and event shape \(\): .*Independent",
    ),
    "latent_dims": ("latent_dims", lambda m: [3], r"latent_dims says \[3\], and q\(z\|x\) has event shape \(2,\)"),
    "generate gives a Tensor": (
        "generate",
        lambda m: lambda n, temperature=1.0, y=None: m.prior().sample((n,)),
        r"generate\(2\) returns a Tensor: the contract wants p\(x\|z\)",
    ),
}


@pytest.mark.parametrize("part, broken, line", BREAKS.values(), ids=list(BREAKS))
def test_a_model_that_breaks_the_contract_is_named_in_one_line_before_training(part, broken, line):
    model, x = TinyGaussianVAE(5), torch.randn(20, 5)
    setattr(model, part, broken(model))
    with pytest.raises(vaekit.VaekitError, match=line):
        check_output(model, model(x[:4]), x[:4])  # the dry run fit makes: once, not per step
    with pytest.raises(vaekit.VaekitError, match=line):
        vaekit.fit(model, x, epochs=1, progress=False, pictures=False)


def test_a_vq_vae_given_no_input_shape_is_built_from_the_items_fit_gets(tmp_path):
    x = (torch.rand(40, 1, 8, 8) > 0.5).float()
    enc, dec = nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)  # 4x4 grid
    model = MODELS["vq"](enc, dec, codebook_size=8, prior_channels=8, prior_layers=2)  # no input_shape: built lazily
    run = vaekit.fit(model, x, epochs=1, out=tmp_path / "run", progress=False, pictures=False)
    assert run.model.latent_dims == [4 * 4 * 4] and run.config.model.input_shape == [1, 8, 8]
    assert vaekit.load_run(tmp_path / "run").reconstruct(x[:2]).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("whole", [False, True], ids=["encoder", "model"])
def test_a_torch_compiled_module_is_refused_before_training_naming_it(whole):
    enc, dec = nn.Sequential(nn.Linear(5, 8), nn.Tanh()), nn.Linear(2, 5)
    model = vaekit.VAE(enc, dec, latent_dim=2) if whole else vaekit.VAE(torch.compile(enc), dec, latent_dim=2)
    model = torch.compile(model) if whole else model
    named = "model" if whole else "encoder"
    with pytest.raises(vaekit.VaekitError, match=rf"^the {named} is torch.compile'd: .*pass it uncompiled"):
        vaekit.fit(model, torch.randn(20, 5), epochs=1, progress=False, pictures=False)


def test_reading_a_run_leaves_a_model_in_training_mode_as_trained():
    """encode, reconstruct, sample and evaluate read the model in eval mode (dropout off, BatchNorm's running
    statistics read and not moved) and hand it back in the mode it was in."""
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Tanh())
    x = torch.randn(40, 5)
    model = vaekit.VAE(enc, nn.Linear(2, 5), latent_dim=2, likelihood="gaussian")
    run = vaekit.fit(model, x, epochs=1, standardize="false", progress=False, pictures=False)
    run.model.train()  # a user fine-tuning it
    stats = enc[1].running_mean.clone()
    assert torch.equal(run.encode(x[:6]).mean, run.encode(x[:6]).mean)  # no dropout
    assert torch.equal(run.reconstruct(x[:6]), run.reconstruct(x[:6]))
    run.sample(3)
    vaekit.evaluate(run, x, k=2)
    assert torch.equal(enc[1].running_mean, stats) and run.model.training
