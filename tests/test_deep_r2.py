"""The deep hierarchy, round 2: a wrapped deep run scored in float64, the detector's llr_k, what a deep run's
config.json records, the explorer's start and prior codes, and quality at a temperature."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.config import RunConfig, refuse_conflicts
from vaekit.config.conflicts import deep_latent_size
from vaekit.evaluation.scores import anomaly_scores
from vaekit.viz.explore_api import ApiError, Explorer

from .test_deep import SHAPE, tiny  # 8 x 8 images (resolutions 1, 4 and 8) and a tiny DeepVAE of them


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(200, *SHAPE, generator=g) > 0.7).float()
    x[:, :, 2:6, 3:5] = 1  # a shared bar: something to learn
    return x


@pytest.fixture(scope="module")
def deep_run(data, tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("deep") / "run"
    return vaekit.fit(tiny(), data, epochs=1, batch_size=50, progress=False, pictures=False, out=out)


@pytest.fixture(scope="module")
def flat_run(data, tmp_path_factory):
    torch.manual_seed(0)
    model = vaekit.build_model(input_shape=SHAPE, hidden=[8], latent_dim=2, likelihood="bernoulli")
    out = tmp_path_factory.mktemp("flat") / "run"
    return vaekit.fit(model, data, epochs=1, batch_size=50, progress=False, pictures=False, out=out)


@pytest.mark.parametrize("method", ["neg_elbo", "llr"])
def test_the_detector_scores_a_wrapped_deep_run_in_float64(deep_run, data, method):
    rows = data[:12].flatten(1).double().numpy()
    det = vaekit.VAEAnomalyDetector.from_run(deep_run.path, method=method, samples=2).fit(rows)
    model = tiny().double().eval()
    model.load_state_dict(deep_run.model.state_dict())
    want = anomaly_scores(model, data[:12].double(), [method], samples=2, seed=det.seed_)[method]
    np.testing.assert_allclose(det.score_samples(rows), -want, rtol=1e-12)


def test_the_head_casts_half_precision_up_to_its_own_dtype_and_keeps_float64():
    model = tiny(head_kernel=1)
    h = torch.randn(2, 8, 8, 8)
    assert model._px(h.bfloat16()).mean.dtype == torch.float32  # a bf16 trunk: float32 parameters
    assert model.double()._px(h.double()).mean.dtype == torch.float64


def test_the_detector_takes_llr_k_as_anomaly_scores_does(deep_run, data):
    rows = data[:12].flatten(1).double().numpy()
    det = vaekit.VAEAnomalyDetector.from_run(deep_run.path, method="llr", samples=2, llr_k=2)
    assert det.get_params()["llr_k"] == 2 and "llr_k=2" in repr(det)
    model = tiny().double().eval()
    model.load_state_dict(deep_run.model.state_dict())
    x = data[:12].double()
    want = anomaly_scores(model, x, ["llr"], samples=2, llr_k=2, seed=0)["llr"]
    assert not np.allclose(want, anomaly_scores(model, x, ["llr"], samples=2, seed=0)["llr"])  # k moves the score
    np.testing.assert_allclose(det.fit(rows).score_samples(rows), -want, rtol=1e-12)
    for k in (0, True, 1.5, 3):  # 0 would compare the bound with itself, 3 infer no group from x
        said = rf"^llr_k must be in 1\.\.2 \(below the model's 3 latent groups\), got {k!r}$"
        with pytest.raises(ValueError, match=said):
            vaekit.VAEAnomalyDetector.from_run(deep_run.path, method="llr", llr_k=k).fit(rows)


SIZED = [((1, 8, 8), [1, 2, 0], 1), ((3, 31, 20), [1, 1, 2, 1, 1, 0], 1), ((1, 28, 28), [1, 2, 3], 4)]


@pytest.mark.parametrize("shape, groups, patch", SIZED)
def test_a_deep_config_that_records_the_real_latent_size_and_no_widths_trains_again(shape, groups, patch):
    settings = {"family": "deep", "input_shape": list(shape), "deep_groups": groups, "deep_patch": patch}
    m = replace(RunConfig().model, likelihood="bernoulli", deep_width=4, deep_cell_width=4, **settings)
    assert deep_latent_size(m) == sum(vaekit.build_model(m).latent_dims)
    recorded = replace(m, latent_dim=deep_latent_size(m), hidden=[], channels=[])
    refuse_conflicts(RunConfig(model=recorded))  # as a deep run's config.json records it: no refusal
    stale = replace(recorded, deep_groups=[g + 1 for g in groups])  # its groups changed: trained anew
    refuse_conflicts(RunConfig(model=stale))
    for key, value in (("latent_dim", 8), ("hidden", [8]), ("channels", [8, 8])):
        with pytest.raises(vaekit.VaekitError, match=f"model.{key} and model.family cannot both take effect"):
            refuse_conflicts(RunConfig(model=replace(m, **{key: value})))


def test_latent_dims_for_a_deep_run_names_the_deep_settings():
    m = replace(RunConfig().model, family="deep", latent_dims=[8, 4])
    with pytest.raises(vaekit.VaekitError, match=r"model\.deep_groups .* and model\.deep_latent_channels"):
        refuse_conflicts(RunConfig(model=m))


def test_the_explorer_starts_a_deep_run_at_an_item_code_and_draws_prior_codes(deep_run, flat_run, data):
    deep = Explorer(deep_run, data[:8], None)
    info = deep.info()
    assert info["prior_codes"] and info["start"] == deep.items_z[0].tolist() and any(info["start"])
    torch.manual_seed(0)
    got = deep.sample({"n": 3, "codes": True})
    z = torch.tensor(got["codes"])
    assert z.shape == (3, sum(deep_run.model.latent_dims)) and got["image"].startswith("data:image/png")
    torch.manual_seed(0)
    generated = deep_run.model.generate(3).mean
    torch.manual_seed(0)
    codes = deep_run.model.prior_codes(3)  # the same draws, decoded as generate decodes them
    assert torch.equal(codes, z) and torch.allclose(deep_run.model.decode(codes).mean, generated, atol=1e-6)
    with pytest.raises(ApiError, match="codes must be true or false"):
        deep.sample({"n": 1, "codes": 1})
    flat = Explorer(flat_run, data[:8], None)
    assert flat.info()["start"] == [0.0, 0.0] and not flat.info()["prior_codes"]
    with pytest.raises(ApiError, match="draws no codes from its prior"):
        flat.sample({"n": 1, "codes": True})


@pytest.fixture(scope="module")
def items(data, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("items") / "items.npy"
    np.save(path, data.numpy())
    return str(path)


def test_quality_draws_at_a_temperature_and_records_it(deep_run, flat_run, items):
    call = {"features": nn.Flatten(), "data": items, "split": "train", "n": 40}
    cold = vaekit.quality(deep_run, temperature=[1.0, 0.0, 0.0], **call)
    warm = vaekit.quality(deep_run, write=False, **call)
    assert cold["temperature"] == [1.0, 0.0, 0.0] and warm["temperature"] == 1.0
    assert cold["samples"]["prior"] != warm["samples"]["prior"]
    saved = json.loads((deep_run.path / "quality.json").read_text())
    assert saved["temperature"] == [1.0, 0.0, 0.0]
    with pytest.raises(vaekit.VaekitError, match="one temperature per resolution takes a deep run"):
        vaekit.quality(flat_run, temperature=[1.0, 0.5], write=False, **call)
    with pytest.raises(vaekit.VaekitError, match="a post-hoc sampler draws its own codes: it takes no temperature"):
        vaekit.quality(deep_run, sampler="gmm", temperature=0.5, write=False, **call)


def test_the_quality_verb_passes_its_temperature_and_says_it(deep_run, monkeypatch, capsys):
    from vaekit.cli import main

    seen = {}

    def measured(run, **kw):
        seen.update(kw)
        return {
            "data": "d",
            "split": "test",
            "n": 4,
            "features": {"kind": "domain"},
            "temperature": kw["temperature"],
            "data_vs_data": {"fid": 0.0, "kid": 0.0, "precision": 1.0, "recall": 1.0},
            "samples": {},
        }

    monkeypatch.setattr("vaekit.evaluation.quality_run.quality", measured)
    main(["quality", str(deep_run.path), "--temperature", "1,0.5,0.5"])
    assert seen["temperature"] == [1.0, 0.5, 0.5]
    assert "samples at temperature [1.0, 0.5, 0.5]" in capsys.readouterr().out
