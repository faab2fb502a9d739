"""Conditional runs, round 2: fewer class names than a model's classes, labels in every form for interpolate,
iwae_bound and the anomaly scores, label text read by name or number, and the setting a type error names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.data.builtin import FASHION_CLASSES
from vaekit.data.labels import label_numbers, number_labels
from vaekit.evaluation.scores import anomaly_scores
from vaekit.viz.figures import decode_mean

X = (np.random.default_rng(0).random((60, 1, 4, 4)) > 0.5).astype(np.float32)
NAMES = np.array(["a", "b", "c"])[np.arange(60) % 3]  # classes a, b, c
SETTINGS = dict(epochs=1, progress=False, pictures=False)


def cvae(k: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    shape = dict(input_shape=(1, 4, 4), hidden=[8], latent_dim=2, likelihood="bernoulli")
    return vaekit.build_model(family="cvae", num_classes=k, net="mlp", **shape)


@pytest.fixture(scope="module")
def named() -> vaekit.Run:
    """A conditional run of classes a, b, c (no folder)."""
    return vaekit.fit(cvae(), (X, NAMES), **SETTINGS)


def test_a_model_of_more_classes_than_names_trains_and_its_run_loads(tmp_path):
    run = vaekit.fit(cvae(5), (X, NAMES), out=str(tmp_path / "r"), **SETTINGS)  # names for 3 of 5 classes
    loaded = vaekit.load_run(tmp_path / "r")
    assert run.classes == loaded.classes == ["a", "b", "c", "3", "4"]  # the rest named by their numbers
    assert loaded.sample(2, label="b").shape == (2, 1, 4, 4)


def test_interpolate_takes_labels_as_encode_does(named):
    x = torch.from_numpy(X[:2])
    by_name, by_number = vaekit.interpolate(named, x, 4, y="b"), vaekit.interpolate(named, x, 4, y=1)
    assert torch.equal(by_name["lerp"], by_number["lerp"])
    pair = vaekit.interpolate(named, x, 4, y=np.array(["a", "c"]))["lerp"]
    assert torch.allclose(pair[0], named.reconstruct(x[:1], "a")[0], atol=1e-6)


def test_a_conditional_path_ends_on_the_second_code_under_the_first_label(named):
    x = torch.from_numpy(X[:2])
    last = vaekit.interpolate(named, x, 3, y=["a", "c"])["lerp"][-1]
    loc = named.encode(x, ["a", "c"]).mean  # (2, D)
    assert torch.allclose(last, decode_mean(named, loc[1:], torch.tensor([0]))[0], atol=1e-6)
    assert not torch.allclose(last, named.reconstruct(x[1:], "c")[0], atol=1e-3)  # not b's reconstruction
    docs = (Path(__file__).parents[1] / "docs/guides/evaluation.md").read_text()
    assert "the second item's code decoded as the first item's class" in " ".join(docs.split())


def test_iwae_bound_and_the_scores_take_labels_in_every_form(named):
    model, x, y = named.model, torch.from_numpy(X[:6]), torch.tensor([0, 1, 2, 0, 1, 2])
    eps = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    base = vaekit.iwae_bound(model, x, y=y, eps=eps)
    for given in (y.numpy(), y.tolist(), y.float()):
        assert torch.equal(vaekit.iwae_bound(model, x, y=given, eps=eps), base)
    one = vaekit.iwae_bound(model, x, y=2, eps=eps)
    assert torch.equal(one, vaekit.iwae_bound(model, x, y=torch.full((6,), 2), eps=eps))
    with pytest.raises(vaekit.VaekitError, match=r"iwae_bound takes a model, got a Run: pass run.model"):
        vaekit.iwae_bound(named, x, k=2, y=y)
    with pytest.raises(vaekit.VaekitError, match="whole numbers"):
        vaekit.iwae_bound(model, x, k=2, y=y + 0.5)
    scores = anomaly_scores(model, x, ["neg_elbo"], y=2)["neg_elbo"]
    assert np.array_equal(scores, anomaly_scores(model, x, ["neg_elbo"], y=np.full(6, 2))["neg_elbo"])


def test_fashion_mnist_file_labels_are_read_by_number():
    assert number_labels(np.array(["0", "9", "7"]), "folder", FASHION_CLASSES).tolist() == [0, 9, 7]
    with pytest.raises(vaekit.VaekitError, match="give the labels as those names"):  # sorted names: no order
        number_labels(np.array(["0"]), "file", ["eight", "five", "four"])


@pytest.mark.parametrize(
    ("label", "classes", "why"),
    [
        ("03", None, r"label '03': this run's classes are named 0..9; write it as 3"),
        ("-1", None, r"label '-1' is out of range: this run's classes are 0..9"),
        ("10", None, r"label '10' is out of range"),
        ("x", None, r"label 'x': expected a class number"),
        ("7", FASHION_CLASSES, r"label '7': no class has this name; this run's classes are T-shirt/top"),
    ],
)
def test_label_text_refused_says_why(label, classes, why):
    with pytest.raises(vaekit.VaekitError, match=why):
        label_numbers(label, classes, 10)


def test_the_docs_say_which_runs_take_label_text_as_a_number():
    assert label_numbers([" Bag", "Sneaker"], FASHION_CLASSES, 10).tolist() == [8, 7]  # by name
    assert label_numbers("3", None, 10).tolist() == [3]  # no names recorded: "0".."K-1"
    assert label_numbers(7, FASHION_CLASSES, 10).tolist() == [7]  # an int: a label number
    docs = " ".join((Path(__file__).parents[1] / "docs/guides/models.md").read_text().split())
    assert "`--label` takes a number only where the data named no classes" in docs
    assert "by number or by the name its data gave it" not in docs


@pytest.mark.parametrize("setting", ["model.label_embedding=2.5", "model.learned_prior=maybe"])
def test_a_setting_of_the_wrong_type_names_its_flag(setting, tmp_path, capsys):
    argv = ["train", "--data", "digits", "--conditional", "--set", setting, "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().endswith(f"(--set {setting.split('=')[0]}=...)")


def test_a_verb_s_advice_on_a_missing_label_is_one_it_can_take(tmp_path, capsys):
    rows = "a,b,label\n" + "".join(f"{i % 5 / 5},{i % 3 / 3},{'xy'[i % 2]}\n" for i in range(40))
    (tmp_path / "t.csv").write_text(rows)
    (tmp_path / "new.csv").write_text("a,b,label\n0.1,0.2,x\n0.3,0.4,\n")
    run = str(tmp_path / "r")
    main(["train", "--data", str(tmp_path / "t.csv"), "--conditional", "--epochs", "1", "--out", run, "--quiet"])
    assert main(["encode", run, "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "z.csv")]) != 0
    err = capsys.readouterr().err
    assert "its verbs take no row without a label: fill them, or train a run with data.missing=drop" in err, err
