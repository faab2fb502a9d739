"""Anomaly detection, round 2: any numpy array scores, a table file refused by an image run for its shape, an
empty frame, the command's threshold beside the detector's, loss curves after a change of beta, and the
ladder's prior codes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.evaluation.detector_fit import threshold
from vaekit.evaluation.detector_run import prepared
from vaekit.evaluation.outputs import prepared_split
from vaekit.evaluation.scores import anomaly_scores
from vaekit.viz.curves import loss_figure

from .conftest import train_argv

GUIDE = Path(__file__).parents[1] / "docs" / "guides" / "anomaly.md"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """img.npy: (60, 1, 4, 4) images in [0, 1]; runs/none and runs/dynamic: a one-epoch run of them per binarisation."""
    tmp = tmp_path_factory.mktemp("anomaly_r2")
    np.save(tmp / "img.npy", np.random.default_rng(0).random((60, 1, 4, 4)).astype(np.float32))
    for mode in ("none", "dynamic"):
        flags = ["--hidden", "8", "--latent-dim", "2", "--set", f"data.binarize={mode}"]
        assert main(train_argv(tmp / "img.npy", tmp / "runs" / mode, *flags)) == 0
    return tmp


def test_the_detector_takes_arrays_of_negative_strides():
    X = np.random.default_rng(1).normal(size=(40, 3))
    params = dict(epochs=1, hidden=(8,), latent_dim=2, samples=2)
    flipped = vaekit.VAEAnomalyDetector(**params).fit(X[::-1])
    assert flipped.offset_ == vaekit.VAEAnomalyDetector(**params).fit(X[::-1].copy()).offset_
    np.testing.assert_array_equal(flipped.score_samples(X[::-1]), flipped.score_samples(X)[::-1])
    np.testing.assert_array_equal(flipped.predict(np.flipud(X)), flipped.predict(X)[::-1])


@pytest.mark.parametrize("split", ["all", "test"])
def test_an_image_run_refuses_a_table_file_for_its_shape_not_its_gaps_or_size(folder, tmp_path, split, capsys):
    (tmp_path / "two.csv").write_text("a,b\n1,2\n3,4\n")  # too few rows for a 3-way split
    (tmp_path / "gap.csv").write_text("a,b\n1,2\n,4\n5,6\n7,8\n")  # a gap the run's data.missing refuses
    for name in ("two.csv", "gap.csv"):
        argv = ["anomaly", str(folder / "runs" / "none"), "--data", str(tmp_path / name), "--split", split]
        assert main([*argv, "--out", str(tmp_path / "s.csv")]) != 0
        err = capsys.readouterr().err
        assert "a table, whose items are rows (1-D); the run's model expects items of shape (1, 4, 4)" in err, err


def test_an_empty_frame_has_no_rows_not_rows_with_gaps(tmp_path):
    rows = "age,plan\n" + "".join(f"{20 + i % 9},{'ab'[i % 2]}\n" for i in range(30)) + ",a\n"
    (tmp_path / "t.csv").write_text(rows)
    flags = ["--hidden", "8", "--latent-dim", "2", "--set", "data.missing=mean"]
    assert main(train_argv(tmp_path / "t.csv", tmp_path / "run", *flags)) == 0
    frame = pd.read_csv(tmp_path / "t.csv")
    det = vaekit.VAEAnomalyDetector.from_run(tmp_path / "run", samples=2).fit(frame)
    with pytest.raises(ValueError, match=r"^X has no rows$"):
        det.score_samples(frame.iloc[:0])


def command_threshold(run: Path, data: Path, tmp_path: Path, capsys) -> float:
    """The threshold ``vaekit anomaly --contamination 0.1`` prints for ``run``'s neg_elbo."""
    argv = ["anomaly", str(run), "--data", str(data), "--score", "neg_elbo", "--contamination", "0.1"]
    assert main([*argv, "--out", str(tmp_path / "s.csv")]) == 0
    return float(re.search(r"threshold (\S+)", capsys.readouterr().out).group(1))  # type: ignore[union-attr]


