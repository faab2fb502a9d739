"""Anomaly detection, round 5: the detector scores by what it was fitted with, numpy's whole numbers as settings,
each score's draws from a stream of its own, the rate left out where it is one constant, a label column with gaps
for --normal, and what the guide says of thresholds and of a multi-scale folder's own training items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import train_argv
from tests.test_contract import make
from vaekit.cli import main
from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.scores import anomaly_scores, scores_that_apply, settings_for

DOCS = Path(__file__).parents[1] / "docs"
ROWS = np.random.default_rng(0).random((40, 4))  # (40, 4) in [0, 1]: a table, or 1 x 2 x 2 images
TINY = dict(epochs=2, hidden=(8,), latent_dim=2)


def test_the_detector_scores_by_the_method_and_settings_it_was_fitted_with():
    det = VAEAnomalyDetector(**TINY).fit(ROWS)
    normal = det.score_samples(ROWS)
    assert np.array_equal(det.set_params(iw_samples=3).score_samples(ROWS), normal)  # neg_elbo does not read it
    for changed, said in [({"method": "recon_error"}, "method='recon_error'"), ({"samples": 2}, "samples=2")]:
        det.set_params(**changed)
        for score in (det.score_samples, det.predict, det.scale_scores):
            with pytest.raises(ValueError, match=rf"^{said} set since fit, which scored by .*: refit"):
                score(ROWS)
        det.set_params(method="neg_elbo", samples=8)
    assert np.array_equal(det.score_samples(ROWS), normal)
    assert det.set_params(samples=2).fit(ROWS).settings_ == {"samples": 2}  # a refit scores by them


def test_numpy_whole_numbers_are_taken_as_settings():
    det = VAEAnomalyDetector(**TINY, image_shape=(1, 2, 2)).fit(ROWS)
    arrays = {**TINY, "hidden": np.array([8]), "image_shape": np.array([1, 2, 2]), "samples": np.int64(8)}
    same = VAEAnomalyDetector(**arrays).fit(ROWS)
    assert np.array_equal(same.score_samples(ROWS), det.score_samples(ROWS)) and type(same.settings_["samples"]) is int


def test_llr_takes_a_numpy_k():
    model, x, _ = make("ladder")
    got = anomaly_scores(model, x[:4], "llr", llr_k=np.int64(1), samples=2)["llr"]
    assert np.array_equal(got, anomaly_scores(model, x[:4], "llr", llr_k=1, samples=2)["llr"])


def test_a_hierarchy_s_scores_do_not_depend_on_the_others_asked_for():
    model, x, _ = make("ladder")
    names = ["complexity", "kl", "llr", "neg_elbo", "iwae_nll"]
    kw = dict(batch_size=4)  # several batches: each stream carries on
    alone = {n: anomaly_scores(model, x[:10], n, **settings_for(n, samples=2, iw_samples=3), **kw)[n] for n in names}
    together = anomaly_scores(model, x[:10], names[::-1], samples=2, iw_samples=3, **kw)
    assert all(np.array_equal(together[n], v) for n, v in alone.items())


def test_the_rate_is_left_out_where_it_is_one_constant():
    vq, x, _ = make("vq")
    assert "kl" not in scores_that_apply(vq.eval(), True, x[:1])  # uniform prior: H * W * log K for every item
    assert np.ptp(anomaly_scores(vq, x[:5], "kl")["kl"]) == 0
    vq.set_prior_fitted()  # -log p(codes) under its PixelCNN: it may vary
    assert "kl" in scores_that_apply(vq, True, x[:1])
    gumbel, x, _ = make("gumbel")
    assert "kl" in scores_that_apply(gumbel.eval(), True, x[:1]) and np.ptp(anomaly_scores(gumbel, x, "kl")["kl"]) > 0


@pytest.fixture(scope="module")
def wines(tmp_path_factory) -> Path:
    """A table run trained on rows with a class column it does not model, and rows two of which have no class."""
    tmp, rng = tmp_path_factory.mktemp("anomaly_r5"), np.random.default_rng(0)
    (tmp / "train.csv").write_text("a,b,class\n" + "".join(f"{a:.3f},{b:.3f},0\n" for a, b in rng.normal(size=(30, 2))))
    assert main(train_argv(tmp / "train.csv", tmp / "run", "--hidden", "8", "--latent-dim", "2")) == 0
    rows = [(*rng.normal(size=2) * (1 + 9 * c), "" if i in (2, 7) else c) for i, c in enumerate([0] * 6 + [1] * 4)]
    (tmp / "gaps.csv").write_text("a,b,class\n" + "".join(f"{a:.3f},{b:.3f},{c}\n" for a, b, c in rows))
    return tmp


@pytest.mark.parametrize("named", [[], ["--label-column", "class"]])
def test_normal_evaluates_the_labelled_rows_of_a_column_with_gaps(wines, named, capsys):
    argv = ["anomaly-eval", str(wines / "run"), "--data", str(wines / "gaps.csv"), "--normal", "0", "--json", *named]
    assert main([*argv, "--score", "recon_error"]) == 0
    out, err = capsys.readouterr()
    assert (json.loads(out)["n_in"], json.loads(out)["n_out"]) == (5, 3)  # rows 2 and 7 have no class
    assert "2 rows with gaps left out" in err


def test_the_guide_says_whose_items_a_threshold_and_a_folder_s_example_read():
    guide = " ".join((DOCS / "guides" / "anomaly.md").read_text().split())
    assert "may differ from FRACTION either way" in guide
    assert "include the detector's own training zeros" in guide
    tutorial = (DOCS / "tutorial.md").read_text()
    assert "-detector.score_samples(held_out))  # negated: higher = more anomalous" in tutorial


def test_a_detector_trains_on_the_constant_column_scale_its_model_scores_with():
    from torch.distributions import Independent, Normal

    from vaekit.evaluation.detector_fit import Prestandardized
    from vaekit.models.standardized import Standardized, column_stats

    x = torch.tensor([[1.0, 2e6], [3.0, 2e6], [2.0, 2e6]])
    loc, scale = column_stats(x)
    model = torch.nn.Linear(1, 2)  # p(x|z) is given: the wrapper reads its units alone
    pre, units = Prestandardized(model, loc, scale), Standardized(model, loc, scale)
    px = Independent(Normal(torch.zeros(3, 2), torch.ones(3, 2)), 1)
    y = x + torch.tensor([0.0, 100.0])  # the constant column moved by 0.005%
    torch.testing.assert_close(pre.outside(px).log_prob(units.inside(y)), units.outside(px).log_prob(y))
