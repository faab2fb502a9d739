"""A multi-scale detector's ``out`` read back: a run per scale and scales.json, so ``from_run(out)`` scores as the
fitted detector did; another method, a damaged or missing piece, or a stale scales.json refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.test_anomaly import stripes
from vaekit.evaluation import detector
from vaekit.evaluation.detector import VAEAnomalyDetector

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
    assert json.loads((out / "scales.json").read_text())["factors"] == [2, 4]


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(method="recon_error", samples=2), "pass method='neg_elbo', samples=2"),
        (dict(samples=8), "pass method='neg_elbo', samples=2"),  # the statistics are of 2 draws' scores
        (dict(scales=(2, 4)), "gives its own"),
    ],
)
def test_from_run_refuses_what_the_folder_contradicts(fitted, params, match):
    with pytest.raises(ValueError, match=match) as e:
        VAEAnomalyDetector.from_run(fitted[1], **params).fit(stripes(10, 0))
    one_line(e)


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
