"""The anomaly detector (scikit-learn checks, a toy case), the scores and metrics, and the encode / anomaly /
anomaly-eval commands."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.utils.estimator_checks import parametrize_with_checks

import vaekit
from tests.conftest import tiny_config, train_argv
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.errors import VaekitError
from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.outputs import prepared_split
from vaekit.evaluation.scores import (
    SCORES,
    anomaly_scores,
    compressed_bits,
    detection_metrics,
    elbo_at,
    iwae_nll,
    likelihood_regret,
    noise,
    scores_that_apply,
    settings_for,
)
from vaekit.models import build_model
from vaekit.runs import Run

TINY = dict(epochs=2, hidden=(8,), latent_dim=2, samples=2, iw_samples=4, steps=3)
FLAT_SCORES = [s for s in SCORES if s != "llr"]  # llr needs latent groups (tests/test_deep.py)
TABLE_SCORES = [s for s in FLAT_SCORES if s != "complexity"]


@parametrize_with_checks([VAEAnomalyDetector(**TINY)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blob():
    """(train rows (300, 3) from N(0, I), a far point (1, 3))."""
    x = np.random.default_rng(0).normal(size=(300, 3))
    return x, np.full((1, 3), 6.0)


@pytest.mark.parametrize("method", TABLE_SCORES)
def test_far_point_is_anomalous(blob, method):
    x, far = blob
    det = VAEAnomalyDetector(
        method, epochs=30, hidden=(32,), latent_dim=2, samples=4, iw_samples=16, steps=10, contamination=0.05
    ).fit(x)
    train = det.score_samples(x)
    assert np.isfinite(train).all()
    assert det.score_samples(far)[0] < train.min()
    assert det.predict(far)[0] == -1
    assert abs((det.predict(x) == -1).mean() - 0.05) < 0.01  # contamination sets the threshold


def test_bad_parameters_and_tables_without_complexity(blob):
    x, _ = blob
    with pytest.raises(ValueError, match="method must be one of"):
        VAEAnomalyDetector("nll", **TINY).fit(x)
    for contamination in (0.7, "auto"):  # scikit-learn's "auto": one line, not a TypeError from comparing it
        with pytest.raises(ValueError, match="contamination must be in"):
            VAEAnomalyDetector(contamination=contamination, **TINY).fit(x)
    with pytest.raises(ValueError, match="needs images"):
        VAEAnomalyDetector("complexity", **TINY).fit(x)


def test_images_through_image_shape():
    x = np.random.default_rng(0).random((40, 36))
    det = VAEAnomalyDetector("complexity", image_shape=(1, 6, 6), likelihood="bernoulli", **TINY).fit(x)
    assert det.loc_.max() == 0 and det.scale_.min() == 1  # images are not standardised
    assert np.isfinite(det.score_samples(x)).all()
    with pytest.raises(ValueError, match="does not hold"):
        VAEAnomalyDetector(image_shape=(1, 5, 5), **TINY).fit(x)
    with pytest.raises(VaekitError, match="support"):
        VAEAnomalyDetector(image_shape=(1, 6, 6), likelihood="bernoulli", **TINY).fit(x * 2)


def stripes(n: int, seed: int, left: bool = True) -> np.ndarray:
    """n flattened 1 x 8 x 8 images in [0, 1]: a bright left (or right) half and a little noise."""
    x = np.full((n, 1, 8, 8), 0.1)
    x[..., :4] = 0.8
    x = x if left else x[..., ::-1]
    return np.clip(x + 0.05 * np.random.default_rng(seed).normal(size=x.shape), 0, 1).reshape(n, 64)


def test_scales_pool_the_images_and_standardise_each_score():
    x = stripes(120, 0)
    det = VAEAnomalyDetector(
        image_shape=(1, 8, 8), scales=(1, 2, 4), epochs=20, hidden=(16,), latent_dim=2, samples=2, contamination=0.05
    ).fit(x)
    assert [m.input_shape for m in det.models_] == [(1, 8, 8), (1, 4, 4), (1, 2, 2)]
    assert det.score_loc_.shape == det.score_scale_.shape == (3,) and (det.score_scale_ > 0).all()
    train, odd = det.score_samples(x), det.score_samples(stripes(5, 1, left=False))
    assert np.isfinite(train).all() and odd.max() < train.min()
    assert abs((det.predict(x) == -1).mean() - 0.05) < 0.02
    held = det.score_samples(stripes(400, 2))  # fresh normal rows: the sum of S standardised scores
    assert abs(held.mean()) < 1.5 and held.std() < 3 * np.sqrt(3)
    each = det.scale_scores(stripes(400, 2))  # (N, S), one column per scale, summing to minus score_samples
    assert each.shape == (400, 3) and np.allclose(each.sum(1), -held) and (abs(each.mean(0)) < 1).all()


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(image_shape=(1, 8, 8), scales=(1, 3)), "divide"),
        (dict(scales=(1, 2)), "need images"),
        (dict(image_shape=(1, 8, 8), scales=(0,)), "positive integers"),
        (dict(image_shape=(1, 8, 8), scales=(True, 2)), "positive integers"),  # a bool is no factor
        (dict(image_shape=(1, 8, 8), scales=(1, 2), likelihood="discretized_logistic"), "off the 256 levels"),
        (dict(image_shape=(1, 8, 8), scales=(1, 2), holdout=0.7), "holdout"),
    ],
)
def test_bad_scales(params, match):
    with pytest.raises(ValueError, match=match):
        VAEAnomalyDetector(**params, **TINY).fit(stripes(20, 0))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(input_shape=[1, 6, 6], latent_dim=3, hidden=[16], likelihood="bernoulli")).eval()


def test_regret_never_negative_and_zero_without_steps(model):
    x = torch.cat([torch.rand(20, 1, 6, 6), torch.zeros(2, 1, 6, 6), torch.ones(2, 1, 6, 6)])
    eps = noise(4, 3, 0, x.device)
    regret = likelihood_regret(model, x, eps, steps=15)
    assert (regret >= 0).all() and regret.mean() > 0  # the per-item fit gains something and never loses
    assert torch.equal(likelihood_regret(model, x, eps, steps=0), torch.zeros(len(x)))


def test_iwae_nll_below_neg_elbo_with_the_same_noise(model):
    x, eps = torch.rand(10, 1, 6, 6), noise(8, 3, 0, torch.device("cpu"))
    with torch.no_grad():
        qz = model.encode(x)
        neg_elbo = -elbo_at(model, x, qz.base_dist.loc, qz.base_dist.scale, eps)
        # the importance-weighted bound is tighter than the ELBO (Burda et al. 2016)
        assert (iwae_nll(model, x, eps) < neg_elbo).all()


def test_scores_do_not_depend_on_the_batch(model):
    x = torch.rand(9, 1, 6, 6)
    a = anomaly_scores(model, x, FLAT_SCORES, 2, 4, 3, batch_size=9)
    b = anomaly_scores(model, x, FLAT_SCORES, 2, 4, 3, batch_size=2)
    for name in FLAT_SCORES:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-3)


EIGHT_BIT = np.round(np.random.default_rng(0).random((4, 1, 6, 6)) * 255).astype(np.float32) / 255


@pytest.mark.parametrize(
    "given",
    [
        lambda x: np.round(x * 255).astype(np.uint8),  # uint8 images: divided by 255, as run.encode reads them
        lambda x: np.round(x * 255).astype(np.uint8).transpose(0, 2, 3, 1),  # channels-last, moved
        lambda x: torch.from_numpy(np.round(x * 255).astype(np.uint8)),
        lambda x: x.astype(np.float64),
        lambda x: x.tolist(),
    ],
    ids=["uint8", "uint8 channels-last", "uint8 tensor", "float64", "list"],
)
def test_scores_read_items_as_the_run_s_methods_do(model, given):
    want = anomaly_scores(model, EIGHT_BIT, ["neg_elbo"], samples=2)["neg_elbo"]
    np.testing.assert_allclose(anomaly_scores(model, given(EIGHT_BIT), ["neg_elbo"], samples=2)["neg_elbo"], want)


def test_scores_read_a_frame_and_refuse_what_float32_cannot_score_in_one_line(model):
    pd = pytest.importorskip("pandas")
    torch.manual_seed(0)
    table = build_model(ModelConfig(input_shape=[3], latent_dim=2, hidden=[8], likelihood="gaussian")).eval()
    rows = np.random.default_rng(1).normal(size=(4, 3))
    want = anomaly_scores(table, rows, "neg_elbo", samples=2)["neg_elbo"]
    got = anomaly_scores(table, pd.DataFrame(rows, columns=list("abc")), "neg_elbo", samples=2)["neg_elbo"]
    np.testing.assert_allclose(got, want)
    said = "^data items: contains 72 NaN or infinite values, the first in item 0$"
    for x in (np.full((2, 1, 6, 6), np.nan, np.float32), torch.full((2, 1, 6, 6), float("inf"))):
        with pytest.raises(VaekitError, match=said):
            anomaly_scores(model, x, "neg_elbo")
    with pytest.raises(VaekitError, match=r"^data items: .*beyond float32's range"):
        anomaly_scores(table, rows * 1e39, "neg_elbo")
    assert np.isfinite(anomaly_scores(table.double(), rows * 1e39, "neg_elbo")["neg_elbo"]).all()  # as it is


@pytest.mark.parametrize("settings", [{}, {"family": "gumbel"}, {"family": "vq"}, {"posterior": "iaf"}])
def test_every_score_that_applies_is_computed(settings):
    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=[1, 6, 6], latent_dim=4, hidden=[16], likelihood="bernoulli", **settings)
    model, x = build_model(cfg).eval(), torch.rand(3, 1, 6, 6)
    names = scores_that_apply(model, True, x[:1])
    assert ("likelihood_regret" in names) == (not settings)  # it re-fits a Gaussian q(z|x): not for these
    scores = anomaly_scores(model, x, names, **settings_for(names, samples=2, iw_samples=4, steps=3))
    assert list(scores) == names and all(np.isfinite(v).all() for v in scores.values())


def test_compressed_bits_ranks_plain_below_noisy():
    plain, noisy = torch.full((1, 1, 28, 28), 0.5), torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    bits = compressed_bits(torch.cat([plain, noisy]))
    assert bits[0] < bits[1] / 4
    with pytest.raises(VaekitError, match="needs images"):
        compressed_bits(torch.zeros(2, 5))


def test_detection_metrics():
    m = detection_metrics(np.array([0.0, 1, 2]), np.array([3.0, 4]))
    assert m == {"auroc": 1.0, "auprc": 1.0, "fpr95": 0.0}
    assert detection_metrics(np.array([3.0, 4]), np.array([0.0, 1, 2]))["auroc"] == 0.0
    m = detection_metrics(np.array([0.0, 2, 4, 6]), np.array([1.0, 3, 5, 7]))
    assert m["auroc"] == pytest.approx(10 / 16) and m["fpr95"] == 0.75  # TPR 1 needs FPR 3/4
    ties = detection_metrics(np.array([1.0, 2, 3]), np.array([10.0] * 18 + [1, 2]))  # TPR 19/20 at threshold 2
    assert ties["fpr95"] == pytest.approx(2 / 3)  # not the next point's 1.0, where equal steps dropped this one
    with pytest.raises(VaekitError):
        detection_metrics(np.array([]), np.array([1.0]))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained run on 60 grey 'images' (60, 9, 11), and the .npy it was trained on."""
    tmp = tmp_path_factory.mktemp("anomaly")
    x = np.random.default_rng(0).random((60, 9, 11)).astype(np.float32)
    np.save(tmp / "x.npy", x)
    vaekit.train(tiny_config(str(tmp / "x.npy"), tmp / "run"), pictures=False)  # pictures: not what is tested
    return tmp


