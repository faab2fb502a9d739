"""Disentanglement metrics on known codes, the beta-TCVAE decomposition, and `vaekit disentangle` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

from vaekit.cli import main
from vaekit.config import RunConfig, validate
from vaekit.core import VAEOutput, dimwise_weight_at, elbo, kl_term, tc_decomposition
from vaekit.errors import VaekitError
from vaekit.evaluation import disentangle as D

SIZES, NAMES = (3, 6, 40, 32, 32), ("shape", "scale", "orientation", "posX", "posY")  # the dSprites factors


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, 4000) for k in SIZES], 1)


def all_scores(codes: np.ndarray, f: np.ndarray) -> dict[str, float]:
    tr, te = slice(0, 2500), slice(2500, None)
    return {
        "mig": D.mig(codes[tr], f[tr]),
        "sap": D.sap(codes[tr], f[tr], codes[te], f[te]),
        "dci": D.dci(codes[tr], f[tr], codes[te], f[te])["disentanglement"],
        "factorvae": D.factorvae_score(codes, f, n_train=600, n_eval=300),
        "betavae": D.betavae_score(codes, f, n_train=600, n_eval=300),
    }


def test_true_factors_score_near_one_random_codes_near_chance(factors):
    rng = np.random.default_rng(1)
    true = all_scores(factors + rng.normal(0, 0.01, factors.shape), factors)
    noise = all_scores(rng.normal(size=(len(factors), 10)), factors)
    assert true["mig"] > 0.85  # not 1: 20 bins cannot hold the 32 and 40 values of position and orientation
    assert min(true["sap"], true["dci"], true["factorvae"], true["betavae"]) > 0.95
    assert max(noise["mig"], noise["sap"], noise["dci"]) < 0.05
    assert max(noise["factorvae"], noise["betavae"]) < 0.3  # a vote among 5 factors: chance is 0.2
    assert all(0 <= v <= 1 for v in [*true.values(), *noise.values()])


def test_scores_do_not_change_when_code_dims_are_permuted(factors):
    rng = np.random.default_rng(2)
    codes = factors @ rng.normal(size=(5, 6)) * 0.3 + factors[:, [0, 3, 3, 4, 1, 2]] + rng.normal(size=(4000, 6))
    a, b = all_scores(codes, factors), all_scores(codes[:, [3, 5, 0, 1, 4, 2]], factors)
    assert a.pop("dci") == pytest.approx(b.pop("dci"), abs=0.02)  # tree ties may break by feature order
    assert a == pytest.approx(b, abs=1e-6)


def test_constant_factors_are_left_out(factors):
    codes = factors + 0.0
    with_constant = np.hstack([factors, np.zeros((len(factors), 1), dtype=np.int64)])
    assert D.mig(codes, with_constant) == pytest.approx(D.mig(codes, factors))
    assert D.sap(codes, with_constant, codes, with_constant) == pytest.approx(D.sap(codes, factors, codes, factors))


def test_sap_on_a_small_test_set_missing_a_class_warns_nothing(recwarn):
    codes, f = np.arange(60.0)[:, None], (np.arange(60) % 3)[:, None]
    D.sap(codes, f, codes[:4], f[:4] % 2)  # the test items hold 2 of the 3 classes the bins predict
    assert not [w for w in recwarn if "y_pred contains classes" in str(w.message)]


def decompose(loc: torch.Tensor, scale: float = 0.3) -> tuple[dict, torch.Tensor, torch.Tensor]:
    qz, pz = (
        Independent(Normal(loc, torch.full_like(loc, scale)), 1),
        Independent(Normal(0 * loc[0], 1 + 0 * loc[0]), 1),
    )
    z = qz.sample()
    return (
        tc_decomposition(VAEOutput(px=None, qz=[qz], pz=[pz], z=[z]), dataset_size=10_000),
        kl_term(qz, pz, z),
        qz.log_prob(z) - pz.log_prob(z),
    )


def test_tc_decomposition_sums_to_the_kl_in_expectation():
    loc = torch.randn(256, 3, generator=torch.Generator().manual_seed(0))
    sums, kls = [], []
    for _ in range(100):
        parts, kl, one_sample = decompose(loc)
        assert torch.allclose(parts["mi"] + parts["tc"] + parts["dimwise_kl"], one_sample, atol=1e-4)
        sums.append(one_sample.mean())
        kls.append(kl.mean())
    assert torch.stack(sums).mean().item() == pytest.approx(torch.stack(kls).mean().item(), rel=0.01)
    # q(z) whose dims move together has a larger total correlation than one with independent dims
    line = loc[:, :1].expand(-1, 3).contiguous()
    assert decompose(line)[0]["tc"].mean() > decompose(loc)[0]["tc"].mean() + 1.0


def test_minibatch_weighted_sampling_is_the_papers_estimator():
    # a batch holding the whole data set (B = N): log q(z) = log mean_n q(z|x_n) exactly, and MWS's log(N B)
    # (Chen et al. 2018, eq. 4 and their code) makes it log q(z) - log N (and each marginal's);
    # brute-force double loop as reference
    g = torch.Generator().manual_seed(1)
    loc, scale = torch.randn(6, 2, generator=g), 0.2 + torch.rand(6, 2, generator=g)
    qz = Independent(Normal(loc, scale), 1)
    z = qz.sample()
    parts = tc_decomposition(
        VAEOutput(px=None, qz=[qz], pz=[Independent(Normal(0 * loc[0], 1 + 0 * loc[0]), 1)], z=[z]), dataset_size=6
    )
    for i in range(6):
        log_q = torch.stack([Normal(loc[j], scale[j]).log_prob(z[i]) for j in range(6)])  # (N, D)
        exact_qz, exact_dims = log_q.sum(1).logsumexp(0) - math.log(6), log_q.logsumexp(0) - math.log(6)  # (), (D,)
        assert parts["mi"][i].item() == pytest.approx((qz.log_prob(z)[i] - exact_qz).item() + math.log(6), abs=1e-4)
        assert parts["tc"][i].item() == pytest.approx(
            (exact_qz - exact_dims.sum()).item() + (2 - 1) * math.log(6), abs=1e-4
        )


def test_tc_beta_weighs_only_the_total_correlation():
    qz = Independent(Normal(torch.randn(8, 2), torch.full((8, 2), 0.5)), 1)
    out = VAEOutput(
        px=Independent(torch.distributions.Bernoulli(probs=torch.full((8, 4), 0.6)), 1),
        qz=[qz],
        pz=[Independent(Normal(torch.zeros(2), torch.ones(2)), 1)],
        z=[qz.sample()],
    )
    x = torch.ones(8, 4)
    one, six = elbo(out, x, tc_beta=1.0, dataset_size=1000), elbo(out, x, tc_beta=6.0, dataset_size=1000)
    assert torch.allclose(six["loss"] - one["loss"], 5 * one["tc"].mean())
    assert torch.allclose(one["loss"], -(one["rec"] - one["mi"] - one["tc"] - one["dimwise_kl"]).mean())
    warm = elbo(out, x, tc_beta=6.0, dataset_size=1000, dimwise_weight=0.05)  # the dimension-wise KL warming up
    assert torch.allclose(six["loss"] - warm["loss"], 0.95 * six["dimwise_kl"].mean())
    assert [dimwise_weight_at(p, 2.0) for p in (0.0, 1.0, 2.0, 3.0)] == pytest.approx([0.05, 0.525, 1.0, 1.0])
    assert dimwise_weight_at(0.0, 0.0) == 1.0
    cfg = RunConfig()
    cfg.train.tc_beta = -1.0
    with pytest.raises(VaekitError, match="tc_beta"):
        validate(cfg)
    cfg.train.tc_beta, cfg.model.latent_dims = 6.0, [4, 2]
    with pytest.raises(VaekitError, match="tc_beta"):
        validate(cfg)


def test_disentangle_command_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    train = [
        "train",
        "--data",
        "dsprites:16:n=400",
        "--model",
        "conv",
        "--set",
        "model.channels=4,8",
        "--latent-dim",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--set",
        "train.tc_beta=6",
        "--binarize",
        "none",
        "--out",
        run,
        "--quiet",
    ]
    assert main([str(a) for a in train]) == 0
    capsys.readouterr()
    assert main(["disentangle", str(run), "--n", "300", "--votes", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["metrics"]) == {
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "factorvae",
        "betavae",
    }
    assert all(0 <= v <= 1 and math.isfinite(v) for v in result["metrics"].values())
    assert [d["dim"] for d in result["dims"]] == [0, 1, 2] and result["dims"][0]["factor"] in NAMES
    assert (run / "disentangle-traversals.png").stat().st_size > 0 and (run / "disentangle.json").exists()
    other = tmp_path / "other"
    assert (
        main(["train", "--data", "digits", "--epochs", "1", "--latent-dim", "2", "--out", str(other), "--quiet"]) == 0
    )
    assert main(["disentangle", str(other)]) == 2
    assert "dsprites" in capsys.readouterr().err and not (other / "disentangle.json").exists()
