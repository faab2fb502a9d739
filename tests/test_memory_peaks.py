"""What sets a run's memory peak: validation batches sized from the training batch, a data set converted to
float32 split by split, and the estimator's allocator settings given back when it returns."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from vaekit.config import TrainConfig
from vaekit.core.objectives_zoo import ObjectiveSettings
from vaekit.data.core import RawData, build_dataset
from vaekit.training.step import evaluate_loss
from vaekit.training.val_loss import validation_batch, validation_loss

from .test_zoo import batch, model


def decoded_rows(m: torch.nn.Module) -> list[int]:
    """Rows of z each ``m.decode`` call takes, recorded as the model runs."""
    rows, decode = [], m.decode
    m.decode = lambda z, y=None: rows.append(len(z)) or decode(z, y)
    return rows


@pytest.mark.parametrize(
    "settings, rows_per_item",
    [
        (dict(objective="elbo"), 1),
        (dict(objective="mmd"), 1),
        (dict(objective="iwae", iw_samples=5), 5),
        (dict(objective="miwae", iw_samples=3, iw_groups=2), 6),
    ],
)
def test_validation_decodes_no_more_rows_at_once_than_a_training_batch(settings, rows_per_item):
    t, m, x = TrainConfig(batch_size=16, **settings), model(), batch(100)
    rows = decoded_rows(m)
    va = validation_loss(m, x, None, t, None)
    assert np.isfinite(va["loss"])
    assert sum(rows) == 100 * rows_per_item  # every item, in batches (all 100 at once before: batches of 1000)
    assert max(rows) <= 16 + rows_per_item  # a lone last item joins the batch before (``batch_count``)


def test_a_validation_batch_keeps_the_items_an_objective_needs():
    assert validation_batch(TrainConfig(batch_size=1)) == 2
    assert validation_batch(TrainConfig(batch_size=16, objective="iwae", iw_samples=50)) == 1  # 1 item: K rows
    assert validation_batch(TrainConfig(batch_size=16, objective="mmd")) == 16
    assert validation_batch(TrainConfig(batch_size=1, objective="factor")) == 2  # a batch-level term: pairs


@pytest.mark.parametrize("settings", [dict(objective="elbo"), dict(objective="iwae", iw_samples=4)])
def test_the_validation_loss_in_batches_is_the_loss_over_all_items_at_once(settings, monkeypatch):
    """Draws fixed at q(z|x)'s mean, so the loss depends on the batching alone: sums over items, not batch means."""
    mean = lambda d, shape=torch.Size(): d.loc.expand(torch.Size(shape) + d.loc.shape)  # noqa: E731
    monkeypatch.setattr(torch.distributions.Normal, "rsample", mean)
    t, m, x = TrainConfig(batch_size=8, **settings), model(), batch(101)
    s = ObjectiveSettings.of(t, free_bits=0.0, tc_beta=0.0)
    whole = evaluate_loss(m, x, None, t.beta, batch_size=len(x), settings=s, name=t.objective)  # one batch
    va = validation_loss(m, x, None, t, None)
    for k in ("loss", "rec", "kl"):
        assert va[k] == pytest.approx(whole[k], rel=1e-5)


def test_a_data_set_is_converted_split_by_split_from_its_raw_rows():
    """numpy's peak while uint8 images become float32 splits: once the splits' bytes and some raw rows (three
    times before: the whole float32 copy, its scaled copy, then the splits)."""
    x = np.random.default_rng(0).integers(0, 256, (3000, 1, 16, 16), dtype=np.uint8)
    raw = RawData(x, None, "synthetic", scale=255.0)
    tracemalloc.start()
    try:
        ds = build_dataset("s", raw, val_fraction=0.1, test_fraction=0.1, seed=0, binarize="none", limit=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    splits = [ds.train.x, ds.val.x, ds.test.x]
    held = sum(s.numel() * s.element_size() for s in splits)
    assert held == x.size * 4 and peak < 1.6 * held
    whole = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))  # the values as before, row for row
    assert all(torch.equal(s.x, whole[torch.from_numpy(s.rows)]) for s in (ds.train, ds.val, ds.test))
