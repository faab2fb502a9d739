"""The conditional and ladder families beyond the contract (tests/test_models.py), the capacity objective, the CLI;
the models' constructor checks and what fit records of networks built in Python."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.core import capacity_at, elbo
from vaekit.core.likelihoods import MIN_SCALE, Likelihood
from vaekit.core.tabular import Tabular
from vaekit.errors import VaekitError
from vaekit.files import CHECKPOINT
from vaekit.models import MODELS, LadderVAE, build_model, mlp_nets
from vaekit.models.standardized import Standardized, column_stats
from vaekit.training.checkpoint import read_tensors

TINY = ["--hidden", "16", "--latent-dim", "3", "--batch-size", "16", "--epochs", "2", "--quiet"]


def cli(argv: list) -> int:
    return main([str(a) for a in argv])


def model(family, **kw):
    return build_model(
        ModelConfig(
            family=family, hidden=[16], latent_dim=3, input_shape=[1, 5, 6], **{"likelihood": "bernoulli", **kw}
        )
    )


def test_ladder_kl_is_taken_against_the_learned_conditional_prior():
    ladder = model("ladder", latent_dims=[3, 2, 2])  # z_1: 3, z_2: 2, z_3: 2
    x = torch.rand(4, 1, 5, 6)
    out = ladder(x)
    assert ladder.latent_dims == [2, 2, 3] and [z.shape[1] for z in out.z] == [2, 2, 3]  # top to bottom
    for level, (p, z_above) in enumerate(zip(out.pz[1:], out.z[:-1])):  # p(z_l|z_{l+1}), l = L-1 .. 1
        expected = ladder.conditional_prior(len(out.z) - 1 - level, z_above)
        assert torch.equal(p.mean, expected.mean) and p.batch_shape == (4,)
        assert not torch.allclose(p.mean, torch.zeros_like(p.mean))
    terms = elbo(out, x)
    kl = [kl_divergence(q, p) for q, p in zip(out.qz, out.pz)]
    assert all(torch.allclose(a, b) for a, b in zip(terms["kl_layers"], kl))
    assert torch.allclose(terms["kl"], sum(kl))
    standard = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    assert not torch.allclose(terms["kl_layers"][-1], kl_divergence(out.qz[-1], standard))
    terms["kl"].sum().backward()  # the KL trains the top-down (prior) networks
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ladder.down.parameters())


def test_ladder_generates_from_the_top():
    ladder = model("ladder", latent_dims=[3, 2])
    torch.manual_seed(1)
    a = ladder.generate(6).mean
    torch.manual_seed(1)
    assert torch.equal(a, ladder.generate(6).mean) and a.shape == (6, 1, 5, 6)
    assert not torch.equal(ladder.generate(6, temperature=0.0).mean[0], a[0])


@pytest.mark.parametrize("label_embedding,learned_prior", [(0, True), (4, False)])
def test_conditional_samples_depend_on_the_label(label_embedding, learned_prior):
    cvae = model("cvae", num_classes=3, label_embedding=label_embedding, learned_prior=learned_prior)
    samples = []
    for k in range(3):
        torch.manual_seed(0)
        samples.append(cvae.generate(5, y=torch.full((5,), k)).mean)
    assert not torch.equal(samples[0], samples[1]) and not torch.equal(samples[1], samples[2])
    with pytest.raises(VaekitError):
        cvae.generate(5)
    with pytest.raises(VaekitError):
        cvae.generate(2, y=torch.tensor([0, 3]))


def test_conditional_prior_is_learned_per_class():
    cvae = model("cvae", num_classes=3)
    torch.nn.init.normal_(cvae.pz_table.weight)
    y = torch.tensor([0, 2, 2])
    out = cvae(torch.rand(3, 1, 5, 6), y)
    assert torch.equal(out.pz[0].mean, cvae.pz_table.weight[y, :3])
    assert torch.equal(out.pz[0].mean[1], out.pz[0].mean[2]) and not torch.equal(out.pz[0].mean[0], out.pz[0].mean[1])


def test_mixture_prior_per_class():
    """prior_components = 3: p(z|y) is a learned mixture per class; its KL is the one-sample estimate, which
    averages to the analytic KL when the components coincide; temperature 0 decodes component locations."""
    cvae = model("cvae", num_classes=2, prior_components=3)
    y = torch.tensor([0, 1, 1])
    pz = cvae.prior(y)
    assert pz.batch_shape == (3,) and pz.event_shape == (3,) and pz.component_distribution.batch_shape == (3, 3)
    locs = pz.component_distribution.mean  # (B, C, D)
    assert torch.equal(locs[1], locs[2]) and not torch.equal(locs[0], locs[1])
    torch.manual_seed(0)
    px = cvae.generate(200, temperature=0.0, y=torch.zeros(200, dtype=torch.long))
    means = cvae.decode(locs[0], torch.zeros(3, dtype=torch.long)).mean  # one per component of class 0
    gaps = (px.mean.unsqueeze(1) - means).abs().flatten(2).sum(2)  # (200, 3)
    assert (gaps.min(1).values < 1e-5).all() and set(gaps.argmin(1).tolist()) == {0, 1, 2}
    w = cvae.pz_table.weight.detach().view(2, 3, 7)  # (classes, components, [loc 3, raw scale 3, logit])
    w[:, :, :6] = torch.randn(2, 1, 6)  # each class's components coincide, under any mixture weights
    w[:, :, 6] = torch.randn(2, 3)
    x = torch.rand(3, 1, 5, 6).bernoulli()
    with torch.no_grad():
        kl = elbo(cvae(x.repeat(20000, 1, 1, 1), y.repeat(20000)), x.repeat(20000, 1, 1, 1))["kl"]
        comp = cvae.prior(y).component_distribution.base_dist
        analytic = kl_divergence(cvae.encode(x, y), Independent(Normal(comp.loc[:, 0], comp.scale[:, 0]), 1))
    assert torch.allclose(kl.view(20000, 3).mean(0), analytic, rtol=0.03, atol=0.03)


def test_capacity_objective_moves_the_loss():
    vae = model("vae")
    x = torch.rand(8, 1, 5, 6)
    torch.manual_seed(0)
    out = vae(x)
    t = elbo(out, x)
    kl, rec = t["kl"].mean(), t["rec"].mean()
    for c, gamma in [(0.0, 1.0), (5.0, 1.0), (5.0, 100.0)]:
        loss = elbo(out, x, capacity=c, gamma=gamma)["loss"]
        assert torch.allclose(loss, -rec + gamma * (kl - c).abs())
    assert capacity_at(0.0, 25, 10) == 0 and capacity_at(5, 25, 10) == 12.5 and capacity_at(30, 25, 10) == 25
    assert capacity_at(3, 0, 10) is None and capacity_at(0, 25, 0) == 25


def test_models_lists_every_family(capsys):
    assert cli(["models", "--shape", "1,28,28"]) == 0
    table = capsys.readouterr().out
    assert all(f"| {name} | conv |" in table for name in MODELS)
    assert all(f"| {name} | mlp |" in table for name in MODELS if name != "deep")  # deep: its own conv cells
    assert "| deep | conv | 1964 in 5 groups |" in table  # every group counted, not the top one alone
    assert cli(["models", "--shape", "1,x"]) == 2


@pytest.fixture
def labelled_npz(tiny_images, tmp_path):
    """tiny_images with labels cat, dog, owl (0..2): an .npz holding x and y."""
    x = np.load(tiny_images)
    path = tmp_path / "labelled.npz"
    np.savez(path, x=x, y=np.array(["cat", "dog", "owl"])[np.arange(len(x)) % 3])
    return path


def test_conditional_run_samples_a_requested_class(labelled_npz, tiny_images, tmp_path, capsys):
    run = tmp_path / "cvae"
    assert cli(["train", "--data", labelled_npz, "--conditional", *TINY, "--out", run]) == 0
    assert (run / "samples.png").stat().st_size > 0
    for label in (" owl", "owl"):  # by name (classes.json), spaces stripped
        assert cli(["sample", run, "--label", label, "--n", "4", "--out", tmp_path / f"{label}.npy"]) == 0
    assert np.array_equal(np.load(tmp_path / " owl.npy"), np.load(tmp_path / "owl.npy"))
    assert np.load(tmp_path / "owl.npy").shape == (4, 1, 9, 11)
    assert cli(["sample", run, "--n", "6", "--out", tmp_path / "grid.npy"]) == 0  # a row per class
    assert np.load(tmp_path / "grid.npy").shape == (6, 1, 9, 11)
    capsys.readouterr()
    for label, why in (("2", "label '2': no class has this name"), ("emu", "this run's classes are cat, dog, owl")):
        assert cli(["sample", run, "--label", label, "--out", tmp_path / "bad.npy"]) == 2
        assert why in capsys.readouterr().err
    assert cli(["train", "--data", tiny_images, "--conditional", *TINY, "--out", tmp_path / "no-labels"]) == 2
    assert "has none" in capsys.readouterr().err


def test_ladder_run_logs_the_kl_of_every_level(tiny_images, tmp_path):
    run = tmp_path / "ladder"
    flags = [f for f in TINY if f not in ("--latent-dim", "3")]  # latent_dims gives the sizes
    assert cli(["train", "--data", tiny_images, "--model", "ladder", "--latent-dims", "3,2", *flags, "--out", run]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_kl_1", "train_kl_2", "val_kl_1", "val_kl_2"} <= set(header)


def test_ladder_posteriors_topdown_reads_the_state_and_precision_weights_the_prior():
    x = torch.rand(4, 1, 5, 6)
    top = model("ladder", latent_dims=[3, 2])
    d = top.bottom_up(x)
    z2a, z2b = torch.randn(4, 2), torch.randn(4, 2)
    qa, pa = top.posterior(1, d[0], z2a)
    qb, _ = top.posterior(1, d[0], z2b)
    assert not torch.allclose(qa.mean, qb.mean)  # q(z_1|x, z_2) moves with z_2 through h_1
    assert torch.equal(pa.mean, top.conditional_prior(1, z2a).mean)
    prec = model("ladder", latent_dims=[3, 2], ladder_posterior="precision")
    d = prec.bottom_up(x)
    q, p = prec.posterior(1, d[0], z2a)
    q_hat = prec.to_q[0](d[0])
    loc_hat, scale_hat = q_hat[:, :3], torch.nn.functional.softplus(q_hat[:, 3:]) + MIN_SCALE
    var = 1 / (scale_hat.pow(-2) + p.stddev.pow(-2))
    assert torch.allclose(q.variance, var, atol=1e-5) and (q.stddev < p.stddev).all()
    assert torch.allclose(q.mean, var * (loc_hat / scale_hat**2 + p.mean / p.variance), atol=1e-4)


def test_capacity_run_keeps_the_weights_best_at_the_final_target(tiny_images, tmp_path):
    """Every epoch's validation loss is -rec + gamma |KL - C_max|, not the ELBO, and the best weights are the
    epoch with the least of it (else a capacity run keeps an early epoch, whose KL is far below C_max)."""
    run = tmp_path / "capacity"
    assert (
        cli(
            [
                "train",
                "--data",
                tiny_images,
                *TINY[:-3],  # all but --epochs 2 (a flag given twice is refused)
                "--epochs",
                "4",
                "--quiet",
                "--set",
                "train.capacity_max=6",
                "--set",
                "train.capacity_epochs=3",
                "--set",
                "train.gamma=50",
                "--out",
                run,
            ]
        )
        == 0
    )
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        expected = -float(r["val_rec"]) + 50 * abs(float(r["val_kl"]) - 6)
        assert float(r["val_loss"]) == pytest.approx(expected, rel=1e-4, abs=1e-3)
    state = json.loads(read_tensors(run / CHECKPOINT)[1]["state"])
    assert state["best_val"] == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-5)


def table_model() -> nn.Module:
    """A Gaussian VAE of (4,) items."""
    return build_model(ModelConfig(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian"))


BAD_ARGUMENTS = {
    "loc-length": (lambda: Standardized(table_model(), torch.zeros(3), torch.ones(3)), r"takes items of \(4,\)"),
    "scale-length": (lambda: Standardized(table_model(), torch.zeros(4), torch.ones(3)), r"got \(4,\) and \(3,\)"),
    "negative-scale": (lambda: Standardized(table_model(), torch.zeros(4), -torch.ones(4)), "scale finite and >= 0"),
    "std-categories": (
        lambda: Standardized(table_model(), torch.zeros(4), torch.ones(4), [3, 2]),
        r"categories \[3, 2\] need 5 one-hot slots",
    ),
    "tabular-categories": (
        lambda: Tabular(torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 5), [3, 3]),
        r"K_j >= 1 adding up to the 5 logits per item, got \[3, 3\]",
    ),
    "components": (lambda: Likelihood("discretized_logistic", (3, 2, 2), components=0), r"components .* got 0"),
    "ladder-dims": (lambda: LadderVAE(*mlp_nets(10, 3), 4), r"dims must list positive latent sizes .* got 4"),
    "shape": (lambda: mlp_nets("10", 3), r"shape must be the item shape, sizes >= 1 .* got '10'"),
    "latent-dim": (lambda: mlp_nets(10, [3]), r"latent_dim must be a positive integer, got \[3\]"),
}


@pytest.mark.parametrize("make,match", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_constructors_refuse_bad_arguments_in_one_line(make, match):
    with pytest.raises(VaekitError, match=match) as e:
        make()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("shape,hidden", [(10, (8,)), ((10,), 8), ((2, 5), [6, 8])])
def test_mlp_nets_take_an_int_as_a_vector_s_shape_and_one_layer(shape, hidden):
    enc, dec = mlp_nets(shape, 3, hidden)
    dims = (shape,) if isinstance(shape, int) else shape
    assert enc(torch.rand(4, *dims)).shape == (4, 8) and dec(torch.rand(4, 3)).shape == (4, 1, *dims)


@pytest.mark.parametrize("wrap", [np.asarray, torch.from_numpy], ids=["numpy", "tensor"])
def test_standardized_fits_the_columns_of_an_array_or_a_tensor(wrap):
    x = np.random.default_rng(0).normal([1.0, -2.0, 0.0, 5.0], [2.0, 0.5, 1.0, 3.0], (200, 4)).astype(np.float32)
    std = Standardized.fitted(table_model(), wrap(x))
    assert torch.allclose(std.loc, torch.from_numpy(x.mean(0)), atol=1e-5)
    assert torch.allclose(std.scale, torch.from_numpy(x.std(0)), atol=1e-5)


def test_fit_standardises_a_column_far_from_zero_by_its_spread_as_the_detector_does():
    """A column of 1.7e9 +- 100 (float32 steps of 128 there) keeps its spread, not scale 0 (a sum of squares lost
    it); the detector's float64 rows get the same routine's loc and scale."""

    rng = np.random.default_rng(0)
    x = np.c_[1.7e9 + 100 * rng.normal(size=300), rng.normal(size=(300, 2))]
    net = vaekit.build_model(input_shape=[3], hidden=[8], latent_dim=2, likelihood="gaussian")
    run = vaekit.fit(net, x, epochs=1, progress=False, pictures=False, standardize=True)
    assert 85 < float(run.model.scale[0]) < 125 and torch.allclose(run.model.scale[1:], torch.ones(2), atol=0.15)
    loc, scale = column_stats(torch.from_numpy(x))
    assert torch.allclose(scale.double(), torch.from_numpy(x.std(0)), rtol=1e-6) and float(loc[0]) == 1.7e9
    flat = torch.tensor([[1.7e9, 0.1]] * 5, dtype=torch.float64)
    assert column_stats(flat)[1].tolist() == column_stats(flat.float())[1].tolist() == [0, 0]  # constant: scale 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "loc, spread",
    [(5.0, 0), (0.0, 0), (1.7e9, 0), (1.1, 0), (1e-20, 0), (1.7e9, 100.0), (1e-20, 1e-21), (0.0, 1e-30)],
)
def test_a_column_is_constant_by_its_own_size_not_an_absolute_floor(loc, spread, dtype):
    """Scale 0 for a constant column of any size (float64's rounding of the mean of 1.1s or 1e-20s is no spread);
    the real spread of one that varies, however small its values (1e-20 +- 1e-21 once came out constant)."""
    x = torch.from_numpy(loc + spread * np.random.default_rng(0).normal(size=(50, 1))).to(dtype)  # (50, 1)
    scale = float(column_stats(x, batch_size=7)[1])  # batches merged, as a long column's
    want = float(x.double().std(0, correction=0)) if spread else 0.0
    assert scale == pytest.approx(want, rel=1e-5, abs=0)


@pytest.mark.parametrize("loc", [0.3, 1.7e9, 1e-20])
def test_a_float32_column_differing_only_by_float32_rounding_is_constant(loc):
    x64 = loc * (1 + 1e-10 * torch.arange(50, dtype=torch.float64))[:, None]  # (50, 1): apart by 5e-9 of loc at most
    assert float(column_stats(x64)[1]) > 0 and float(column_stats(x64.float(), batch_size=7)[1]) == 0


def test_fit_records_networks_from_python_as_custom_without_the_built_in_widths(tmp_path):
    torch.manual_seed(0)
    vae = vaekit.VAE(nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), nn.Linear(2, 16), latent_dim=2)
    x = (np.random.default_rng(0).random((24, 16)) > 0.5).astype(np.float32)
    run = vaekit.fit(vae, x, epochs=1, out=tmp_path / "run", progress=False, pictures=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert (saved["net"], saved["hidden"], saved["channels"]) == ("custom", [], [])
    again = vaekit.load_run(tmp_path / "run")  # rebuilt from model.json
    assert torch.equal(again.encode(x[:4]).mean, run.encode(x[:4]).mean)
