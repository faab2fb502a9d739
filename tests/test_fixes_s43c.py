"""Fixes a user found: 2-channel (grey + alpha) channels-last images are moved, `sample` writes a .csv for a run
on an (N, D) array, a frame's numbers stored as dtype object, and the advice for whole numbers 0..16."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import train_argv
from vaekit.cli import main
from vaekit.data.containers import channels_last, frame_array, moved_note
from vaekit.data.item_arrays import EIGHT_BIT, support_check, to_layout
from vaekit.data.signals import channels_last_of
from vaekit.errors import VaekitError


def test_two_channel_channels_last_images_are_moved_as_one_three_and_four_are(tmp_path, capsys):
    moved_note("d", (16, 16, 2))
    assert "read as channels-last images (grey + alpha), moved to (2, 16, 16)" in capsys.readouterr().err
    x = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 2), dtype=np.uint8)  # grey + alpha (PIL's LA)
    assert to_layout(x, "c2").shape == (40, 2, 16, 16)
    assert to_layout(x[:, :2, :8], "c2").shape == (40, 2, 8, 2)  # (2, 8, 2): channels-first, as (3, 8, 3) is
    assert channels_last((16, 16, 2), np.dtype(np.uint8), None) and channels_last((8, 8, 2), np.dtype(np.float32), None)
    assert not channels_last((2, 16, 2), np.dtype(np.uint8), None)
    np.save(tmp_path / "c2.npy", x)
    assert main(train_argv(tmp_path / "c2.npy", tmp_path / "r", "--hidden", "8", "--latent-dim", "2")) == 0
    assert '"input_shape": [\n      2,\n      16,\n      16\n    ]' in (tmp_path / "r" / "config.json").read_text()
    assert channels_last_of((2, 16, 16), (16, 16, 2))  # a run trained before on (16, 16, 2) reads them as it did


def test_sample_writes_an_array_runs_rows_as_csv_and_still_refuses_images(tmp_path, capsys):
    np.save(tmp_path / "b.npy", np.random.default_rng(0).random((60, 5)) > 0.5)
    run = str(tmp_path / "r")
    assert main(train_argv(tmp_path / "b.npy", run, "--hidden", "8", "--latent-dim", "2")) == 0
    for out in ("s.csv", "s.npy"):
        assert main(["sample", run, "--n", "4", "--seed", "3", "--out", str(tmp_path / out)]) == 0
    rows = pd.read_csv(tmp_path / "s.csv")
    assert list(rows.columns) == ["0", "1", "2", "3", "4"]  # no index: no row of a file stands behind a sample
    assert np.array_equal(rows.to_numpy(np.float32), np.load(tmp_path / "s.npy"))  # the .npy's means
    assert "4 rows written to" in capsys.readouterr().out


def test_a_frames_numbers_of_dtype_object_are_read_as_numbers():
    x = np.random.default_rng(0).random((6, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    assert np.array_equal(frame_array(frame.astype(object), "data"), x)
    mixed = pd.DataFrame({"a": pd.Series([1, 2.5, None, True, decimal.Decimal("1.5"), np.int64(3)], dtype=object)})
    np.testing.assert_array_equal(frame_array(mixed, "data")[:, 0], [1, 2.5, np.nan, 1, 1.5, 3])
    with pytest.raises(VaekitError, match=r"columns a, b are of dtype object, .*\(df\.astype\(float\)\)$"):
        frame_array(frame.astype(str).astype(object), "data")  # numbers written as text
    with pytest.raises(VaekitError, match=r"columns g are not numeric \(text or categories\)"):
        frame_array(frame.assign(g="x"), "data")


@pytest.mark.parametrize("top, said", [(16, "divide by their maximum (16) for [0, 1]"), (200, EIGHT_BIT)])
def test_whole_numbers_get_the_advice_their_largest_value_fits(top, said):
    x = torch.linspace(0, top, 64).round().reshape(1, 1, 8, 8).repeat(3, 1, 1, 1)  # 0..16: 8x8 digits' raw scale
    with pytest.raises(VaekitError, match=r"\(real-valued data needs the gaussian likelihood\)$") as e:
        support_check("bernoulli", x, "d")
    assert said in str(e.value) and ("by 255" in str(e.value)) == (top > 16)
