"""A multi-scale detector's ``out`` read back: a run per scale and scales.json, so ``from_run(out)`` scores as the
fitted detector did; another method, a damaged or missing piece, or a stale scales.json refused in one line."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import warnings

import numpy as np
import pytest

from tests.test_anomaly import stripes
from vaekit.cli import main
from vaekit.evaluation import detector
from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.scores import detection_metrics

TINY = dict(image_shape=(1, 8, 8), scales=(2, 4), epochs=3, hidden=(16,), latent_dim=2, samples=2)  # no factor 1


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(a multi-scale detector fitted on stripes with ``out``, that folder)."""
    out = tmp_path_factory.mktemp("scales") / "det"
    return VAEAnomalyDetector(out=str(out), **TINY).fit(stripes(40, 0)), out


def one_line(e: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(e.value)
    return str(e.value)


def test_from_run_scores_as_the_fitted_detector(fitted):
    det, out = fitted
    x, z = stripes(40, 0), np.vstack([stripes(6, 1), stripes(3, 2, left=False)])
    back = VAEAnomalyDetector.from_run(out, samples=2).fit(x)  # the same score settings and random_state
    assert back.scales_ == (2, 4) and back.input_shape_ == (1, 8, 8) and len(back.models_) == 2
    np.testing.assert_array_equal(back.score_loc_, det.score_loc_)  # full precision through the JSON
    np.testing.assert_array_equal(back.score_samples(z), det.score_samples(z))
    np.testing.assert_array_equal(back.scale_scores(z), det.scale_scores(z))
    assert back.offset_ == det.offset_ and back.scales == (1,)  # the parameter stays as passed
    same = VAEAnomalyDetector.from_run(out, samples=2, scales=(2, 4), image_shape=(1, 8, 8)).fit(x)  # the folder's
    np.testing.assert_array_equal(same.score_samples(z), det.score_samples(z))
    assert json.loads((out / "scales.json").read_text())["factors"] == [2, 4]


def test_a_detector_pickled_before_scales_were_fitted_scores_as_before(fitted):
    det, z = fitted[0], stripes(6, 1)
    state = pickle.loads(pickle.dumps(det)).__getstate__()
    del state["scales_"]  # as pickled before the attribute existed
    old = VAEAnomalyDetector.__new__(VAEAnomalyDetector)
    old.__setstate__(state)
    assert old.scales_ == (2, 4)
    np.testing.assert_array_equal(old.score_samples(z), det.score_samples(z))


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(method="recon_error", samples=2), "pass method='neg_elbo', samples=2"),
        (dict(samples=8), "pass method='neg_elbo', samples=2"),  # the statistics are of 2 draws' scores
        (
            dict(samples=2, scales=(1, 2)),
            r"^scales \(1, 2\): the wrapped folder \(run='.*det'\) gives its own, \(2, 4\)",
        ),
        (dict(samples=2, scales=(4, 2)), "gives its own"),  # another order: scale_scores' columns in another
        (dict(samples=2, epochs=9), r"^epochs=9 has no effect on a wrapped run \(run='.*det'\): its model is trained"),
    ],
)
def test_from_run_refuses_what_the_folder_contradicts(fitted, params, match):
    with pytest.raises(ValueError, match=match) as e:
        VAEAnomalyDetector.from_run(fitted[1], **params).fit(stripes(10, 0))
    one_line(e)


