"""Data of awkward sizes and types: batches of one under BatchNorm, a training split of one item, 16-bit and
undivided 8-bit images, all-NaN columns, wide tables' column pairs, 1 x 1 images in the deep family, and
counts said in the singular."""

from __future__ import annotations

import re
from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vaekit
from vaekit.data.batching import batch_count
from vaekit.data.core import RawData, _split_indices, check_finite, image_scale, to_layout
from vaekit.data.item_arrays import EIGHT_BIT
from vaekit.data.prepare import auto_settings, checked
from vaekit.data.table_values import clip_note
from vaekit.data.user import as_items
from vaekit.errors import VaekitError
from vaekit.evaluation import table_pairs
from vaekit.evaluation.table_quality import table_quality
from vaekit.models.deep_checks import check_settings
from vaekit.training.trainer import Trainer

QUIET = {"progress": False, "epochs": 1}
RNG = np.random.default_rng(0)


def normed_vae() -> vaekit.VAE:
    """A user's VAE whose encoder and decoder hold BatchNorm."""
    enc = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    dec = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    return vaekit.VAE(enc, dec, latent_dim=2, likelihood="gaussian")


@pytest.mark.parametrize("loader", [False, True], ids=["batch_size", "DataLoader"])
def test_batchnorm_with_batches_of_one_is_refused_before_training(loader):
    x = torch.randn(20, 4)
    data, size = (DataLoader(TensorDataset(x), batch_size=1), None) if loader else (x, 1)
    with pytest.raises(VaekitError, match=r"^train.batch_size 1 makes batches of 1 item, and the model normalises"):
        vaekit.fit(normed_vae(), data, batch_size=size, standardize="false", **QUIET)


def test_batchnorm_trains_where_the_last_batch_would_hold_one_item():
    assert batch_count(11, 2) == 5  # 12 items: 11 train, in batches 2, 2, 2, 2, 3
    run = vaekit.fit(normed_vae(), torch.randn(12, 4), batch_size=2, standardize="false", **QUIET)
    assert np.isfinite(run.history[-1]["train_loss"])


def test_a_training_split_of_one_item_is_refused():
    x = RNG.normal(size=(2, 5)).astype(np.float32)  # 1 to val, 1 to train
    model = vaekit.build_model(input_shape=(5,), latent_dim=2, hidden=[8], likelihood="gaussian")
    with pytest.raises(VaekitError, match=r"^1 training item: nothing to learn"):
        vaekit.fit(model, x, **QUIET)


def test_uint16_images_are_divided_by_65535_and_tables_are_not(tmp_path):
    deep = RNG.integers(0, 65536, (6, 1, 3, 3)).astype(np.uint16)
    assert image_scale(deep) == 65535.0 and image_scale(deep[:, 0, 0]) == 1.0  # a table (N, D): as it is
    assert torch.equal(as_items(deep, "data"), torch.from_numpy(deep / np.float32(65535)))
    assert torch.equal(as_items(deep[:, 0, 0], "data"), torch.from_numpy(deep[:, 0, 0].astype(np.float32)))
    np.save(tmp_path / "deep.npy", deep[:, 0])  # (N, H, W): grey images, read as a file's
    data = vaekit.load_dataset(str(tmp_path / "deep.npy"))
    assert data.scale == 65535.0 and float(data.train.x.max()) <= 1.0
    assert auto_settings(data, "auto", "auto", "auto") == ("cbernoulli", "none", "false")  # as 16-bit folders


@pytest.mark.parametrize("dtype", [np.int64, np.float32])
def test_undivided_8_bit_images_are_said_under_gaussian_and_refused_with_that_advice(dtype, capsys):
    x = torch.from_numpy(RNG.integers(0, 256, (4, 1, 3, 3)).astype(dtype)).float()
    checked(x, "gaussian", "d (train split)")
    checked(x, "gaussian", "d (val split)")  # said once, of the training data
    checked(x[:, 0, 0], "gaussian", "t (train split)")  # a table's columns of 0..255: nothing said
    assert capsys.readouterr().err == f"vaekit: d (train split): {EIGHT_BIT}; modelled as they are, as real values\n"
    with pytest.raises(VaekitError, match=re.escape(f"[0, 1]; {EIGHT_BIT} (real-valued data needs the gaussian")):
        checked(x, "cbernoulli", "d (train split)")
    with pytest.raises(
        VaekitError,
        match=r"\[0, 1\]; (divide data on a 0\.\.255 scale by 255; )?real-valued data needs the gaussian likelihood$",
    ):
        checked(x + 0.5, "cbernoulli", "d (train split)")  # not whole numbers: not pixels


def test_an_all_nan_column_is_named_in_arrays_tensors_and_frames():
    x = RNG.normal(size=(5, 3))
    x[:, 1] = np.nan
    said = "data: column index 1{} has no values, every cell a gap (NaN): nothing to model; leave it out"
    for items in (x, torch.from_numpy(x)):
        with pytest.raises(VaekitError, match=f"^{re.escape(said.format(''))}$"):
            check_finite(items, "data")
    with pytest.raises(VaekitError, match=r"column index 1 \('b'\) has no values"):
        as_items(pd.DataFrame(x, columns=["a", "b", "c"]), "data")
    x[:, 1] = 0.0
    x[2, 1] = np.nan  # one gap: the item is named, as before
    with pytest.raises(VaekitError, match="contains 1 NaN or infinite values, the first in item 2"):
        check_finite(x, "data")


