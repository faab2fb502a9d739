"""Disentanglement, round 2: seeds, too few varying factors, uninformative dims' labels, the helpers' checks, and
the documented departures (a batch's beta-VAE pairs share one value; flow posteriors are scored)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vaekit.cli import main
from vaekit.config import RunConfig
from vaekit.errors import VaekitError
from vaekit.evaluation import disentangle as D
from vaekit.evaluation.disentangle_run import dsprites_size, evaluate_run

SIZES, NAMES = (3, 6, 40, 32, 32), ("shape", "scale", "orientation", "posX", "posY")  # the dSprites factors
GUIDE = Path(__file__).parents[1] / "docs/guides/disentanglement.md"


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, 3000) for k in SIZES], 1)


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999])
def test_seeds_outside_the_range_of_train_seed_are_refused(tmp_path, capsys, seed):
    with pytest.raises(VaekitError, match=r"seed must be a whole number in \[0, 2\*\*32\)"):
        evaluate_run(SimpleNamespace(), seed=seed)  # refused before the run is read
    assert main(["disentangle", str(tmp_path), "--seed", str(seed)]) == 2
    err = capsys.readouterr().err
    assert "--seed must be in [0, 2**32)" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("varying", [0, 1])
@pytest.mark.parametrize("score", [D.factorvae_score, D.betavae_score])
def test_vote_scores_refuse_fewer_than_two_varying_factors(factors, score, varying):
    f = factors.copy()
    f[:, varying:] = 0  # only the first `varying` factors vary: every vote would be right, a score of 1
    with pytest.raises(VaekitError, match="at least 2 factors that vary, got " + str(varying)):
        score(f + 0.0, f, n_train=100, n_eval=50)
    assert score(factors[:, :2] + 0.0, factors[:, :2], n_train=100, n_eval=50) > 0.9  # two are enough


def test_dims_that_depend_on_no_factor_get_no_factor(factors):
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(factors), 6))
    weak = factors[:, [3]] + rng.normal(0, 8, (len(factors), 1))  # posX under much noise: still informative
    codes = np.hstack([np.zeros((len(factors), 1)), noise, weak, factors[:, [0]] + 0.0])
    labels = D.factor_of_each_code(codes, factors, NAMES)
    assert [name for name, _ in labels] == [None] * 7 + ["posX", "shape"]
    assert labels[0][1] == 0.0 and all(0 < mi < 0.1 for _, mi in labels[1:7]) and labels[-1][1] > 0.99


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda z, ks: D.factorvae_from_batches(z, -ks, np.ones(3), 10), "ks must be factor indices >= 0"),
        (lambda z, ks: D.factorvae_from_batches(z, ks, np.ones(3), 30), r"n_train must be in \[1, 20\)"),
        (lambda z, ks: D.factorvae_from_batches(z, ks, np.ones(3), 20), r"n_train must be in \[1, 20\)"),
        (lambda z, ks: D.betavae_from_pairs(z, z, ks, 30), r"n_train must be in \[1, 20\)"),
    ],
)
def test_helpers_name_the_parameter_they_refuse(call, match):
    z, ks = np.random.default_rng(0).normal(size=(20, 4, 3)), np.arange(20) % 3
    with pytest.raises(VaekitError, match=match) as e:
        call(z, ks)
    assert "n_eval" not in str(e.value)


@pytest.mark.parametrize(
    "metric",
    [
        lambda c, f: D.mig(c, f),
        lambda c, f: D.sap(c, f, c, f),
        lambda c, f: D.factor_of_each_code(c, f, NAMES),
    ],
)
def test_codes_whose_range_overflows_are_refused_in_one_line(factors, metric):
    codes = np.hstack([factors + 0.0, np.where(np.arange(len(factors)) % 2, 1e308, -1e308)[:, None]])
    with pytest.raises(VaekitError, match="range overflows float64"):
        metric(codes, factors)


def test_the_departures_are_documented():
    said = " ".join(GUIDE.read_text().split())
    assert "each pair its own" in " ".join(D.betavae_from_pairs.__doc__.split())
    assert "0.984 against 1.000" in said and "0.285 against 0.310" in said
    assert "with a Gaussian q(z|x)" not in said and "average of 64 draws" in said
    cfg = RunConfig()
    cfg.data.spec, cfg.model.family, cfg.model.input_shape = "dsprites:16:n=500", "vq", [1, 16, 16]
    with pytest.raises(VaekitError, match="any posterior") as e:
        dsprites_size(SimpleNamespace(config=cfg, model=SimpleNamespace(), path="runs/x"))
    assert "Gaussian" not in str(e.value)
