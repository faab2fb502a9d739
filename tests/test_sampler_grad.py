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


@pytest.fixture(scope="module")
def memory_run():
    """A run without a folder, of 20 random vectors (4,)."""
    model = vaekit.build_model(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian")
    return vaekit.fit(model, torch.rand(20, 4), epochs=1, pictures=False, progress=False)


@pytest.mark.parametrize(
    "name, settings, match",
    [
        ("flow", {"steps": 0}, "steps must be a whole number >= 1, got 0"),
        ("flow", {"steps": -1}, "steps must be a whole number >= 1, got -1"),
        ("flow", {"lr": -1}, "lr must be a finite number > 0, got -1"),
        ("flow", {"seed": "a"}, "seed must be a whole number >= 0, got 'a'"),
        ("two-stage", {"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
        ("two-stage", {"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
        ("gmm", {"components": 2.7}, "components must be a whole number >= 1, got 2.7"),
        ("gmm", {"components": "abc"}, "components must be a whole number >= 1, got 'abc'"),
    ],
)
def test_bad_sampler_settings_are_one_line_before_any_work(memory_run, monkeypatch, name, settings, match):
    def no_work(*args, **kwargs):
        raise AssertionError("codes were encoded before the settings were checked")

    monkeypatch.setattr("vaekit.samplers.aggregate_codes", no_work)
    with pytest.raises(vaekit.VaekitError, match=f"sampler setting {match}"):
        fit_sampler(memory_run, name, **settings)
