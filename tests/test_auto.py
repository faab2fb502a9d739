"""Data as users have it: the likelihood chosen from the data, 8-bit images under a discretized logistic mixture,
tables on standardised columns answered in their own units, colour photographs built in."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.core.discretized import DiscretizedLogisticMixture
from vaekit.core.likelihoods import Likelihood, check_support

TINY = ["--latent-dim", "2", "--epochs", "2", "--batch-size", "16", "--quiet"]
COLOURS = [(255, 0, 0), (0, 200, 0), (0, 80, 255), (255, 220, 0)]


@pytest.mark.parametrize("channels", [1, 2])
def test_the_discretized_logistic_is_a_distribution_over_the_256_values(channels):
    """Every pixel's probabilities over 0..255 (jointly over coupled channels) sum to 1; samples lie on the
    grid; the mean is the mean of the 256 values."""
    torch.manual_seed(0)
    shape, k = (channels, 1, 1), 3
    params = (
        torch.randn(1, Likelihood("discretized_logistic", shape, components=k).n_params, *shape, dtype=torch.float64)
        * 3
    )
    grid = torch.cartesian_prod(*[torch.arange(256.0, dtype=torch.float64)] * channels).view(-1, *shape) / 255
    px = DiscretizedLogisticMixture(params.expand(len(grid), *params.shape[1:]), shape, k)
    p = px.log_prob(grid).exp()  # (256 ** C,)
    assert abs(p.sum().item() - 1) < 1e-5
    one = DiscretizedLogisticMixture(params, shape, k)
    draws = torch.stack([one.sample() for _ in range(50)])
    assert torch.equal(draws * 255, torch.round(draws * 255)) and draws.min() >= 0 and draws.max() <= 1
    exact = (p[:, None] * grid.flatten(1)).sum(0)  # (C,): each channel's mean over the joint law
    assert (one.mean.flatten() - exact).abs().max() < (1e-6 if channels == 1 else 0.35 / 255)


def dlm_params(shape: tuple[int, ...], k: int, seed: int = 0) -> torch.Tensor:
    """Raw parameters (1, K (C + 2), *shape) float64: scales 0.05..1, coupling coefficients up to tanh(+-4)."""
    g = torch.Generator().manual_seed(seed)
    c = shape[0]
    params = torch.randn(1, c + 2, k, *shape, generator=g, dtype=torch.float64)
    params[:, 2] -= 1.5  # log-scales about -1.5
    params[:, 3:] *= 2
    return params.flatten(1, 2)


def colour_mean(params: torch.Tensor, k: int) -> torch.Tensor:
    """(3,) the mean of one colour pixel under the mixture (float64): summed over the 256 x 256 values of channels
    0 and 1 from the bins' logistic probabilities, channel c's location being m_c + sum_j tanh(a_jc) y_j; channel
    2's mean given them in closed form, -1 + s (softplus((m + 1) / s) - softplus((m - 1) / s)), which its 256
    levels' sum equals to 1e-6 of a level at scales of a bin or more."""
    p = params.view(5, k, 3)
    lv = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # bin centres y
    edges = lv[:-1] + 1 / 255

    def pmf(m, s):  # (...,) -> (..., 256)
        cdf = torch.sigmoid((edges - m[..., None]) / s)
        return torch.diff(cdf, dim=-1, prepend=torch.zeros_like(cdf[..., :1]), append=torch.ones_like(cdf[..., :1]))

    out = torch.zeros(3, dtype=torch.float64)
    for w, m, s, a in zip(p[0, :, 0].softmax(0), p[1], p[2].clamp(min=-7).exp(), torch.tanh(p[3:]).transpose(0, 1)):
        joint = pmf(m[0], s[0])[:, None] * pmf(m[1] + a[0, 1] * lv, s[1])  # (256 y0, 256 y1)
        m2 = m[2] + a[0, 2] * lv[:, None] + a[1, 2] * lv
        e2 = -1 + s[2] * (F.softplus((m2 + 1) / s[2]) - F.softplus((m2 - 1) / s[2]))
        out += w * torch.stack([(joint.sum(1) * lv).sum(), (joint * lv).sum(), (joint * e2).sum()])
    return (out + 1) / 2


