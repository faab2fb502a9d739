"""The zoo at its edges: no training step on a lone item (MMD, BatchNorm), a flow posterior's codes, and shared
noise eps honoured by every q(z|x) that draws from standard-normal noise."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.config import RunConfig, refuse_conflicts, set_value
from vaekit.core.critic import Discriminator
from vaekit.core.objectives_zoo import ObjectiveSettings, objective
from vaekit.data.batching import batches
from vaekit.data.lazy import LazyArray
from vaekit.evaluation.scores import anomaly_scores
from vaekit.training.step import evaluate_loss

from .test_zoo import QUIET, batch, model

CPU = torch.device("cpu")


class Rows:
    """A LazyArray source whose item i is the number i: shows which items each batch holds, through the loader."""

    where, shape = "rows", (1,)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.float32)[:, None]


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("n,size,sizes", [(17, 8, [8, 9]), (16, 8, [8, 8]), (18, 8, [8, 8, 2]), (1, 8, [1])])
def test_training_batches_fold_a_lone_last_item_into_the_batch_before(n, size, sizes, lazy):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    x = LazyArray(Rows(), np.arange(n)) if lazy else torch.arange(n, dtype=torch.float32)[:, None]
    got = list(batches(x, None, perm, size, 0, 0, CPU))
    assert [len(xb) for _, xb, _ in got] == sizes and [b for b, _, _ in got] == list(range(len(sizes)))
    assert torch.equal(torch.cat([xb for _, xb, _ in got]).flatten().long(), perm)  # every item once, in order
    resumed = list(batches(x, None, perm, size, len(sizes) - 1, 0, CPU))  # a mid-epoch resume: the same last batch
    assert len(resumed) == 1 and torch.equal(resumed[0][1], got[-1][1])


def batchnorm_vae() -> nn.Module:
    """A user's VAE whose encoder normalises over the batch: a batch of one cannot train it."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(30, 16), nn.BatchNorm1d(16), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(3, 30), nn.Unflatten(1, (1, 5, 6)))
    return vaekit.VAE(encoder, decoder, latent_dim=3, input_shape=(1, 5, 6))


@pytest.mark.parametrize("make,objective", [(model, "mmd"), (batchnorm_vae, "elbo")], ids=["mmd", "batchnorm"])
def test_an_epoch_of_k_batches_and_one_item_trains_and_resumes_bit_for_bit(make, objective, tmp_path):
    x, val = batch(17).numpy(), batch(6, seed=1).numpy()  # 17 = 2 * 8 + 1 training items

    def fit(out, **kw):
        kw = dict(val_data=val, batch_size=8, objective=objective, out=tmp_path / out, device="cpu") | QUIET | kw
        return vaekit.fit(make(), x, **kw)

    straight = fit("a", epochs=2)
    assert all(np.isfinite([row["train_loss"], row["val_loss"]]).all() for row in straight.history)
    fit("b", epochs=1)
    resumed = fit("b", epochs=2, resume=True)
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in straight.model.state_dict().items())


def test_the_validation_loss_of_k_batches_and_one_item_under_mmd_counts_every_item():
    m, x = model().eval(), batch(9)
    folded = evaluate_loss(m, x, None, 1.0, batch_size=4, name="mmd")  # batches of 4 and 5; 4 + 4 + 1 before
    assert np.isfinite(folded["loss"])
    assert folded["kl"] == pytest.approx(evaluate_loss(m, x, None, 1.0, name="elbo")["kl"], rel=1e-5)  # analytic


