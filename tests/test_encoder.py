"""``VAEEncoder`` as scikit-learn users drive it: posterior means in float64, in batches, equal to ``Run.encode``'s;
a Pipeline scored by cross-validation, pickling, cloning, a wrapped run folder refusing training parameters,
and NotFittedError before fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

import vaekit
from vaekit import run_chunks

X, _ = load_wine(return_X_y=True)  # (178, 13) float64, columns of very different scales


@pytest.fixture(scope="module")
def encoder() -> vaekit.VAEEncoder:
    return vaekit.VAEEncoder(latent_dim=3, hidden=(16,), epochs=1).fit(X)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("enc") / "run")
    model = vaekit.build_model(net="mlp", input_shape=(13,), latent_dim=3, hidden=[16], likelihood="gaussian")
    vaekit.fit(model, X, epochs=1, out=out, progress=False, seed=0)
    return out


def test_transform_gives_float64_posterior_means_in_batches(encoder, monkeypatch):
    sizes: list[int] = []
    encode = encoder.model_.encode
    monkeypatch.setattr(encoder.model_, "encode", lambda x, y=None: sizes.append(len(x)) or encode(x, y))
    monkeypatch.setattr(run_chunks, "ENCODE_BATCH", 50)
    z = encoder.transform(X)
    assert z.shape == (178, 3) and z.dtype == np.float64 and sizes == [50, 50, 50, 28]
    with torch.no_grad():
        mean = encode(torch.tensor(X)).mean.numpy()  # the model takes the table's units
    np.testing.assert_allclose(z, mean, rtol=0, atol=1e-12)
    assert list(encoder.get_feature_names_out()) == ["vaeencoder0", "vaeencoder1", "vaeencoder2"]


def test_from_run_embeds_as_run_encode_and_refuses_training_parameters(folder):
    enc = vaekit.VAEEncoder.from_run(folder).fit(X)
    expected = vaekit.load_run(folder).encode(X).mean.numpy()  # float32
    np.testing.assert_allclose(enc.transform(X), expected, rtol=0, atol=1e-5)
    assert enc.transform(X).dtype == np.float64 and enc.get_feature_names_out().shape == (3,)
    for changed in ({"epochs": 3}, {"latent_dim": 2}, {"hidden": (8,)}):
        with pytest.raises(ValueError, match=f"{next(iter(changed))}=.* no effect on a wrapped run"):
            vaekit.VAEEncoder.from_run(folder, **changed).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        vaekit.VAEEncoder.from_run(folder, image_shape=(1, 1, 13)).fit(X)
    with pytest.raises(ValueError, match="13 features"):
        vaekit.VAEEncoder.from_run(folder).fit(X).transform(X[:, :5])


def test_a_pipeline_on_digits_beats_chance():
    digits, y = load_digits(return_X_y=True)
    enc = vaekit.VAEEncoder(image_shape=(1, 8, 8), likelihood="bernoulli", hidden=(32,), epochs=2)
    pipe = make_pipeline(enc, LogisticRegression(max_iter=300))
    scores = cross_val_score(pipe, digits[:600] / 16.0, y[:600], cv=2)
    assert scores.min() > 0.3  # chance: 0.1


def test_pickle_clone_and_not_fitted(encoder):
    again = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(again.transform(X), encoder.transform(X))
    fresh = clone(encoder)
    assert fresh.get_params() == encoder.get_params() and fresh.get_params()["latent_dim"] == 3
    with pytest.raises(NotFittedError):
        fresh.transform(X)
    with pytest.raises(NotFittedError):
        fresh.get_feature_names_out()
    narrow = fresh.set_params(latent_dim=2, epochs=1).fit(X)
    assert narrow.transform(X).shape == (178, 2) and list(narrow.get_feature_names_out()) == [
        "vaeencoder0",
        "vaeencoder1",
    ]
