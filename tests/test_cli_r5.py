"""The command line, round 5: ``vaekit data`` on built-in names (the size the spec names, --set applied, read from
what is here only), a table's description without training's model notes, examples on the picture verbs' help
pages, and explore's --device."""

from __future__ import annotations

import pickle
import shlex
from pathlib import Path

import pytest
import torch

from vaekit.cli import build_parser, main
from vaekit.data import builtin, catalog
from vaekit.data.describe import describe
from vaekit.data.lazy import LazyArray
from vaekit.data.prepare import supported
from vaekit.errors import VaekitError

PICTURES = ("explore", "interpolate", "traverse", "latent-map", "curves")


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize(
    ("spec", "shape", "items"),
    [("dsprites:16", "1x16x16", "200 (160 train, 20 val, 20 test)"), ("digits", "1x8x8", "100 (80 train, 10 val")],
)
def test_a_builtin_name_is_described_as_training_reads_it(spec, shape, items):
    """The size the spec names, data.limit applied, classes counted, auto's likelihood (as files are)."""
    lines = dict(describe(spec, [("data.limit", "100" if spec == "digits" else "200")]))
    assert lines["item shape"].startswith(f"{shape} (") and lines["items"].startswith(items)
    assert sum(int(c.rsplit(" ", 1)[1]) for c in lines["classes"].split(": ", 1)[1].split(", ")) == int(items[:3])
    assert lines["likelihood (auto)"].startswith("bernoulli") and "built-in set" in lines["read as"]


def test_a_builtin_set_not_here_is_its_catalogue_row_and_nothing_is_downloaded(tmp_path, monkeypatch):
    def fetch(*args, **kwargs):
        raise AssertionError("describing a built-in set downloaded")

    monkeypatch.setattr(builtin, "fetch", fetch)
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    monkeypatch.delenv("VAEKIT_MNIST_DIR", raising=False)
    monkeypatch.setitem(catalog.SYSTEM_DIRS, "mnist", str(tmp_path / "none"))
    monkeypatch.setitem(builtin.SYSTEM_DIRS, "mnist", str(tmp_path / "none"))
    lines = dict(describe("mnist"))
    assert "not in the offline cache" in lines["not read"] and lines["ready offline here"].startswith("no")
    assert lines["item shape"] == "1x28x28" and not list(tmp_path.iterdir())


def test_a_table_is_described_without_training_notes_and_one_scaling(tmp_path, capsys):
    rows = [f"{i % 7 + 0.5},{i * 1.5},{'ab'[i % 2]}" for i in range(40)]
    (csv := tmp_path / "t.csv").write_text("a,b,class\n" + "\n".join(rows) + "\n")
    code, out, err = cli(capsys, "data", csv)
    assert code == 0 and "holds the labels" in err and "conditional" not in err + out
    scaling = next(line for line in out.splitlines() if line.startswith("scaling:")).split(":", 1)[1].strip()
    assert scaling == "numeric columns standardised by the training split's mean and sd (data.standardize=auto)"


def test_the_data_help_says_what_a_builtin_name_gives():
    page = " ".join(build_parser().verb_parsers["data"].format_help().split())
    assert "never downloaded" in page and "catalogue row" in page


@pytest.mark.parametrize("name", PICTURES)
def test_the_picture_verbs_help_pages_end_with_examples_that_parse(name):
    parser = build_parser()
    lines = parser.verb_parsers[name].format_help().split("examples:\n", 1)[1].splitlines()
    assert 2 <= len(lines) <= 3
    for line in lines:
        argv = shlex.split(line)
        assert argv[:2] == ["vaekit", name] and parser.parse_args(argv[1:]).command == name


def test_explore_opens_its_run_on_device(tmp_path, monkeypatch, capsys):
    from vaekit.runs import Run
    from vaekit.viz import explore

    asked: list[str] = []

    def load(path, device="cpu", *args, **kwargs):
        asked.append(device)
        raise VaekitError("stop here")

    monkeypatch.setattr(Run, "load", load)
    code, _, err = cli(capsys, "explore", Path(tmp_path), "--port", "0", "--device", "auto")
    with pytest.raises(VaekitError):
        explore.open_explorer(str(tmp_path), 0, device="cuda:1")
    assert code != 0 and "stop here" in err and asked == ["auto", "cuda:1"]


@pytest.mark.parametrize("how", [["--config", "cvae-conv"], ["--binarize", "dynamic"]])
def test_real_values_under_binarisation_name_data_binarize_with_the_likelihood(tmp_path, capsys, how):
    csv = tmp_path / "w.csv"
    csv.write_text("a,b\n" + "".join(f"{i * 1.5},{i * 2.5}\n" for i in range(40)))
    code, _, err = cli(capsys, "train", "--data", csv, *how, "--out", tmp_path / "r")
    assert code == 2 and "needs the gaussian likelihood and data.binarize none, not dynamic" in err
    assert not (tmp_path / "r").exists()


class Lazy(LazyArray):  # only its check is read: a spawned DataLoader worker unpickles it
    def __init__(self):
        self.check = None


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_a_binarised_lazy_split_s_check_survives_pickling_for_spawned_workers(likelihood):
    x = pickle.loads(pickle.dumps(supported(Lazy(), "dynamic", likelihood, "w.npy")))
    with pytest.raises(VaekitError, match=r"data\.binarize"):
        x.check(torch.tensor([[0.5, 2.0]]))
    x.check(torch.tensor([[0.5, 1.0]]))