@pytest.mark.parametrize("posterior", ["iaf", "nsf"])
def test_encode_writes_a_flow_posteriors_code_and_its_estimated_scale(posterior, tmp_path, capsys):
    x = batch(20)
    vaekit.fit(model(posterior=posterior), x.numpy(), epochs=1, batch_size=8, out=tmp_path / "run", **QUIET)
    np.save(tmp_path / "x.npy", x.numpy())
    for size in (7, 20):  # an item's numbers do not depend on its batch
        argv = ["encode", str(tmp_path / "run"), "--data", str(tmp_path / "x.npy"), "--batch-size", str(size)]
        assert main([*argv, "--out", str(tmp_path / f"z{size}.npz")]) == 0
    assert "scale estimated from 256 fixed draws" in capsys.readouterr().out
    a, b = (np.load(tmp_path / f"z{size}.npz") for size in (7, 20))
    np.testing.assert_allclose(a["scale"], b["scale"], rtol=1e-5)
    qz = vaekit.load_run(tmp_path / "run").encode(x)
    np.testing.assert_allclose(a["loc"], qz.mean.numpy(), rtol=1e-5, atol=1e-6)  # the flow of the base mean
    torch.manual_seed(0)
    std = qz.sample((4_000,)).std(0).numpy()  # (20, 3) by fresh draws: ~1% sampling error, far inside 6%
    assert np.abs(a["scale"] / std - 1).max() < 0.25 and np.abs(a["scale"] / std - 1).mean() < 0.06


QS = {"iaf": dict(posterior="iaf"), "nsf": dict(posterior="nsf"), "gumbel": dict(family="gumbel", categories=3)}


@pytest.mark.parametrize("q", sorted(QS))
def test_shared_noise_fixes_the_iwae_bound_of_a_flow_or_categorical_posterior(q):
    m, x = model(**QS[q]).eval(), batch()
    eps = torch.randn(30, m.latent_dims[0], generator=torch.Generator().manual_seed(1))
    a = vaekit.iwae_bound(m, x, eps=eps)
    torch.manual_seed(7)  # neither the global generator, the batch nor the chunks change it
    assert torch.allclose(vaekit.iwae_bound(m, x[:5], eps=eps, chunk=35), a[:5], atol=1e-5)
    assert not torch.allclose(vaekit.iwae_bound(m, x, eps=torch.randn_like(eps)), a)  # the noise moves it
    scores = [anomaly_scores(m, x, ["iwae_nll"], iw_samples=16, batch_size=s)["iwae_nll"] for s in (5, 12)]
    np.testing.assert_allclose(*scores, rtol=1e-5)  # anomaly scores take their noise this way


def test_gumbel_max_draws_from_normal_noise_follow_the_categoricals():
    from vaekit.core.objectives import gumbel_max

    qz = model(family="gumbel", categories=3).eval().encode(batch(2))
    eps = torch.randn(40_000, qz.event_shape[0], generator=torch.Generator().manual_seed(0))
    z = gumbel_max(qz, eps)  # (S, 2, N * 3) one-hots
    assert z.shape == (40_000, 2, qz.event_shape[0]) and torch.equal(
        z.unflatten(-1, (-1, 3)).sum(-1), torch.ones(40_000, 2, 3)
    )
    assert (z.mean(0) - qz.mean).abs().max() < 0.015  # 4 standard errors of a frequency near 1/2


class LaplaceVAE(vaekit.VAE):
    """A user's q(z|x) that is drawn otherwise than from standard-normal noise (a Laplace)."""

    def encode(self, x, y=None):
        qz = super().encode(x, y)
        return torch.distributions.Independent(torch.distributions.Laplace(qz.mean, qz.stddev), 1)


def test_a_user_s_q_that_takes_no_shared_noise_is_scored_by_fresh_draws():
    m = LaplaceVAE(*[model().encoder, model().decoder], latent_dim=3, input_shape=(1, 5, 6)).eval()
    with pytest.raises(vaekit.VaekitError, match="leave eps out"):
        vaekit.iwae_bound(m, batch(), eps=torch.randn(4, 3))
    assert np.isfinite(anomaly_scores(m, batch(), ["iwae_nll"], iw_samples=4)["iwae_nll"]).all()