def old_pairs(real: dict, synthetic: dict) -> dict:
    """The per-pair loop column_pairs replaced: np.corrcoef over each pair's filled rows."""

    def pearson(a, b):
        both = ~(np.isnan(a) | np.isnan(b))
        a, b = a[both], b[both]
        return None if len(a) < 2 or a.std() == 0 or b.std() == 0 else float(np.corrcoef(a, b)[0, 1])

    out = {}
    for a, b in combinations(real, 2):
        r, s = pearson(real[a], real[b]), pearson(synthetic[a], synthetic[b])
        error = None if r is None or s is None else round(abs(r - s), 6)
        out[f"{a}|{b}"] = {"real": r and round(r, 6), "synthetic": s and round(s, 6), "error": error}
    return out


def numeric_table(gaps: bool) -> tuple[dict, dict]:
    z = RNG.normal(size=(200, 3))
    real = {f"c{j}": z @ RNG.normal(size=3) + RNG.normal(size=200) + 1000 * j for j in range(8)}
    synthetic = {k: v + RNG.normal(size=200) for k, v in real.items()}
    real["flat"], synthetic["flat"] = np.full(200, 3.0), RNG.normal(size=200)
    if gaps:
        for k in ("c0", "c1", "c2"):
            real[k][RNG.integers(0, 200, 30)] = np.nan
        real["c3"][:199] = np.nan  # one row shared with any column
        real["c4"][100:], real["c4"][:100] = np.nan, 2.5  # constant over the rows it fills
        real["c5"][:100], real["c6"][100:] = 2.5, np.nan  # constant over the rows it shares with c6 alone
    return real, synthetic


@pytest.mark.parametrize("gaps", [False, True], ids=["filled", "gaps"])
def test_column_pairs_are_the_per_pair_loop_s_and_only_the_worst_are_listed(gaps, monkeypatch):
    real, synthetic = numeric_table(gaps)
    old = old_pairs(real, synthetic)
    q = table_quality(real, synthetic, target=False)
    errors = [v["error"] for v in old.values() if v["error"] is not None]
    assert q["correlations"] == old and q["correlation_pairs"] == 36
    assert q["correlation_error"] == round(float(np.mean(errors)), 6)
    monkeypatch.setattr(table_pairs, "PAIRS_KEPT", 3)
    capped = table_quality(real, synthetic, target=False)
    worst = sorted(old, key=lambda k: -(old[k]["error"] if old[k]["error"] is not None else -1))[:3]
    assert list(capped["correlations"]) == worst and capped["correlation_pairs"] == 36
    assert capped["correlation_error"] == q["correlation_error"]  # the means: over every pair


def test_the_clip_note_needs_enough_draws_and_names_a_few_columns(capsys):
    clip_note({"a": [1, 5]}, "modes")  # 1 value of 5: 20%, but of 5 drawn
    assert capsys.readouterr().err == ""
    clip_note({f"c{j}": [j + 2, 100] for j in range(30)}, "modes")  # 2% to 31%
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ": c29 31.0%, c28 30.0%, c27 29.0%, c26 28.0%, c25 27.0% of its" in err
    assert err.endswith("of its values (and 25 more columns)\n")


@pytest.mark.parametrize(
    "groups, patch, shape", [([1, 1, 1, 1], 1, (1, 1, 1)), ([1], 1, (1, 1, 1)), ([1, 1], 4, (1, 4, 4))]
)
def test_1x1_images_in_the_deep_family_are_one_line(groups, patch, shape):
    with pytest.raises(VaekitError, match=r"^the deep family needs images of at least 2 x 2") as e:
        check_settings(shape, groups, "vdvae", "bernoulli", patch=patch)
    assert e.value.key == ("model.deep_patch" if patch > 1 else "model.family")


def test_channels_move_only_where_the_second_axis_is_not_a_channel_count():  # as docs/guides/data.md says
    assert to_layout(np.zeros((2, 3, 8, 3)), "x").shape == (2, 3, 8, 3)
    assert to_layout(np.zeros((2, 8, 8, 3)), "x").shape == (2, 3, 8, 8)


def test_counts_of_one_are_singular():
    one = RawData(np.zeros((1, 2)), None, "d")
    with pytest.raises(VaekitError, match=r"^d: 1 item, need at least 3"):
        _split_indices(one, 1, 0, 0.1, 0.1, 0, None)
    one.x_test = np.zeros((1, 2))
    with pytest.raises(VaekitError, match=r"^d: 1 training item, need at least 2"):
        _split_indices(one, 1, 1, 0.1, 0.1, 0, None)
    said: list[str] = []
    lines = SimpleNamespace(say=lambda line, result=False: said.append(line))
    state, t = SimpleNamespace(bad_epochs=1, rows=[]), SimpleNamespace(min_delta=0.0)
    trainer = SimpleNamespace(at_patience=lambda: True, state=state, lines=lines, t=t)
    assert Trainer.stopped_early(trainer) and said == ["early stopping: no better validation loss for 1 epoch"]
