"""The deep hierarchy's update skipping (StepGuard: train.skip_grad, train.skip_ratio, the longest run of skips)
and KL balancing."""

from __future__ import annotations

import math
import re

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.training import TrainingStopped
from vaekit.training.guard import WARM, StepGuard, warns_at
from vaekit.training.stability import balanced_kl

from .test_deep import data, tiny  # noqa: F401  (the module's 64 8 x 8 images and its tiny DeepVAE)


def test_a_learning_rate_100x_too_high_skips_updates_then_stops_in_one_line(data, tmp_path, capsys):  # noqa: F811
    with pytest.raises(
        TrainingStopped,
        match=r"training stopped at epoch 1, batch \d+: 4 steps in a row skipped, "
        r"gradient norm [\d.e+]+ > train.skip_grad 100; lower train.lr "
        r"\(now 0.1\) or raise train.skip_grad",
    ):
        vaekit.fit(
            tiny(),
            data,
            epochs=3,
            batch_size=8,
            lr=0.1,
            skip_grad=100,
            max_bad_steps=4,
            progress=False,
            pictures=False,
            out=tmp_path / "diverged",
        )
    assert "2 steps in a row skipped" in capsys.readouterr().err  # the warning came first
    ckpt = (
        load_file(tmp_path / "diverged" / "checkpoint.safetensors")
        if (tmp_path / "diverged" / "checkpoint.safetensors").exists()
        else {}
    )
    assert all(v.isfinite().all() for v in ckpt.values() if v.is_floating_point())


def test_an_epoch_whose_every_step_was_skipped_stops_the_run():
    guard = StepGuard(20, skip_grad=1e-9)
    assert not guard.ok(torch.tensor(1.0), "epoch 1, batch 1", torch.tensor(5.0))  # one step, skipped
    with pytest.raises(TrainingStopped, match="training stopped after epoch 1: every step of it was skipped"):
        guard.epoch_means(torch.zeros(3), 0, 1)  # it trained nothing: no loss of 0 reported
    assert StepGuard(20).epoch_means(torch.tensor([4.0, 2.0]), 2, 1) == [2.0, 1.0]


def test_the_guard_keeps_its_longest_run_of_skips_and_can_leave_its_warning_to_the_caller(capsys):
    """``most`` is the longest run in a row (what ``Fitted.most_skipped`` reports); ``warns`` False: no warning."""
    guard = StepGuard(8, skip_grad=10)  # warns at 2 in a row
    guard.warns = False
    steps = [50.0, 50.0, 50.0, 1.0, 50.0]  # norms: 3 skipped in a row, one kept, one more skipped
    assert [guard.ok(torch.tensor(n), "step", torch.tensor(n)) for n in steps] == [False] * 3 + [True, False]
    assert (guard.most, guard.in_row, guard.skipped) == (3, 1, 4) and capsys.readouterr().err == ""
    loud = StepGuard(8, skip_grad=10)
    assert not any(loud.ok(torch.tensor(50.0), "step 9", torch.tensor(50.0)) for _ in range(2))
    assert "2 steps in a row skipped" in capsys.readouterr().err and warns_at(8) == 2


def test_skip_ratio_follows_the_median_kept_norm_and_the_counts_survive_a_resume(data):  # noqa: F811
    guard = StepGuard(3, lr=1e-3, skip_ratio=10)
    ok = lambda g, n: g.ok(torch.tensor(1.0 + n), "step 9", torch.tensor(n))  # noqa: E731
    assert all(ok(guard, 100.0 + i) for i in range(WARM))  # the ratio waits for WARM kept norms
    assert ok(guard, 1000.0) and not ok(guard, 1200.0)  # median of 100..131 and 1000: 116, so the limit is 1160
    twin = StepGuard(3, lr=1e-3, skip_ratio=10)
    twin.load_state_dict(guard.state_dict())
    assert not ok(twin, 1200.0) and (twin.in_row, twin.skipped) == (2, 2)
    with pytest.raises(
        TrainingStopped,
        match=r"3 steps in a row skipped, gradient norm 1200 > train.skip_ratio "
        r"10 x 116; lower train.lr \(now 0.001\) or raise train.skip_ratio",
    ):
        ok(twin, 1200.0)
    with pytest.raises(TrainingStopped, match=r"after epoch 1: every step of it was skipped \(8 so far\)"):
        vaekit.fit(tiny(), data, epochs=2, batch_size=8, skip_grad=1e-9, max_bad_steps=10, progress=False)


@pytest.mark.parametrize("limit", [4, 10])  # stopped by the guard (4 in a row), or by the epoch all skipped (8)
def test_steps_skipped_before_any_update_name_the_threshold_not_the_learning_rate(data, capsys, limit):  # noqa: F811
    """A threshold below the starting gradient norm skips every step from the first: no update was applied, so the
    warning and the stop name train.skip_grad alone."""
    with pytest.raises(TrainingStopped, match=r"raise train.skip_grad: no update was applied yet") as e:
        vaekit.fit(tiny(), data, epochs=2, batch_size=8, skip_grad=1e-9, max_bad_steps=limit, progress=False)
    warning = capsys.readouterr().err
    assert "raise train.skip_grad" in warning and e.value.key == "train.skip_grad"
    assert not re.search(r"\blr\b", str(e.value) + warning)


@pytest.mark.parametrize("limit", [4, 10])
def test_a_non_finite_gradient_before_any_update_blames_the_model_not_the_learning_rate(data, capsys, limit):  # noqa: F811
    """A finite loss whose gradient is NaN from the first step: no update was applied, so neither train.lr nor
    train.clip_grad (which cannot mend a NaN) is named, in the warning or the stop."""
    model = tiny()
    next(model.parameters()).register_hook(lambda g: g * math.nan)
    with pytest.raises(TrainingStopped, match=r"no update was applied yet \(so not for train.lr\)") as e:
        vaekit.fit(model, data, epochs=2, batch_size=8, max_bad_steps=limit, progress=False)
    said = str(e.value) + capsys.readouterr().err
    assert e.value.key is None and "lower train.lr" not in said and "clip_grad" not in said


def test_kl_balancing_weighs_groups_by_their_kl_per_dimension():
    z = [torch.zeros(4, 2), torch.zeros(4, 8)]
    even = [torch.full((4,), 2.0), torch.full((4,), 8.0)]  # 1 nat per dimension in both groups
    assert torch.isclose(balanced_kl(even, z), torch.tensor(10.0), atol=0.05)
    uneven = [torch.full((4,), 6.0), torch.full((4,), 0.8)]  # group 1 carries more per dimension: it pays more
    assert balanced_kl(uneven, z) > 6.8
