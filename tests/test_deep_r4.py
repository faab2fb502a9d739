"""Round 4 of the deep hierarchy's fixes: a validation loss that is not finite is never the best (and a run with
none finite stops), the model's own temperature checks, llr_k below the groups, and a report that shows the
user's eval.json as it is."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.evaluation.scores import anomaly_scores
from vaekit.training import TrainingStopped, trainer
from vaekit.training.early_stop import judge
from vaekit.training.state import LoopState

from .test_deep import SHAPE, tiny  # 8 x 8 images and a tiny DeepVAE of 3 groups


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    x = (torch.rand(60, *SHAPE, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    x[:, :, 2:6, 3:5] = 1
    return x


def test_a_validation_loss_that_is_not_finite_is_never_the_best():
    s = LoopState()
    assert [judge(s, v, 0.0) for v in (math.nan, 600.0, math.inf, 500.0, math.nan)] == [0, 1, 0, 1, 0]
    assert (s.best_val, s.patience_val, s.bad_epochs) == (500.0, 500.0, 1)


def nan_at(monkeypatch, epochs: set[int]) -> None:
    """The trainer's validation loss made NaN at the given epochs (1-based)."""
    real, seen = trainer.validation_loss, []

    def fake(*args, **kwargs):
        seen.append(1)
        va = real(*args, **kwargs)
        return va | {"loss": math.nan} if len(seen) in epochs else va

    monkeypatch.setattr(trainer, "validation_loss", fake)


def test_a_nan_epoch_keeps_the_weights_before_it_and_says_so(data, tmp_path, monkeypatch, caplog):
    nan_at(monkeypatch, {2})
    weights = []
    keep = type("Keep", (vaekit.Callback,), {"on_epoch_end": lambda self, e, row, m: weights.append(m.state_dict())})
    model = vaekit.build_model(input_shape=SHAPE, hidden=[8], latent_dim=2, likelihood="bernoulli")
    run = vaekit.fit(model, data, epochs=2, batch_size=20, progress=False, pictures=False, out=tmp_path / "r",
                     callbacks=[keep()])  # fmt: skip
    assert "epoch 2: validation loss nan is not finite: its weights are not kept as best (keeping epoch 1's" in (
        caplog.text
    )
    rows = run.history
    assert [r["best_epoch"] for r in rows] == [1, 1] and math.isfinite(rows[-1]["best_val_loss"])
    loaded = vaekit.load_run(tmp_path / "r").model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights[0].items())


def test_a_run_with_no_finite_validation_loss_stops_and_leaves_nothing(data, tmp_path, monkeypatch):
    nan_at(monkeypatch, {1, 2})
    model = vaekit.build_model(input_shape=SHAPE, hidden=[8], latent_dim=2, likelihood="bernoulli")
    with pytest.raises(TrainingStopped, match=r"diverged at epoch 1: validation loss nan is not finite .* lower "
                       r"train\.lr \(now 0\.5\)$") as e:  # fmt: skip
        vaekit.fit(model, data, epochs=2, batch_size=20, lr=0.5, progress=False, pictures=False, out=tmp_path / "r")
    assert e.value.key == "train.lr" and not (tmp_path / "r").exists()


def test_the_deep_model_checks_its_temperatures_as_run_sample_does():
    torch.manual_seed(0)
    model = tiny().eval()
    assert model.generate(2, torch.tensor(0.8)).mean.shape == (2, *SHAPE)  # a 0-d tensor: one number
    for t in (-1.0, math.nan, [1.0, -1.0, 1.0], [1.0, 1.0]):
        with pytest.raises(vaekit.VaekitError, match="temperature"):
            model.generate(2, t)
    codes = model.prior_codes(2, torch.tensor([1.0, 0.5, 0.0]))
    assert not codes.requires_grad and codes.numpy().shape == (2, sum(model.latent_dims))
    ladder = vaekit.build_model(
        family="ladder", input_shape=SHAPE, hidden=[8], latent_dims=[3, 2], likelihood="bernoulli"
    )
    assert ladder.prior_codes(2).numpy().shape == (2, 5)  # no gradient either


BELOW = r"^llr_k must be in 1\.\.2 \(below the model's 3 latent groups\), got {}$"  # of 3 groups, k = 0 or 3


def test_llr_k_runs_below_the_model_s_groups_and_one_group_is_said(data):
    model = tiny().eval()  # 3 groups
    assert anomaly_scores(model, data[:4], ["llr"], samples=2, llr_k=2)["llr"].shape == (4,)
    for k in (0, 3):
        with pytest.raises(vaekit.VaekitError, match=BELOW.format(k)):
            anomaly_scores(model, data[:4], ["llr"], llr_k=k)
    one = vaekit.DeepVAE(SHAPE, groups=[1, 0, 0], width=8, cell_width=4, latent_channels=2)
    with pytest.raises(vaekit.VaekitError, match="llr is not applicable to a model of 1 latent group"):
        anomaly_scores(one, data[:4], ["llr"])


def test_the_detector_refuses_llr_k_of_every_group_in_the_scores_words(data, tmp_path):
    torch.manual_seed(0)
    run = vaekit.fit(tiny(), data, epochs=1, batch_size=20, progress=False, pictures=False, out=tmp_path / "d")
    rows = data[:8].flatten(1).double().numpy()
    for k in (0, 3):
        with pytest.raises(ValueError, match=BELOW.format(k)):
            vaekit.VAEAnomalyDetector.from_run(run.path, method="llr", llr_k=k).fit(rows)


def test_report_shows_the_user_s_eval_json_as_it_is(data, tmp_path, capsys):
    np.save(tmp_path / "x.npy", data.numpy()[:, 0])
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "x.npy"), "--out", str(run), "--model", "mlp", "--hidden", "8"]
    assert main([*argv, "--latent-dim", "2", "--epochs", "1", "--batch-size", "20"]) == 0
    assert main(["evaluate", str(run), "--iw-samples", "3"]) == 0
    mine = (run / "eval.json").read_text()
    capsys.readouterr()
    assert main(["report", str(run)]) == 0  # no K asked (default 100): shows the user's K = 3
    assert (run / "eval.json").read_text() == mine and "K = 3" in (run / "report.html").read_text()
    assert "(K = 3, " in capsys.readouterr().err
    assert main(["report", str(run), "--iw-samples", "7"]) == 0  # K asked, more than held: evaluated again
    assert json.loads((run / "eval.json").read_text())["k"] == 7


def test_the_divergence_advice_names_clipping_as_set_where_it_is():
    from vaekit.training.guard import StepGuard

    assert StepGuard(10, lr=0.3).fix("") == "lower train.lr (now 0.3) or set train.clip_grad"
    assert StepGuard(10, lr=0.3, clip_grad=200).fix("") == "lower train.lr (now 0.3) (train.clip_grad 200 is set)"
