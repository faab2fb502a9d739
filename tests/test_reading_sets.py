"""--set's reading settings (data.skip_unreadable and the others) on every verb that reads other --data, as the
scoring verbs took them: a photo folder with an unreadable file is refused, and read with the setting the
refusal names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vaekit.cli import main

from .conftest import train_argv


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A one-epoch run on 16 grey 8x8 PNGs, and another folder of them with one file that is no image."""
    root, rng = tmp_path_factory.mktemp("sets"), np.random.default_rng(0)
    for name in ("train", "other"):
        (root / name).mkdir()
        for i in range(16):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")
    (root / "other" / "broken.png").write_bytes(b"not a png")
    assert main(train_argv(root / "train", root / "run", "--hidden", "8", "--latent-dim", "2")) == 0
    return root


@pytest.mark.parametrize(
    "verb",
    [["evaluate", "--iw-samples", "2"], ["reconstruct", "--out", "r.npz"], ["report", "--iw-samples", "2"]],
    ids=lambda v: v[0],
)
def test_a_verb_on_other_data_takes_the_reading_setting_its_refusal_names(photos, verb, capsys, monkeypatch):
    monkeypatch.chdir(photos)
    argv = [verb[0], "run", "--data", "other", *verb[1:]]
    assert main(argv) == 2 and "data.skip_unreadable=true" in capsys.readouterr().err
    assert main([*argv, "--set", "data.skip_unreadable=true"]) == 0
    assert "broken.png" in capsys.readouterr().err  # said skipped
