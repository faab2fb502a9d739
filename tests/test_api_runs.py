"""Runs of the user's own model classes (a script's, a notebook's: no folder rebuilds them): the scikit-learn
estimators wrap them as a loaded ``Run`` or through a skeleton (``model=``), ``vaekit curves`` plots them, and a
skeleton loads only where its submodules' classes are those model.json records."""

from __future__ import annotations

import copy
import json
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import clone
from torch import nn

import vaekit
from vaekit import VAEAnomalyDetector, VAEEncoder, files
from vaekit.cli import main
from vaekit.run_reads import weights_digest

D = 6  # features of the rows
QUIET = dict(progress=False, pictures=False)


def rows(n: int = 40, seed: int = 0) -> np.ndarray:
    """(n, D) float32 Gaussian rows."""
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def script_model(act: type[nn.Module] = nn.ReLU) -> nn.Module:
    """A VAE whose encoder's class is defined in a function, as in a script: its run loads into a skeleton only."""

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(D, 8), act())

        def forward(self, x):
            return self.net(x)

    torch.manual_seed(1)
    dec = nn.Sequential(nn.Linear(2, 8), act(), nn.Linear(8, D))
    return vaekit.VAE(Enc(), dec, latent_dim=2, likelihood="gaussian")


def plain_model(act: type[nn.Module] = nn.ReLU) -> nn.Module:
    """A VAE of torch's layers: model.json records a spec that rebuilds it."""
    torch.manual_seed(1)
    enc, dec = nn.Sequential(nn.Linear(D, 8), act()), nn.Sequential(nn.Linear(2, 8), act(), nn.Linear(8, D))
    return vaekit.VAE(enc, dec, latent_dim=2, likelihood="gaussian")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """{"script": a run folder of ``script_model``, "plain": one of ``plain_model``}, one epoch each."""
    root = tmp_path_factory.mktemp("runs")
    for name, make in (("script", script_model), ("plain", plain_model)):
        vaekit.fit(make(), rows(), epochs=1, out=root / name, **QUIET)
    return {"script": root / "script", "plain": root / "plain"}


def output(est, x: np.ndarray) -> np.ndarray:
    return est.transform(x) if isinstance(est, VAEEncoder) else est.score_samples(x)


def state(model: nn.Module) -> dict:
    """What fitting must leave as it was: the weights, their dtype and device, the mode."""
    p = next(model.parameters())
    return {"weights": copy.deepcopy(model.state_dict()), "how": (p.dtype, p.device, model.training)}


def same_state(a: dict, b: dict) -> bool:
    return a["how"] == b["how"] and all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])


@pytest.mark.parametrize("cls", [VAEEncoder, VAEAnomalyDetector])
def test_the_estimators_wrap_a_run_of_script_classes_as_a_run_or_by_a_skeleton(runs, cls):
    """Both said "load it ...: vaekit.load_run(path, model=...)" and took no model=; a Run was a pathlib error."""
    x, path = rows(12, seed=1), runs["script"]
    with pytest.raises(vaekit.VaekitError, match=r"cannot be rebuilt .*model=\.\.\."):
        cls(run=str(path)).fit(x)
    skeleton, run = script_model(), vaekit.load_run(path, model=script_model())
    before = state(skeleton), state(run.model)
    by_skeleton = cls(run=str(path), model=skeleton).fit(x)
    by_run = cls.from_run(run).fit(x)
    np.testing.assert_array_equal(output(by_skeleton, x), output(by_run, x))
    assert same_state(before[0], state(skeleton)) and same_state(before[1], state(run.model))  # copies were cast
    if cls is VAEEncoder:
        np.testing.assert_allclose(by_run.transform(x), run.encode(x).mean.double().numpy(), atol=1e-5)


@pytest.mark.parametrize("cls", [VAEEncoder, VAEAnomalyDetector])
def test_clones_share_the_run_and_the_skeleton_and_a_pickle_scores_alike(runs, cls):
    x, run = rows(12, seed=2), vaekit.load_run(runs["plain"])
    est, skeleton = cls(run=run), script_model()
    assert clone(est).run is run and clone(cls(run=str(runs["script"]), model=skeleton)).model is skeleton
    fitted = est.fit(x)
    again, back = clone(fitted).fit(x), pickle.loads(pickle.dumps(fitted))
    assert again.run is run and not hasattr(clone(fitted), "n_features_in_")  # a clone is unfitted
    np.testing.assert_array_equal(output(again, x), output(fitted, x))
    np.testing.assert_array_equal(output(back, x), output(fitted, x))
    with pytest.raises(ValueError, match=r"^model= takes a trained run's model \(run=\.\.\.\)"):
        cls(model=skeleton).fit(x)
    with pytest.raises(ValueError, match="the Run given holds its own: leave model out"):
        cls(run=run, model=skeleton).fit(x)
    with pytest.raises(ValueError, match="run must be a run folder's path or a vaekit Run, got a int"):
        cls(run=3).fit(x)


def test_curves_plots_a_run_of_script_classes_stamped_as_its_other_pictures(runs, tmp_path):
    """curves loaded the model for the weights' digest, so a run of script classes could not be plotted."""
    path = runs["script"]
    assert main(["curves", str(path)]) == 0
    assert files.stamp(path / files.CURVES) == vaekit.load_run(path, model=script_model()).digest
    assert weights_digest(runs["plain"]) == vaekit.load_run(runs["plain"]).digest  # the file's, as the model's
    wide = tmp_path / "wide"  # weights kept in float64: the model loads them cast, and its digest is of those
    shutil.copytree(runs["plain"], wide)
    save_file({k: v.double() for k, v in load_file(wide / files.WEIGHTS).items()}, wide / files.WEIGHTS)
    assert weights_digest(wide) is None  # curves then loads the run for it
    save_file({**load_file(runs["plain"] / files.WEIGHTS), "model.raw": torch.zeros(1)}, wide / files.WEIGHTS)
    assert weights_digest(wide) is None  # a VampPrior's pseudo-inputs of before f19d00c: loading converts them


@pytest.mark.parametrize("kind", ["script", "plain"])
def test_a_skeleton_of_other_submodule_classes_is_refused_naming_the_first(runs, kind, tmp_path):
    """A Tanh skeleton of a ReLU run loaded silently, its codes not the run's."""
    make, folder = (script_model, runs["script"]) if kind == "script" else (plain_model, tmp_path / "plain")
    if kind == "plain":  # a model.json written before it listed the submodules: its spec says what they were
        shutil.copytree(runs["plain"], folder)
        saved = json.loads((folder / files.MODEL).read_text())
        (folder / files.MODEL).write_text(json.dumps({k: v for k, v in saved.items() if k != "modules"}))
    where = "model.encoder.net.1" if kind == "script" else "model.encoder.1"
    said = f"{folder}: the model given is not the one trained (model.json records it): its submodule {where} is a "
    with pytest.raises(vaekit.VaekitError, match=f"^{re.escape(said)}Tanh where the trained model's is a ReLU$"):
        vaekit.load_run(folder, model=make(nn.Tanh))
    x = rows(4, seed=3)
    ok = vaekit.load_run(folder, model=make())
    assert torch.equal(ok.encode(x).mean, vaekit.load_run(runs[kind], model=make()).encode(x).mean)
