"""The docs' quick budget caps what the pages score; the digits set is read back from vaekit's cache."""

from __future__ import annotations

import sys

import numpy as np
import torch

import vaekit
import vaekit.api
import vaekit.evaluation.metrics as metrics
import vaekit.evaluation.scores as scores
from tools import docs
from vaekit.config import ModelConfig
from vaekit.data import builtin
from vaekit.models import build_model

PATCHED = [(vaekit, "evaluate"), (vaekit, "fit"), (vaekit, "train"), (vaekit.api, "fit"), (vaekit.api, "train")]
PATCHED += [(vaekit.VAEAnomalyDetector, "fit"), (metrics, "probe_accuracy"), (scores, "anomaly_scores")]


def test_quick_caps_the_items_pages_score(monkeypatch):
    for owner, name in PATCHED:  # put back after the test
        monkeypatch.setattr(owner, name, getattr(owner, name))
    exec(docs.QUICK, {})
    assert metrics.probe_accuracy.keywords == {"limit": 600}
    model = build_model(ModelConfig(input_shape=[1, 4, 4], latent_dim=2, hidden=[8], likelihood="bernoulli"))
    x = torch.rand(150, 1, 4, 4)
    got = scores.anomaly_scores(model, x, ["neg_elbo"], samples=2)["neg_elbo"]
    assert got.shape == (100,)  # the first 100 items, in order
    np.testing.assert_allclose(got[:5], scores.anomaly_scores(model, x[:5], ["neg_elbo"], samples=2)["neg_elbo"])
    assert scores.anomaly_scores(model, x[:7], "neg_elbo", samples=2)["neg_elbo"].shape == (7,)


def test_digits_come_from_the_cache_without_sklearn(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    first = builtin.load_builtin("digits")  # built from scikit-learn, then cached
    assert [p.parent.name for p in tmp_path.rglob("*.npz")] == ["digits"]
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # a warm cache imports no sklearn
    again = builtin.load_builtin("digits")
    assert np.array_equal(again.x, first.x) and again.x.dtype == first.x.dtype and again.x.shape == (1797, 1, 8, 8)
    assert np.array_equal(again.y, first.y) and again.scale == 16.0


def test_a_damaged_digits_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    want = builtin.load_builtin("digits").x
    (path,) = tmp_path.rglob("*.npz")
    for bad in (path.read_bytes()[:5000], b"not a zip"):  # cut short, another file
        path.write_bytes(bad)
        assert np.array_equal(builtin.load_builtin("digits").x, want)
    np.savez(path, x=np.zeros((3, 8, 8)), y=np.zeros(3))  # a foreign cache: another shape
    assert np.array_equal(builtin.load_builtin("digits").x, want)
    with np.load(path) as z:
        assert z["x"].shape == (1797, 8, 8)  # written again