@pytest.mark.parametrize(
    "given, match",
    [
        (lambda run: run, r"^the scores take a model, got a Run: pass run.model$"),
        (lambda run: "model", r"^the model must be a torch.nn.Module, got str$"),
    ],
    ids=["run", "str"],
)
def test_anomaly_scores_refuse_what_is_not_a_model_in_one_line(run_dir, given, match):
    run = Run.load(run_dir / "run")
    with pytest.raises(VaekitError, match=match):
        anomaly_scores(given(run), np.zeros((2, 1, 9, 11), np.float32), ["neg_elbo"])
    assert anomaly_scores(run.model, np.zeros((2, 1, 9, 11), np.float32), ["neg_elbo"])["neg_elbo"].shape == (2,)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_encode_one_row_per_input_in_order(run_dir, suffix):
    x = np.load(run_dir / "x.npy")
    rev = run_dir / "rev.npy"
    np.save(rev, x[::-1].copy())
    out = run_dir / f"codes{suffix}"
    assert main(["encode", str(run_dir / "run"), "--data", str(rev), "--out", str(out), "--batch-size", "7"]) == 0
    if suffix == ".npy":
        codes = np.load(out)
    elif suffix == ".npz":
        with np.load(out) as z:
            codes = np.concatenate([z["loc"], z["scale"]], 1)
    else:
        codes = np.loadtxt(out, delimiter=",", skiprows=1)
    run = Run.load(run_dir / "run")
    qz = run.encode(prepared_split(run, str(rev), "all", binarized=False)[0].x)  # grey, as run.encode takes them
    assert codes.shape == (60, 6)
    np.testing.assert_allclose(codes, torch.cat([qz.mean, qz.stddev], 1).numpy(), rtol=1e-5, atol=1e-5)