@pytest.mark.parametrize(
    "n,params,match",
    [(n, {}, rf"^X: scales \(2, 4\) need at least 4 rows \(2 held out .*\), got {n}$") for n in (1, 2, 3)]
    + [(40, dict(scales=(2, 2)), r"^scales \(2, 2\): a factor listed twice"), (40, dict(scales=(1, 2, 1)), "twice")],
)
def test_too_few_rows_or_a_factor_twice_is_refused_before_anything_trains(monkeypatch, n, params, match):
    """2 rows held out none (NaN statistics, numpy's warnings, then 'score as no finite number'), 3 held out one
    (its standard deviation 0 taken as 1); a factor listed twice was trained twice and weighed double."""
    monkeypatch.setattr(detector, "trained", lambda *a, **k: pytest.fail("trained first"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=match) as e:
            VAEAnomalyDetector(**{**TINY, **params}).fit(stripes(n, 0))
    one_line(e)


def test_four_rows_hold_out_two():
    det = VAEAnomalyDetector(**TINY).fit(stripes(4, 0))
    assert (det.score_scale_ != 1.0).all() and np.isfinite(det.score_samples(stripes(2, 1))).all()


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda d: (d / "scales.json").write_text("{not json"), "scales.json: not valid JSON"),
        (lambda d: (d / "scales.json").write_text('{"factors": [2, 4]}'), "scales.json: it must hold"),
        (lambda d: shutil.rmtree(d / "scale-1"), "scale-1: no run folder"),
    ]
    + [
        (lambda d, k=k, v=v: patch_json(d / "scales.json", k, v), f"scales.json: {k}")
        for k, v in [("score_loc", [0.0]), ("score_scale", [1.0, 0.0]), ("factors", [2, 3]), ("image_shape", [8, 8])]
        + [("settings", {"samples": 2, "random_state": 3}), ("settings", {"samples": "2"})]
    ],
)
def test_a_damaged_folder_is_one_line(fitted, tmp_path, damage, match):
    folder = shutil.copytree(fitted[1], tmp_path / "det")
    damage(folder)
    with pytest.raises(ValueError, match=match) as e:
        VAEAnomalyDetector.from_run(folder, samples=2).fit(stripes(10, 0))
    one_line(e)


def patch_json(path, key, value):
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, key: value}))


def test_a_fit_that_fails_leaves_no_scales_json(fitted, tmp_path, monkeypatch):
    folder = shutil.copytree(fitted[1], tmp_path / "det")
    with pytest.raises(ValueError, match="multi-scale detector") as e:  # a single run there would hide it
        VAEAnomalyDetector(out=str(folder), image_shape=(1, 8, 8), epochs=1).fit(stripes(10, 0))
    one_line(e)
    single = VAEAnomalyDetector(out=str(folder / "one"), image_shape=(1, 8, 8), epochs=1).fit(stripes(10, 0))
    with pytest.raises(ValueError, match="one: already holds a run"):  # scales.json there would hide that run
        VAEAnomalyDetector(out=single.out, **TINY).fit(stripes(40, 0))
    with pytest.raises(ValueError, match="holds a run, which a multi-scale detector's folder cannot replace"):
        VAEAnomalyDetector(out=single.out, overwrite=True, **TINY).fit(stripes(40, 0))  # its files would stay
    for bad, x in (({"image_shape": (1, 4, 4)}, stripes(40, 0)), ({"likelihood": "bernoulli"}, 3 * stripes(40, 0))):
        with pytest.raises(ValueError, match=r"does not hold the 64 features|support"):  # before out is touched
            VAEAnomalyDetector(out=str(folder), overwrite=True, **{**TINY, **bad}).fit(x)
        assert (folder / "scales.json").is_file()
    calls, trained = [], detector.trained

    def fails_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return trained(*args, **kwargs)

    monkeypatch.setattr(detector, "trained", fails_second)
    with pytest.raises(RuntimeError, match="killed"):
        VAEAnomalyDetector(out=str(folder), overwrite=True, **TINY).fit(stripes(40, 0))
    assert not (folder / "scales.json").exists()  # the old one is gone with the runs it described
    with pytest.raises(ValueError, match=r"scales\.json: missing beside the scale-<i> runs"):
        VAEAnomalyDetector.from_run(folder, samples=2).fit(stripes(10, 0))


