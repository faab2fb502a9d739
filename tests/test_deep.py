"""The deep hierarchy (family deep), its stability measures (update skipping, EMA, KL balancing) and LLR^{>k}."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig, RunConfig, keep_settings, refuse_conflicts, validate
from vaekit.core import elbo
from vaekit.evaluation import detector
from vaekit.evaluation.scores import SETTINGS, anomaly_scores
from vaekit.training import TrainingStopped
from vaekit.training.stability import balanced_kl
from vaekit.training.step import WARM, StepGuard, warns_at

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


def test_a_learning_rate_100x_too_high_skips_updates_then_stops_in_one_line(data, tmp_path, capsys):
    with pytest.raises(
        TrainingStopped,
        match=r"training stopped at epoch 1, batch \d+: 4 steps in a row skipped, "
        r"gradient norm [\d.e+]+ > train.skip_grad 100; lower train.lr "
        r"\(now 0.1\) or raise train.skip_grad",
    ):
        vaekit.fit(
            tiny(),
            data,
            epochs=3,
            batch_size=8,
            lr=0.1,
            skip_grad=100,
            max_bad_steps=4,
            progress=False,
            pictures=False,
            out=tmp_path / "diverged",
        )
    assert "2 steps in a row skipped" in capsys.readouterr().err  # the warning came first
    ckpt = (
        load_file(tmp_path / "diverged" / "checkpoint.safetensors")
        if (tmp_path / "diverged" / "checkpoint.safetensors").exists()
        else {}
    )
    assert all(v.isfinite().all() for v in ckpt.values() if v.is_floating_point())


def test_an_epoch_whose_every_step_was_skipped_stops_the_run():
    guard = StepGuard(20, skip_grad=1e-9)
    assert not guard.ok(torch.tensor(1.0), "epoch 1, batch 1", torch.tensor(5.0))  # one step, skipped
    with pytest.raises(TrainingStopped, match="training stopped after epoch 1: every step of it was skipped"):
        guard.epoch_means(torch.zeros(3), 0, 1)  # it trained nothing: no loss of 0 reported
    assert StepGuard(20).epoch_means(torch.tensor([4.0, 2.0]), 2, 1) == [2.0, 1.0]


def test_the_guard_keeps_its_longest_run_of_skips_and_can_leave_its_warning_to_the_caller(capsys):
    """``most`` is the longest run in a row (what ``Fitted.most_skipped`` reports); ``warns`` False: no warning."""
    guard = StepGuard(8, skip_grad=10)  # warns at 2 in a row
    guard.warns = False
    steps = [50.0, 50.0, 50.0, 1.0, 50.0]  # norms: 3 skipped in a row, one kept, one more skipped
    assert [guard.ok(torch.tensor(n), "step", torch.tensor(n)) for n in steps] == [False] * 3 + [True, False]
    assert (guard.most, guard.in_row, guard.skipped) == (3, 1, 4) and capsys.readouterr().err == ""
    loud = StepGuard(8, skip_grad=10)
    assert not any(loud.ok(torch.tensor(50.0), "step 9", torch.tensor(50.0)) for _ in range(2))
    assert "2 steps in a row skipped" in capsys.readouterr().err and warns_at(8) == 2


def test_skip_ratio_follows_the_median_kept_norm_and_the_counts_survive_a_resume(data):
    guard = StepGuard(3, lr=1e-3, skip_ratio=10)
    ok = lambda g, n: g.ok(torch.tensor(1.0 + n), "step 9", torch.tensor(n))  # noqa: E731
    assert all(ok(guard, 100.0 + i) for i in range(WARM))  # the ratio waits for WARM kept norms
    assert ok(guard, 1000.0) and not ok(guard, 1200.0)  # median of 100..131 and 1000: 116, so the limit is 1160
    twin = StepGuard(3, lr=1e-3, skip_ratio=10)
    twin.load_state_dict(guard.state_dict())
    assert not ok(twin, 1200.0) and (twin.in_row, twin.skipped) == (2, 2)
    with pytest.raises(
        TrainingStopped,
        match=r"3 steps in a row skipped, gradient norm 1200 > train.skip_ratio "
        r"10 x 116; lower train.lr \(now 0.001\) or raise train.skip_ratio",
    ):
        ok(twin, 1200.0)
    with pytest.raises(TrainingStopped, match=r"after epoch 1: every step of it was skipped \(8 so far\)"):
        vaekit.fit(tiny(), data, epochs=2, batch_size=8, skip_grad=1e-9, max_bad_steps=10, progress=False)


def test_llr_runs_over_k_1_to_all_drops_every_kl_at_k_all_and_is_refused_for_flat_models(trained, data):
    model = trained.model
    scores = {k: anomaly_scores(model, data[:16], ["llr"], samples=4, llr_k=k)["llr"] for k in (1, 3)}
    assert scores[1].std() > 0 and (scores[1] != scores[3]).all()
    with torch.no_grad():  # k = all: every group from the prior, so the bound is E_p(z) log p(x|z), without a KL
        assert (elbo(model.forward_from_prior(data[:4], 3), data[:4])["kl"] == 0).all()
    ladder = vaekit.build_model(
        family="ladder", input_shape=SHAPE, hidden=[8], latent_dims=[3, 2], likelihood="bernoulli"
    )
    assert anomaly_scores(ladder, data[:4], ["llr"], samples=2, llr_k=2)["llr"].shape == (4,)
    flat = vaekit.build_model(input_shape=SHAPE, hidden=[8], likelihood="bernoulli")
    with pytest.raises(vaekit.VaekitError, match=r"llr .* needs a hierarchical model"):
        anomaly_scores(flat, data[:4], ["llr"])
    for k in (0, 4, 1.5, True):  # 0 would compare L with itself (a column of zeros): the CLI's --llr-k > 0 too
        with pytest.raises(vaekit.VaekitError, match=r"llr_k must be in 1\.\.3 \(the model's latent groups\)"):
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


def test_kl_balancing_weighs_groups_by_their_kl_per_dimension():
    z = [torch.zeros(4, 2), torch.zeros(4, 8)]
    even = [torch.full((4,), 2.0), torch.full((4,), 8.0)]  # 1 nat per dimension in both groups
    assert torch.isclose(balanced_kl(even, z), torch.tensor(10.0), atol=0.05)
    uneven = [torch.full((4,), 6.0), torch.full((4,), 0.8)]  # group 1 carries more per dimension: it pays more
    assert balanced_kl(uneven, z) > 6.8


@pytest.mark.parametrize(
    "setting, match",
    [
        ({"model.deep_width": 16}, "model.deep_width and model.family"),
        ({"model.family": "deep", "model.latent_dim": 8}, "model.latent_dim and model.family"),
        ({"model.family": "deep", "model.hidden": [7]}, "model.hidden and model.family"),
        ({"model.family": "deep", "model.net": "conv"}, "model.net and model.family"),
        ({"model.family": "vq", "train.beta": 4.0}, "train.beta and model.family"),
        ({"train.skip_grad": 100, "train.clip_grad": 200}, "train.skip_grad and train.clip_grad"),
        ({"model.family": "deep", "train.kl_balance": True}, "train.kl_balance and train.warmup_epochs"),
        ({"train.skip_ratio": 1}, r"train.skip_ratio must be 0 \(off\) or > 1"),
    ],
)
def test_settings_that_cannot_take_effect_are_refused(setting, match):
    cfg = RunConfig()
    for key, value in setting.items():
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)
    with pytest.raises(vaekit.VaekitError, match=match):
        refuse_conflicts(validate(cfg))


@pytest.mark.parametrize(
    "settings, match",
    [
        *(({"patch": p}, rf"^model.deep_patch must be a positive integer, got {p}$") for p in (0, -2, 2.0)),
        ({"residual_posterior": "yes"}, r"^model.residual_posterior must be True or False, got 'yes'$"),
        ({"checkpoint_cells": 1}, r"^model.checkpoint_cells must be True or False, got 1$"),
        ({"ar_kernel": 5}, r"^model.deep_ar_kernel and model.deep_ar_channels cannot both take effect: .* off"),
    ],
)
def test_the_constructor_refuses_each_setting_in_one_line_naming_it(settings, match):
    with pytest.raises(vaekit.VaekitError, match=match):
        tiny(**settings)


def test_the_autoregressive_window_is_read_with_the_head_and_an_older_run_s_unused_one_still_builds():
    assert tiny(ar_channels=2, ar_kernel=5).ar.kernel == 5
    assert vaekit.DeepVAE.__init__.__kwdefaults__["ar_kernel"] == ModelConfig().deep_ar_kernel  # one default
    cfg = ModelConfig(family="deep", input_shape=list(SHAPE), deep_groups=[1, 2, 0], deep_ar_kernel=7)
    cfg.likelihood = "bernoulli"
    assert vaekit.build_model(cfg).ar is None  # a run saved before the refusal: its config builds as written


def test_latent_map_refuses_a_grid_its_codes_cannot_draw(trained, data, tmp_path):
    with pytest.raises(vaekit.VaekitError, match=r"^grid cannot take effect: .* needs 2-D codes; this run's are 66-D$"):
        vaekit.latent_map(trained, data[:8], None, tmp_path / "m.png", grid=5)
    assert not (tmp_path / "m.png").exists()
    assert vaekit.latent_map(trained, data[:8], None, tmp_path / "m.png").is_file()  # the default grid: no manifold


def test_a_resume_may_switch_checkpoint_cells_and_nothing_else_of_the_model():
    saved = RunConfig()
    saved.model.family = "deep"
    for on in (True, False):  # recomputed activations: the same weights, so either way
        asked = copy.deepcopy(saved)
        asked.model.checkpoint_cells = on
        keep_settings(saved, asked)
    asked.model.deep_width = 16
    with pytest.raises(vaekit.VaekitError, match=r"^model.deep_width: a resumed run keeps"):
        keep_settings(saved, asked)
    flat, asked = RunConfig(), RunConfig()
    asked.model.checkpoint_cells = True  # held to the table: a vae has no cells to recompute
    with pytest.raises(vaekit.VaekitError, match=r"model.checkpoint_cells and model.family cannot both"):
        keep_settings(flat, asked)


def test_a_deep_run_resumes_with_checkpoint_cells_turned_on(tmp_path):
    small = dict(data="digits", model="deep", limit=40, batch_size=32, deep_groups=[1, 1, 0], deep_width=8)
    small |= dict(deep_cell_width=4, deep_latent_channels=2, out=tmp_path, progress=False, pictures=False)
    vaekit.train(epochs=1, **small)
    run = vaekit.train(epochs=2, resume=True, checkpoint_cells=True, **small)
    assert len(run.history) == 2 and run.model.checkpoint_cells and run.config.model.checkpoint_cells