def test_encode_and_anomaly_take_the_same_limited_split(run_dir, tmp_path):
    run = tmp_path / "limited"
    assert main(train_argv(run_dir / "x.npy", run, "--limit", "30", "--set", "model.hidden=[8]")) == 0
    assert main(["encode", str(run), "--split", "test", "--out", str(tmp_path / "z.npy")]) == 0
    scores = ["anomaly", str(run), "--split", "test", "--score", "recon_error", "--out", str(tmp_path / "a.csv")]
    assert main(scores) == 0
    assert len(np.load(tmp_path / "z.npy")) == len(np.loadtxt(tmp_path / "a.csv", delimiter=",", skiprows=1)) == 3


def test_encode_refuses_a_bad_suffix(run_dir, capsys):
    assert main(["encode", str(run_dir / "run"), "--out", str(run_dir / "codes.txt")]) == 2
    assert "expected a .npy, .npz or .csv" in capsys.readouterr().err
    assert not (run_dir / "codes.txt").exists()


def test_anomaly_scores_file_and_eval(run_dir, capsys):
    out = run_dir / "scores.csv"
    assert main(["anomaly", str(run_dir / "run"), "--out", str(out), "--samples", "2", "--steps", "3"]) == 0
    table = np.genfromtxt(out, delimiter=",", names=True)
    run = Run.load(run_dir / "run")
    assert list(table.dtype.names) == ["index", *FLAT_SCORES] and len(table) == 6  # the run's test split
    det = VAEAnomalyDetector.from_run(run_dir / "run", method="recon_error").fit(
        np.load(run_dir / "x.npy").reshape(60, -1)
    )
    assert det.input_shape_ == (1, 9, 11) and np.isfinite(det.offset_)
    np.save(run_dir / "far.npy", np.ones((5, 9, 11), np.float32))
    capsys.readouterr()
    assert (
        main(
            [
                "anomaly-eval",
                str(run_dir / "run"),
                "--ood",
                str(run_dir / "far.npy"),
                "--split",
                "train",
                "--score",
                "neg_elbo,recon_error",
                "--samples",
                "2",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| neg_elbo |" in printed and "| recon_error |" in printed and "likelihood_regret" not in printed
    assert run.config.model.input_shape == [1, 9, 11]


def test_anomaly_scores_every_row_of_another_file_and_names_each_item_s_row(run_dir, tmp_path):
    out = tmp_path / "a.csv"
    np.save(tmp_path / "new.npy", np.load(run_dir / "x.npy")[:7])
    argv = ["anomaly", str(run_dir / "run"), "--score", "recon_error", "--out", str(out)]

    def scored(*flags: str) -> dict[int, float]:  # {index: score}
        assert main([*argv, *flags]) == 0
        return {int(r["index"]): float(r["recon_error"]) for r in csv.DictReader(out.open())}

    every = scored("--split", "all")  # the run's own file, row by row (binarised once by each item's row)
    test = vaekit.load_dataset(str(run_dir / "x.npy")).test.rows  # the run's seeded test split (seed 0)
    for flags, rows in (
        (["--data", str(tmp_path / "new.npy")], range(7)),
        ([], test),
        (["--data", str(run_dir / "x.npy")], test),
    ):
        got = scored(*flags)  # another file: its every row; the run's own data: its test split
        assert list(got) == list(rows) and got == pytest.approx({i: every[i] for i in rows}, rel=1e-5)
    seeded = vaekit.load_dataset(str(tmp_path / "new.npy")).test.rows.tolist()  # one of its 7 rows
    assert len(test) == 6 and list(scored("--data", str(tmp_path / "new.npy"), "--split", "test")) == seeded


def test_contamination_labels_items_by_the_threshold_of_the_training_split(run_dir, tmp_path, capsys):
    """--contamination c: an outlier column, 1 above the (1 - c) quantile of the score on the run's training split
    (PyOD's threshold_ and labels_), whichever split is scored; anomaly had no threshold."""

    def scored(split: str, *flags: str) -> tuple[np.ndarray, list[int]]:  # (the scores, the outlier column or -1s)
        out = tmp_path / f"{split}.csv"
        argv = ["anomaly", str(run_dir / "run"), "--split", split, "--score", "recon_error", "--out", str(out)]
        assert main([*argv, *flags]) == 0
        rows = list(csv.DictReader(out.open()))
        return np.array([float(r["recon_error"]) for r in rows]), [int(r.get("outlier", -1)) for r in rows]

    train, unlabelled = scored("train")
    cut = np.percentile(train, 80)
    assert set(unlabelled) == {-1}  # no outlier column without --contamination
    capsys.readouterr()
    for split, flagged in (("train", 10), ("test", None)):  # 10: the training items above 38.6 of 48
        scores, outlier = scored(split, "--contamination", "0.2")
        assert outlier == (scores > cut).astype(int).tolist() and flagged in (None, sum(outlier))
        line = capsys.readouterr().out.splitlines()[-1]
        said = re.fullmatch(
            r"threshold (\S+) \(recon_error's 0.8 quantile of 48 training items\): (\d+) of \d+ flagged", line
        )
        assert said and float(said[1]) == pytest.approx(cut, rel=1e-6) and int(said[2]) == sum(outlier)


def test_eval_takes_every_row_of_another_file_and_the_test_split_of_the_runs_own(run_dir, tmp_path, capsys):
    np.save(tmp_path / "far.npy", np.ones((5, 9, 11), np.float32))
    argv = ["anomaly-eval", str(run_dir / "run"), "--ood", str(tmp_path / "far.npy"), "--score", "recon_error"]
    assert main(argv) == 0
    assert "6 in-distribution vs 5 out-of-distribution" in capsys.readouterr().out  # the run's 6, the file's 5


def test_encode_reads_every_item_of_a_builtin_with_options():
    from vaekit.data import all_items, dsprites

    x = all_items("dsprites:16:n=5")  # the spec's options reach the built-in, as in training
    assert x.shape == (5, 1, 16, 16) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), dsprites.load("dsprites:16:n=5").x)


@pytest.fixture(scope="module")
def cvae(tmp_path_factory):
    """A tiny conditional run on xy.npz (binary images): a train split labelled -1/5/7 and a test split labelled
    -1/7, which training numbers together as 0, 1, 2 (names '-1', '5', '7'); beside it the items without labels."""
    tmp = tmp_path_factory.mktemp("cvae")
    rng = np.random.default_rng(0)
    x, y = (rng.random((52, 6, 6)) > 0.5).astype(np.float32), np.r_[np.tile([-1, 5, 7], 14)[:40], np.tile([-1, 7], 6)]
    np.savez(tmp / "xy.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    np.save(tmp / "x.npy", x)
    cfg = tiny_config(str(tmp / "xy.npz"), tmp / "run")
    cfg.model.family = "cvae"
    vaekit.train(cfg, pictures=False)
    return tmp


def test_split_all_scores_a_conditional_run_with_labels_numbered_as_in_training(cvae, tmp_path):
    out = tmp_path / "a.csv"
    argv = ["anomaly", str(cvae / "run"), "--split", "all", "--score", "recon_error", "--limit", "44"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["index", "label", "recon_error", "class_name"]  # the name last: columns stay put
    y = torch.tensor(([0, 1, 2] * 14)[:40] + [0, 2] * 2)  # the test file's 7 is 2, as the training file's
    assert [int(r["label"]) for r in rows] == y.tolist() and rows[-1]["class_name"] == "7"
    run, x = Run.load(cvae / "run"), torch.from_numpy(np.load(cvae / "x.npy")[:44]).unsqueeze(1)
    want = anomaly_scores(run.model, x, ["recon_error"], y=y)["recon_error"]
    np.testing.assert_allclose([float(r["recon_error"]) for r in rows], want, rtol=1e-5)
    x, y = np.load(cvae / "xy.npz")["x_train"][:6], np.array([5, 7] * 3)  # other data: its own 0, 1 are 5, 7
    np.savez(tmp_path / "other.npz", x=x, y=y)
    for split in ("all", "train"):
        assert main([*argv[:2], "--data", str(tmp_path / "other.npz"), "--split", split, "--out", str(out)]) == 0
        rows = list(csv.DictReader(out.open()))
        assert {(r["label"], r["class_name"]) for r in rows} <= {("1", "5"), ("2", "7")} and len(rows) > 1
    split = vaekit.load_dataset(str(tmp_path / "other.npz")).train  # its labels renumbered, its rows kept
    assert [int(r["index"]) for r in rows] == split.rows[: len(rows)].tolist() != list(range(len(rows)))


@pytest.mark.parametrize("normal", ["7", " 7", "5,7"])  # class names (spaces stripped), never label numbers
def test_eval_of_a_labelled_set_takes_class_names(cvae, normal, capsys):
    argv = ["anomaly-eval", str(cvae / "run"), "--data", str(cvae / "xy.npz"), f"--normal={normal}"]
    assert main([*argv, "--score", "neg_elbo", "--samples", "2"]) == 0
    assert "6 in-distribution vs 6 out-of-distribution" in capsys.readouterr().out  # the test file: -1 and 7


CONTAMINATION = r"^vaekit: error: contamination must be in \(0, 0.5\], got (0.6|0.0|nan) \(--contamination\)$"


@pytest.mark.parametrize(
    "argv,match",
    [
        (["anomaly-eval", "{c}/run", "--ood", "{c}/xy.npz"], "conditional and scores items with their labels"),
        (["anomaly", "{c}/run", "--data", "{c}/x.npy", "--split", "all", "--out", "{c}/n.csv"], "this data has none"),
        (["anomaly-eval", "{c}/run", "--data", "{c}/xy.npz", "--normal", "nebbiolo"], "'nebbiolo': not a class of the"),
        (
            ["anomaly-eval", "{c}/run", "--data", "{c}/xy.npz", "--normal", "5"],
            "5: no item of the test split of .* these classes$",
        ),
        (
            ["anomaly-eval", "{c}/run", "--data", "{c}/xy.npz", "--normal", "-2"],
            "'-2': not a class .* are -1, 5, 7$",
        ),  # not an index
        (
            ["anomaly-eval", "{c}/run", "--data", "{c}/xy.npz", "--normal", "2"],
            "'2': not a class .* are -1, 5, 7$",
        ),  # label number 2 (class 7) is no class name
        *(
            (["anomaly", "{r}/run", "--score", "neg_elbo", "--contamination", v, "--out", "{c}/n.csv"], CONTAMINATION)
            for v in ("0.6", "0", "nan")
        ),
        (["anomaly", "{r}/run", "--contamination", "0.1", "--out", "{c}/n.csv"], "labels items by one score: name it"),
        (
            ["anomaly", "{r}/run", "--score", "iwae_nll,neg_elbo", "--contamination", "0.1", "--out", "{c}/n.csv"],
            "by one",
        ),
        (["anomaly-eval", "{r}/run", "--normal", "1"], "name it with --data"),
        (["anomaly-eval", "{r}/run", "--data", "{r}/x.npy"], "--data needs --normal"),
    ],
)
def test_eval_and_anomaly_refuse_in_one_line(cvae, run_dir, argv, match, capsys):
    assert main([a.format(c=cvae, r=run_dir) for a in argv]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and err.count("\n") == 1 and not (cvae / "n.csv").exists()


@pytest.mark.parametrize("verb,each", [("anomaly", False), ("anomaly-eval", True)])
def test_limit_help_speaks_of_sets_only_where_there_are_two(verb, each, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert ("first N items of each set" in " ".join(capsys.readouterr().out.split())) == each


def test_split_all_on_a_photo_folder_names_each_row_s_file(tmp_path):  # anomaly's and encode's rows
    rng = np.random.default_rng(0)
    for name in ("b/1.png", "b/0.png", "a/x.png", "a/y.png", "a/z.png"):  # read: classes sorted, then paths
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).save(tmp_path / "photos" / name)
    run, out = tmp_path / "run", tmp_path / "a.csv"
    assert main(train_argv(tmp_path / "photos", run, "--set", "model.hidden=[8]", "--latent-dim", "2")) == 0
    assert main(["anomaly", str(run), "--split", "all", "--score", "recon_error", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["file"], r["class_name"]) for r in rows] == [
        ("a/x.png", "a"),
        ("a/y.png", "a"),
        ("a/z.png", "a"),
        ("b/0.png", "b"),
        ("b/1.png", "b"),
    ]
    for suffix in ("csv", "npz"):
        assert main(["encode", str(run), "--out", str(tmp_path / f"z.{suffix}")]) == 0
    codes = list(csv.DictReader((tmp_path / "z.csv").open()))
    assert [r["file"] for r in codes] == [r["file"] for r in rows] and "loc_1" in codes[0]
    assert np.load(tmp_path / "z.npz")["files"].tolist() == [r["file"] for r in rows]