def columns(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_the_cli_scores_the_folder_as_the_detector(fitted, tmp_path, capsys):
    det, out = fitted
    x, far = np.vstack([stripes(6, 1), stripes(3, 2, left=False)]), stripes(5, 3, left=False)
    np.save(tmp_path / "images.npy", x.reshape(-1, 1, 8, 8))
    np.save(tmp_path / "rows.npy", x)  # rows as the detector fits them
    for name in ("images", "rows"):
        assert (
            main(["anomaly", str(out), "--data", str(tmp_path / f"{name}.npy"), "--out", str(tmp_path / "s.csv")]) == 0
        )
        got = columns(tmp_path / "s.csv")
        np.testing.assert_array_equal(got["index"], np.arange(9))
        # the file's items are read as float32, as every verb reads data
        np.testing.assert_allclose(got["neg_elbo_scales"], -det.score_samples(x), atol=1e-5)
        np.testing.assert_allclose(np.c_[got["neg_elbo_x2"], got["neg_elbo_x4"]], det.scale_scores(x), atol=1e-5)
    np.save(tmp_path / "far.npy", far)
    capsys.readouterr()
    assert main(["anomaly-eval", str(out), "--in", str(tmp_path / "rows.npy"), "--ood", str(tmp_path / "far.npy")]) == 0
    auroc = detection_metrics(-det.score_samples(x), -det.score_samples(far))["auroc"]
    assert f"| neg_elbo_scales | {auroc:.4f} |" in capsys.readouterr().out
    assert main(["anomaly-eval", str(out), "--data", "digits", "--normal", "0", "--limit", "20"]) == 0  # 8 x 8 too
    assert "20 in-distribution vs 20 out-of-distribution" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--contamination", "0.1"], "no training items here set a threshold"),
        (["--split", "test"], "no split of its own"),
        (["--score", "recon_error"], "standardises neg_elbo scores; score by --score neg_elbo"),
        (["--samples", "3"], "neg_elbo scores of samples=2"),
        (["--steps", "3"], "scores that do not read steps"),
        (["--data", "small.npy"], "items have shape (1, 4, 4), the detector in"),
        (["--samples", "8"], "neg_elbo scores of samples=2"),  # the default, typed: not replaced unseen
        (["--data"], "name the data to score (--data)"),  # none named
        (["--data", "bytes.npy"], "lie outside [0, 1], where the detector's images lie"),  # 0..255 rows
        (["--batch-size", "0"], "--batch-size must be > 0"),
        (["--seed", "-1"], "--seed must be in [0, 2**32)"),
        (["--limit", "0"], "--limit must be > 0"),
    ],
)
def test_the_cli_refuses_what_the_folder_cannot_answer(fitted, tmp_path, capsys, argv, match):
    np.save(tmp_path / "x.npy", stripes(4, 1))
    np.save(tmp_path / "small.npy", np.zeros((2, 1, 4, 4)))
    np.save(tmp_path / "bytes.npy", np.full((2, 64), 200, dtype=np.uint8))
    data = ["--data", str(tmp_path / "x.npy")] if "--data" not in argv else []
    given = [str(tmp_path / a) if a.endswith(".npy") else a for a in argv if argv != ["--data"]]
    code = main(["anomaly", str(fitted[1]), *data, *given, "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.splitlines()) == 1 and not (tmp_path / "s.csv").exists()
    if argv[0] in ("--limit", "--batch-size", "--samples"):  # anomaly-eval checks them as anomaly does
        both = ["--in", str(tmp_path / "x.npy"), "--ood", str(tmp_path / "x.npy")]
        assert main(["anomaly-eval", str(fitted[1]), *both, *argv]) == 2 and match in capsys.readouterr().err


def test_other_verbs_name_the_folder_a_detector(fitted, tmp_path, capsys):
    for argv in (["evaluate", fitted[1]], ["curves", fitted[1]], ["train", "--data", "digits", "--out", fitted[1]]):
        assert main([str(a) for a in argv]) == 2
        assert "holds a multi-scale anomaly detector (scales.json)" in capsys.readouterr().err
    np.save(tmp_path / "huge.npy", np.full((2, 1, 4, 4), 3e38, dtype=np.float32))  # a scale's run, far off
    argv = ["anomaly", fitted[1] / "scale-0", "--data", tmp_path / "huge.npy", "--score", "neg_elbo"]
    assert main([str(a) for a in [*argv, "--out", tmp_path / "s.csv"]]) == 2
    assert "neg_elbo is no finite number for any of the 2 items scored: their values" in capsys.readouterr().err
