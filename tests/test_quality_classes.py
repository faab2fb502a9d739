"""Class accuracy of a conditional run's samples: the share of samples drawn for class k that the domain
classifier assigns to class k, beside the classifier's accuracy on the real split."""

from __future__ import annotations

import json

import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.evaluation.features import FeatureNet, class_accuracy
from vaekit.viz.report import quality_html

from .conftest import tiny_config

STEPS = 150  # the domain classifier's training steps: enough to tell the digits apart (about 0.9 on the test split)


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    cfg = tiny_config("digits", tmp_path_factory.mktemp("runs") / "cvae", epochs=6)
    cfg.model.family = "cvae"
    return vaekit.train(cfg, pictures=False).path


def test_class_accuracy_counts_hits_per_class_in_the_runs_numbers():
    net = FeatureNet([3], 3, width=1, features=3)
    net.logits = lambda x: x  # (B, 3): one-hot items are classified as their hot place
    x = torch.eye(3)[[0, 0, 1, 2, 2, 2]]  # (6, 3): the classifier says 0, 0, 1, 2, 2, 2
    drawn = (x, torch.tensor([0, 1, 1, 2, 2, 0]))
    acc = class_accuracy(net, drawn, (x, torch.tensor([0, 0, 1, 2, 2, 2])), ["a", "b", "c"])
    assert acc["samples"] == 0.6667 and acc["real"] == 1.0
    assert acc["per_class"] == {
        "a": {"samples": 0.5, "real": 1.0, "n": 2},
        "b": {"samples": 0.5, "real": 1.0, "n": 2},
        "c": {"samples": 1.0, "real": 1.0, "n": 2},
    }
    moved = class_accuracy(net, drawn, (x, None), ["a", "b", "c"], relabel=torch.tensor([1, 2, 0]))
    assert moved["samples"] == 0.3333 and moved["real"] is None  # says 1, 1, 2, 0, 0, 0: hits at 2 and 5
    assert moved["per_class"]["a"] == {"samples": 0.5, "real": None, "n": 2}


def test_a_conditional_runs_samples_are_recognised_as_their_class(cvae_run, cache, capsys):
    result = vaekit.quality(cvae_run, n=80, steps=STEPS)
    acc = result["class_accuracy"]
    assert acc["real"] == pytest.approx(result["features"]["test_accuracy"], abs=1e-4)  # the test split, as trained
    assert acc["real"] > 0.7 and acc["samples"] > 0.5, acc  # chance is 0.1: samples drawn for k look like k
    assert list(acc["per_class"]) == [str(k) for k in range(10)]
    assert sum(c["n"] for c in acc["per_class"].values()) == result["n"] == 80
    assert json.loads((cvae_run / files.QUALITY).read_text())["class_accuracy"] == acc
    assert main(["quality", str(cvae_run), "--n", "80", "--feature-steps", str(STEPS)]) == 0  # the cached network
    out = capsys.readouterr().out
    assert f"class accuracy: {acc['samples']:.3f} of the samples drawn for a class" in out
    assert f"the classifier on the real test split: {acc['real']:.3f}" in out
    page = "".join(quality_html(vaekit.load_run(cvae_run)))  # the report's quality section says it too
    assert f"class accuracy: {acc['samples']:.3f} of the samples" in page


def test_class_accuracy_is_left_out_with_features_that_are_no_classifier(cvae_run, tmp_path):
    result = vaekit.quality(cvae_run, features=torch.nn.Flatten(), n=40, write=False)
    assert "class_accuracy" not in result
    assert result["class_accuracy_note"] == (
        "class accuracy not measured: an nn.Module is no classifier of the data's classes"
    )
    plain = vaekit.train(tiny_config("digits", tmp_path / "vae", epochs=1), pictures=False)
    unconditional = vaekit.quality(plain.path, features=torch.nn.Flatten(), n=40, write=False)
    assert not {"class_accuracy", "class_accuracy_note"} & set(unconditional)  # its samples draw no class
