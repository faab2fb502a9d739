"""The detector as scikit-learn and PyOD users drive it: parameters refused before training and named as they
were passed, one seed giving the same scores with the caller's random state kept, pickling inside a Pipeline,
GridSearchCV with a scorer that reads labels, PyOD's names as the guide maps them, a run folder (``out``) that
scores as the detector did and is not overwritten unasked, wrapped runs scored as ``vaekit anomaly`` scores
them (binarised, a table's categories encoded), and rows out of range refused rather than scored as normal."""

from __future__ import annotations

import copy
import csv
import io
import json
import pickle
import random
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vaekit
from tests.conftest import tiny_config
from vaekit.cli import main
from vaekit.evaluation import detector
from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.detector_fit import Prestandardized
from vaekit.training import fit as training_fit

SCORING = dict(samples=2, iw_samples=4, steps=3)  # what shapes the scores, of a wrapped run too
TINY = dict(epochs=2, hidden=(4,), latent_dim=2, **SCORING)


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
        ({"image_shape": (8, 8)}, r"^image_shape must be \(C, H, W\), three whole numbers >= 1, got \(8, 8\)$"),
        ({"image_shape": (64,)}, r"^image_shape must be \(C, H, W\)"),  # both were taken
        ({"image_shape": (1, 8, 8.0)}, r"^image_shape must be \(C, H, W\)"),
        ({"overwrite": "yes"}, r"^overwrite must be True or False"),
    ],
)
def test_bad_parameters_are_named_before_anything_trains(params, match, rows, monkeypatch):
    monkeypatch.setattr(detector, "trained", lambda *a, **k: pytest.fail("trained first"))
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


def test_random_state_none_draws_a_fresh_seed_that_seed_keeps(rows, tmp_path):
    """None meant seed 0, the same scores every fit; now a fresh seed per fit (the callers' RNGs untouched), kept in
    ``seed_`` and in the run folder's config, which repeats the fit bit for bit."""
    seed_globals(7)
    expected = global_draws()
    seed_globals(7)
    a = VAEAnomalyDetector(random_state=None, out=str(tmp_path / "det"), **TINY).fit(rows[0])
    b = VAEAnomalyDetector(random_state=None, **TINY).fit(rows[0])
    assert global_draws() == expected
    x = np.vstack(rows)
    assert a.seed_ != b.seed_ and not np.array_equal(a.score_samples(x), b.score_samples(x))
    assert json.loads((tmp_path / "det" / "config.json").read_text())["train"]["seed"] == a.seed_
    again = VAEAnomalyDetector(random_state=a.seed_, **TINY).fit(rows[0])
    np.testing.assert_array_equal(again.score_samples(x), a.score_samples(x))


def test_a_column_far_from_zero_keeps_its_variation(rows):
    """A column of 1.7e9 + 20 t was cast to float32 (steps of 128) before it was standardised: it reached the VAE
    as one value (scale 0), and its rows scored by their raw distance. Standardised in float64 first, it scores as
    the same column without its offset (the float64 reference; AUROC 0.95 against 0.50 cast first, 100 epochs)."""
    x = rows[0] * [20.0, 1.0, 1.0]
    x[:, 0] -= x[:, 0].mean()  # 1.7e9 is a float32: the offset column's loc is it, its standardised rows these
    far = np.vstack(rows) * [20.0, 1.0, 1.0]
    offset = np.array([1.7e9, 0.0, 0.0])
    params = {**TINY, "epochs": 10, "batch_size": 16, "lr": 1e-2}  # 40 steps: enough to learn the column's spread
    ref, det = (VAEAnomalyDetector(**params).fit(x + shift) for shift in (0.0, offset))
    np.testing.assert_allclose(det.scale_, ref.scale_, rtol=1e-6)
    np.testing.assert_allclose(det.score_samples(far + offset), ref.score_samples(far), rtol=1e-4)


def test_a_standardised_table_s_model_starts_as_fit_config_seeds_it_and_is_wrapped_once(rows, monkeypatch):
    """The detector trains through ``fit_config(wrap=...)``: the networks are allocated right after the seed, as a
    plain fit's, and then wrapped once (data.standardize "true" leaves a ``Prestandardized`` as it is)."""
    starts, train = [], training_fit.train_model

    def started(model, data, cfg, **kwargs):  # the model the trainer is handed, as it starts
        starts.append((copy.deepcopy(model), cfg))
        return train(model, data, cfg, **kwargs)

    monkeypatch.setattr(training_fit, "train_model", started)
    VAEAnomalyDetector(**{**TINY, "random_state": 3}).fit(rows[0])
    ((start, cfg),) = starts
    assert type(start) is Prestandardized and type(start.model) is vaekit.VAE and cfg.data.standardize == "true"
    torch.manual_seed(3)
    fresh = training_fit.allocated(cfg).state_dict()  # the seeded start, bit for bit
    assert all(torch.equal(v, fresh[k]) for k, v in start.model.state_dict().items())


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


