"""What the report page and its figures say: a split of one item, KL warm-up, how training ended, huge numbers,
captions per family, names from the data drawn literally, hierarchy levels named."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import RunConfig
from vaekit.viz import curves, plots, report_pictures
from vaekit.viz.curves import loss_figure
from vaekit.viz.plots import Columns, _figure, save_reconstructions, save_samples
from vaekit.viz.report import eval_rows
from vaekit.viz.report_pictures import best_epoch, eval_caption, kl_picture, training_line

from .conftest import train_argv


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> vaekit.Run:
    """A tiny run of 60 (9, 11) images, trained 2 epochs with a KL warm-up over the first."""
    tmp = tmp_path_factory.mktemp("pages")
    x = np.random.default_rng(0).random((60, 9, 11)).astype(np.float32)
    np.save(tmp / "img.npy", x)
    flags = ["--hidden", "8", "--latent-dim", "2", "--warmup-epochs", "1"]
    argv = train_argv(tmp / "img.npy", tmp / "run", *flags)
    assert main([*argv[: argv.index("--epochs")], "--epochs", "2", *argv[argv.index("--epochs") + 2 :]]) == 0
    return vaekit.load_run(tmp / "run")


def columns(**kw) -> dict[str, np.ndarray]:
    """metrics.csv's columns as ``read_metrics`` gives them."""
    return {k: np.asarray(v, dtype=float) for k, v in kw.items()}


def test_a_report_on_one_item_leaves_out_paths_and_the_map_and_says_why(run, tmp_path):
    x = np.load(run.folder.parent / "img.npy")[:1, None]  # (1, 1, 9, 11)
    page = vaekit.write_report(run, data=x, k=2, out=tmp_path / "one.html").read_text()
    assert "the split has 1 item (they need 2)" in page
    assert page.count("<img") == 4  # curves, KL, samples, reconstructions


def test_the_page_says_how_training_ended_and_which_weights_it_shows(run, tmp_path):
    page = vaekit.write_report(run, k=2, out=tmp_path / "r.html").read_text()
    assert "Training: 2 of 2 epochs trained; the weights shown are epoch " in page
    early = columns(epoch=[1, 2, 3, 4], val_loss=[5, 3, 4, 4])
    line = training_line(early, {"epochs": 30, "patience": 2})
    assert "4 of 30 epochs" in line and "epoch 2's" in line and "stopped early" in line and "patience 2" in line
    stopped = training_line(columns(epoch=[1, 2], val_loss=[5, 4]), {"epochs": 200, "patience": 0})
    assert "unfinished: it ended after epoch 2" in stopped and "epoch 2's" in stopped
    diverged = training_line(columns(epoch=[1, 1], val_loss=[9e29, 9e29], skipped_steps=[2, 2]), {"epochs": 5})
    assert "1 of 5" in diverged and "2 steps were skipped" in diverged and "unfinished" in diverged
    assert best_epoch(columns(epoch=[1, 2, 3], val_loss=[np.nan, 1, 0])) == 1  # a NaN first: the trainer's pick


def test_curves_shade_the_kl_warm_up_and_title_the_loss_by_the_objective(run, tmp_path, monkeypatch):
    m = columns(epoch=[1, 2, 3, 4], train_loss=[3, 2, 2, 2], val_loss=[4, 3, 2, 2], beta=[0.1, 0.6, 1, 1])
    fig = loss_figure(m, {"objective": "iwae", "beta": 1.0})
    loss, rec, _ = fig.axes
    assert loss.get_title() == "loss: iwae objective" and "ELBO" not in loss.get_title()
    assert len(loss.patches) == 2 and len(rec.patches) == 2  # epochs 1 and 2: beta below its final 1
    assert "KL warm-up (train beta < 1)" in [t.get_text() for t in loss.get_legend().get_texts()]
    assert all(float(t).is_integer() for t in loss.xaxis.get_majorticklocs())  # no epoch 1.5
    assert loss_figure(m, {"objective": "elbo", "beta": 1.0}).axes[0].get_title() == "loss: -ELBO"
    seen = {}
    monkeypatch.setattr(curves, "loss_figure", lambda m, train: seen.setdefault("train", train) and _figure(1)[0])
    curves.plot_losses(run.folder / "metrics.csv", tmp_path / "c.png")  # its train settings from config.json
    assert seen["train"]["warmup_epochs"] == 1 and seen["train"]["objective"] == "elbo"


