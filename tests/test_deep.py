"""The deep hierarchy (family deep): its groups, patches and top-down state, EMA weights, LLR^{>k} and the anomaly
scores' refusals. Update skipping and KL balancing: test_deep_stability.py; settings: test_deep_settings.py."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import main
from vaekit.core import elbo
from vaekit.evaluation import detector
from vaekit.evaluation.scores import SETTINGS, anomaly_scores

SHAPE = (1, 8, 8)  # resolutions 1, 4 and 8


def tiny(**kw) -> vaekit.DeepVAE:
    return vaekit.DeepVAE(SHAPE, **{"groups": [1, 2, 0], "width": 8, "cell_width": 4, "latent_channels": 2, **kw})


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, *SHAPE, generator=g) > 0.7).float()
    x[:, :, 2:6, 3:5] = 1  # a shared bar: something to learn
    return x


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    torch.manual_seed(0)
    return vaekit.fit(
        tiny(),
        data,
        epochs=2,
        batch_size=16,
        ema=0.9,
        skip_grad=100,
        lr=3e-3,
        progress=False,
        pictures=False,
        out=tmp_path_factory.mktemp("deep") / "run",
    )


@pytest.mark.parametrize("settings", [{}, {"residual_posterior": True, "init": "zero"}])
def test_groups_shapes_sampling_per_resolution_and_checkpointed_cells(data, settings):
    model = tiny(**settings)
    assert model.latent_dims == [2, 32, 32]  # C_z * h * w: one group at 1 x 1, two at 4 x 4
    out = model(data[:8])
    assert len(out.qz) == len(out.pz) == len(out.z) == 3 and out.z[2].shape == (8, 32)
    loss = elbo(out, data[:8])["loss"]
    assert loss.isfinite()
    twin = tiny(**settings, checkpoint_cells=True)
    twin.load_state_dict(model.state_dict())
    grads = []
    for m in (model, twin):  # recomputing the cells' activations gives the same gradients
        torch.manual_seed(1)
        m.zero_grad()
        elbo(m(data[:8]), data[:8])["loss"].backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert torch.allclose(*grads, atol=1e-5) and grads[0].abs().sum() > 0
    assert model.generate(5, [1.0, 0.8, 0.8]).mean.shape == (5, *SHAPE)
    cold = [model.generate(3, [0.0, 0.0, 1.0]).mean for _ in range(2)]  # no latent at 8 x 8: deterministic
    assert torch.equal(*cold)
    with pytest.raises(vaekit.VaekitError, match="one value per resolution \\(3"):
        model.generate(2, [1.0, 0.8])


def test_patches_fold_into_channels_and_each_pixel_gets_its_own_parameter(data):
    model = tiny(patch=2, head_kernel=1)
    assert model.latent_dims == [2, 8, 8]  # groups on the 4 x 4 patch grid: resolutions 1, 2 and 4
    out = model(data[:8])
    assert out.px.mean.shape == (8, *SHAPE) and elbo(out, data[:8])["loss"].isfinite()
    conv = model.to_x[1]
    with torch.no_grad():  # channel c of a patch's output is the logit of its pixel (c // 2, c % 2)
        conv.weight.zero_()
        conv.bias.copy_(torch.arange(4.0))
    expected = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).repeat(4, 4)  # (8, 8), as pixel_unshuffle folds x
    assert torch.allclose(model(data[:2]).px.mean[:, 0], torch.sigmoid(expected).expand(2, 8, 8))
    with pytest.raises(vaekit.VaekitError, match="deep_patch 3 must divide"):
        tiny(patch=3)
    too_many = r"deep_groups lists 4 resolutions; 8 x 8 images \(deep_patch 2\) have 3"
    with pytest.raises(vaekit.VaekitError, match=too_many):
        tiny(patch=2, groups=[1, 1, 1, 1])  # a 4 x 4 grid: 4, 2, 1 (a second 1 x 1 before)
    assert tiny().to_x[1].kernel_size == (3, 3)  # the default reads each cell's neighbours too
    with pytest.raises(vaekit.VaekitError, match="deep_head_kernel must be odd"):
        tiny(head_kernel=2)
    seen = []  # under bf16 autocast the trunk (a prior's convolution) runs in bf16 and p(x|z)'s head in float32
    for conv in (model.blocks[0][0].to_p[1], model.to_x[1]):
        conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(data[:2])
    assert seen == [torch.bfloat16, torch.float32]


def test_prior_and_posterior_read_the_top_down_state(data):
    model = tiny()
    z1 = torch.randn(2, 2)
    for target in ("p", "q"):
        means = []
        for z_top in (z1[:1], z1[1:]):
            picks = lambda g, r, q, p, z_top=z_top: (q, z_top if g == 0 else q.mean)  # noqa: E731
            _, qz, pz, _ = model.top_down(model.encoder(data[:1]), picks, 1)
            means.append((qz if target == "q" else pz)[1].mean)
        assert not torch.allclose(*means)  # changing z_1 changes p(z_2) and q(z_2 | x, z_1)


def test_ema_weights_are_saved_used_for_sampling_and_resumed(trained, data, tmp_path):
    ckpt = load_file(trained.path / "checkpoint.safetensors")
    saved = load_file(trained.path / "model.safetensors")
    params = [k for k, _ in trained.model.named_parameters()]
    assert all(torch.equal(saved[k], ckpt[f"extra.ema.{i}"]) for i, k in enumerate(params))
    assert not all(torch.equal(saved[k], ckpt[f"model.{k}"]) for k in params)  # the raw weights differ
    again = vaekit.load_run(trained.path, device=str(trained.device))  # samples come from the averaged weights
    torch.manual_seed(3)
    a = again.sample(4)
    torch.manual_seed(3)
    assert torch.equal(a, trained.sample(4))
    out = tmp_path / "cooler.npy"  # the command line takes a temperature per resolution too, top first
    temperatures = ",".join(["1"] + ["0.5"] * (len(trained.model.groups) - 1))
    assert main(["sample", str(trained.path), "--n", "4", "--temperature", temperatures, "--out", str(out)]) == 0
    assert np.load(out).shape == (4, *SHAPE)
    per_level = [1.0] + [0.5] * (len(trained.model.groups) - 1)
    for t in (np.array(per_level), torch.tensor(per_level), [np.float32(v) for v in per_level]):  # numpy, torch
        torch.manual_seed(3)
        cooler = trained.sample(2, temperature=t)
        torch.manual_seed(3)
        assert torch.equal(cooler, trained.sample(2, temperature=per_level))
    assert trained.sample(1, temperature=np.float64(0.8)).shape == (1, *SHAPE)
    np.save(tmp_path / "x.npy", data.numpy())
    traverse = ["traverse", str(trained.path), "--data", str(tmp_path / "x.npy"), "--n-dims", "2", "--steps", "3"]
    assert main([*traverse, "--out", str(tmp_path / "t.png")]) == 0  # default: item 0's means, not zeros
    assert main([*traverse, "--item", "0", "--out", str(tmp_path / "t0.png")]) == 0
    assert (tmp_path / "t.png").read_bytes() == (tmp_path / "t0.png").read_bytes()
    runs = []
    for name, epochs, resume in (("whole", 2, False), ("half", 1, False), ("half", 2, True)):
        torch.manual_seed(5)  # the same initial weights
        runs.append(
            vaekit.fit(
                tiny(),
                data,
                epochs=epochs,
                batch_size=16,
                ema=0.9,
                device="cpu",  # bit for bit: CUDA's kernels need not be deterministic
                progress=False,
                pictures=False,
                out=tmp_path / name,
                resume=resume,
            )
        )
    assert all(
        torch.equal(a, b) for a, b in zip(runs[0].model.state_dict().values(), runs[2].model.state_dict().values())
    )


def test_llr_runs_over_k_1_to_below_all_drops_every_kl_at_k_all_and_is_refused_for_flat_models(trained, data):
    model = trained.model
    scores = {k: anomaly_scores(model, data[:16], ["llr"], samples=4, llr_k=k)["llr"] for k in (1, 2)}
    assert scores[1].std() > 0 and (scores[1] != scores[2]).all()
    with torch.no_grad():  # k = all: every group from the prior, so the bound is E_p(z) log p(x|z), without a KL
        assert (elbo(model.forward_from_prior(data[:4], 3), data[:4])["kl"] == 0).all()
    ladder = vaekit.build_model(
        family="ladder", input_shape=SHAPE, hidden=[8], latent_dims=[3, 2], likelihood="bernoulli"
    )
    assert anomaly_scores(ladder, data[:4], ["llr"], samples=2, llr_k=1)["llr"].shape == (4,)
    flat = vaekit.build_model(input_shape=SHAPE, hidden=[8], likelihood="bernoulli")
    with pytest.raises(vaekit.VaekitError, match=r"llr .* needs a hierarchical model"):
        anomaly_scores(flat, data[:4], ["llr"])
    for k in (0, 3, 1.5, True):  # 0 would compare L with itself (a column of zeros), 3 infer no group from x
        with pytest.raises(vaekit.VaekitError, match=r"llr_k must be in 1\.\.2 \(below the model's 3 latent groups\)"):
            anomaly_scores(model, data[:4], ["llr"], llr_k=k)


def flat_model(**settings) -> torch.nn.Module:
    return vaekit.build_model(input_shape=SHAPE, hidden=[8], latent_dim=2, likelihood="bernoulli", **settings)


@pytest.mark.parametrize(
    "names,setting",
    [
        (["neg_elbo"], {"iw_samples": 2}),
        ("neg_elbo", {"steps": 3}),
        (["iwae_nll"], {"samples": 2}),
        ("recon_error", {"llr_k": 2}),
    ],
)
def test_anomaly_scores_refuse_a_setting_that_shapes_none_of_the_scores(data, names, setting):
    defaults = inspect.signature(anomaly_scores).parameters
    assert all(defaults[k].default == s.default for k, s in SETTINGS.items())  # "changed" means from these
    with pytest.raises(vaekit.VaekitError, match=rf"^{next(iter(setting))} cannot take effect: it shapes"):
        anomaly_scores(flat_model(), data[:4], names, **setting)


def test_anomaly_scores_take_numpy_labels_one_name_and_name_the_item_shape(data):
    cvae = flat_model(family="cvae", num_classes=3)
    y = np.array([0, 1, 2, 1])
    got = anomaly_scores(cvae, data[:4].numpy(), "neg_elbo", samples=2, y=y)
    assert list(got) == ["neg_elbo"] and got["neg_elbo"].shape == (4,)
    np.testing.assert_array_equal(
        got["neg_elbo"], anomaly_scores(cvae, data[:4], ["neg_elbo"], 2, y=torch.tensor(y))["neg_elbo"]
    )
    with pytest.raises(
        vaekit.VaekitError, match=r"^x must be \(N, 1, 8, 8\): items of the model's shape .* got \(4, 64\)$"
    ):
        anomaly_scores(flat_model(), data[:4].flatten(1), ["neg_elbo"])


@pytest.mark.parametrize(
    "settings,match",
    [
        ({"method": "llr"}, "method llr needs a hierarchical model"),
        ({"method": "complexity"}, r"method complexity needs images: image_shape \(C, H, W\), got None"),
        ({"net": "conv", "hidden": (8,), "image_shape": (1, 4, 4)}, "hidden sets the widths of net='mlp'"),
    ],
)
def test_the_detector_refuses_what_cannot_apply_before_it_trains(settings, match, monkeypatch):
    monkeypatch.setattr(detector, "trained", lambda *a, **k: pytest.fail("trained first"))
    with pytest.raises(ValueError, match=match):
        detector.VAEAnomalyDetector(epochs=1, **settings).fit(np.random.default_rng(0).random((8, 16)))


def test_latent_map_refuses_a_grid_its_codes_cannot_draw(trained, data, tmp_path):
    with pytest.raises(vaekit.VaekitError, match=r"^grid cannot take effect: .* needs 2-D codes; this run's are 66-D$"):
        vaekit.latent_map(trained, data[:8], None, tmp_path / "m.png", grid=5)
    assert not (tmp_path / "m.png").exists()
    assert vaekit.latent_map(trained, data[:8], None, tmp_path / "m.png").is_file()  # the default grid: no manifold
