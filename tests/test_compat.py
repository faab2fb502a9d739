"""Run folders of earlier vaekit versions load, sample and resume as they trained: those written before the library
layout (vaekit 0.1, one per family), and those that lack a setting added since (config.json's format)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch.distributions import Independent, Normal

import vaekit
from vaekit.cli import main
from vaekit.config import FORMAT, load_json_config
from vaekit.training.checkpoint import read_tensors
from vaekit.training.folder import recorded_class

from .conftest import train_argv
from .test_own_models import BetaVAE

OLD = Path(__file__).parent / "data" / "runs-0.1"


@pytest.mark.parametrize("name", ["vae", "cvae", "ladder", "conv"])
def test_an_old_run_loads_samples_and_resumes(name, tmp_path):
    run_dir = shutil.copytree(OLD / name, tmp_path / name)
    shutil.copy(OLD / "tiny.npz", tmp_path / "tiny.npz")
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["spec"] = str(tmp_path / "tiny.npz")  # the data the run was trained on, where it is now
    (run_dir / "config.json").write_text(json.dumps(config))
    run = vaekit.load_run(run_dir)
    label = 1 if run.model.needs_labels else None
    assert run.sample(3, label=label).shape == (3, 1, 4, 4)
    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3  # header and two epochs
    assert torch.isfinite(vaekit.load_run(run_dir).sample(2, label=label)).all()


# Run folders of later versions: written today, then edited into what the vaekit before a setting wrote (no
# "format", the setting left out), for each setting whose default today would build another model or read the
# data otherwise (config.formats.BEFORE).
IMAGES = ["--likelihood", "bernoulli", "--batch-size", "16"]
DEEP = ["--model", "deep", *IMAGES, "--set", "model.deep_groups=1,1,0", "--set", "model.deep_width=8"]
OLDER = {  # name: (data, flags, the setting, its value then, today's default)
    "deep": ("bars.npy", [*DEEP, "--set", "model.deep_cell_width=4"], "model.deep_head_kernel", 1, 3),
    "ladder": ("bars.npy", ["--model", "ladder", *IMAGES, "--set", "model.latent_dims=3,2", "--set", "model.hidden=16"])
    + ("model.ladder_posterior", "precision", "topdown"),
    "table": (
        "table.csv",
        ["--likelihood", "gaussian", "--set", "model.hidden=16"],
        "data.standardize",
        "false",
        "true",
    ),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A folder of one-epoch runs, one per OLDER entry, trained with the setting's value then, and their data."""
    where = tmp_path_factory.mktemp("written")
    rng = np.random.default_rng(0)
    bars = (rng.random((48, 8, 8)) > 0.7).astype(np.float32)
    np.save(where / "bars.npy", bars)
    np.savetxt(where / "table.csv", rng.normal(50, 10, (60, 3)), delimiter=",", header="a,b,c", comments="")
    for name, (data, flags, key, then, _) in OLDER.items():
        argv = train_argv(where / data, where / name, *flags, "--set", f"{key}={then}")
        assert main(argv) == 0, name
    return where


def older(written: Path, name: str, tmp_path: Path, drop: tuple[str, ...] = ("format",)) -> Path:
    """A copy of the run ``name`` whose config.json lacks ``drop`` ('format' and section.key names), as an older
    vaekit wrote it."""
    run = shutil.copytree(written / name, tmp_path / name)
    config = json.loads((run / "config.json").read_text())
    for key in drop:
        section, _, name = key.rpartition(".")
        (config[section] if section else config).pop(name)
    (run / "config.json").write_text(json.dumps(config))
    for ckpt in run.glob("checkpoint*.safetensors"):  # nor its checkpoints the record of the settings they rest on
        tensors, meta = read_tensors(ckpt)
        state = {k: v for k, v in json.loads(meta["state"]).items() if k != "settings"}
        save_file(tensors, ckpt, metadata={**meta, "state": json.dumps(state)})
    return run


@pytest.mark.parametrize("name", OLDER)
def test_a_setting_an_older_run_lacks_is_read_as_its_vaekit_did(written, name, tmp_path, capsys):
    _, _, key, then, today = OLDER[name]
    run = older(written, name, tmp_path, ("format", key))
    section, field = key.split(".")
    loaded = vaekit.load_run(run)
    assert getattr(getattr(loaded.config, section), field) == then and loaded.config.stored.filled == {key: then}
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet", "--set", f"{key}={today}"]) == 2
    said = f"({then!r} for a run written before {key} existed, {today!r} asked)"  # not 'in config.json'
    assert said in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == FORMAT and config[section][field] == then  # written out, as today's runs are
    assert (run / "metrics.csv").read_text().count("\n") == 3


def test_config_json_carries_its_format_and_only_an_older_one_is_filled_in(written, tmp_path):
    assert json.loads((written / "deep" / "config.json").read_text())["format"] == FORMAT
    run = older(written, "deep", tmp_path, ("model.deep_head_kernel",))  # format 2 lacking a setting: today's
    assert load_json_config(run / "config.json").model.deep_head_kernel == 3
    config = json.loads((run / "config.json").read_text())
    for bad, line in [(FORMAT + 1, f"format {FORMAT + 1} comes from a later"), ("2", "format must be a whole number")]:
        (run / "config.json").write_text(json.dumps({**config, "format": bad}))
        with pytest.raises(vaekit.VaekitError, match=f"config.json: {line}"):
            load_json_config(run / "config.json")