@pytest.mark.parametrize("seed", [0, 1])
def test_a_colour_pixels_mean_is_over_the_joint_law_of_its_earlier_channels(seed):
    """E[x_2] is not the mean at channels 0 and 1's means (the clamp to the end bins is not linear): off by up to
    50 levels before on a trained photos run, now within 0.35 of a level of the level-by-level sum."""
    params = dlm_params((3, 1, 1), 2, seed)
    got = DiscretizedLogisticMixture(params.float(), (3, 1, 1), 2).mean.flatten().double()
    assert (got - colour_mean(params, 2)).abs().max() * 255 < 0.35


@pytest.mark.parametrize("channels", [3, 4])
def test_the_mean_of_colour_pixels_is_the_average_of_their_draws(channels):
    """20000 draws of 4 pixels (MC error up to ~0.7 of a level); channels 3.. (C > 3) are estimates (~2 levels)."""
    shape = (channels, 1, 4)
    params = dlm_params(shape, 2).float()
    px = DiscretizedLogisticMixture(params.expand(20000, *params.shape[1:]), shape, 2)
    gap = (px.sample().mean(0) - DiscretizedLogisticMixture(params, shape, 2).mean[0]).abs().amax((1, 2)) * 255
    assert (gap[:3] < 2.5).all() and (gap < 4).all(), gap


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_the_discretized_logistic_takes_the_256_levels_and_refuses_values_between_them(dtype):
    """Values off the levels were rounded to them silently (continuous data scored as 8-bit); 8-bit data as the
    data package calls it (to 1e-3 of a level, or float16's own rounding of one) passes."""
    levels = (torch.arange(256.0, dtype=torch.float64) / 255).to(dtype).float().view(4, 64)
    check_support("discretized_logistic", levels, "data")
    px = DiscretizedLogisticMixture(torch.zeros(4, 3, 64), (64,), 1)
    check_support(px, levels, "data")  # its own support: the same
    between = levels.clone()
    between[2, 5] += 0.3 / 255
    for likelihood in ("discretized_logistic", px):
        with pytest.raises(vaekit.VaekitError, match=r"^data: value 0\.522\d+ \(item 2\) is not one of the 256 levels"):
            check_support(likelihood, between, "data")


def test_training_a_discretized_logistic_on_continuous_data_is_refused_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "grey.npy", np.random.default_rng(0).random((40, 5, 5)).astype(np.float32))
    argv = ["train", "--data", str(tmp_path / "grey.npy"), "--likelihood", "discretized_logistic", *TINY]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not one of the 256 levels" in err[0] and "cbernoulli" in err[0]


def test_the_discretized_logistic_goes_back_twice_through_a_retained_graph():
    """PIWAE takes the encoder's gradient with retain_graph, then the loss's: the same gradient both times."""
    shape = (3, 2, 2)
    params = torch.randn(4, Likelihood("discretized_logistic", shape, components=2).n_params, *shape)
    params.requires_grad_(True)
    lp = DiscretizedLogisticMixture(params, shape, 2).log_prob(torch.randint(0, 256, (4, *shape)) / 255).sum()
    (first,) = torch.autograd.grad(lp, params, retain_graph=True)
    lp.backward()
    assert first.abs().sum() > 0 and torch.equal(first, params.grad)


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A folder of 3 x 30 x 40 colour PNGs (solid shapes on black), trained with no likelihood flag."""
    root = tmp_path_factory.mktemp("colour")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        im = np.zeros((30, 40, 3), np.uint8)
        top, left = rng.integers(0, 18), rng.integers(0, 28)
        im[top : top + 10, left : left + 10] = COLOURS[i % len(COLOURS)]
        Image.fromarray(im).save(root / "images" / f"{i:02d}.png")
    assert (
        main(
            [
                "train",
                "--data",
                str(root / "images"),
                "--model",
                "conv",
                "--set",
                "model.channels=8,8",
                *TINY,
                "--out",
                str(root / "run"),
            ]
        )
        == 0
    )
    return root


def test_colour_images_are_modelled_as_8_bit_colour(colour_run, capsys):
    config = json.loads((colour_run / "run" / "config.json").read_text())
    assert (config["model"]["likelihood"], config["data"]["binarize"], config["data"]["standardize"]) == (
        "discretized_logistic",
        "none",
        "false",
    )
    assert main(["evaluate", str(colour_run / "run"), "--iw-samples", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll"] >= 0 and 0 < result["bits_per_dim"] < 8
    from vaekit.data.prepare import prepare_data

    test = prepare_data(vaekit.load_run(colour_run / "run").config)[0].test.x  # the pictured inputs
    shown = {tuple(int(v) for v in c) for c in (test.permute(0, 2, 3, 1) * 255).round().reshape(-1, 3).tolist()}
    picture = np.asarray(Image.open(colour_run / "run" / "reconstructions.png").convert("RGB"))
    colours = {tuple(int(v) for v in c) for c in picture.reshape(-1, 3)}
    assert len(shown & set(COLOURS)) >= 2 and shown <= colours  # real colours, not binarised speckle


def table(tmp_path, n=120):
    """A CSV of three real columns of very different units, one constant column, and labels."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(13, 0.8, n), rng.normal(750, 300, n), rng.normal(0.3, 0.1, n), np.full(n, 5.0)])
    path = tmp_path / "table.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["alcohol", "proline", "hue", "constant", "label"])
        w.writerows([[*row, i % 3] for i, row in enumerate(x)])
    return path, x


