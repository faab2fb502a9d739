"""Image grids of any channel count: every writer of a grid makes its items displayable itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.cli import main
from vaekit.viz import plots
from vaekit.viz.plots import save_reconstructions, save_samples

from .conftest import train_argv

MODES = {1: "L", 2: "RGB", 3: "RGB", 4: "RGBA", 5: "RGB", 7: "RGB"}


@pytest.mark.parametrize("c", sorted(MODES))
@pytest.mark.parametrize("writer", ["samples", "reconstructions"])
def test_grids_of_any_channel_count_show_the_first_channels(tmp_path, c, writer):
    x = torch.rand(2, c, 28, 28)  # 28 pixels: not enlarged, so pixel (2, 2) is item 0's (0, 0)
    if writer == "samples":
        save_samples(x, tmp_path / "g.png")
    else:
        save_reconstructions(x, x, tmp_path / "g.png")
    im = Image.open(tmp_path / "g.png")
    assert im.mode == MODES[c]
    shown = np.asarray(im)[2, 2].reshape(-1)  # (C',)
    want = (x[0, :, 0, 0] * 255).round().to(torch.uint8).numpy()
    if c == 2:  # a blank third channel
        want = np.append(want, 0)
    np.testing.assert_array_equal(shown, want[:3] if c > 4 else want)


def test_a_five_channel_run_draws_its_pictures_and_samples(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "five.npz", x=rng.random((60, 5, 8, 8)).astype("f4"), y=rng.integers(0, 3, 60))
    run = tmp_path / "run"
    flags = ["--likelihood", "gaussian", "--latent-dim", "3", "--hidden", "16"]
    assert main(train_argv(tmp_path / "five.npz", run, *flags)) == 0
    assert Image.open(run / "samples.png").mode == Image.open(run / "reconstructions.png").mode == "RGB"
    for verb in ("sample", "reconstruct"):
        assert main([verb, str(run), "--n", "4", "--out", str(tmp_path / f"{verb}.png")]) == 0
        assert Image.open(tmp_path / f"{verb}.png").mode == "RGB"


def test_a_table_runs_pictures_name_its_columns_in_standardised_units(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    rows = ["small,big,kind"] + [
        f"{rng.normal(0.5, 0.1):.3f},{rng.normal(1200, 300):.1f},{'ab'[i % 2]}" for i in range(60)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    figures = {}  # file name -> the figure, kept open to be read instead of written
    monkeypatch.setattr(plots, "_save_figure", lambda fig, path: figures.setdefault(Path(path).name, fig) and path)
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "t.csv", run, "--latent-dim", "2", "--hidden", "8")) == 0
    for verb, name in (("sample", "s.png"), ("reconstruct", "r.png")):  # the verbs' pictures as training's
        assert main([verb, str(run), "--n", "16", "--out", str(tmp_path / name)]) == 0
    for sample, recon in (("samples.png", "reconstructions.png"), ("s.png", "r.png")):
        (samples,), (rec,) = figures[sample].axes, figures[recon].axes
        assert (samples.get_xlabel(), samples.get_ylabel()) == ("small (standardised)", "big (standardised)")
        assert [t.get_text() for t in rec.get_legend().get_texts()] == ["small", "big", "kind=a", "kind=b"]
        shown = np.concatenate([c.get_offsets() for c in rec.collections])  # (input, reconstruction) pairs
        assert np.abs(shown).max() < 10  # standardised: the big column in raw units would reach ~2000
    assert figures["loss.png"].axes[0].get_title() == "objective (-ELBO when beta = 1)"
