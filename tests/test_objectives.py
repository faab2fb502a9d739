"""The maths: analytic KL against Monte Carlo, the terms of the ELBO, and the IWAE bound against an exact log p(x)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.distributions import Independent, Normal

from vaekit.config import CHOICES, TrainConfig
from vaekit.core import VAEOutput, elbo, iwae_bound, kl_term, kl_weight, tc_decomposition
from vaekit.core.objectives_zoo import ObjectiveSettings, objective
from vaekit.core.tc import TC_ESTIMATORS, mss_log_weights
from vaekit.errors import VaekitError


def diag(loc, scale):
    return Independent(Normal(loc, scale), 1)


def test_analytic_kl_matches_monte_carlo():
    q = diag(torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.3, 1.5, 0.8]]))
    p = diag(torch.tensor([0.1, 0.0, -0.5]), torch.tensor([1.0, 2.0, 0.7]))
    z = q.sample((400_000,))  # (S, 1, 3)
    mc = q.log_prob(z) - p.log_prob(z)
    stderr = mc.std() / math.sqrt(len(mc))
    assert abs(kl_term(q, p, z[0]) - mc.mean()) < 4 * stderr


def test_kl_falls_back_to_the_sample_estimate_without_an_analytic_form():
    q = diag(torch.zeros(2, 3), torch.ones(2, 3))
    p = Independent(torch.distributions.StudentT(3.0, torch.zeros(3), torch.ones(3)), 1)  # no closed form
    z = q.sample()
    assert torch.allclose(kl_term(q, p, z), q.log_prob(z) - p.log_prob(z))


def output(kl_scale=1.0):
    qz = diag(torch.full((4, 2), 0.3 * kl_scale), torch.full((4, 2), 0.9))
    pz = diag(torch.zeros(2), torch.ones(2))
    px = Independent(torch.distributions.Bernoulli(probs=torch.full((4, 5), 0.7)), 1)
    return VAEOutput(px=px, qz=[qz], pz=[pz], z=[qz.sample()])


def test_every_term_moves_the_loss():
    out, x = output(), torch.ones(4, 5)
    base, doubled = elbo(out, x, beta=1.0), elbo(out, x, beta=2.0)
    assert torch.allclose(doubled["loss"] - base["loss"], base["kl"].mean())
    assert torch.allclose(base["loss"], -(base["rec"] - base["kl"]).mean())
    assert torch.allclose(base["rec"], torch.full((4,), 5 * math.log(0.7)))
    # free bits: each dimension's KL (about 0.05 nats here) is raised to the floor of 0.5 nats
    fb = elbo(out, x, free_bits=0.5)
    assert torch.allclose(fb["loss"], -base["rec"].mean() + 2 * 0.5)
    assert torch.allclose(fb["kl"], base["kl"])  # the reported KL is the true one
    assert kl_weight(0.5, 4.0, 2.0) == 1.0 and kl_weight(3.0, 4.0, 2.0) == 4.0 and kl_weight(0.0, 4.0, 0) == 4.0


class LinearGaussian(torch.nn.Module):
    """x = W z + b + noise with a linear-Gaussian posterior: log p(x) is known in closed form."""

    def __init__(self, d=4, k=2):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.W, self.b, self.sigma = torch.randn(d, k, generator=g), torch.randn(d, generator=g), 0.6
        m_inv = torch.linalg.inv(self.W.T @ self.W + self.sigma**2 * torch.eye(k))
        self.A = m_inv @ self.W.T  # the exact posterior mean A (x - b) ...
        self.q_scale = 2.5 * (self.sigma**2 * m_inv.diagonal()).sqrt()  # ... but a diagonal, too wide scale

    needs_labels, latent_dims = False, [2]

    def encode(self, x, y=None):
        return diag((x - self.b) @ self.A.T, self.q_scale.expand(len(x), -1))

    def decode(self, z, y=None):
        return diag(z @ self.W.T + self.b, torch.full((len(z), len(self.b)), self.sigma))

    def prior(self, y=None):
        return diag(torch.zeros(2), torch.ones(2))

    def forward(self, x, y=None):
        qz = self.encode(x)
        z = qz.rsample()
        return VAEOutput(px=self.decode(z), qz=[qz], pz=[self.prior()], z=[z])

    def log_px(self, x):
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(len(self.b))
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)


class ForwardOnly(torch.nn.Module):
    """The same model seen only through forward(): iwae_bound's path for models of several latent layers."""

    def __init__(self):
        super().__init__()
        self.inner, self.latent_dims = LinearGaussian(), [2, 0]

    def forward(self, x, y=None):
        return self.inner(x)

    def log_px(self, x):
        return self.inner.log_px(x)


