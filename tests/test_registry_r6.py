"""Entries the user registers (an objective, a prior, a family) in a process that has not registered them: a run
naming one loads where it can (the objective only trains), else says in one line how to make it known (Python:
import the module; the CLI: --import MODULE). A family's needs_labels as a property. vaekit.fit's record of its
split (no test split), which a CLI resume on a file of the same items follows."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.config import CHOICES, ModelConfig, RunConfig
from vaekit.core.objectives_zoo import OBJECTIVES
from vaekit.data.tables import table_options
from vaekit.models import MODELS, VAE, family_needs_labels
from vaekit.models.priors import PRIORS
from vaekit.training.state import recorded_state

PLUGIN = """
import torch
from torch import nn
from torch.distributions import Independent, Laplace
from vaekit.core.objectives import elbo
from vaekit.core.objectives_zoo import register_objective, run_model
from vaekit.models.priors import register_prior

@register_objective("r6-l1")
def l1(model, x, y, s):
    out = run_model(model, x, y, s)
    terms = elbo(out, x, s.beta)
    return terms | {"loss": terms["loss"] + 0.1 * out.z[0].abs().sum(1).mean()}

@register_prior("r6-laplace")
class LaplacePrior(nn.Module):
    def __init__(self, latent_dim, shape, s):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
    def forward(self, qz_of=None):
        return Independent(Laplace(self.loc, torch.ones_like(self.loc)), 1)
    def sample(self, n, temperature, qz_of=None):
        return self().sample((n,)) * temperature
"""
TINY = {"data": "digits", "limit": 100, "latent_dim": 2, "hidden": [16], "epochs": 1, "progress": False}


def forget(name: str) -> None:
    """The plugin's entries and module unknown, as in a fresh process."""
    for key in ("train.objective", "model.prior"):
        CHOICES[key] = tuple(c for c in CHOICES[key] if not c.startswith("r6-"))
    OBJECTIVES.pop("r6-l1", None)
    PRIORS.pop("r6-laplace", None)
    sys.modules.pop(name, None)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The name of a module of the user's (importable, not imported) that registers an objective and a prior."""
    name = f"r6plug_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    forget(name)


