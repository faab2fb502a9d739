"""Every preset the package ships (vaekit/configs/*.toml, package data) is found by its bare name, loads,
validates and builds its model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

from vaekit.cli import main
from vaekit.config import RunConfig, load_toml_config, validate
from vaekit.config.parse import presets
from vaekit.errors import VaekitError
from vaekit.models import build_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = resources.files("vaekit") / "configs"  # where an installed vaekit has them, as the wheel ships them
NAMES = sorted(p.name.removesuffix(".toml") for p in SHIPPED.iterdir() if p.name.endswith(".toml"))


def test_the_presets_are_package_data_and_the_repository_folder_links_to_them():
    assert set(NAMES) >= {"demo", "deep-mnist", "beta-4", "ladder-conv", "cvae-conv", "dsprites-tcvae"}
    assert presets() == NAMES
    folder = ROOT / "configs"  # in a checkout a link to the package's folder (an sdist holds a copy)
    assert sorted(p.stem for p in folder.glob("*.toml")) == NAMES
    assert folder.resolve() == ROOT / "src" / "vaekit" / "configs" or not (ROOT / ".git").exists()


def built(name: str) -> tuple[RunConfig, torch.nn.Module]:
    """The preset's validated config and its model for 1 x 28 x 28 images in 10 classes (both come from data)."""
    cfg = validate(load_toml_config(name))
    cfg.model.input_shape, cfg.model.num_classes = [1, 28, 28], 10
    if cfg.model.likelihood == "auto":  # chosen from the data when training; here binarised 28 x 28 images
        cfg.model.likelihood = "bernoulli"
    return cfg, build_model(cfg.model)


@pytest.mark.parametrize("name", NAMES)
def test_preset_loads_by_name_validates_and_builds(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # away from the repository: a pip user's working folder
    _, model = built(name)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert (
        load_toml_config(f"{name}.toml")
        == load_toml_config(name)
        == load_toml_config(ROOT / "configs" / f"{name}.toml")
    )


def test_a_file_of_the_preset_name_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.toml").write_text("[train]\nepochs = 3\n")
    assert load_toml_config("demo.toml").train.epochs == 3 and load_toml_config("demo").train.epochs == 30


@pytest.mark.parametrize(
    "given, said",
    [
        ("deep-mnst", "deep-mnst: config file not found (did you mean deep-mnist? presets: beta-0.5, "),
        ("nothing-like-it.toml", "nothing-like-it.toml: config file not found (presets: beta-0.5, "),
        ("no/such/demo.toml", "no/such/demo.toml: config file not found (presets: beta-0.5, "),
    ],
)
def test_an_unknown_config_is_one_line_naming_the_presets(given, said, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaekitError) as e:
        load_toml_config(given)
    assert str(e.value).startswith(said) and str(e.value).endswith(f"{', '.join(NAMES)})")
    assert main(["train", "--config", given, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and not (tmp_path / "run").exists()


def test_ladder_conv_preset_is_a_two_level_conv_ladder():
    cfg, model = built("ladder-conv")
    assert type(model).__name__ == "LadderVAE" and model.latent_dims == [16, 32]
    assert cfg.model.net == "conv" and cfg.data.binarize == "dynamic"


def test_cvae_conv_preset_has_a_mixture_prior_per_class():
    _, model = built("cvae-conv")
    pz = model.prior(torch.arange(10))
    assert type(model).__name__ == "ConditionalVAE" and pz.component_distribution.batch_shape == (10, 10)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine would train the preset")
def test_a_gpu_preset_on_a_cpu_is_refused_in_one_line(tmp_path, capsys):
    for name in (n for n in NAMES if "gpu" in n):
        assert main(["train", "--config", name, "--limit", "64", "--out", str(tmp_path / name)]) == 2
        assert "no CUDA device is available here (device 'cpu' runs on the CPU)" in capsys.readouterr().err