@pytest.mark.parametrize("make", [LinearGaussian, ForwardOnly])
def test_iwae_bound_rises_with_k_towards_the_exact_log_likelihood(make):
    """Both estimator paths: one-layer models encode once and decode K samples; others run forward K times."""
    model, truth = make(), LinearGaussian()
    x = torch.distributions.MultivariateNormal(truth.b, truth.W @ truth.W.T + 0.36 * torch.eye(4)).sample((200,))
    exact = model.log_px(x).mean().item()
    bounds = [iwae_bound(model, x, k=k, chunk=4000).mean().item() for k in (1, 10, 100, 2000)]
    k1 = torch.stack([iwae_bound(model, x, k=1).mean() for _ in range(100)])  # (100,) repeats
    neg_elbo = torch.stack([elbo(model(x), x)["loss"] for _ in range(100)])
    stderr = ((k1.var() + neg_elbo.var()) / 100).sqrt()
    assert abs(k1.mean() + neg_elbo.mean()) < 4 * stderr  # K = 1 is the ELBO (sampled vs analytic KL)
    bounds[0] = k1.mean().item()
    assert bounds == sorted(bounds) and bounds[-1] <= exact + 0.01
    assert exact - bounds[-1] < 0.02 < exact - bounds[0]


@pytest.mark.parametrize("chunk", [7, 100_000])
@pytest.mark.parametrize("make", [LinearGaussian, ForwardOnly])
def test_iwae_chunking_does_not_change_the_estimate(chunk, make):
    model = make()
    x = torch.randn(5, 4)
    torch.manual_seed(3)
    a = iwae_bound(model, x, k=50, chunk=chunk)
    assert a.shape == (5,) and torch.isfinite(a).all()
    assert (a <= model.log_px(x) + 0.5).all()


@pytest.mark.parametrize(
    "settings,match",
    [
        ({"k": 0}, r"k must be a positive integer .* got 0"),
        ({"eps": torch.zeros(5, 3)}, r"eps must be \(K, D\) noise, K >= 1 and D = 2, got shape \(5, 3\)"),
        ({"eps": torch.zeros(0, 2)}, r"got shape \(0, 2\)"),
    ],
)
def test_iwae_bound_refuses_no_samples_and_noise_of_another_size_in_one_line(settings, match):
    with pytest.raises(VaekitError, match=match):
        iwae_bound(LinearGaussian(), torch.randn(3, 4), **settings)


class LaplaceQ(LinearGaussian):
    """A q(z|x) that draws from no standard-normal noise: shared noise eps cannot fix it."""

    def encode(self, x, y=None):
        q = super().encode(x)
        return Independent(torch.distributions.Laplace(q.mean, q.stddev), 1)


def test_iwae_bound_refuses_shared_noise_its_q_cannot_draw_from_in_one_line():
    x = torch.randn(3, 4)
    with pytest.raises(VaekitError, match=r"eps needs a q\(z\|x\) drawn from standard-normal noise.*Independent"):
        iwae_bound(LaplaceQ(), x, eps=torch.zeros(5, 2))
    assert torch.isfinite(iwae_bound(LaplaceQ(), x, k=5)).all()  # fresh draws, as ever


