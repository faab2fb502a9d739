"""interpolate and traverse of a binarised run encode the items as given (grey, as ``vaekit.interpolate``);
report finds the evaluation file of the data it is given, not another folder's file of the same name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
import vaekit.viz.figures as figures
from vaekit.cli import main
from vaekit.runs import Run

from .conftest import train_argv

X = np.random.default_rng(0).random((40, 1, 4, 4)).astype(np.float32)  # grey: probabilities a draw would take


@pytest.fixture(scope="module")
def binarised(tmp_path_factory):
    """A one-epoch Bernoulli run of grey items binarised dynamically, and its folder's parent."""
    root = tmp_path_factory.mktemp("grey")
    np.save(root / "grey.npy", X)
    flags = ("--set", "model.likelihood=bernoulli", "--set", "data.binarize=dynamic", "--hidden", "8")
    assert main(train_argv(root / "grey.npy", root / "run", *flags, "--latent-dim", "2")) == 0
    return root / "run"


def spy(monkeypatch, name: str) -> list[tuple]:
    """Record the arguments ``figures.NAME`` is called with, passing the call on."""
    seen, real = [], getattr(figures, name)

    def call(*args, **kwargs):
        seen.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(figures, name, call)
    return seen


def test_interpolate_draws_vaekit_interpolate_of_the_grey_items(binarised, tmp_path, monkeypatch):
    seen = spy(monkeypatch, "save_interpolation")
    argv = ["interpolate", str(binarised), "--split", "all", "--items", "3,17", "--steps", "4"]
    assert main([*argv, "--out", str(tmp_path / "i.png")]) == 0
    (x, paths, *_), pair = seen[0], torch.from_numpy(X[[3, 17]])
    torch.testing.assert_close(x, pair)  # grey, not a binary draw
    want = vaekit.interpolate(Run.load(binarised), pair, steps=4)
    for way in ("lerp", "slerp"):
        torch.testing.assert_close(paths[way], want[way])


def test_traverse_encodes_the_grey_items(binarised, tmp_path, monkeypatch):
    seen = spy(monkeypatch, "traversals")
    argv = ["traverse", str(binarised), "--split", "all", "--item", "5", "--n-dims", "2", "--steps", "3"]
    assert main([*argv, "--out", str(tmp_path / "t.png")]) == 0
    np.testing.assert_array_equal(np.asarray(seen[0][1][:]), X)  # every item, grey, in file order


@pytest.mark.parametrize("verb", ["interpolate", "traverse"])
def test_items_outside_zero_one_are_still_refused(binarised, tmp_path, capsys, verb):
    np.save(tmp_path / "bad.npy", X * 3)
    code = main([verb, str(binarised), "--data", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "p.png")])
    assert code == 2 and "[0, 1]" in capsys.readouterr().err and not (tmp_path / "p.png").exists()


def test_report_reads_the_evaluation_of_the_data_it_is_given(binarised, tmp_path, capsys):
    for k, folder in enumerate(("d1", "d2")):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "new.npy", X * (0.5 + k / 2))
    k2, plain = ["--iw-samples", "2"], binarised / "eval-new.npy-test.json"
    assert main(["evaluate", str(binarised), "--data", str(tmp_path / "d1" / "new.npy"), "--split", "test", *k2]) == 0
    d1 = plain.read_text()

    def report(folder: str) -> str:
        capsys.readouterr()
        data = str(tmp_path / folder / "new.npy")
        argv = ["report", str(binarised), "--data", data, *k2, "--split", "test"]  # as evaluate above
        assert main([*argv, "--out", str(tmp_path / "r.html")]) == 0
        return capsys.readouterr().err

    assert "not recomputed" not in report("d2")  # d1's figures are not d2's
    assert plain.read_text() == d1  # nor are they replaced by d2's
    (hashed,) = set(binarised.glob("eval-new.npy-*-test.json"))
    assert json.loads(hashed.read_text())["path"] == str(tmp_path / "d2" / "new.npy")
    assert hashed.name in report("d2") and plain.name in report("d1")  # each reused from its own file
