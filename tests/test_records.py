"""What a run records of its training: the loss curves titled truthfully where a resume changed the objective
(each change marked), and the VQ prior stage's epochs written to prior_metrics.csv with a validation NLL."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.data.prepare import prepare_data
from vaekit.training.folder import clear
from vaekit.training.prior import PRIOR_FIELDS, fit_prior_on, two_stage
from vaekit.viz import curves

TRAIN = {"objective": "elbo", "beta": 2.0, "warmup_epochs": 0.0, "lr": 0.002, "iw_samples": 5}
METRICS = "epoch,train_loss,val_loss,beta\n1,9,8,1\n2,8,7,1\n3,7,6,1\n4,9,8,2\n"
LR = {"epoch": 3, "batch": 0, "changed": {"train.lr": [0.001, 0.002]}}  # no change of the loss: not marked


def change(key: str, old: object, new: object, epoch: int = 4, batch: int = 0) -> dict:
    """One record of config.json's written_by.resumes."""
    return {"epoch": epoch, "batch": batch, "changed": {f"train.{key}": [old, new]}}


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures ``plot_losses`` would save, in order (not drawn: matplotlib's rendering is the slow part)."""
    figures: list = []
    monkeypatch.setattr(curves, "_save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def loss_panel(tmp_path, drawn, resumes: list[dict], train: dict = TRAIN, given: dict | None = None):
    """The loss panel of ``plot_losses`` over ``METRICS`` beside a config.json of ``train`` and ``resumes``."""
    config = {"train": train, "written_by": {"vaekit": "0", "resumes": resumes}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "metrics.csv").write_text(METRICS)
    curves.plot_losses(tmp_path / "metrics.csv", tmp_path / "loss.png", given)
    return drawn[-1].axes[0]


def marks(ax) -> dict[float, str]:
    """{x: legend label} of the panel's vertical lines."""
    return {line.get_xdata()[0]: line.get_label() for line in ax.lines if len(set(line.get_xdata())) == 1}


@pytest.mark.parametrize("given", [None, TRAIN])  # the report passes the run's train settings
def test_a_resume_that_changed_beta_is_marked_and_the_loss_titled_by_stretch(tmp_path, drawn, given):
    ax = loss_panel(tmp_path, drawn, [LR, change("beta", 1.0, 2.0)], given=given)
    assert ax.get_title() == "loss: -ELBO to epoch 3,\n-(rec - 2 KL) from epoch 4"
    assert marks(ax) == {3.5: "from epoch 4: beta 1 -> 2"}  # the lr change of epoch 3 is no change of the loss
    assert "from epoch 4: beta 1 -> 2" in [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize(
    ("train", "resumes", "title", "shown"),
    [
        (TRAIN, [change("beta", 1.0, 3.0, 2), change("beta", 3.0, 2.0, 3, 1)], "at epochs 2, 3", [1.5, 2.5]),
        ({**TRAIN, "objective": "iwae"}, [change("iw_samples", 1, 5)], "at epoch 4", [3.5]),
        ({**TRAIN, "beta": 1.0}, [change("iw_samples", 1, 5)], "-ELBO", []),  # the ELBO reads no iw_samples
        (TRAIN, [change("beta", 1.0, 2.0, 5)], "-ELBO", []),  # a change no epoch drawn trained yet
    ],
)
def test_each_change_of_the_loss_drawn_is_marked_and_named_in_the_title(tmp_path, drawn, train, resumes, title, shown):
    ax = loss_panel(tmp_path, drawn, resumes, train)
    assert ax.get_title().endswith(f"{title})" if shown else title) and sorted(marks(ax)) == shown
    assert "batch 2" in marks(ax).get(2.5, "batch 2")  # a resume within epoch 3, after its first batch


def test_loss_png_and_vaekit_curves_mark_a_resume_that_changed_beta(tiny_images, tmp_path, drawn):
    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_images), "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "3", "--beta", "2", "--quiet"]) == 0
    assert main(["curves", str(out)]) == 0
    assert len(drawn) == 3  # loss.png of each fit, then curves.png
    for fig in drawn[1:]:
        assert fig.axes[0].get_title() == "loss: -ELBO to epoch 2,\n-(rec - 2 KL) from epoch 3"
        assert marks(fig.axes[0]) == {2.5: "from epoch 3: beta 1 -> 2"}


def tiny_vq() -> tuple[torch.nn.Module, torch.Tensor]:
    """A VQ-VAE that trains in a blink, and 24 binary 8 x 8 items (24, 1, 8, 8)."""
    x = (torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    sizes = {"hidden": [8], "latent_dim": 4, "codebook_size": 4, "code_dim": 2, "pixelcnn_channels": 4}
    return vaekit.build_model(family="vq", input_shape=[1, 8, 8], likelihood="bernoulli", pixelcnn_layers=1, **sizes), x


def prior_rows(run) -> list[dict[str, float]]:
    """The rows of ``run``'s prior_metrics.csv, cells as floats (an empty one: NaN)."""
    with open(run / "prior_metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == PRIOR_FIELDS
        return [{k: float(v) if v else math.nan for k, v in row.items()} for row in reader]


def codes_nll(model: torch.nn.Module, x: torch.Tensor) -> float:
    """The mean -log p(codes of x) of ``model``'s prior, nats."""
    part = two_stage(model)
    assert part is not None
    with torch.no_grad():
        return part.prior_nll(part.codes(x)).mean().item()


def test_the_prior_stage_writes_each_epoch_with_its_validation_nll(tmp_path):
    model, x = tiny_vq()
    history = fit_prior_on(model, x[:16], epochs=3, batch_size=8, val=x[16:], run=tmp_path)
    rows = prior_rows(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["seconds"] > 0 for r in rows)
    assert [r["nll_nats"] for r in rows] == pytest.approx(history, rel=1e-8)
    assert [r["bits"] for r in rows] == pytest.approx([h / math.log(2) for h in history], rel=1e-8)
    assert rows[-1]["val_nll_nats"] == pytest.approx(codes_nll(model, x[16:]), rel=1e-6)  # the fitted prior's
    assert rows[-1]["val_bits"] == pytest.approx(rows[-1]["val_nll_nats"] / math.log(2), rel=1e-8)
    fit_prior_on(model, x, epochs=1, batch_size=8, run=tmp_path)  # no validation items: empty cells
    assert len(rows := prior_rows(tmp_path)) == 1 and math.isnan(rows[0]["val_nll_nats"])
    clear(tmp_path, started=True)  # a training file: an overwrite removes it
    assert not (tmp_path / "prior_metrics.csv").exists()


def test_fit_prior_measures_the_run_s_validation_split(tiny_images, tmp_path):
    small = {"model.net": "conv", "model.channels": [4], "model.codebook_size": 4, "model.code_dim": 2}
    settings = {**small, "model.pixelcnn_channels": 4, "model.pixelcnn_layers": 1, "train.prior_epochs": 0}
    run = vaekit.train(data=str(tiny_images), model="vq", out=str(tmp_path / "vq"), pictures=False, **settings)
    assert not (run.path / "prior_metrics.csv").exists()  # no prior epochs: nothing to record
    history = vaekit.fit_prior(run, epochs=2, batch_size=16, progress=False)
    rows = prior_rows(run.path)
    val = prepare_data(run.config)[0].val.x
    assert [r["nll_nats"] for r in rows] == pytest.approx(history, rel=1e-8)
    assert rows[-1]["val_nll_nats"] == pytest.approx(codes_nll(run.model, val), rel=1e-6)


def test_training_s_prior_stage_writes_prior_metrics_csv(tmp_path):
    model, x = tiny_vq()
    run = vaekit.fit(model, x, epochs=1, prior_epochs=2, batch_size=8, out=tmp_path / "r", pictures=False)
    rows = prior_rows(run.path)
    assert [r["epoch"] for r in rows] == [1, 2] and all(math.isfinite(r["val_nll_nats"]) for r in rows)
