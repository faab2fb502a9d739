"""Post-hoc samplers, round 2: a diverged fit on few codes names them; the check's draws scale down with D; the
two-stage's spread recorded; a run without a folder keeps its sampler fitted on x; limit with x, no x and a
channels-last x; the notes of few codes, of a saved sampler used, and of one code; a ladder's samplers fit z_1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from vaekit.samplers import base, fit_sampler, load_sampler, lookup, sampler_paths

SMALL_FLOW = {"hidden": 8, "transforms": 1}


def codes(n: int, d: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


def memory_run(shape=(4,), likelihood="gaussian", n=40, **model):
    """A run without a folder of ``n`` random items of ``shape``, one epoch."""
    built = vaekit.build_model(input_shape=list(shape), hidden=[8], latent_dim=2, likelihood=likelihood, **model)
    return vaekit.fit(built, torch.rand(n, *shape), epochs=1, pictures=False, progress=False)


@pytest.fixture(scope="module")
def run():
    return memory_run()


def test_a_diverged_flow_on_few_codes_names_them_and_the_keywords_to_change(capsys):
    """480 codes of 360 numbers were told to lower the lr, which did not help."""
    with pytest.raises(vaekit.VaekitError) as e:
        lookup("flow")(lr=10.0, steps=50, **SMALL_FLOW).fit(codes(20, 4))
    line = str(e.value)
    assert "20 codes of 4 numbers are likely too few" in line and "limit=...)" in line
    assert 'vaekit.fit_sampler(run, "flow", steps=..., lr=...)' in line and "--" not in line
    assert "are few for a density over 4 numbers (fewer than 40, 10 a number)" in capsys.readouterr().err
    with pytest.raises(vaekit.VaekitError, match=r"fit it again with a lower lr \(its settings now: lr 10.0, st"):
        lookup("flow")(lr=10.0, steps=50, **SMALL_FLOW).fit(codes(300, 3))  # enough codes: the lr
    assert "few" not in capsys.readouterr().err


def test_the_check_draws_fewer_codes_as_d_grows(monkeypatch):
    """A flow's draw costs D passes: 1,000 draws of codes of 1,440 numbers took most of a 217 s fit."""
    asked, flow = [], lookup("flow")
    draw = flow.draw
    monkeypatch.setattr(flow, "draw", lambda self, n: asked.append(n) or draw(self, n))
    for n, d in ((300, 3), (5, 3), (300, 400)):
        lookup("flow")(steps=1, **SMALL_FLOW).fit(codes(n, d))
    assert asked == [1000, 50, 250]  # 10 N where fewer; about 100,000 numbers past D = 100
    assert base.check_draws(10**4, 10**5) == 100


def test_the_two_stage_records_its_spread_and_says_strong_shrinkage(capsys):
    sampler = lookup("two-stage")(epochs=1, hidden=8).fit(codes(200, 3))
    assert 0 < sampler.fitted["std_ratio"] < 2 and set(sampler.fitted) == {"std_ratio"}
    capsys.readouterr()
    sampler.judge(0.2 * codes(100, 4))
    assert abs(sampler.fitted["std_ratio"] - 0.2) < 0.05
    said = f"its draws spread {sampler.fitted['std_ratio']:.2g} of the codes' standard deviation (median over 4 nu"
    assert said in capsys.readouterr().err


def test_a_run_without_a_folder_returns_the_sampler_fitted_on_x(run):
    fitted = fit_sampler(run, "gmm", x=torch.rand(40, 4), components=1)
    assert fit_sampler(run, "gmm") is fitted and fit_sampler(run, "gmm", components=1) is fitted
    with pytest.raises(vaekit.VaekitError, match="trained on data passed in memory"):
        fit_sampler(run, "gmm", components=2)  # other settings: codes needed


def test_limit_with_x_and_no_items_are_one_line(run):
    with pytest.raises(vaekit.VaekitError, match=r"^limit 10 counts items of the run's training split; with x, pa"):
        fit_sampler(run, "gmm", x=torch.rand(40, 4), limit=10)
    with pytest.raises(vaekit.VaekitError, match=r"^a sampler is fitted on at least 2 finite codes \(N, D\), got no"):
        fit_sampler(run, "gmm", x=torch.rand(0, 4))


def test_channels_last_items_are_said_once_and_one_code_is_one(capsys):
    image_run = memory_run((1, 8, 8), "bernoulli")
    capsys.readouterr()
    fit_sampler(image_run, "gmm", x=np.random.default_rng(0).random((1200, 8, 8, 1), np.float32), components=1)
    assert capsys.readouterr().err.count("read as channels-last images") == 1  # not once per 500 items
    with pytest.raises(vaekit.VaekitError, match="at least 2 finite codes"):
        fit_sampler(image_run, "gmm", x=torch.rand(1, 1, 8, 8))
    assert "fitting the gmm sampler on 1 code\n" in capsys.readouterr().err


def test_a_saved_sampler_used_is_named_with_its_settings(tmp_path, capsys):
    x = torch.rand(40, 4)
    built = vaekit.build_model(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian")
    folder = vaekit.fit(built, x, epochs=1, pictures=False, progress=False, out=str(tmp_path / "run")).path
    fit_sampler(vaekit.load_run(folder), "flow", x=x, kind="nsf", steps=3, lr=0.01, **SMALL_FLOW)
    capsys.readouterr()
    again = vaekit.load_run(folder)
    for _ in range(2):
        again.sample(2, sampler="flow")
    said = f"using the flow sampler saved in {folder} (kind nsf, 1 transform, hidden 8, 3 steps, lr 0.01)"
    assert capsys.readouterr().err.count(said) == 1  # once: then kept on the run
    assert lookup("gmm")(components=20).described() == "20 components"


def test_a_ladder_s_samplers_fit_the_z_1_its_decoder_reads(tmp_path):
    x = torch.rand(60, 4)
    built = vaekit.build_model(input_shape=[4], hidden=[8], latent_dims=[3, 2], likelihood="gaussian", family="ladder")
    folder = vaekit.fit(built, x, epochs=1, pictures=False, progress=False, out=str(tmp_path / "run")).path
    run = vaekit.load_run(folder)
    assert fit_sampler(run, "gmm", x=x, components=1).latent_dim == 3  # z_1, not the 5 numbers of both levels
    assert run.sample(2, sampler="gmm").shape == (2, 4)
    path = sampler_paths(folder, "gmm")[1]
    path.write_text(json.dumps({**json.loads(path.read_text()), "latent_dim": 5}))  # fitted on every level
    assert load_sampler(run, "gmm") is None  # stale: fitted again, not refused