def test_objective_of_a_run_only_training_needs(plugin, tmp_path, capsys):
    importlib.import_module(plugin)
    out = tmp_path / "obj"
    vaekit.train(objective="r6-l1", out=str(out), pictures=False, **TINY)
    forget(plugin)
    assert vaekit.load_run(out).sample(2).shape == (2, 1, 8, 8)  # sampling needs no objective
    assert main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s.png")]) == 0
    unknown = r"train.objective names the objective 'r6-l1', which this process has not registered .*: import the"
    with pytest.raises(vaekit.VaekitError, match=unknown):
        vaekit.train(out=str(out), resume=True, epochs=2, pictures=False)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 2
    assert "vaekit --import MODULE train ..." in capsys.readouterr().err
    assert main(["--import", plugin, "train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert len(vaekit.load_run(out).history) == 2


def test_prior_of_a_run_and_of_a_config(plugin, tmp_path, capsys):
    importlib.import_module(plugin)
    out, png = tmp_path / "prior", str(tmp_path / "s.png")
    vaekit.train(prior="r6-laplace", out=str(out), pictures=False, **TINY)
    forget(plugin)
    with pytest.raises(
        vaekit.VaekitError, match=r"config.json: model.prior names the prior 'r6-laplace'.*register_prior"
    ):
        vaekit.load_run(out)
    assert main(["sample", str(out), "--n", "2", "--out", png]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.prior names the prior 'r6-laplace'" in err
    assert "vaekit --import MODULE sample ..." in err
    assert main(["--import", plugin, "sample", str(out), "--n", "2", "--out", png]) == 0
    forget(plugin)
    toml = tmp_path / "plug.toml"
    toml.write_text('[data]\nspec = "digits"\nlimit = 100\n[model]\nprior = "r6-laplace"\nlatent_dim = 2\n')
    argv = ["train", "--config", str(toml), "--epochs", "1", "--quiet", "--out", str(tmp_path / "t")]
    assert main(["--import", plugin, *argv]) == 0


def test_import_option_refusals(capsys):
    assert main(["--import", "no_such_module_r6", "data"]) == 2
    assert "--import no_such_module_r6: no module 'no_such_module_r6' found" in capsys.readouterr().err
    assert main(["--import", "plug.py", "data"]) == 2
    assert "give a module's name" in capsys.readouterr().err
    assert main(["data", "--import", "os"]) == 2
    assert "--import comes before the verb" in capsys.readouterr().err


class PropFamily(VAE):
    """needs_labels as a property of no state."""

    @property
    def needs_labels(self) -> bool:  # type: ignore[override]
        return False


class StateFamily(VAE):
    """needs_labels as a property that reads the model's state."""

    @property
    def needs_labels(self) -> bool:  # type: ignore[override]
        return self.latent_dim < 0


def test_needs_labels_property(monkeypatch, tmp_path):
    monkeypatch.setitem(MODELS, "r6prop", PropFamily)
    monkeypatch.setitem(MODELS, "r6state", StateFamily)
    assert not family_needs_labels(ModelConfig(family="r6prop"))
    assert family_needs_labels(ModelConfig(family="cvae")) and not family_needs_labels(ModelConfig(family="nope"))
    with pytest.raises(vaekit.VaekitError, match="make it a class attribute"):
        family_needs_labels(ModelConfig(family="r6state"))  # not built yet: no input shape
    built = ModelConfig(family="r6state", input_shape=[1, 8, 8], likelihood="bernoulli")
    assert not family_needs_labels(built)  # read on a model built on the meta device
    out = tmp_path / "fam"
    run = vaekit.train(model="r6prop", likelihood="bernoulli", out=str(out), pictures=False, **TINY)
    assert run.config.model.num_classes == 0  # digits has labels: read as a conditional model's before
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(30)))
    cfg = RunConfig(out=str(tmp_path / "tab"))
    cfg.model.family = "r6prop"
    assert not table_options(cfg, str(csv)).conditional
    monkeypatch.delitem(MODELS, "r6prop")  # a process that did not register it
    with pytest.raises(
        vaekit.VaekitError, match=r"model.family names the model family 'r6prop'.*vaekit.models.register"
    ):
        vaekit.load_run(out)


def test_fit_records_its_split_and_resumes_from_a_file(tmp_path, capsys):
    x = (np.random.default_rng(0).random((60, 1, 4, 4)) > 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    model = vaekit.build_model(input_shape=(1, 4, 4), latent_dim=2, hidden=[8], likelihood="bernoulli")
    out = tmp_path / "fit"
    vaekit.fit(model, x, epochs=1, out=out, progress=False, pictures=False)
    assert json.loads((out / "config.json").read_text())["data"]["test_fraction"] == 0
    assert recorded_state(out)["data"]["items"] == [54, 6, 0]
    argv = ["train", "--resume", str(out), "--data", str(tmp_path / "x.npy"), "--epochs", "2", "--quiet"]
    assert main(argv) == 0  # its items split as fit split them, the checkpoint's counts and digest
    assert recorded_state(out)["data"]["items"] == [54, 6, 0] and len(vaekit.load_run(out).history) == 2
    assert vaekit.load_run(out).config.data.spec == ""  # still a run of data in memory: the file carried them
    assert main(["evaluate", str(out), "--data", str(tmp_path / "x.npy"), "--split", "val", "--iw-samples", "4"]) == 0
    assert "x.npy (val split): n 6 " in capsys.readouterr().out  # other data, split as any file: was refused (0)
    saved = json.loads((out / "config.json").read_text())
    saved["data"]["test_fraction"] = 0.1  # as an earlier vaekit recorded it
    (out / "config.json").write_text(json.dumps(saved))
    assert main([*argv[:-3], "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "records data.test_fraction 0.1" in err and "vaekit.fit(model, data, out=..., resume=True)" in err
