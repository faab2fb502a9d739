"""encode and latent-map of a binarised run: the items as given (grey, as ``Run.encode``), the data's labels in
anomaly's columns, --limit, and latent-map's seeded subset of a file sorted by class."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import vaekit.viz.latent_maps as latent_maps
from vaekit.cli import main
from vaekit.runs import Run

from .conftest import train_argv

X = np.random.default_rng(0).random((60, 1, 4, 4)).astype(np.float32)  # grey: probabilities a draw would take
NAMES = np.array(["zero", "one", "two"])
Y = np.repeat(np.arange(3), 20)  # sorted by class, as mnist5k is


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """mode -> a one-epoch run of grey items binarised ``mode``, trained on a file of named labels sorted by
    class; each trained once, when first asked for."""
    folder, done = tmp_path_factory.mktemp("bin"), {}
    np.savez(folder / "grey.npz", x=X, y=NAMES[Y])

    def run(mode: str):
        if mode not in done:
            flags = ("--set", "model.likelihood=bernoulli", "--set", f"data.binarize={mode}", "--hidden", "8")
            assert main(train_argv(folder / "grey.npz", folder / mode, *flags, "--latent-dim", "2")) == 0
            done[mode] = folder / mode
        return done[mode]

    return run


@pytest.fixture
def binarised(trained):
    return trained("dynamic")  # as vaekit train --data digits binarises


def rows_of(path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "mode,split",
    [("dynamic", "all"), ("dynamic", "test"), ("dynamic", "train"), ("fixed", "all")],
)
def test_encode_of_a_binarised_run_equals_run_encode_of_the_grey_items(trained, tmp_path, mode, split):
    binarised = trained(mode)
    assert main(["encode", str(binarised), "--split", split, "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as z:
        index = z["index"] if "index" in z else np.arange(60)  # all: every item in file order
        loc, scale = z["loc"], z["scale"]
    qz = Run.load(binarised).encode(X[index])
    np.testing.assert_allclose(loc, qz.mean.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(scale, qz.stddev.detach().numpy(), atol=1e-6)


def test_encode_of_a_binarised_run_still_refuses_values_outside_0_1(binarised, tmp_path, capsys):
    np.save(tmp_path / "far.npy", X * 2)
    for split in ("all", "test"):
        argv = ["encode", str(binarised), "--data", str(tmp_path / "far.npy"), "--split", split]
        assert main([*argv, "--out", str(tmp_path / "c.csv")]) == 2
        assert "[0, 1]" in capsys.readouterr().err and not (tmp_path / "c.csv").exists()


def test_encode_writes_the_datas_labels_in_anomalys_columns_and_takes_a_limit(binarised, tmp_path):
    run, codes, scores = str(binarised), tmp_path / "c.csv", tmp_path / "a.csv"
    assert main(["encode", run, "--split", "test", "--limit", "4", "--out", str(codes)]) == 0
    argv = ["anomaly", run, "--split", "test", "--limit", "4", "--score", "recon_error", "--out", str(scores)]
    assert main(argv) == 0
    c, a = rows_of(codes), rows_of(scores)
    assert list(c[0]) == ["index", "label", "loc_0", "loc_1", "scale_0", "scale_1", "class_name"]
    assert [k for k in a[0] if k != "recon_error"] == ["index", "label", "class_name"]  # anomaly's order
    ids = ("index", "label", "class_name")
    assert len(c) == 4 and [[r[k] for k in ids] for r in c] == [[r[k] for k in ids] for r in a]
    assert [r["class_name"] for r in c] == [NAMES[Y[int(r["index"])]] for r in c]  # each item's own class
    assert main(["encode", run, "--split", "all", "--limit", "5", "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as z:
        assert z["classes"][z["label"]].tolist() == ["zero"] * 5 and len(z["loc"]) == 5  # the file's first five


def test_latent_map_draws_a_seeded_subset_of_grey_items_and_says_how_many(binarised, tmp_path, capsys, monkeypatch):
    drawn = []
    monkeypatch.setattr(latent_maps, "latent_map", lambda run, x, y, *a: drawn.append((x, y)))
    for _ in range(2):
        argv = ["latent-map", str(binarised), "--split", "all", "--limit", "30", "--out", str(tmp_path / "m.png")]
        assert main(argv) == 0
        assert "latent map of 30 of 60 items (all split)" in capsys.readouterr().out
    (x, y), (x2, y2) = drawn
    assert len(x) == 30 and set(y.tolist()) == {0, 1, 2}  # not the first 30 of a file sorted by class
    assert np.array_equal(x, x2) and np.array_equal(y, y2)  # the same seed, the same subset
    at = [int(np.flatnonzero((row == X).all((1, 2, 3)))[0]) for row in np.asarray(x)]  # grey items, as given
    assert at == sorted(at) and NAMES[Y[at]].tolist() == np.sort(NAMES)[y].tolist()  # labels numbered by name
