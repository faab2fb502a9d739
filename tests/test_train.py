"""The training loop's promises: repeatable seeds, skipped non-finite steps, early stopping, config precedence, API."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import build_parser, train_config
from vaekit.core.objectives_zoo import OBJECTIVES
from vaekit.training import TrainingStopped, step
from vaekit.training.checkpoint import read_tensors

from .conftest import tiny_config, train_run


def test_same_seed_same_weights_other_seed_other_weights(tiny_images, tmp_path):
    runs = [
        train_run(tiny_config(str(tiny_images), tmp_path / name, seed=seed))
        for name, seed in (("a", 3), ("b", 3), ("c", 4))
    ]
    a, b, c = (load_file(r / "model.safetensors") for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def nan_after(calls: int, elbo):
    """An objective whose loss turns NaN from the ``calls``-th training call on."""
    count = {"n": 0}

    def patched(*args, **kwargs):
        terms = elbo(*args, **kwargs)
        count["n"] += 1
        if count["n"] > calls and torch.is_grad_enabled():
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    return patched


def test_non_finite_steps_are_skipped_then_stop_the_run(tiny_images, tmp_path, monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "elbo", nan_after(4, OBJECTIVES["elbo"]))  # the entry train_step looks up
    cfg = tiny_config(str(tiny_images), tmp_path / "nan", max_bad_steps=3, epochs=5)
    with pytest.raises(TrainingStopped, match="3 steps in a row with a non-finite loss"):
        train_run(cfg)
    # the steps before the NaNs were taken; the weights written are finite
    assert all(
        v.isfinite().all()
        for v in load_file(tmp_path / "nan" / "checkpoint.safetensors").values()
        if v.is_floating_point()
    )


def test_metrics_give_each_epoch_s_mean_kl_weight_and_the_skipped_updates(tiny_images, tmp_path):
    run = train_run(tiny_config(str(tiny_images), tmp_path / "w", warmup_epochs=2, epochs=3))
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    beta = [float(r["beta"]) for r in rows]
    assert beta[0] < 0.25 and beta[1] - beta[0] == pytest.approx(0.5) and beta[2] == 1  # not the last batch's
    assert [r["skipped_steps"] for r in rows] == ["0"] * 3  # counted with the default settings too


def test_early_stopping_ends_a_run_that_stopped_improving(tiny_images, tmp_path):
    run = train_run(tiny_config(str(tiny_images), tmp_path / "es", lr=1e-9, patience=1, epochs=40))
    epochs = (run / "metrics.csv").read_text().strip().count("\n")
    assert 2 <= epochs < 40


def test_config_precedence_defaults_toml_flags_set(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[model]\nnet = "conv"\nlatent_dim = 4\n[train]\nlr = 0.01\nepochs = 7\n')
    args = build_parser().parse_args(
        [
            "train",
            "--config",
            str(toml),
            "--latent-dim",
            "5",
            "--lr",
            "0.02",
            "--set",
            "train.lr=0.03",
            "--set",
            "hidden=8,8",
        ]
    )
    cfg = train_config(args)
    assert (cfg.model.net, cfg.model.latent_dim, cfg.train.epochs) == ("conv", 5, 7)
    assert cfg.train.lr == 0.03 and cfg.model.hidden == [8, 8] and cfg.train.batch_size == 128


@pytest.mark.parametrize(
    ("toml", "key", "want"),
    [
        ("[data]\nin_memory = false", "data.in_memory", "false"),
        ("[data]\nstandardize = true", "data.standardize", "true"),
        ("[data]\nlabel_column = 2", "data.label_column", "2"),
        ("[model]\nscale = 0.5", "model.scale", "0.5"),
        ("[model]\nscale = 2", "model.scale", "2"),
    ],
)
def test_a_flag_or_number_in_toml_is_taken_for_a_text_setting_that_documents_it(tmp_path, toml, key, want):
    (tmp_path / "c.toml").write_text(toml + "\n")
    cfg = train_config(build_parser().parse_args(["train", "--config", str(tmp_path / "c.toml")]))
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == want
    vaekit.config.validate(cfg)  # in the choices it checks


@pytest.mark.parametrize(
    ("key", "value"), [("data.spec", 3), ("model.scale", True), ("data.binarize", False), ("data.label_column", 1.5)]
)
def test_a_flag_or_number_for_a_text_setting_that_documents_none_is_refused(key, value):
    with pytest.raises(vaekit.VaekitError, match=f"config: {key} must be str, got {value!r}$"):
        vaekit.config.set_value(vaekit.RunConfig(), key, value, strict=True)


def test_python_api_takes_a_flag_for_in_memory():
    with pytest.raises(vaekit.VaekitError, match=r"data\.in_memory=false streams \.npy files and image folders only"):
        vaekit.train(data="digits", in_memory=False, epochs=1, out=None)


def test_python_api_trains_samples_encodes_and_reconstructs(tiny_images, tmp_path):
    run = vaekit.train(
        data=str(tiny_images),
        model="mlp",
        hidden=[16],
        latent_dim=3,
        epochs=1,
        progress=False,
        out=str(tmp_path / "api"),
    )
    x = vaekit.load_dataset(str(tiny_images)).test.x[:5]
    assert run.sample(7, temperature=0.5).shape == (7, 1, 9, 11)
    assert run.encode(x).mean.shape == (5, 3) and (run.encode(x).stddev > 0).all()
    assert run.reconstruct(x).shape == x.shape
    assert vaekit.load_run(tmp_path / "api").config.model.input_shape == [1, 9, 11]


def test_precision_setting_picks_the_training_dtype_and_keeps_answers(tiny_images, tmp_path):
    """bf16 runs the networks under autocast (weights stay float32) and lands near the float32 run's loss."""
    cpu = torch.device("cpu")
    assert step.autocast_dtype("fp32", cpu, "bernoulli") is None
    assert step.autocast_dtype("bf16", cpu, "gaussian") == torch.bfloat16
    assert step.autocast_dtype("auto", cpu, "gaussian") is None  # a Gaussian mean may need more than bf16's 8 bits
    assert step.autocast_dtype("auto", cpu, "bernoulli") == (torch.bfloat16 if step.fast_bf16(cpu) else None)
    losses = {}
    for precision in ("fp32", "bf16"):
        run = train_run(tiny_config(str(tiny_images), tmp_path / precision, precision=precision, epochs=4))
        weights = load_file(run / "model.safetensors")
        assert all(v.dtype == torch.float32 for v in weights.values())
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        losses[precision] = float(rows[-1]["val_loss"])  # validation always runs in float32
    assert losses["fp32"] != losses["bf16"] and abs(losses["bf16"] - losses["fp32"]) < 0.05 * abs(losses["fp32"])


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "vendor", "fast"),
    [
        (True, True, "Intel", True),
        (False, True, "Intel", False),
        (False, True, "AMD", True),
        (False, False, "AMD", False),
    ],
)
def test_auto_precision_follows_the_cpu_s_flags_alone(monkeypatch, amx, avx512_bf16, vendor, fast):
    """AMX tiles: bf16; AVX512-BF16 alone: bf16 on AMD (2.5x float32's rate), float32 on Intel (slower there);
    the same answer every time, busy or not."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(step, "cpu_vendor", lambda: vendor)
    assert [step.fast_bf16(cpu) for _ in range(3)] == [fast] * 3


def test_the_cpu_vendor_is_read_once_from_the_system():
    assert step.cpu_vendor() in ("AMD", "Intel", "") and step.cpu_vendor.cache_info().currsize == 1


def test_auto_precision_is_kept_by_a_resumed_run(tiny_images, tmp_path, monkeypatch):
    """'auto' resolves once (the CPU's bf16 timing), and a resumed run goes on in the dtype it started with."""
    ends = {}
    for name in ("straight", "resumed"):
        monkeypatch.setattr(step, "fast_bf16", lambda device: True)
        cfg = tiny_config(str(tiny_images), tmp_path / name, precision="auto", epochs=2 if name == "resumed" else 4)
        train_run(cfg)
        if name == "resumed":
            monkeypatch.setattr(step, "fast_bf16", lambda device: False)  # today's timing says float32
            cfg.train.epochs = 4
            train_run(cfg, resume=True)
        _, meta = read_tensors(tmp_path / name / "checkpoint.safetensors")
        assert json.loads(meta["state"])["precision"] == "bf16"
        ends[name] = load_file(tmp_path / name / "model.safetensors")
    assert all(torch.equal(ends["straight"][k], v) for k, v in ends["resumed"].items())
    with pytest.raises(vaekit.VaekitError, match=r"train\.seed: a resumed run keeps"):  # base: config.json
        vaekit.train(out=tmp_path / "resumed", resume=True, seed=5, pictures=False)


@pytest.mark.parametrize("value", [1352.5312, 0.000123456789, 7.0, 98765.4321])
def test_metrics_rows_keep_float32_s_digits(value):
    from vaekit.training.metrics_file import metrics_row

    means = {"loss": value, "rec": value, "kl": value, "beta": 1.0, "kl_levels": [value]}
    row = metrics_row(0, means, means, 1e-3, 2.0, 10)
    x = float(torch.tensor(value, dtype=torch.float32))
    assert row["val_loss"] == pytest.approx(value, rel=1e-8) and float(torch.tensor(row["val_loss"])) == x


@pytest.mark.parametrize(
    "epochs, halvings",
    [(1, [0]), (2, [0, 2]), (4, [0, 1, 2, 3]), (6, [0, 0, 1, 2, 2, 3]), (7, [0, 0, 1, 1, 2, 2, 3])],
)
def test_the_step_schedule_halves_the_rate_at_each_quarter_of_the_run(epochs, halvings):
    from vaekit.core.schedules import lr_at

    assert [lr_at(0.1, "step", e, epochs) for e in range(epochs)] == [0.1 * 0.5**h for h in halvings]


@pytest.mark.parametrize(
    "limit, objective, match, key",
    [
        (12, "mmd", "the validation split holds 1 item, and the mmd objective's validation loss", "data.val_fraction"),
        (3, "mmd", "the training split holds 1 item, and the MMD", "data.spec"),
        (3, "factor", "the training split holds 1 item, and the factor objective's", "data.spec"),
    ],
)
def test_a_split_of_one_item_that_a_pairwise_loss_cannot_take_is_refused_before_training(
    limit, objective, match, key, tiny_images, tmp_path
):
    cfg = tiny_config(str(tiny_images), tmp_path / "one", objective=objective, epochs=1)
    cfg.data.limit = limit  # 12: 10, 1, 1 items; 3: 1, 1, 1
    with pytest.raises(vaekit.VaekitError, match=match) as e:
        vaekit.train(cfg, pictures=False)
    assert e.value.key == key and not (tmp_path / "one").exists()


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"beta": 1e308}, "train.beta 1e+308 x KL "),
        ({"capacity_max": 5.0, "gamma": 1e308}, "train.gamma 1e+308 x |KL - C| "),
        ({"tc_beta": 1e308}, "train.tc_beta 1e+308 x TC "),
        ({"objective": "mmd", "mmd_weight": 1e308}, "train.mmd_weight 1e+308 x MMD "),
        ({"objective": "factor", "factor_gamma": 1e308}, "train.factor_gamma 1e+308 x TC "),
    ],
    ids=["beta", "gamma", "tc_beta", "mmd_weight", "factor_gamma"],
)
def test_a_weight_that_overflows_the_first_step_s_loss_is_named(settings, named, tiny_images, tmp_path):
    """The weight the objective reads, not a term of the model's (out.extra: the built-in VAE adds none)."""
    key = named.split()[0]
    line = rf"before any update .*: rec and kl are finite, and {re.escape(named)}.* is not: lower {key}$"
    with pytest.raises(TrainingStopped, match=line) as e:
        train_run(tiny_config(str(tiny_images), tmp_path / "b", **settings))
    assert e.value.key == key and "out.extra" not in str(e.value)


class Overflowing(vaekit.models.MODELS["vae"]):
    """A VAE whose output adds a loss term of its own that is infinite, in training mode only (a regulariser)."""

    def forward(self, x, y=None):
        out = super().forward(x, y)
        if self.training:
            out.extra["penalty"] = torch.full((len(x),), float("inf"))
        return out


def test_a_term_the_model_adds_that_overflows_the_first_step_s_loss_is_named():
    torch.manual_seed(0)
    model = vaekit.build_model(input_shape=(1, 4, 4), hidden=[4], latent_dim=2, likelihood="bernoulli")
    model.__class__ = Overflowing
    with pytest.raises(TrainingStopped, match=r"rec and kl are finite, a term the model adds \(out.extra\) is not$"):
        vaekit.fit(model, torch.rand(32, 1, 4, 4).round(), epochs=1, progress=False, pictures=False)
    assert model.training  # left as it was


def test_sample_refit_without_a_sampler_is_refused(tmp_path, capsys):
    from vaekit.cli import main

    assert main(["sample", str(tmp_path / "run"), "--refit", "--n", "4", "--out", str(tmp_path / "s.png")]) == 2
    assert "--refit fits a --sampler again, and none was given" in capsys.readouterr().err