def test_the_command_and_the_detector_share_a_threshold_but_on_a_binarised_run(folder, tmp_path, capsys):
    cuts = {}
    for mode in ("none", "dynamic"):
        run = vaekit.load_run(folder / "runs" / mode)
        x = prepared_split(run, None, "train", binarized=False)[0].x.double()  # (N, 1, 4, 4) as the file holds them
        det = vaekit.VAEAnomalyDetector.from_run(run.path, contamination=0.1).fit(x.flatten(1).numpy())
        cuts[mode] = command_threshold(run.path, folder / "img.npy", tmp_path, capsys), -det.offset_
        if mode == "dynamic":  # row i of X drawn as row i of a file, not as the item's row in the run's file
            drawn = prepared(x, "bernoulli", run.config.train.seed)
            model = run.model.double()
            want = threshold(anomaly_scores(model, drawn, ["neg_elbo"], seed=det.seed_, samples=8)["neg_elbo"], 0.1)
            assert -det.offset_ == pytest.approx(want, rel=1e-12)
    assert cuts["none"][0] == pytest.approx(cuts["none"][1], rel=1e-6)
    assert abs(cuts["dynamic"][0] - cuts["dynamic"][1]) > 1e-3 * abs(cuts["dynamic"][0])
    guide = " ".join(GUIDE.read_text().split())
    assert "for a run that was not binarised" in guide and "by its row in its file and the detector by" in guide


def metrics(**kw) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float) for k, v in kw.items()}


def test_curves_shade_the_warm_up_alone_and_name_a_beta_changed_on_resume():
    m = metrics(epoch=range(1, 7), train_loss=[4, 3, 3, 9, 8, 8], val_loss=[4, 3, 3, 9, 8, 8], beta=[1, 1, 1, 5, 5, 5])
    loss = loss_figure(m, {"objective": "elbo", "beta": 5.0, "warmup_epochs": 0.0}).axes[0]
    labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert loss.get_title() == "loss: -(rec - 5 KL)" and not any("warm-up" in t for t in labels)
    assert "train beta 1, changed to 5 on resume" in labels and len(loss.patches) == 3
    warm = metrics(epoch=range(1, 6), train_loss=[5, 4, 3, 3, 3], beta=[0.25, 0.75, 1, 1, 1])
    loss = loss_figure(warm, {"objective": "elbo", "beta": 1.0, "warmup_epochs": 2.0}).axes[0]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["KL warm-up (train beta < 1)", "train"]
    assert [p.get_x() for p in loss.patches] == [0.5, 1.5]  # epochs 1 and 2


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory) -> vaekit.Run:
    torch.manual_seed(0)
    x = (torch.rand(60, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    model = vaekit.build_model(
        family="ladder", input_shape=(1, 4, 4), latent_dims=[3, 2], hidden=[8], likelihood="bernoulli"
    )
    out = tmp_path_factory.mktemp("ladder") / "run"
    return vaekit.fit(model, x, epochs=1, batch_size=30, progress=False, pictures=False, out=out)


def test_the_ladder_draws_prior_codes_that_decode_as_generate_draws(ladder_run):
    model = ladder_run.model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        generated = model.generate(4, temperature=0.7).mean
        torch.manual_seed(0)
        codes = model.prior_codes(4, temperature=0.7)  # (4, 2 + 3): z_2 first, as encode gives it
        assert codes.shape == (4, 5) and torch.allclose(model.decode(codes).mean, generated, atol=1e-6)
        cold = model.prior_codes(2, temperature=0.0)  # each level its prior's mean given the level above
        assert torch.equal(cold[:, :2], torch.zeros(2, 2))
        assert torch.allclose(cold[:, 2:], model.conditional_prior(1, cold[:, :2]).mean)
    from vaekit.viz.explore_api import Explorer  # its "random" codes: the ladder's prior_codes

    x = ladder_run.model.generate(8).mean.detach()
    explorer = Explorer(ladder_run, x, None)
    assert explorer.info()["prior_codes"] and len(explorer.sample({"n": 2, "codes": True})["codes"][0]) == 5
