"""Anomaly detection, round 3: the scores' seed checked as the CLI checks it, the likelihood regret of items far
beyond the training data in float32, and a run trained on plain vectors given a CSV through a verb."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.conftest import train_argv
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.errors import VaekitError
from vaekit.evaluation.scores import anomaly_scores
from vaekit.models import build_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained float32 VAE of 3-value rows with a Gaussian likelihood."""
    torch.manual_seed(0)
    return build_model(ModelConfig(input_shape=[3], latent_dim=2, hidden=[8], likelihood="gaussian")).eval()


@pytest.mark.parametrize("seed", [None, -1, 2**32, 1.5, True, "0"])
def test_the_scores_refuse_a_seed_the_cli_refuses(model, seed):
    with pytest.raises(VaekitError, match=rf"^seed must be a whole number in \[0, 2\*\*32\), got {seed!r}$"):
        anomaly_scores(model, torch.zeros(2, 3), "neg_elbo", seed=seed)


def test_the_largest_seed_is_taken_as_an_int(model):
    x, top = torch.zeros(2, 3), 2**32 - 1  # numpy's uint32 seed plus one would wrap to 0
    scores = anomaly_scores(model, x, "neg_elbo", seed=np.uint32(top))["neg_elbo"]
    np.testing.assert_array_equal(scores, anomaly_scores(model, x, "neg_elbo", seed=top)["neg_elbo"])


def test_the_regret_of_far_items_in_float32_is_float64s_not_zero(model):
    """An ELBO of about -5e29 has gradients whose squares overflow float32 in Adam: unweighted, the refit stood
    still and the regret read 0 (the most normal score) where float64 gives 2e27."""
    x = torch.tensor([[0.1, -0.2, 0.3], [1e12, 0, 0], [1e15, 0, 0], [1e18, 0, 0]])
    settings = dict(steps=3, samples=2)
    f32 = anomaly_scores(model, x, "likelihood_regret", **settings)["likelihood_regret"]
    wide = copy.deepcopy(model).double()
    f64 = anomaly_scores(wide, x.double(), "likelihood_regret", **settings)["likelihood_regret"]
    assert f64[2] > 1e26 and (np.diff(f32) > 0).all()  # farther rows: higher regret
    np.testing.assert_allclose(f32, f64, rtol=1e-4)


def test_an_item_whose_elbo_float32_cannot_hold_scores_inf(model):
    x = torch.tensor([[0.1, -0.2, 0.3], [1e30, 0, 0]])  # its squared distance: beyond float32's 3.4e38
    regret = anomaly_scores(model, x, "likelihood_regret", steps=2, samples=2)["likelihood_regret"]
    assert np.isfinite(regret[0]) and regret[1] == np.inf


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """A one-epoch run of plain vectors (a .npy of (40, 2) rows: no table.json), and two CSV files of such rows."""
    tmp = tmp_path_factory.mktemp("anomaly_r3")
    np.save(tmp / "vec.npy", np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32))
    assert main(train_argv(tmp / "vec.npy", tmp / "run", "--hidden", "8", "--latent-dim", "2")) == 0
    (tmp / "two.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp / "gap.csv").write_text("a,b\n1,2\n3,4\n,1\n2,2\n")
    return tmp


def test_a_vector_run_scores_a_two_row_file_under_split_all(vectors, capsys):
    out = vectors / "two_scores.csv"
    argv = ["anomaly", str(vectors / "run"), "--data", str(vectors / "two.csv"), "--split", "all"]
    assert main([*argv, "--score", "neg_elbo", "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.read_text().splitlines()[0] == "index,neg_elbo" and len(out.read_text().splitlines()) == 3
    assert main([*argv[:-1], "test", "--score", "neg_elbo", "--out", str(out)]) != 0  # a split needs 3
    assert "need at least 3 to split into train/val/test" in capsys.readouterr().err


def test_a_vector_runs_verb_refuses_gaps_with_advice_it_can_take(vectors, capsys):
    argv = ["anomaly", str(vectors / "run"), "--data", str(vectors / "gap.csv"), "--split", "all"]
    assert main([*argv, "--score", "neg_elbo", "--out", str(vectors / "s.csv")]) != 0
    err = capsys.readouterr().err
    assert (
        "missing value '' on line 4, column index 0 ('a'); this run was trained with data.missing=refuse, so its "
        in err
    )
    assert "verbs take no gaps: remove or fill them, or train a run with data.missing=mean" in err
    assert "set data.missing" not in err
