"""The detector as scikit-learn and PyOD users drive it: parameters refused before training and named as they
were passed, one seed giving the same scores with the caller's random state kept, pickling inside a Pipeline,
GridSearchCV with a scorer that reads labels, and PyOD's names as the guide maps them."""

from __future__ import annotations

import io
import pickle
import random

import joblib
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit.evaluation import detector
from vaekit.evaluation.detector import VAEAnomalyDetector

TINY = dict(epochs=2, hidden=(4,), latent_dim=2, samples=2, iw_samples=4, steps=3)


@pytest.fixture(scope="module")
def rows():
    """(60 normal rows (60, 3), 8 far rows (8, 3))."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 3)), rng.normal(size=(8, 3)) + 6


@pytest.mark.parametrize(
    "params,match",
    [
        ({"likelihood": "foo"}, r"^likelihood must be one of .*got 'foo'$"),  # was KeyError: 'foo'
        ({"batch_size": 0}, r"^batch_size must be > 0, got 0$"),  # was taken as 1
        ({"epochs": 0}, r"^epochs must be > 0, got 0$"),  # was 'config: train.epochs ...'
        ({"lr": float("nan")}, r"^lr must be a finite number"),
        ({"samples": 0}, r"^samples must be > 0, got 0$"),  # was refused only once trained
        ({"method": "iwae_nll", "iw_samples": 0}, r"^iw_samples must be > 0"),
        ({"method": "likelihood_regret", "steps": -1}, r"^steps must be >= 0"),
        ({"random_state": np.random.RandomState(0)}, r"^random_state must be None or a whole number"),  # TypeError
        ({"random_state": -1}, r"^random_state must be"),  # was 'config: train.seed ...'
        ({"random_state": 2**32}, r"^random_state must be"),
        ({"random_state": 1.5}, r"^random_state must be"),  # was taken as 1
        ({"random_state": True}, r"^random_state must be"),
    ],
)
def test_bad_parameters_are_named_before_anything_trains(params, match, rows, monkeypatch):
    monkeypatch.setattr(detector, "fit_config", lambda *a, **k: pytest.fail("trained first"))
    with pytest.raises(ValueError, match=match):
        VAEAnomalyDetector(**{**TINY, **params}).fit(rows[0])


def test_hidden_as_one_width_is_one_layer(rows):
    """``hidden=4`` as PyOD-style users write one width (was a TypeError: 'int' object is not iterable)."""
    one = VAEAnomalyDetector(**{**TINY, "hidden": 4}).fit(rows[0])
    np.testing.assert_array_equal(
        one.score_samples(rows[1]), VAEAnomalyDetector(**TINY).fit(rows[0]).score_samples(rows[1])
    )


def seed_globals(seed: int) -> None:
    """Seed numpy's, Python's and torch's global RNGs: the caller's random state that fitting keeps."""
    np.random.seed(seed)  # noqa: NPY002 - the legacy global RNG is the one to keep
    random.seed(seed)
    torch.manual_seed(seed)


def global_draws() -> list[float]:
    """The next draw of numpy's, Python's and torch's global RNGs."""
    return [np.random.random(), random.random(), torch.rand(1).item()]  # noqa: NPY002


@pytest.mark.parametrize("method", ["neg_elbo", "iwae_nll", "likelihood_regret"])
def test_one_seed_one_set_of_scores_and_the_callers_rngs_kept(method, rows):
    seed_globals(123)
    expected = global_draws()
    seed_globals(123)
    a, b, c = (VAEAnomalyDetector(method, random_state=s, **TINY).fit(rows[0]) for s in (5, np.int64(5), 6))
    x = np.vstack(rows)
    scores = a.score_samples(x)
    assert global_draws() == expected
    assert np.array_equal(scores, b.score_samples(x))  # bit for bit
    assert not np.array_equal(scores, c.score_samples(x))


def test_a_pipeline_pickles_and_grid_search_reads_sklearn_labels(rows):
    x = np.vstack(rows)
    y = np.r_[np.ones(60), -np.ones(8)].astype(int)  # scikit-learn's: +1 inlier, -1 outlier
    pipe = make_pipeline(StandardScaler(), VAEAnomalyDetector(**{**TINY, "epochs": 5}))
    search = GridSearchCV(
        pipe,
        {"vaeanomalydetector__latent_dim": [1, 2]},
        scoring="roc_auc",
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(x, y)
    assert search.best_score_ > 0.9  # decision_function is higher for inliers, the greater label
    best = search.best_estimator_
    assert roc_auc_score(y == -1, -best.score_samples(x)) > 0.9  # PyOD's labels (1 = anomaly) and scores
    for dump, load in ((pickle.dumps, pickle.loads), (joblib_dumps, joblib.load)):
        np.testing.assert_array_equal(load(dump(best)).decision_function(x), best.decision_function(x))


def joblib_dumps(obj: object) -> io.BytesIO:
    """``obj`` joblib-dumped into a buffer, rewound for ``joblib.load``."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return buffer


def test_pyod_names_as_the_guide_maps_them(rows):
    """PyOD's threshold_, decision_scores_ and labels_ (1 = anomaly) from the detector, as the guide writes them."""
    x, far = rows
    det = VAEAnomalyDetector(contamination=0.1, **TINY).fit(x)
    decision_scores = -det.score_samples(x)  # PyOD: higher = more anomalous
    threshold = np.percentile(decision_scores, 100 * (1 - det.contamination))  # PyOD's threshold_
    assert np.isclose(threshold, -det.offset_)
    labels = (det.predict(x) == -1).astype(int)
    np.testing.assert_array_equal(labels, (decision_scores > threshold).astype(int))
    np.testing.assert_array_equal(det.fit_predict(x), det.predict(x))
    assert set(det.predict(np.vstack([x, far]))) == {-1, 1}
    assert not any(hasattr(det, a) for a in ("decision_scores_", "threshold_", "labels_", "predict_proba"))
