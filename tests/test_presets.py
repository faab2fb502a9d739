"""Every shipped preset in configs/ loads, validates and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaekit.cli import main
from vaekit.config import RunConfig, load_toml_config, validate
from vaekit.models import build_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(CONFIGS.glob("*.toml"))


def test_the_presets_are_found():
    assert {p.name for p in PRESETS} >= {"beta-4.toml", "ladder-conv.toml", "cvae-conv.toml", "dsprites-tcvae.toml"}


def built(path: Path) -> tuple[RunConfig, torch.nn.Module]:
    """The preset's validated config and its model for 1 x 28 x 28 images in 10 classes (both come from data)."""
    cfg = validate(load_toml_config(path))
    cfg.model.input_shape, cfg.model.num_classes = [1, 28, 28], 10
    if cfg.model.likelihood == "auto":  # chosen from the data when training; here binarised 28 x 28 images
        cfg.model.likelihood = "bernoulli"
    return cfg, build_model(cfg.model)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads_validates_and_builds(path):
    _, model = built(path)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_ladder_conv_preset_is_a_two_level_conv_ladder():
    cfg, model = built(CONFIGS / "ladder-conv.toml")
    assert type(model).__name__ == "LadderVAE" and model.latent_dims == [16, 32]
    assert cfg.model.net == "conv" and cfg.data.binarize == "dynamic"


def test_cvae_conv_preset_has_a_mixture_prior_per_class():
    _, model = built(CONFIGS / "cvae-conv.toml")
    pz = model.prior(torch.arange(10))
    assert type(model).__name__ == "ConditionalVAE" and pz.component_distribution.batch_shape == (10, 10)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine would train the preset")
def test_a_gpu_preset_on_a_cpu_is_refused_in_one_line(tmp_path, capsys):
    for path in (p for p in PRESETS if "gpu" in p.name):
        assert main(["train", "--config", str(path), "--limit", "64", "--out", str(tmp_path / path.stem)]) == 2
        assert "no CUDA device is available here (device 'cpu' runs on the CPU)" in capsys.readouterr().err