@pytest.mark.parametrize(
    ("value", "shown"), [(-9.49191e29, "-9.4919e+29"), (2.5e6, "2.5000e+06"), (-17883.2, "-17883.20")]
)
def test_huge_figures_are_in_scientific_notation(value, shown):
    assert eval_rows({"elbo": value}) == [{"metric": "elbo", "value": shown}]


def fake_run(**model) -> SimpleNamespace:
    """What ``eval_caption`` reads of a run: its config (``model`` settings changed) and whether it needs labels."""
    cfg = RunConfig()
    cfg.model.input_shape = [1, 28, 28]
    for k, v in model.items():  # input_shape too
        setattr(cfg.model, k, v)
    return SimpleNamespace(config=cfg, model=SimpleNamespace(needs_labels=model.get("family") == "cvae"))


def test_captions_say_what_the_figures_are_for_the_family_and_posterior(tmp_path):
    flat = {"kl_per_dim": [None], "kl_per_level": [3.0]}
    iaf = eval_caption(fake_run(posterior="iaf"), flat)
    assert "one-sample estimate" in iaf and "analytic" not in iaf
    assert "kl is analytic" in eval_caption(fake_run(), {"kl_per_dim": [[1.0, 2.0]]})
    vq = eval_caption(fake_run(family="vq"), flat)
    assert "PixelCNN" in vq and "uniform" in vq and "importance-weighted" not in vq
    assert "-log p(x|y)" in eval_caption(fake_run(family="cvae"), {"kl_per_dim": [[1.0]]})
    grey = fake_run(likelihood="bernoulli")
    grey.config.data.binarize = "none"
    assert "cross-entropy" in eval_caption(grey, flat) and "cross-entropy" not in eval_caption(fake_run(), flat)
    table = fake_run(input_shape=[5])
    assert "table's bits_per_dim" in eval_caption(table, flat) and "add 8 bits" not in eval_caption(table, flat)
    assert "add 8 bits per dimension" in eval_caption(fake_run(likelihood="gaussian"), flat)
    assert "density" not in eval_caption(fake_run(), flat)  # a discrete likelihood's bits/dim are bits
    for family in ("vq", "gumbel"):
        caption, _ = kl_picture(flat, tmp_path / f"{family}.png", family)
        assert "flow posterior" not in caption and "VampPrior" not in caption
    _, (ax,) = _figure(1)
    ax.plot([1, 2], [305.6779, 305.6779])
    assert not ax.yaxis.get_major_formatter().get_useOffset()  # a constant is not drawn as 1e-5 + 3.056779e2


def test_names_from_the_data_are_drawn_literally_not_as_maths(tmp_path):
    before = matplotlib.rcParams["text.parse_math"]
    x = torch.randn(20, 2)
    named = Columns(("$x^$", "$income"))
    assert save_samples(x, tmp_path / "s.png", columns=named).stat().st_size > 0
    assert save_reconstructions(x, x + 0.1, tmp_path / "r.png", columns=named).stat().st_size > 0
    fig, (ax,) = _figure(1)
    ax.plot(range(5))
    ax.xaxis.set_major_formatter(lambda v, _: "$a^$")  # tick labels made while the figure is drawn
    assert plots._save_figure(fig, tmp_path / "t.png").stat().st_size > 0
    assert matplotlib.rcParams["text.parse_math"] == before  # the user's matplotlib as it was


def test_hierarchy_kl_panels_name_each_level_and_its_order(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(report_pictures, "_save_figure", lambda fig, path: drawn.append(fig) or Path(path))
    result = {"kl_per_dim": [[0.5, 0.2], [1.0, 0.1, 0.3, 0.2]], "kl_per_level": [0.7, 1.6]}
    kl_picture(result, tmp_path / "kl.png", "ladder")
    titles = [ax.get_title() for ax in drawn[0].axes if ax.get_visible()]
    assert "z_2 (top), 2 dims" in titles[0] and "z_1 (next to the data), 4 dims" in titles[1]
    ticks = drawn[0].axes[0].xaxis.get_majorticklocs()
    assert all(float(t).is_integer() for t in ticks)  # no dimension 0.5
    assert "z_1 next to the data" in eval_caption(fake_run(family="ladder"), result)
