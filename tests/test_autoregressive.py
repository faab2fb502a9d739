"""The local autoregressive p(x|z) (core.autoregressive) and the deep model that uses it (model.deep_ar_channels)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.core import autoregressive
from vaekit.core.autoregressive import LocalARBernoulli, LocalAutoregressive
from vaekit.core.likelihoods import name_of

from .conftest import train_argv


@pytest.fixture
def px() -> LocalARBernoulli:
    """p(x|z) over (1, 2, 3) images from a random head (3 x 3 window) and random features for 2 items."""
    torch.manual_seed(0)
    head = LocalAutoregressive(1, 4, 3)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 1.5)
    return LocalARBernoulli(torch.randn(2, 4, 2, 3), head)


def every_image(shape: tuple[int, ...]) -> torch.Tensor:
    """All 2^n binary images of ``shape``, (2^n, *shape)."""
    n = int(np.prod(shape))
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n))).view(-1, *shape)


def test_the_head_is_a_normalised_causal_distribution_whose_draws_and_mean_agree_with_it(px, monkeypatch):
    xs = every_image(px.event_shape)  # (64, 1, 2, 3)
    with torch.no_grad():
        logp = torch.stack(
            [LocalARBernoulli(px.context[i : i + 1].expand(64, -1, -1, -1), px.head).log_prob(xs) for i in range(2)]
        )
    assert torch.allclose(logp.logsumexp(1), torch.zeros(2), atol=1e-5)  # sums to 1 over the 64 images
    x = xs[37:38]
    changed = x.clone()
    changed[..., 1, 1:] = 1 - changed[..., 1, 1:]  # pixel (1, 1) and what follows it in raster order
    a, b = (px.head.logits(v, px.context[:1]) for v in (x, changed))
    assert torch.equal(a.flatten()[:5], b.flatten()[:5]) and not torch.equal(a, b)  # (1, 1) is the 5th pixel
    drawn, probs = px.head.draw(px.context)  # each pixel's probability given those drawn before it
    assert torch.allclose(probs, torch.sigmoid(px.head.logits(drawn, px.context)), atol=1e-6)
    assert px.sample((3,)).shape == (3, 2, 1, 2, 3) and set(px.sample().unique().tolist()) <= {0.0, 1.0}
    exact = (logp.exp().T[..., None, None, None] * xs[:, None]).sum(0)  # E[x|z], (2, 1, 2, 3)
    monkeypatch.setattr(autoregressive, "MEAN_CHAINS", 4096)
    assert torch.allclose(px.mean, exact, atol=0.04) and torch.equal(px.mean, px.mean)  # fixed seed
    assert name_of(px) == "bernoulli"


def test_refused_settings_name_the_setting():
    build = lambda **kw: vaekit.DeepVAE((1, 8, 8), groups=[1, 1], width=8, cell_width=4, **kw)  # noqa: E731
    for kw, match in (
        ({"likelihood": "gaussian", "ar_channels": 4}, "deep_ar_channels > 0 .* needs the bernoulli likelihood"),
        ({"ar_channels": 4, "ar_kernel": 4}, "deep_ar_kernel must be odd and >= 3, got 4"),
        ({"ar_channels": -1}, "deep_ar_channels must be an integer >= 0"),
    ):
        with pytest.raises(vaekit.VaekitError, match=match):
            build(**kw)


def test_a_deep_run_with_the_head_trains_and_its_verbs_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = (rng.random((48, 8, 8)) > 0.7).astype(np.float32)
    x[:, 2:6, 3:5] = 1
    np.save(tmp_path / "bars.npy", x)
    flags = ["--model", "deep", "--likelihood", "bernoulli", "--set", "model.deep_groups=1,1,0"]
    flags += ["--set", "model.deep_width=8", "--set", "model.deep_cell_width=4", "--set", "model.deep_ar_channels=4"]
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "bars.npy", run, *flags, "--set", "model.deep_ar_kernel=5")) == 0
    model = vaekit.load_run(run).model
    assert model.ar is not None and model.ar.kernel == 5
    assert isinstance(model.decode(torch.zeros(1, sum(model.latent_dims))), LocalARBernoulli)
    for verb in (
        ["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")],
        ["reconstruct", str(run), "--data", str(tmp_path / "bars.npy"), "--n", "4", "--out", str(tmp_path / "r.png")],
        ["evaluate", str(run), "--iw-samples", "8"],
        ["anomaly", str(run), "--data", str(tmp_path / "bars.npy"), "--out", str(tmp_path / "a.csv")]
        + ["--score", "llr,recon_error,iwae_nll"],
    ):
        assert main(verb) == 0, verb
    capsys.readouterr()
    assert main(["export", str(run), "--part", "both"]) == 2 and "with --part encoder" in capsys.readouterr().err
    assert main(["export", str(run)]) == 0 and "decoder.onnx not written" in capsys.readouterr().out  # the encoder's
    assert not (run / "decoder.onnx").exists() and (run / "encoder.onnx").exists()
    r = json.loads((run / "eval.json").read_text())
    assert np.isfinite(r["nll"]) and r["nll"] <= -r["elbo"] + 1e-3  # the IWAE bound is the tighter