def mixture(d=2):
    """A mixture p(z) of 3 Gaussians (a cvae's p(z|y) with prior_components 3): no KL per dimension."""
    mix = torch.distributions.Categorical(logits=torch.zeros(3))
    return torch.distributions.MixtureSameFamily(mix, diag(torch.randn(3, d), torch.ones(3, d)))


@pytest.mark.parametrize(
    "pz, named",
    [
        (mixture(), "a MixtureSameFamily p"),
        (Independent(torch.distributions.StudentT(3.0, torch.zeros(2), torch.ones(2)), 1), "Independent(StudentT)"),
    ],
    ids=["mixture", "no-analytic-kl"],
)
def test_free_bits_are_refused_in_one_line_where_the_kl_does_not_split_by_dimension(pz, named):
    base = output()
    out = VAEOutput(px=base.px, qz=base.qz, pz=[pz], z=base.z)
    with pytest.raises(
        VaekitError, match=rf"free bits floor the KL of each latent dimension.*{re.escape(named)}.*one total"
    ):
        elbo(out, torch.ones(4, 5), free_bits=0.5)  # was: the floor on the total KL, as if one dimension
    assert torch.isfinite(elbo(out, torch.ones(4, 5))["loss"])  # without free bits: the one-sample estimate


# beta-TCVAE's estimators of q(z) (vaekit.core.tc): a tiny factorised-Normal q, in float64 for tight checks
def tc_parts(loc, scale, z, n, *estimator):
    """tc_decomposition's parts and its log q(z) (B,) (log q(z|x) - MI) for q(z|x_j) = N(loc_j, scale_j)."""
    qz, zero = diag(loc, scale), torch.zeros(loc.shape[1], dtype=loc.dtype)
    parts = tc_decomposition(VAEOutput(px=None, qz=[qz], pz=[diag(zero, zero + 1)], z=[z]), n, *estimator)
    return parts, qz.log_prob(z) - parts["mi"]


def exact_log_qz(z, loc, scale):
    """log (1/N) sum_n q(z|x_n) for one z (D,), term by term."""
    terms = [math.exp(Normal(loc[n], scale[n]).log_prob(z).sum().item()) for n in range(len(loc))]
    return math.log(sum(terms) / len(loc))