def test_a_table_trains_with_no_likelihood_flag_and_answers_in_its_own_units(tmp_path):
    path, x = table(tmp_path)
    assert (
        main(
            [
                "train",
                "--data",
                str(path),
                "--hidden",
                "16",
                "--latent-dim",
                "2",
                "--epochs",
                "30",
                "--quiet",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["model"]["likelihood"], config["data"]["standardize"]) == ("gaussian", "true")
    stats = json.loads((tmp_path / "run" / "standardize.json").read_text())
    assert stats["scale"][3] == 0.0  # the constant column: shifted only, and answered as its one value
    torch.manual_seed(0)
    samples = vaekit.load_run(tmp_path / "run").sample(500).numpy()
    assert np.isfinite(samples).all()
    assert (np.abs(samples.mean(0) - x.mean(0))[:3] <= x.std(0)[:3]).all()  # within a standard deviation
    run = vaekit.load_run(tmp_path / "run")
    assert (samples[:, 3] == 5.0).all() and (run.reconstruct(torch.from_numpy(x[:4]))[:, 3] == 5.0).all()
    assert main(["anomaly", str(tmp_path / "run"), "--split", "all", "--out", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == list(range(len(x)))  # every row, in file order


def test_binarisation_only_when_asked_or_for_grey_images_under_bernoulli(colour_run, tmp_path):
    assert (
        main(
            [
                "train",
                "--data",
                str(colour_run / "images"),
                "--likelihood",
                "bernoulli",
                *TINY,
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "b" / "config.json").read_text())["data"]["binarize"] == "none"  # colour
    grey = (np.random.default_rng(0).random((40, 5, 5)) * 0.9).astype(np.float32)
    np.save(tmp_path / "grey.npy", grey)
    for flags, binarize in (
        (["--likelihood", "bernoulli"], "dynamic"),
        ([], "dynamic"),
        (["--binarize", "none"], "none"),
    ):
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(tmp_path / "grey.npy"),
                    *flags,
                    *TINY,
                    "--out",
                    str(tmp_path / "g"),
                    "--overwrite",
                ]
            )
            == 0
        )
        cfg = json.loads((tmp_path / "g" / "config.json").read_text())
        assert cfg["data"]["binarize"] == binarize and cfg["model"]["likelihood"] == "bernoulli"


def test_photos_are_colour_patches_split_by_position():
    data = vaekit.load_dataset("photos:16")
    assert data.shape == (3, 16, 16) and data.classes == ["china", "flower"]
    assert len(data.train) > len(data.val) > 0 and len(data.val) == len(data.test)
    x = data.train.x
    assert torch.equal(x * 255, torch.round(x * 255)) and x.std() > 0.1  # 8-bit colour
    limited = vaekit.load_dataset("photos:16", limit=50)  # a seeded draw of each split: both photographs
    assert [len(s) for s in (limited.train, limited.val, limited.test)] == [50] * 3
    assert limited.train.y.unique().tolist() == [0, 1]
    with pytest.raises(vaekit.VaekitError, match="photos:SIZE"):
        vaekit.load_dataset("photos:x")
