"""A post-hoc sampler fitted from inside ``torch.no_grad`` (as ``Run.sample(n, sampler=...)`` fits it) still trains."""

from __future__ import annotations

import pytest
import torch

import vaekit
from vaekit.samplers import fit_sampler

from .conftest import tiny_config


@pytest.mark.parametrize("name, settings", [("flow", {"steps": 5}), ("two-stage", {"epochs": 1, "hidden": 16})])
def test_fit_under_no_grad(tmp_path, name, settings):
    run = vaekit.train(tiny_config("digits", tmp_path / "run", epochs=1), pictures=False)
    with torch.no_grad():
        sampler = fit_sampler(run, name, save=False, **settings)
    assert sampler.sample(5).shape == (5, 3)
