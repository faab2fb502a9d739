"""Own models and the verbs, round 6: codes of a q(z|x) without a mean or stddev; a model of channels-last items
(H, W, C) read from a file as it holds them; ``iwae_bound`` refusing +inf; the default traversal dims' line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Beta, Distribution, Independent, Normal, constraints

import vaekit
from vaekit.cli import main
from vaekit.core.contract import mean_of
from vaekit.data.signals import as_model_items, channels_last_of
from vaekit.evaluation.codes import write_codes
from vaekit.viz import latent_walks as walks

from .conftest import OwnModel


class Logistic(Distribution):
    """A distribution of the user's own: draws and densities, no mean or stddev (torch's NotImplementedError)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support, has_rsample = constraints.real, True

    def __init__(self, loc, scale, draws: bool = True):
        self.loc, self.scale, self.draws = loc, scale, draws
        super().__init__(loc.shape, validate_args=False)

    def rsample(self, sample_shape=torch.Size()):
        if not self.draws:
            raise NotImplementedError
        u = torch.rand(self._extended_shape(sample_shape)).clamp(1e-6, 1 - 1e-6)
        return self.loc + self.scale * (u.log() - (-u).log1p())

    def log_prob(self, v):
        t = (v - self.loc) / self.scale
        return -t - 2 * nn.functional.softplus(-t) - self.scale.log()


class Own(OwnModel):
    """A contract model of items ``shape`` (any layout): q(z|x) Normal or ``Logistic``, p(x|z) Beta."""

    needs_labels = False

    def __init__(self, shape=(1, 4, 4), q: str = "normal"):
        super().__init__()
        self.shape, self.q, self.latent_dims, n = tuple(shape), q, [2], math.prod(shape)
        self.enc, self.dec = nn.Sequential(nn.Flatten(), nn.Linear(n, 4)), nn.Linear(2, 2 * n)

    def init_args(self) -> dict:
        return {"shape": self.shape, "q": self.q}

    def encode(self, x, y=None):
        loc, s = self.enc(x).chunk(2, -1)  # (B, 2) each
        scale = nn.functional.softplus(s) + 1e-3
        base = Normal(loc, scale) if self.q == "normal" else Logistic(loc, scale, self.q == "logistic")
        return Independent(base, 1)

    def decode(self, z, y=None):
        a, b = (nn.functional.softplus(t).view(-1, *self.shape) + 0.1 for t in self.dec(z).chunk(2, -1))
        return Independent(Beta(a, b), len(self.shape))

    def prior(self, y=None):
        return Independent(Normal(torch.zeros(2), torch.ones(2)), 1)


def items(*shape: int) -> torch.Tensor:
    return torch.rand(40, *shape, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05  # inside (0, 1)


def fit(model, x, out):
    return vaekit.fit(model, x, epochs=1, progress=False, pictures=False, out=out, overwrite=True)


def test_codes_of_a_q_without_mean_or_stddev_are_drawn_and_one_without_draws_is_refused(tmp_path):
    x = items(1, 4, 4)
    run = fit(Own(q="logistic"), x, tmp_path / "run")
    state = torch.get_rng_state()
    assert write_codes(run, x, tmp_path / "c.npz") == 2  # no NotImplementedError
    assert torch.equal(torch.get_rng_state(), state)  # seeded draws, the caller's RNG as it was
    codes, q = np.load(tmp_path / "c.npz"), run.encode(x)
    np.testing.assert_allclose(codes["loc"], mean_of(q).numpy(), rtol=1e-5, atol=1e-6)
    want = (q.base_dist.scale * math.pi / math.sqrt(3)).numpy()  # the logistic's standard deviation
    assert np.abs(codes["scale"] / want - 1).mean() < 0.1
    run.model.q = "bare"  # no mean, no stddev, no draws
    with pytest.raises(vaekit.VaekitError, match=r"an Independent\(Logistic\) with no mean or stddev and no sample"):
        write_codes(run, x, tmp_path / "d.csv")


def test_a_model_of_channels_last_items_reads_a_file_as_it_holds_them(tmp_path, capsys):
    xc = items(8, 8, 3)
    path = tmp_path / "xc.npy"
    np.save(path, xc.numpy())
    run = fit(Own(shape=(8, 8, 3)), xc, tmp_path / "run")
    data = vaekit.load_dataset(str(path))  # read as images (3, 8, 8), the run unknown
    kept = as_model_items(data, (8, 8, 3))
    assert kept.shape == (8, 8, 3) and torch.equal(kept.test.x, xc[data.test.rows])
    assert vaekit.evaluate(run, data, iw_samples=2)["n"] == len(data.test.x)
    for streamed in ("true", "false"):  # whole, and read as it goes
        out = tmp_path / f"c{streamed}.npy"
        assert main(["encode", str(run.path), "--data", str(path), "--out", str(out), "--trust-code"]) == 0
        np.testing.assert_allclose(np.load(out)[:, :2], run.encode(xc).mean.numpy(), rtol=1e-5, atol=1e-6)
        assert main(["evaluate", str(run.path), "--data", str(path), "--iw-samples", "2", "--trust-code"]) == 0
        cfg = run.path / "config.json"
        cfg.write_text(cfg.read_text().replace('"in_memory": "auto"', '"in_memory": "false"'))
    assert "expects" not in capsys.readouterr().err


def test_only_a_channels_last_model_takes_moved_images_back():
    assert channels_last_of((3, 8, 8), (8, 8, 3)) and channels_last_of((1, 9, 5), (9, 5, 1))
    assert not channels_last_of((3, 8, 8), (3, 8, 8))  # a built-in model's (C, H, W): as today
    assert not channels_last_of((8, 8, 3), (3, 8, 8)) and not channels_last_of((3, 2, 8), (2, 8, 3))


def test_iwae_bound_refuses_an_item_where_the_beta_density_is_unbounded(tmp_path):
    x = items(1, 4, 4)
    model = fit(Own(), x, tmp_path / "run").model
    assert torch.isfinite(vaekit.iwae_bound(model, x[:3], k=4)).all()
    x[1, 0, 0, 0] = 0.0  # every decoded Beta has a < 1 at the start: log p(x|z) = +inf
    model.dec.bias.data[:16] = -5.0
    with pytest.raises(vaekit.VaekitError, match=r"item 1 has log p\(x\|z\) = \+inf, at an end of the likelihood"):
        vaekit.iwae_bound(model, x[:3], k=4)


def test_the_default_traversal_dims_are_said_as_the_code_has_them():
    rule = "(posterior-mean variance over 50 items > 0.01)"
    said = walks.fewer_active(torch.zeros(4), 8, [0, 1, 2, 3], 50, asked=False)
    assert said == f"4 dims by default, none active {rule}: showing the 4 that vary most"
    assert walks.fewer_active(torch.zeros(4), 8, [0, 1, 2, 3], 50).startswith("8 dims asked")  # asked: as said
