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


def test_a_run_on_data_in_memory_samples_from_a_sampler_fitted_on_given_codes():
    x = torch.rand(40, 1, 4, 4)
    model = vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli")
    run = vaekit.fit(model, x, epochs=1, pictures=False, progress=False)  # no folder, no data spec
    with pytest.raises(vaekit.VaekitError, match=r"fit its sampler on their codes first"):
        run.sample(3, sampler="gmm")
    fit_sampler(run, "gmm", x=x, components=2)
    assert run.sample(3, sampler="gmm").shape == (3, 1, 4, 4)  # the sampler fitted on x, kept on the run


@pytest.mark.parametrize("terminal", [True, False])
def test_a_flow_sampler_says_its_steps_and_shows_a_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch, terminal):
    run = vaekit.train(tiny_config("digits", tmp_path / "run", epochs=1), pictures=False)
    monkeypatch.setattr("vaekit.samplers.base.interactive", lambda: terminal)
    capsys.readouterr()
    fit_sampler(run, "flow", save=False, steps=7)
    err = capsys.readouterr().err
    assert "codes, 7 steps" in err
    assert ("/7 [" in err) == terminal  # tqdm's bar, left off a log file