def test_weights_of_another_model_than_config_json_builds_are_named_so_not_as_damage(written, tmp_path, capsys):
    run = older(written, "deep", tmp_path, ())
    config = json.loads((run / "config.json").read_text())
    config["model"]["deep_head_kernel"] = 3  # what a run lacking it read before formats: today's default
    (run / "config.json").write_text(json.dumps(config))
    shape = r"to_x.1.weight has shape \(1, 8, 1, 1\), the model expects \(1, 8, 3, 3\)"
    with pytest.raises(vaekit.VaekitError, match=f"another model than the one config.json builds \\({shape}\\)"):
        vaekit.load_run(run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint's model differs from the one config.json" in err and "older vaekit" in err
    assert "no usable checkpoint" not in err


class Own(BetaVAE):
    """test_own_models' networks with a Normal p(x|z), or its Beta one with ``beta``."""

    def __init__(self, beta: bool = False):
        super().__init__()
        self.beta = beta

    def decode(self, z, y=None):
        if self.beta:
            return super().decode(z, y)
        loc, raw = self.dec(z).chunk(2, -1)
        return Independent(Normal(loc, raw.exp()), 1)


class OwnBeta(Own):
    def __init__(self):
        super().__init__(beta=True)


@pytest.fixture
def proportions() -> np.ndarray:
    return np.random.default_rng(0).beta(2, 5, (60, 16)).astype(np.float32)


def fit_own(model, x, out, **kw) -> vaekit.Run:
    return vaekit.fit(model, x, out=out, epochs=kw.pop("epochs", 1), standardize="false", progress=False, **kw)


def test_a_resumed_fit_keeps_the_class_and_likelihood_of_its_model(proportions, tmp_path):
    fit_own(Own(), proportions, tmp_path / "run", pictures=False)  # a Normal p(x|z): 'gaussian'
    path = tmp_path / "run" / "config.json"
    saved = path.read_text()
    with pytest.raises(vaekit.VaekitError, match=r"'gaussian' in config.json, 'own:Beta' asked"):
        fit_own(Own(beta=True), proportions, tmp_path / "run", resume=True, epochs=2)  # same class, a Beta now
    path.write_text(json.dumps({k: v for k, v in json.loads(saved).items() if k != "format"}))  # format 1
    line = r"records the class tests.test_compat:Own, and the model given is a tests.test_compat:OwnBeta"
    with pytest.raises(vaekit.VaekitError, match=line):
        fit_own(OwnBeta(), proportions, tmp_path / "run", resume=True, epochs=2)
    assert "format" not in json.loads(path.read_text())  # refused before anything was written
    resumed = fit_own(OwnBeta(), proportions, tmp_path / "run", resume=True, overwrite=True, epochs=2)
    assert resumed.config.model.likelihood == json.loads(path.read_text())["model"]["likelihood"] == "own:Beta"


def test_the_class_a_run_records_is_the_one_given_to_fit_inside_standardized(tmp_path):
    inner = {"class": "vaekit.models.standardized:Standardized", "spec": {"args": {"model": {"module": {}}}}}
    inner["spec"]["args"]["model"]["module"]["class"] = "mine:GaussVAE"  # model.json before model_class
    for record, found in [(inner, "mine:GaussVAE"), ({"class": "mine:A", "model_class": "mine:B"}, "mine:B")]:
        (tmp_path / "model.json").write_text(json.dumps(record))
        assert recorded_class(tmp_path) == found
    (tmp_path / "model.json").write_text("[1]")
    assert recorded_class(tmp_path) is None


def test_a_fit_on_standardised_columns_records_its_family_and_loads_and_resumes(tmp_path):
    """fit wraps a table's VAE in Standardized and records the VAE's family and prior (vae, mixture) where it
    recorded 'custom' and the wrapper's standard prior: the run loads and resumes with its columns' loc and scale,
    and so does a run recorded so before."""
    x = np.random.default_rng(0).normal(5, 3, (60, 6)).astype(np.float32)

    def fit(epochs: int) -> vaekit.Run:
        torch.manual_seed(0)
        built = vaekit.build_model(input_shape=(6,), hidden=[8], latent_dim=2, likelihood="gaussian", prior="mixture")
        return vaekit.fit(built, x, out=tmp_path, epochs=epochs, resume=epochs > 1, progress=False, pictures=False)

    fit(1)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    assert (saved["model"]["family"], saved["model"]["prior"], saved["data"]["standardize"]) == (
        "vae",
        "mixture",
        "true",
    )
    loc = vaekit.load_run(tmp_path).model.loc
    assert loc.tolist() == json.loads((tmp_path / "standardize.json").read_text())["loc"] != [0.0] * 6
    assert len(fit(2).history) == 2
    saved["model"] |= {"family": "custom", "prior": "standard", "prior_components": 0}  # as written before
    path.write_text(json.dumps(saved))
    run = fit(3)
    assert len(run.history) == 3 and json.loads(path.read_text())["model"]["family"] == "vae"
    loaded = vaekit.load_run(tmp_path).model
    assert type(loaded).__name__ == "Standardized" and torch.equal(loaded.loc, loc)
