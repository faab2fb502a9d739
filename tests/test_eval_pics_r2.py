"""A run folder named as its built-in set keeps its eval.json through a report; traverse and the report rank dims
on the items as evaluate scores them (a binarised run's drawn once), saying where fewer are active than asked;
the noise caveat says "better than" where noise scores better."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

import vaekit.evaluation.quality as quality
import vaekit.viz.latent_walks as walks
import vaekit.viz.report_pictures as report_pictures
from vaekit.cli import main
from vaekit.evaluation.eval_files import data_path, data_stamp
from vaekit.evaluation.eval_items import evaluated_items
from vaekit.evaluation.metrics import encode_means
from vaekit.evaluation.outputs import prepared_split
from vaekit.runs import Run

from .conftest import train_argv


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A one-epoch run of 60 digits (binarised dynamically) in a folder named digits, trained from its parent."""
    root = tmp_path_factory.mktemp("named")
    with contextlib.chdir(root):
        assert main(train_argv("digits", "digits", "--limit", "60", "--hidden", "8", "--latent-dim", "3")) == 0
    return root / "digits"


def test_a_run_folder_named_as_its_builtin_set_keeps_its_eval_json(digits, monkeypatch, capsys):
    monkeypatch.chdir(digits.parent)  # "digits" is both the set's name and the run folder here
    assert data_stamp("digits") is None and data_path("digits") is None  # the set, not the folder
    assert data_stamp("./digits") is not None  # a path written as one is a path
    assert main(["evaluate", "digits", "--iw-samples", "2"]) == 0
    assert json.loads((digits / "eval.json").read_text())["data_stamp"] is None
    for _ in range(2):  # each report writes into the folder: its own data has not changed for that
        capsys.readouterr()
        assert main(["report", "digits", "--iw-samples", "2"]) == 0
        err = capsys.readouterr().err
        assert "not recomputed" in err and "replacing" not in err and "digits recomputes)" in err
    for _ in range(2):  # another split's figures: the line says which evaluation recomputes them
        assert main(["report", "digits", "--iw-samples", "2", "--split", "val"]) == 0
    assert "digits of digits, split val, recomputes)" in capsys.readouterr().err


def test_traverse_ranks_the_dims_on_the_items_evaluate_scores(digits, tmp_path, monkeypatch, capsys):
    ranked, real = [], walks.active_dims
    monkeypatch.setattr(walks, "active_dims", lambda run, x, *a: ranked.append(x) or real(run, x, *a))
    assert main(["traverse", str(digits), "--n-dims", "8", "--item", "0", "--out", str(tmp_path / "t.png")]) == 0
    out, err = capsys.readouterr()
    run = Run.load(digits)
    scored = evaluated_items(run, None, "test", None, None)[2]  # the test split drawn once, as evaluate scores it
    torch.testing.assert_close(ranked[0], scored)  # not the grey items the picture starts from
    assert main(["evaluate", str(digits), "--iw-samples", "2", "--json"]) == 0
    active = json.loads(capsys.readouterr().out)["active_units"]["total"]
    dims = json.loads(out.split("dims ")[1].split(" written")[0])
    assert len(dims) == (active or 3) and ("8 dims asked" in err) == (active < 3)  # one count, one line


@pytest.mark.parametrize("split", ["test", "train", "all"])
def test_the_items_ranked_are_those_evaluate_scores(digits, split):
    run = Run.load(digits)
    grey, _ = prepared_split(run, None, split, binarized=False)
    if split == "all":
        scored = prepared_split(run, None, "all")[0].x  # every_item_data's, as evaluate takes split all
    else:
        scored = evaluated_items(run, None, split, None, None)[2]  # a dynamic run's train split drawn once too
    torch.testing.assert_close(walks.evaluated_as(run, grey, None, None, split), scored)
    assert not torch.equal(grey.x[:], scored[:])  # grey, as the pictures take them


def test_the_reports_traversal_ranks_a_grey_split_as_evaluate_scores_it(digits, tmp_path, monkeypatch):
    run = Run.load(digits)
    grey, _ = prepared_split(run, None, "train", binarized=False)  # a dynamic run's train split, as report reads it
    spreads, real = [], report_pictures.top_dims
    monkeypatch.setattr(report_pictures, "top_dims", lambda s, *a, **k: spreads.append(s) or real(s, *a, **k))
    report_pictures.traversal_picture(run, None, grey, None, 8, tmp_path)
    drawn = evaluated_items(run, None, "train", None, None)[2]
    torch.testing.assert_close(spreads[0], encode_means(run, drawn).var(0))


def test_fewer_active_dims_than_asked_is_one_line():
    spread, four = torch.tensor([0.5, 0.001, 0.02, 0.0]), [0, 1, 2, 3]
    rule = "(posterior-mean variance over 180 items > 0.01)"
    assert walks.fewer_active(spread, 8, four, 180) == f"8 dims asked, 2 active {rule}: showing them"
    assert walks.fewer_active(spread, 2, four, 180) is None  # as many active as asked
    assert (
        walks.fewer_active(spread, 8, [0, 1], 180)
        == f"8 dims asked, 1 active of the 2 its decoder reads {rule}: showing it"
    )
    assert (
        walks.fewer_active(torch.zeros(4), 3, four, 180)
        == f"3 dims asked, none active {rule}: showing the 3 that vary most"
    )
    assert walks.fewer_active(torch.ones(2), 8, [0, 1], 180) is None  # every dim active: the code has no more


@pytest.mark.parametrize(
    "samples,said",
    [
        ({"fid": 37.6, "precision": 1.0}, "better than the samples on FID (11.1 against 37.6)"),
        ({"fid": 37.6, "precision": 0.9}, "as well as or better than the samples on FID (11.1 against 37.6) and "),
        ({"fid": 11.1, "precision": 1.0}, "as well as the samples on FID (11.1 against 11.1)"),
    ],
)
def test_the_noise_caveat_says_better_where_noise_scores_better(monkeypatch, samples, said):
    monkeypatch.setattr(quality, "embed", lambda features, x, **k: x)
    monkeypatch.setattr(quality, "compare", lambda *a, **k: {"fid": 11.1, "precision": 0.9})
    (line,) = quality.noise_caveat(torch.nn.Identity(), torch.zeros(4, 2), torch.rand(4, 2), samples)
    assert line.startswith(f"uniform noise scores {said}")