def cli_scores(run, data, score: str, out) -> np.ndarray:
    """``vaekit anomaly run --data data --split all --score score``: the (N,) column written, in file order."""
    assert main(["anomaly", str(run), "--data", str(data), "--split", "all", "--score", score, "--out", str(out)]) == 0
    with open(out, newline="") as f:
        return np.array([float(r[score]) for r in csv.DictReader(f)])


def test_a_run_folder_scores_as_the_detector_and_is_not_overwritten(tmp_path, capsys):
    """``out`` keeps the columns' units (standardize.json; the wrapped run scored 0.54 AUROC for 1.0), records no
    data of its own, and is refused as a target again unless ``overwrite``."""
    rng = np.random.default_rng(0)
    x = rng.normal(loc=50, scale=[1, 10, 100, 0.1], size=(80, 4))
    out = tmp_path / "det"
    fitted = VAEAnomalyDetector(out=str(out), **TINY).fit(x)
    wrapped = VAEAnomalyDetector.from_run(out, **SCORING).fit(x)
    np.testing.assert_array_equal(wrapped.score_samples(x), fitted.score_samples(x))
    np.testing.assert_allclose(json.loads((out / "standardize.json").read_text())["loc"], x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(wrapped.loc_, fitted.loc_)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b,c,d", comments="")
    recon = VAEAnomalyDetector.from_run(out, method="recon_error").fit(x).score_samples(x)
    np.testing.assert_allclose(
        cli_scores(out, tmp_path / "x.csv", "recon_error", tmp_path / "s.csv"), -recon, rtol=1e-4
    )
    assert json.loads((out / "config.json").read_text())["data"]["spec"] == ""
    capsys.readouterr()
    assert main(["anomaly", str(out), "--out", str(tmp_path / "t.csv")]) == 2  # it was mnist5k's shapes
    assert "trained on data passed in memory: name the data to use" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^out .*det: already holds a run; pass overwrite=True to replace it$"):
        VAEAnomalyDetector(out=str(out), **{**TINY, "latent_dim": 1}).fit(x)
    again = VAEAnomalyDetector(out=str(out), overwrite=True, **{**TINY, "latent_dim": 1}).fit(x)
    assert VAEAnomalyDetector.from_run(out).fit(x).models_[0].latent_dims == again.models_[0].latent_dims == [1]


@pytest.mark.parametrize("fault", [lambda x: x * 16, lambda x: x - 1], ids=["times-16", "minus-1"])
def test_a_bernoulli_detector_refuses_rows_outside_its_support(fault):
    """Grey images in [0, 1] train; the same digits forgotten undivided (0..16) or shifted were scored normal."""
    x = np.random.default_rng(0).random((40, 16))
    det = VAEAnomalyDetector(image_shape=(1, 4, 4), likelihood="bernoulli", **TINY).fit(x)
    with pytest.raises(ValueError, match=r"^X: values in .* lie outside the bernoulli likelihood's support"):
        det.score_samples(fault(x[:5]))


def test_far_rows_are_scored_in_float64_and_unscorable_ones_refused(rows):
    """A value of 1e39 overflowed float32 and scored NaN, an inlier; 1e300 overflows float64: refused, named."""
    det = VAEAnomalyDetector(**TINY).fit(rows[0])
    far = np.zeros((3, 3))
    far[:, 0] = [1e20, 1e39, 1e60]
    scores = det.score_samples(far)
    assert np.isfinite(scores).all() and (scores < det.offset_).all() and (det.predict(far) == -1).all()
    with pytest.raises(ValueError, match=r"^X: 1 row\(s\) score as no finite number \(row 1 first\)"):
        det.score_samples(np.array([[0.0, 0, 0], [-1e300, 0, 0]]))
    with pytest.raises(ValueError, match=r"^X: column 0 holds values up to .*e\+150, beyond float32's range"):
        VAEAnomalyDetector(**TINY).fit(rows[0] * 1e150)  # its standard deviation was inf: NaN scores


def test_a_dataframe_fits_and_predicts_without_warnings(rows):
    """fit scored its validated ndarray by the public score_samples: sklearn warned of missing feature names."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows[0], columns=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det = VAEAnomalyDetector(**TINY).fit(frame)
        det.predict(frame)
    assert list(det.feature_names_in_) == ["a", "b", "c"]


def test_a_binarised_image_run_is_scored_as_vaekit_anomaly_scores_it(tmp_path):
    """The run trained on binarised grey images: rows are drawn once as the CLI draws a file's (rank correlation
    0.32 for recon_error when scored grey)."""
    x = np.random.default_rng(0).random((30, 1, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = vaekit.train(tiny_config(str(tmp_path / "x.npy"), tmp_path / "run"), pictures=False)
    assert run.config.data.binarize == "dynamic"
    det = VAEAnomalyDetector.from_run(run.path, method="recon_error").fit(x.reshape(30, -1))
    cli = cli_scores(run.path, tmp_path / "x.npy", "recon_error", tmp_path / "s.csv")
    np.testing.assert_allclose(-det.score_samples(x.reshape(30, -1)), cli, rtol=1e-4)
    with pytest.raises(ValueError, match=r"lie outside \[0, 1\], which the run's binarisation"):
        det.score_samples(x.reshape(30, -1) * 2)


def test_a_table_run_with_a_categorical_column_takes_a_dataframe(tmp_path):
    """Rows of a run with a text column are encoded by its schema, by column name (an ndarray of its numbers was
    'X has 2 features, the run's items have shape (5,)'; its strings 'could not convert string to float')."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(5, 2, size=40), "c": rng.choice(list("xyz"), 40)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    run = vaekit.train(tiny_config(str(tmp_path / "t.csv"), tmp_path / "run"), pictures=False)
    det = VAEAnomalyDetector.from_run(run.path).fit(frame)
    cli = cli_scores(run.path, tmp_path / "t.csv", "neg_elbo", tmp_path / "s.csv")
    np.testing.assert_allclose(-det.score_samples(frame[["c", "b", "a"]]), cli, rtol=1e-4)  # by name
    assert list(det.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"^this run's items encode categorical columns.*pass X as a pandas DataFrame"):
        VAEAnomalyDetector.from_run(run.path).fit(frame[["a", "b"]].to_numpy())
    odd = frame.assign(c="w")
    with pytest.raises(ValueError, match=r"^X: category 'w' in row 0, column index 2 \('c'\), is not one of the run's"):
        det.score_samples(odd)
    gap = frame.copy()
    gap.loc[1, "a"] = np.nan
    with pytest.raises(ValueError, match=r"^X: missing value \(NaN\) in row 1, column index 0 \('a'\); this run"):
        det.score_samples(gap)  # was "missing value ''", as a file's empty cell is quoted
    with pytest.raises(ValueError, match=r"needs a hierarchical model .*; this VAE has 1 latent level\(s\)$"):
        VAEAnomalyDetector.from_run(run.path, method="llr").fit(frame)  # was "this Standardized", the wrapper


@pytest.fixture(scope="module")
def wrapped_run(rows, tmp_path_factory):
    """The run folder of a detector fitted on the normal rows."""
    out = tmp_path_factory.mktemp("wrapped") / "det"
    VAEAnomalyDetector(out=str(out), **TINY).fit(rows[0])
    return str(out)


TRAINS = [("epochs", 999), ("latent_dim", 99), ("hidden", (8,)), ("hidden", 4), ("likelihood", "bernoulli")]
TRAINS += [("net", "conv"), ("batch_size", 7), ("lr", 0.1), ("beta", 2.0), ("holdout", 0.2), ("device", "meta")]
TRAINS += [("out", "elsewhere"), ("overwrite", True)]


@pytest.mark.parametrize(
    "params,said",
    [
        ({k: v}, f"{k}={v!r} has no effect on a wrapped run (run={{run}}): its model is trained already")
        for k, v in TRAINS
    ]
    + [
        (dict(image_shape=(1, 3, 1)), "image_shape (1, 3, 1): the wrapped run's items (run={run}) are (3,)"),
        (dict(scales=(1, 2)), "scales (1, 2): the wrapped folder (run={run}) gives its own, (1,): leave scales out"),
    ],
)
def test_a_wrapped_run_refuses_parameters_that_train_a_model(wrapped_run, rows, params, said):
    """They were ignored silently (``from_run(path, epochs=999, latent_dim=99)`` scored with the trained model)."""
    with pytest.raises(ValueError, match="^" + re.escape(said.format(run=repr(wrapped_run))) + "$"):
        VAEAnomalyDetector.from_run(wrapped_run, **params).fit(rows[0])


def test_a_wrapped_run_takes_the_parameters_that_score(wrapped_run, rows):
    params = dict(method="iwae_nll", contamination=0.2, random_state=5, hidden=[64, 64], scales=[1], **SCORING)
    det = VAEAnomalyDetector.from_run(wrapped_run, **params).fit(rows[0])  # the default widths as a list
    again = clone(det).fit(rows[0])
    assert det.scales_ == (1,) and det.models_[0].latent_dims == [2] and again.offset_ == det.offset_
