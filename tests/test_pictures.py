"""Image grids of any channel count: every writer of a grid makes its items displayable itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.cli import main
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