def toy(n, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc, scale = torch.randn(n, d, generator=g, dtype=torch.float64), 0.5 + torch.rand(n, d, generator=g).double()
    return loc, scale, loc + scale * torch.randn(n, d, generator=g, dtype=torch.float64)  # z_i ~ q(z|x_i)


@pytest.mark.parametrize("b, n", [(2, 2), (4, 10), (5, 5), (7, 1000), (6, 0)])
def test_mss_weights_are_the_papers_strata(b, n):
    big_n, m = max(n, b), b - 1  # N 0: unknown, taken as the batch
    want = [
        [1 / big_n if j == i else (big_n - m) / (big_n * m) if j == (i + 1) % b else 1 / m for j in range(b)]
        for i in range(b)
    ]
    w = mss_log_weights(b, n, dtype=torch.float64).exp()
    assert torch.allclose(w, torch.tensor(want, dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(w.sum(1), torch.ones(b, dtype=torch.float64))  # each row a weighted mean


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_both_tc_estimators_split_the_one_sample_kl(estimator):
    loc, scale, z = toy(6, d=3)
    parts, _ = tc_parts(loc, scale, z, 1000, estimator)
    one_sample = diag(loc, scale).log_prob(z) - diag(0 * loc[0], 1 + 0 * loc[0]).log_prob(z)
    assert torch.allclose(parts["mi"] + parts["tc"] + parts["dimwise_kl"], one_sample, atol=1e-10)
    default = tc_parts(loc, scale, z, 1000)[0]  # no estimator named: mws, as before the setting
    assert all(torch.equal(default[k], parts[k]) for k in ("mi", "tc", "dimwise_kl")) == (estimator == "mws")


@pytest.mark.parametrize("n", [2, 5])
def test_on_the_whole_data_set_mws_is_off_by_log_n_and_mss_by_its_stratum_item(n):
    # B = N: exact q(z_i) = (1/N) sum_j q_j with q_j = q(z_i|x_j). MWS's 1/(N B) weights give exactly
    # log q(z) - log N. MSS weighs its own item 1/N, the item k after it 1/(N (N - 1)), the N - 2 others 1/(N - 1):
    # q_mss - q = (sum of the others - (N - 2) q_k) / (N (N - 1)), exact for N = 2 and, over which item follows,
    # on average. Item 0 is put first and each other item k in turn right after it; every row is checked.
    loc, scale, z = toy(n)
    q = [[math.exp(Normal(loc[j], scale[j]).log_prob(z[i]).sum().item()) for j in range(n)] for i in range(n)]
    exact = [math.log(sum(row) / n) for row in q]  # log q(z_i)
    mws = tc_parts(loc, scale, z, n, "mws")[1]
    assert torch.allclose(mws, torch.tensor(exact, dtype=torch.float64) - math.log(n), atol=1e-10)
    first = []
    for k in range(1, n):
        order = [0, k, *[j for j in range(1, n) if j != k]]
        mss = tc_parts(loc[order], scale[order], z[order], n, "mss")[1].exp()
        for pos, i in enumerate(order):
            after = order[(pos + 1) % n]  # the next item, cyclically
            others = sum(q[i]) - q[i][i] - q[i][after]
            gap = (others - (n - 2) * q[i][after]) / (n * (n - 1))
            assert mss[pos].item() - math.exp(exact[i]) == pytest.approx(gap, abs=1e-12)
        first.append(mss[0].item())
    assert sum(first) / (n - 1) == pytest.approx(math.exp(exact[0]), rel=1e-10)


def test_mss_is_unbiased_over_its_stratified_batches_and_mws_is_not():
    # N = 6 in M = 2 strata {0, 1, 2}, {3, 4, 5}; B = M + 1 = 3: item 0, then one of its stratum (a), one of the
    # other (o). Every such batch, enumerated: MSS's mean q(z_0) is the exact one; MWS's is below it by >= log B.
    loc, scale, z = toy(6)
    exact = exact_log_qz(z[0], loc, scale)
    batches = [[0, a, o] for a in (1, 2) for o in (3, 4, 5)]
    mean = {
        e: sum(math.exp(tc_parts(loc[i], scale[i], z[i], 6, e)[1][0].item()) for i in batches) / 6
        for e in ("mss", "mws")
    }
    assert math.log(mean["mss"]) == pytest.approx(exact, abs=1e-10)
    assert math.log(mean["mws"]) < exact - math.log(3)


def test_tc_estimator_reaches_the_loss_through_the_objective_settings():
    model, x = LinearGaussian(), torch.randn(8, 4)
    s = {e: ObjectiveSettings.of(TrainConfig(tc_beta=4.0, tc_estimator=e), dataset_size=100) for e in ("mws", "mss")}
    assert s["mss"].tc_estimator == "mss" and s["mws"].tc_estimator == "mws"
    losses = {}
    for e in s:
        torch.manual_seed(5)
        losses[e] = objective("elbo")(model, x, None, s[e])["loss"]
        torch.manual_seed(5)
        assert torch.equal(losses[e], elbo(model(x), x, tc_beta=4.0, dataset_size=100, tc_estimator=e)["loss"])
    assert not torch.allclose(losses["mws"], losses["mss"])
    with pytest.raises(VaekitError, match=r"tc_estimator must be one of mws, mss, got 'foo'"):
        elbo(model(x), x, tc_beta=4.0, tc_estimator="foo")
    with pytest.raises(VaekitError, match="mss needs batches of at least 2 items"):
        elbo(model(x[:1]), x[:1], tc_beta=4.0, tc_estimator="mss")
    assert tuple(TC_ESTIMATORS) == CHOICES["train.tc_estimator"]  # the config allows what the core knows
