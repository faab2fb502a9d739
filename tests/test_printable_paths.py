"""Run folders whose names a terminal or safetensors cannot take as they are: a newline in a result line is
escaped (one line), and a name that is not UTF-8 trains, resumes and loads."""

from __future__ import annotations

import os

import numpy as np
import pytest

import vaekit
from vaekit import cli

from .conftest import train_argv


@pytest.fixture(scope="module")
def newline_run(tmp_path_factory):
    """A one-epoch run of 60 tiny 'images' (60, 9, 11) in a folder named 'a\\nb'."""
    root = tmp_path_factory.mktemp("paths")
    rng = np.random.default_rng(0)
    np.save(root / "tiny.npy", (rng.random((60, 9, 11)) > 0.6).astype(np.float32))
    run = root / "a\nb"
    assert cli.main(train_argv(root / "tiny.npy", run, "--hidden", "8")) == 0
    return run


VERBS = {  # each verb's arguments after the run folder; outputs written inside it
    "evaluate": ["--iw-samples", "2"],
    "interpolate": [],
    "traverse": [],
    "latent-map": [],
    "curves": [],
    "report": [],
    "encode": ["--out", "{run}/codes.npy"],
    "anomaly": ["--out", "{run}/scores.csv", "--score", "neg_elbo"],
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_result_line_of_a_newline_folder_is_one_line(verb, newline_run, capsys):
    capsys.readouterr()
    argv = [verb, str(newline_run), *(a.format(run=newline_run) for a in VERBS[verb])]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n"), out
    assert "a\\nb" in out


def test_a_folder_not_utf8_trains_resumes_and_loads(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "tiny.npy", (rng.random((40, 9, 11)) > 0.6).astype(np.float32))
    out = tmp_path / os.fsdecode(b"bad\xff")
    assert cli.main(train_argv(tmp_path / "tiny.npy", out, "--hidden", "8")) == 0
    assert cli.main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0  # the checkpoint read back
    assert "bad\\udcff" in capsys.readouterr().out
    run = vaekit.load_run(out)
    assert run.encode(np.zeros((2, 9, 11), np.float32)).mean.shape == (2, 16)