class Recorder(nn.Module):
    """A discriminator that records what it is shown and calls everything 'from q(z)' (logit 0)."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, z):
        self.seen.append(z.detach())
        return z.sum(1) * 0


@pytest.mark.parametrize("train", [True, False], ids=["relaxed", "one-hot"])
def test_factor_shuffles_a_categorical_variable_whole_across_the_batch(train):
    m, critic = model(family="gumbel", categories=4).train(train), Recorder()
    objective("factor")(m, batch(32), None, ObjectiveSettings(critic=critic))
    real, shuffled = (z.unflatten(1, (-1, 4)) for z in critic.seen[1:])  # (B, N, K): z, then its shuffled copy
    assert torch.allclose(shuffled.sum(-1), torch.ones(shuffled.shape[:2]))  # N points of the simplex (one-hots)
    for n in range(real.shape[1]):  # each variable's K coordinates moved together, across the batch
        assert sorted(shuffled[:, n].tolist()) == sorted(real[:, n].tolist())
    assert not torch.equal(shuffled, real)


def test_mmd_of_categorical_codes_draws_the_prior_as_the_codes_are_drawn():
    m, x = model(family="gumbel", categories=4, latent_dim=3), batch(256)
    nn.init.zeros_(m.to_logits.weight), nn.init.zeros_(m.to_logits.bias)  # q(z|x) uniform: q(z) = p(z), MMD 0
    for train in (True, False):  # relaxed codes and prior draws in training, one-hots in eval
        gaps = torch.stack([objective("mmd")(m.train(train), x, None, ObjectiveSettings())["mmd"] for _ in range(3)])
        assert gaps.mean().abs() < 0.02  # was 0.195 in training: relaxed codes against one-hot prior draws


HIERARCHIES = {
    "ladder": lambda: (model(family="ladder", latent_dims=[3, 2]), batch(4)),
    "deep": lambda: (
        vaekit.DeepVAE((1, 8, 8), groups=[1, 2, 0], width=8, cell_width=4, latent_channels=2),
        batch(4, shape=(1, 8, 8)),
    ),
}


@pytest.mark.parametrize("family", sorted(HIERARCHIES))
def test_piwae_refuses_a_hierarchy_in_one_line(family):
    m, x = HIERARCHIES[family]()
    s = ObjectiveSettings(iw_samples=2, iw_groups=2)
    with pytest.raises(vaekit.VaekitError, match=r"piwae routes MIWAE's gradient .* top-down generative path"):
        objective("piwae")(m, x, None, s)  # was: MIWAE's gradient in the top-down prior's parameters
    assert torch.isfinite(objective("miwae")(m, x, None, s)["loss"])


@pytest.mark.parametrize("family", sorted(HIERARCHIES))
@pytest.mark.parametrize("name", ["factor", "mmd"])
def test_factor_and_mmd_refuse_a_hierarchy(family, name):
    m, x = HIERARCHIES[family]()
    s = ObjectiveSettings(critic=Discriminator(2))
    with pytest.raises(vaekit.VaekitError, match=rf"the {name} objective measures q\(z\) of one latent layer"):
        objective(name)(m, x, None, s)  # was: the top group's q(z) alone, the others unmeasured
    cfg = RunConfig()
    for key, value in [("model.family", family), ("train.objective", name), ("train.warmup_epochs", 0)]:
        set_value(cfg, key, value)
    with pytest.raises(vaekit.VaekitError, match="a hierarchy's other groups would go unmeasured"):
        refuse_conflicts(cfg)


TC = r"train.tc_beta and model.family cannot both take effect: beta-TCVAE estimates q\(z\) of one latent layer"


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["model.family=deep", "train.tc_beta=6"], TC),
        (["model.family=ladder", "train.tc_beta=6"], TC),
        (["model.family=ladder", "model.latent_dims=4,2", "train.tc_beta=6"], TC),
        (["model.family=gumbel", "model.categories=1"], r"config: model.categories must be >= 2, got 1 \("),
        (
            ["model.family=vq", "model.codebook_decay=1.0"],
            r"config: model.codebook_decay must be in \[0, 1\), got 1.0 \(",
        ),
    ],
    ids=["tcvae-deep", "tcvae-ladder", "tcvae-levels", "categories", "codebook-decay"],
)
def test_a_setting_no_model_can_take_is_refused_naming_it_with_its_flag(sets, needle, tmp_path, capsys):
    """beta-TCVAE with a hierarchy was refused mid-training in a line naming neither setting (or, for explicit
    levels, with no flag); categories 1 named codebook_decay beside it, with no flag."""
    argv = [x for s in sets for x in ("--set", s)]
    assert main(["train", "--data", "digits", "--quiet", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    key = sets[-1].split("=")[0]
    assert "\n" not in err and re.search(needle, err) and f"(--set {key}=...)" in err
    assert not (tmp_path / "run").exists()
    assert ("codebook_decay" in err) == (key == "model.codebook_decay")
