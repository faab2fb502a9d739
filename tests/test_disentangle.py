"""Disentanglement metrics on known codes, the beta-TCVAE decomposition, and `vaekit disentangle` end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.distributions import Independent, Normal

from vaekit.cli import main
from vaekit.config import RunConfig, refuse_conflicts, validate
from vaekit.core import VAEOutput, dimwise_weight_at, elbo, kl_term, tc_decomposition
from vaekit.errors import VaekitError
from vaekit.evaluation import disentangle as D
from vaekit.evaluation.disentangle_run import dsprites_size, evaluate_run
from vaekit.models import MODELS
from vaekit.runs import Run
from vaekit.viz.figures import save_factor_traversals

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


def test_factorvae_votes_only_among_active_dims_and_gives_none_without_one(factors):
    codes = factors / (np.array(SIZES) - 1.0)  # a perfect code, each dim in [0, 1] (std about 0.3)
    assert D.factorvae_score(codes, factors, n_train=300, n_eval=200) > 0.95
    assert D.factorvae_score(codes * 0.01, factors, n_train=300, n_eval=200) is None  # std below 0.05: none active
    assert D.active_dims(codes.var(0)).tolist() == [True] * 5 and not D.active_dims((codes * 0.01).var(0)).any()


BAD_INPUTS = {
    "float factors": lambda c, f: (c, f + 0.5, "whole numbers"),
    "NaN codes": lambda c, f: (np.where(np.arange(len(c))[:, None] == 3, np.nan, c), f, "NaN"),
    "1-D codes": lambda c, f: (c[:, 0], f, "expected non-empty"),
    "fewer codes": lambda c, f: (c[:-1], f, "same N"),
    "no items": lambda c, f: (c[:0], f[:0], "non-empty"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("metric", ["mig", "sap", "dci", "factorvae", "betavae", "labels"])
def test_bad_codes_and_factors_are_refused_in_one_line(factors, metric, bad):
    codes, f, match = BAD_INPUTS[bad](np.random.default_rng(0).normal(size=(200, 4)), factors[:200])
    call = {
        "mig": lambda: D.mig(codes, f),
        "sap": lambda: D.sap(codes, f, codes, f),
        "dci": lambda: D.dci(codes, f, codes, f),
        "factorvae": lambda: D.factorvae_score(codes, f, n_train=20, n_eval=10),
        "betavae": lambda: D.betavae_score(codes, f, n_train=20, n_eval=10),
        "labels": lambda: D.factor_of_each_code(codes, f, NAMES),
    }[metric]
    with pytest.raises(VaekitError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c, f: D.factorvae_score(c, f, n_eval=0), "n_eval"),
        (lambda c, f: D.betavae_score(c, f, n_train=0), "n_train"),
        (lambda c, f: D.factorvae_score(c, f, batch=1), "batch"),
        (lambda c, f: D.sap(c, f, c[:, :3], f), "test codes"),
        (lambda c, f: D.dci(c, f, c, f[:, :4]), "test codes"),
        (lambda c, f: D.factorvae_from_batches(c[None], f[:1, 0], c.var(0)[:3], 0), "FactorVAE"),
        (lambda c, f: D.betavae_from_pairs(c[None], c[None, :, :3], f[:1, 0], 0), "beta-VAE"),
    ],
)
def test_bad_counts_and_shapes_are_refused_in_one_line(factors, call, match):
    with pytest.raises(VaekitError, match=match):
        call(np.random.default_rng(0).normal(size=(200, 4)), factors[:200])


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
    cfg.train.tc_beta, cfg.model.latent_dims, cfg.model.family = 6.0, [4, 2], "ladder"
    with pytest.raises(VaekitError, match="tc_beta"):
        refuse_conflicts(validate(cfg))


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
    afile = tmp_path / "afile"
    afile.write_text("")
    for argv, message in [
        (["--n", "300"], "--n must be >= 1000"),  # plug-in MI of 20 bins per dim on 300 items: mostly bias
        (["--out", str(afile / "x.png")], "is not a writable folder"),  # found before ~30 s of scoring
        (["--out", str(tmp_path)], "expected a .png"),
    ]:
        assert main(["disentangle", str(run), *argv]) == 2
        assert message in capsys.readouterr().err and not (run / "disentangle.json").exists()
    assert main(["disentangle", str(run), "--n", "1000", "--votes", "100", "--n-dims", "2", "--json"]) == 0
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
    assert all(v is None or (0 <= v <= 1 and math.isfinite(v)) for v in result["metrics"].values())
    assert [d["dim"] for d in result["dims"]] == [0, 1, 2] and result["dims"][0]["factor"] in NAMES
    assert (result["metrics"]["factorvae"] is None) == (result["active_dims"] == 0) and result["active_dims"] <= 3
    mi = {d["dim"]: d["normalised_mi"] for d in result["dims"]}
    assert len(result["traversal_dims"]) == 2 and min(mi[d] for d in result["traversal_dims"]) == sorted(mi.values())[1]
    assert (run / "disentangle-traversals.png").stat().st_size > 0 and (run / "disentangle.json").exists()
    heights = [  # the figure draws the dims it is given, not all
        Image.open(save_factor_traversals(Run.load(run), result["dims"], tmp_path / f"{i}.png", shown=s)).size[1]
        for i, s in enumerate([[2], None])
    ]
    assert heights[0] < heights[1] / 2
    other = tmp_path / "other"
    assert (
        main(["train", "--data", "digits", "--epochs", "1", "--latent-dim", "2", "--out", str(other), "--quiet"]) == 0
    )
    assert main(["disentangle", str(other)]) == 2
    assert "dsprites" in capsys.readouterr().err and not (other / "disentangle.json").exists()


@pytest.mark.parametrize(
    "family, model, ok",
    [
        ("vae", SimpleNamespace(needs_labels=False, latent_dims=[4]), True),
        ("custom", SimpleNamespace(needs_labels=False, latent_dims=[4]), True),  # a flat model class of the user's
        ("gumbel", SimpleNamespace(needs_labels=False, latent_dims=[4]), False),  # class probabilities, not a code
        ("vq", SimpleNamespace(needs_labels=False, latent_dims=[4]), False),  # a grid of codebook entries
        ("custom", object.__new__(type("MyVQ", (MODELS["vq"],), {})), False),  # a user's subclass of VQ-VAE
        ("vae", SimpleNamespace(needs_labels=False, latent_dims=[4, 2]), False),
    ],
)
def test_only_flat_gaussian_runs_are_scored(family, model, ok):
    cfg = RunConfig()
    cfg.data.spec, cfg.model.family, cfg.model.input_shape = "dsprites:16:n=500", family, [1, 16, 16]
    run = SimpleNamespace(config=cfg, model=model, path="runs/x")
    if ok:
        assert dsprites_size(run) == 16
        return
    with pytest.raises(VaekitError, match="family vae"):
        dsprites_size(run)


@pytest.mark.parametrize("settings, match", [({"n": 10}, "n must be >= 1000"), ({"n_dims": 0}, "n_dims must be >= 1")])
def test_evaluate_run_refuses_too_few_items_before_scoring(settings, match):
    with pytest.raises(VaekitError, match=match):
        evaluate_run(SimpleNamespace(), **settings)  # no run needed: refused before it is read
