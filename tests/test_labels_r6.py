"""Labels, round 6: a resume on labels naming other classes is refused by train and the CLI as by fit, labels given
to an unconditional run are refused, and the advice of a label's messages is one that works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main

from .conftest import train_argv

X = (np.random.default_rng(0).random((48, 1, 4, 4)) > 0.5).astype(np.float32)
ABC = np.array(["a", "b", "c"] * 16)
QUIET = dict(progress=False, pictures=False)


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """(a folder holding files of X labelled a/b/c, x/y/z and a/b/d, and a one-epoch cvae run of a/b/c in it)."""
    folder = tmp_path_factory.mktemp("named")
    for name, labels in {
        "abc": ABC,
        "xyz": np.array(["x", "y", "z"] * 16),
        "abd": np.char.replace(ABC, "c", "d"),
    }.items():
        np.savez(folder / f"{name}.npz", x=X, y=labels)
    assert main(train_argv(folder / "abc.npz", folder / "run", "--model", "cvae", "--hidden", "8")) == 0
    return folder


@pytest.mark.parametrize("other", ["xyz", "abd"])  # abd: a rename that keeps the sorted numbering
def test_a_resume_on_labels_of_other_classes_is_refused_by_the_cli_and_train_before_writing(named, other, capsys):
    run, data = named / "run", str(named / f"{other}.npz")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(run), "--data", data, "--epochs", "2", "--quiet"]) != 0
    said = capsys.readouterr().err
    assert "the run was trained on the classes ['a', 'b', 'c'], and the data's labels name" in said
    with pytest.raises(vaekit.VaekitError, match=r"trained on the classes \['a', 'b', 'c'\]"):
        vaekit.train(out=str(run), resume=True, data=data, epochs=2, progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing written
    n = len(vaekit.load_run(run).history) + 1  # its own classes resume
    assert len(vaekit.train(out=str(run), resume=True, data=str(named / "abc.npz"), epochs=n, **QUIET).history) == n


def test_labels_given_to_an_unconditional_run_are_refused_in_one_line_and_none_still_works(tmp_path):
    m = vaekit.build_model(input_shape=[1, 4, 4], likelihood="bernoulli", latent_dim=2, hidden=[8])
    run, x, z = vaekit.fit(m, X, epochs=1, **QUIET), torch.from_numpy(X[:2]), torch.zeros(2)
    calls = {
        "its codes": lambda y: run.encode(x, y=y).mean,
        "its reconstructions": lambda y: run.reconstruct(x, y=y),
        "its traversals": lambda y: vaekit.traverse(run, z, [0], [0.0, 1.0], y=y),
        "its paths": lambda y: vaekit.interpolate(run, x, 3, y=y)["lerp"],
        "its manifold": lambda y: vaekit.manifold(run, 3, y=y),
    }
    for what, call in calls.items():
        for y in (99, "nonsense", torch.tensor([5, 5])):
            with pytest.raises(
                vaekit.VaekitError, match=f"^this model is not conditional: {what} take no label: leave"
            ):
                call(y)
        assert torch.isfinite(call(None)).all()
    assert vaekit.latent_map(run, x, np.array([0, 1])) is not None  # labels that colour the points: still taken
    np.savetxt(tmp_path / "t.csv", X.reshape(48, -1)[:, :3], delimiter=",", header="a,b,c", comments="")
    assert main(train_argv(tmp_path / "t.csv", tmp_path / "table", "--hidden", "8")) == 0
    table, rows = vaekit.load_run(tmp_path / "table"), X.reshape(48, -1)[:4, :3]
    with pytest.raises(vaekit.VaekitError, match=r"^this model is not conditional: its scores take no label") as e:
        vaekit.column_scores(table, rows, y=1)
    assert e.value.key == "y" and len(vaekit.column_scores(table, rows)) == 3


def test_the_advice_of_a_label_outside_the_models_classes_is_one_that_works():
    cvae = vaekit.build_model(
        family="cvae", num_classes=5, input_shape=[1, 4, 4], likelihood="bernoulli", latent_dim=2, hidden=[8]
    )
    ten, four = np.arange(48) % 10, np.arange(48) % 4 + 3  # 10 classes; 4 numbered 3..6
    with pytest.raises(vaekit.VaekitError, match=r"label 9 is outside .*0..4: the labels hold 10 distinct values"):
        vaekit.fit(cvae, (X, ten), epochs=1, **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"label 6 is outside .*0..4: give the labels as names \(y.astype"):
        vaekit.fit(cvae, (X, four), epochs=1, **QUIET)
    assert vaekit.fit(cvae, (X, four.astype(str)), epochs=1, **QUIET).classes[:4] == list("3456")  # as advised


def test_the_cli_says_a_file_without_labels_has_none_and_how_to_give_them(named, capsys):
    np.savez(named / "xonly.npz", x=X)
    run, data, out = str(named / "run"), str(named / "xonly.npz"), str(named / "out.png")
    said = "this model is conditional: it needs labels, and the data {} has none: give {}--data a file that holds"
    for verb, how in [("interpolate", ""), ("reconstruct", ""), ("traverse", "--label (a class) with --dims, or ")]:
        assert main([verb, run, "--data", data, "--out", out]) == 2
        err = capsys.readouterr().err
        assert said.format(data, how) in err and "y=K" not in err and err.count("\n") == 1
    assert main(["traverse", run, "--data", data, "--out", out, "--label", "a", "--dims", "0,1"]) == 0  # as advised
