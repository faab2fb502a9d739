"""Run folders of earlier vaekit versions, made here by writing a run with today's code and editing its files as
those versions wrote them: a VampPrior's raw pseudo-inputs (before f19d00c), a user's Beta p(x|z) recorded as
'gaussian', a conditional run without classes.json (before 78e7efd) and one whose labels 1..3 were kept as numbers
(before 6a4e44f). Each is read as it was trained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.distributions import Independent, Normal

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.data import core, load_dataset
from vaekit.data.prepare import prepare_data
from vaekit.evaluation.metrics import evaluate
from vaekit.models.priors import PriorSettings, VampPrior
from vaekit.training import from_config

from .conftest import tiny_config, train_run
from .test_own_models import QUIET, BetaVAE


@pytest.mark.parametrize("likelihood, low, high", [("bernoulli", 0.0, 1.0), ("gaussian", -np.inf, np.inf)])
def test_a_vamp_prior_of_raw_pseudo_inputs_loads_as_their_values_in_the_datas_units(
    tiny_images, tmp_path, likelihood, low, high
):
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=1)
    cfg.model.prior, cfg.model.pseudo_inputs, cfg.model.likelihood = "vamp", 3, likelihood
    run = train_run(cfg, pictures=False)
    weights = load_file(run / files.WEIGHTS)
    raw = torch.randn_like(weights.pop("pz_module.u"))  # (K, *shape), as vaekit kept them before f19d00c
    u = low + (high - low) * torch.sigmoid(raw) if np.isfinite(low) else raw  # what its code drew from
    save_file(weights | {"pz_module.u": u}, run / "today.safetensors")
    save_file(weights | {"pz_module.raw": raw}, run / files.WEIGHTS)  # no checksum: written before one was kept
    old, new = vaekit.load_run(run), vaekit.Run.load(run, weights="today.safetensors")
    assert torch.equal(old.model.pz_module.u, u)
    (torch.manual_seed(0), (was := old.sample(4))), (torch.manual_seed(0), (now := new.sample(4)))
    assert torch.equal(was, now) and torch.equal(old.reconstruct(now), new.reconstruct(now))
    prior = VampPrior(4, tuple(raw.shape[1:]), PriorSettings(pseudo_inputs=3, low=low, high=high))
    prior.load_state_dict({"raw": raw})  # a state dict of that layout, loaded by torch itself
    assert torch.equal(prior.u, u) and list(prior.state_dict()) == ["u"]


class GaussVAE(BetaVAE):
    """The same networks with a Normal p(x|z)."""

    def decode(self, z, y=None):
        loc, raw = self.dec(z).chunk(2, -1)
        return Independent(Normal(loc, torch.nn.functional.softplus(raw) + 1e-3), 1)


@pytest.mark.parametrize("model, named", [(BetaVAE, "own:Beta"), (GaussVAE, "gaussian")])
def test_a_users_own_likelihood_recorded_as_gaussian_is_read_as_its_models_own(tmp_path, model, named):
    x = np.random.default_rng(0).beta(2, 5, (120, 16)).astype(np.float32)
    vaekit.fit(model(), x, out=tmp_path / "run", standardize="false", **QUIET)
    path = tmp_path / "run" / files.CONFIG
    d = json.loads(path.read_text().replace(f'"{named}"', '"gaussian"'))
    path.write_text(json.dumps({k: v for k, v in d.items() if k != "format"}))  # as vaekit wrote it before own:Beta
    run = vaekit.load_run(tmp_path / "run", model=model())
    assert run.config.model.likelihood == named
    path.write_text(json.dumps({**d, "format": 2}))  # a config of today's format names its own: none renamed
    assert vaekit.load_run(tmp_path / "run", model=model()).config.model.likelihood == "gaussian"
    np.save(tmp_path / "far.npy", x * 3)  # outside a Beta's support: `vaekit evaluate --data far.npy`'s path
    far = load_dataset(str(tmp_path / "far.npy"))
    if model is BetaVAE:
        with pytest.raises(vaekit.VaekitError, match=r"lie outside the Beta likelihood's support \[0, 1\]$"):
            evaluate(run, far, k=2, mode="none")
    else:
        assert np.isfinite(evaluate(run, far, k=2, mode="none")["nll"])


def labelled_csv(path, labels: list[str], n: int = 90):
    """Two numeric columns and a label column 'kind' cycling through ``labels``."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    path.write_text("a,b,kind\n" + "".join(f"{a[i]},{b[i]},{labels[i % len(labels)]}\n" for i in range(n)))
    return path


def cvae_run(csv, out):
    cfg = tiny_config(str(csv), out, epochs=1)
    cfg.model.family, cfg.data.label_column = "cvae", "kind"
    return train_run(cfg, pictures=False)


def test_a_conditional_run_from_before_classes_json_takes_its_classes_from_its_data(tmp_path):
    csv = labelled_csv(tmp_path / "t.csv", ["mid", "alpha", "zeta"])
    run = cvae_run(csv, tmp_path / "run")
    today = evaluate(vaekit.load_run(run), k=2)
    (run / files.CLASSES).unlink()  # as vaekit wrote it before 78e7efd: label 0 the first name sorted
    assert vaekit.load_run(run).classes is None  # a config of today's format: its data is not read for them
    d = json.loads((run / files.CONFIG).read_text())
    (run / files.CONFIG).write_text(json.dumps({k: v for k, v in d.items() if k != "format"}))
    old = vaekit.load_run(run)
    assert old.classes == ["alpha", "mid", "zeta"] and old.label_of("zeta") == 2
    assert evaluate(old, k=2) | {"seconds": 0} == today | {"seconds": 0}
    csv.rename(tmp_path / "moved.csv")  # its data gone: no class names to read a name by
    gone = vaekit.load_run(run)
    with pytest.raises(vaekit.VaekitError, match=r"label 'zeta': expected a class number \(this run records no"):
        gone.label_of("zeta")
    with pytest.raises(vaekit.VaekitError, match="'alpha' is no class number, and no class names are recorded"):
        evaluate(gone, load_dataset(str(tmp_path / "moved.csv"), label_column="kind"), k=2)


def test_a_conditional_run_whose_labels_1_to_3_were_kept_as_numbers_resumes(tmp_path, monkeypatch):
    """Labels 1..3 made a model of 4 classes before 6a4e44f (no classes.json), which today's loading numbers 0..2
    as classes "1".."3": the run's own data is numbered as its model numbers it, for evaluation as for a resume."""
    csv = labelled_csv(tmp_path / "t.csv", ["1", "2", "3"])
    with monkeypatch.context() as m:  # that vaekit's numbering: whole numbers >= 0 kept as they are
        m.setattr(core, "encode_labels", lambda y, where, num_classes=None: (np.asarray(y).astype(np.int64), None))
        m.setattr(from_config, "check_trained", lambda data, conditional: None)  # its empty class 0 unchecked
        run = cvae_run(csv, tmp_path / "run")
    assert json.loads((run / files.CONFIG).read_text())["model"]["num_classes"] == 4
    assert not (run / files.CLASSES).exists()
    own, _ = prepare_data(vaekit.load_run(run).config)
    assert (own.num_classes, own.classes, sorted(set(own.train.y.tolist()))) == (4, None, [1, 2, 3])
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert vaekit.load_run(run).config.model.num_classes == 4
