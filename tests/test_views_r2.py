"""Views, round 2: explore takes every item of a file not the run's own (as report does), evaluate's K is named
iw_samples (k still taken), anomaly's --label-column writes a table's column beside the scores, unscored."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import vaekit
from tests.conftest import tiny_config, train_run
from vaekit.cli import build_parser, main
from vaekit.errors import VaekitError
from vaekit.evaluation.metrics import encode_means
from vaekit.viz.explore import load_explorer

ROWS = np.random.default_rng(0).normal(size=(50, 3)).round(3)  # (50, 3): a table's a, b, c
KIND = ["x", "y"] * 25  # a column the table run does not model


def write_table(path, kind: bool = False):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", *(["kind"] * kind)])
        w.writerows([*r, *([k] * kind)] for r, k in zip(ROWS.tolist(), KIND, strict=True))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One-epoch runs: on grey digits (d, with f.npy: 50 digits items), and on a 50-row table without labels (t)."""
    root = tmp_path_factory.mktemp("views")
    x = vaekit.load_dataset("digits").test.x[:50]  # (50, 1, 8, 8)
    np.save(root / "f.npy", x.numpy())
    table = write_table(root / "t.csv")
    grey = tiny_config("digits", root / "d", epochs=1)
    grey.data.binarize = "none"  # its items as the file holds them
    d, t = train_run(grey), train_run(tiny_config(str(table), root / "t", epochs=1))
    return {"d": vaekit.load_run(d), "t": str(t), "f": str(root / "f.npy"), "x": x, "root": root}


def test_explore_takes_every_item_of_a_file_not_the_run_s_own(runs):
    run, f = runs["d"], runs["f"]
    every = load_explorer(run, f)  # all: its 50 items, not its seeded test split of 5
    spread = encode_means(run, runs["x"]).std(0)  # (D,) over all 50
    assert torch.allclose(torch.tensor(every.spread), spread) and torch.equal(every.items_x, runs["x"][:16])
    assert len(load_explorer(run, f, "test").items_x) == 5 and load_explorer(run, f, "all").spread == every.spread
    assert load_explorer(run).spread == load_explorer(run, None, "test").spread  # the run's own: its test split
    with pytest.raises(VaekitError, match="split 'holdout': expected all, train, val or test"):
        load_explorer(run, f, "holdout")
    parse = build_parser().parse_args
    assert parse(["explore", "r", "--split", "all"]).split == "all" and parse(["explore", "r"]).split is None


def test_evaluate_names_its_k_iw_samples(runs):
    run = runs["d"]
    named = vaekit.evaluate(run, iw_samples=3, limit=8)
    assert named["k"] == 3 and named == {**vaekit.evaluate(run, k=3, limit=8), "seconds": named["seconds"]}
    assert vaekit.evaluate(run, None, "test", 3, 8)["nll"] == named["nll"] != vaekit.evaluate(run, limit=8)["nll"]
    with pytest.raises(VaekitError, match="k is iw_samples' older name; give one of them"):
        vaekit.evaluate(run, iw_samples=3, k=3, limit=8)


def test_anomaly_writes_a_label_column_beside_its_scores(runs, capsys):
    root, t = runs["root"], runs["t"]
    labelled = write_table(root / "t2.csv", kind=True)
    score = ["--score", "neg_elbo,kl", "--out"]
    assert main(["anomaly", t, "--data", str(labelled), *score, str(root / "s.csv")]) == 2
    err = capsys.readouterr().err  # the column the run does not model: refused, with the way to name it
    assert "(extra 'kind')" in err and "to read one as the labels, name it: --label-column" in err
    argv = ["anomaly", t, "--data", str(labelled), "--label-column", "kind", *score, str(root / "s.csv")]
    assert main(argv) == 0 and main(["anomaly", t, "--split", "all", *score, str(root / "u.csv")]) == 0
    with open(root / "s.csv") as f, open(root / "u.csv") as g:
        given, plain = list(csv.DictReader(f)), list(csv.DictReader(g))
    assert list(given[0]) == ["index", "label", "neg_elbo", "kl", "class_name"]  # as a labelled file's
    assert [r["class_name"] for r in given] == KIND and [r["label"] for r in given] == ["0", "1"] * 25
    assert [(r["neg_elbo"], r["kl"]) for r in given] == [(r["neg_elbo"], r["kl"]) for r in plain]  # not scored


@pytest.mark.parametrize("verb", [["anomaly", "--out", "s.csv"], ["anomaly-eval", "--normal", "x"]])
def test_a_detector_s_folder_refuses_a_label_column(verb, tmp_path, capsys):
    (tmp_path / "scales.json").write_text("{}")  # a detector's folder: refused before it is read
    argv = [verb[0], str(tmp_path), "--data", "t.csv", "--label-column", "kind", *verb[1:]]
    assert main(argv) == 2 and "--label-column kind: " in capsys.readouterr().err
