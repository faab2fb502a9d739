"""The command line, round 3: input scaling in the ONNX metadata, --data helps, --device on every verb that runs a
model, reconstruct --limit, train's help, shared counts, and the lines a new user met."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config, train_run
from vaekit.cli import build_parser, main
from vaekit.cli.train import nothing_to_train
from vaekit.cli.verbs import ON_DEVICE, count, in_run
from vaekit.config import RunConfig


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    """A one-epoch run on digits (grey levels 0..16, binarised dynamically by auto)."""
    return str(train_run(tiny_config("digits", tmp_path_factory.mktemp("r3") / "run", epochs=1)))


def helps(verb: str) -> dict[str, str]:
    """{option: help} of ``verb``'s parser."""
    return {o: a.help for a in build_parser().verb_parsers[verb]._actions for o in a.option_strings}


def test_export_metadata_says_how_the_runs_data_was_scaled(run):
    from vaekit.export.meta import metadata, x_what
    from vaekit.runs import Run

    said = metadata(Run.load(run), "encoder")
    assert "grey levels 0..16 divided by 16" in said["vaekit_inputs"] and "uint8 / 255" not in said["vaekit_inputs"]
    assert "divided by 16" in said["vaekit_data"]
    assert "divided by 255" in x_what("image", "mnist5k") and "taken as given" in x_what("image", "/a/x.npy")


def test_data_help_says_whether_a_binarised_runs_items_are_grey_or_drawn():
    for verb in ("interpolate", "traverse", "latent-map", "encode", "quality"):
        assert "grey levels, no random draw" in helps(verb)["--data"], verb
    for verb in ("reconstruct", "anomaly"):
        assert "one seeded draw" in helps(verb)["--data"], verb
    assert "one seeded draw" in helps("anomaly-eval")["--in"]
    for verb in ("evaluate", "report"):
        assert "prepared as in training" in helps(verb)["--data"], verb


def test_every_verb_that_runs_a_model_takes_device(run, capsys):
    assert all("--device" in helps(verb) for verb in ON_DEVICE)
    assert main(["evaluate", run, "--device", "xpu"]) == 2
    assert "expected auto, cpu, cuda or cuda:N, got 'xpu'" in capsys.readouterr().err
    assert main(["evaluate", run, "--device", "cpu", "--limit", "8", "--iw-samples", "2"]) == 0
    if not torch.cuda.is_available():
        assert main(["encode", run, "--device", "cuda", "--out", str(Path(run) / "z.npy")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no CUDA device is available here" in err and "(--device)" in err


def test_reconstruct_takes_limit_and_n_as_one_flag(run, tmp_path, capsys):
    for flag in ("--limit", "--n"):
        assert main(["reconstruct", run, flag, "3", "--out", str(tmp_path / "r.npy")]) == 0
        assert np.load(tmp_path / "r.npy").shape[0] == 3
    assert "--limit sets how many" in capsys.readouterr().out
    assert main(["reconstruct", run, "--n", "3", "--limit", "2", "--out", str(tmp_path / "r.npy")]) == 2
    assert "--n and --limit are one flag" in capsys.readouterr().err


def test_train_help_shows_defaults_and_what_auto_picks():
    h = helps("train")
    assert "default: 20" in h["--epochs"] and "default: mnist5k" in h["--data"] and "default: runs/run" in h["--out"]
    assert "auto: bernoulli for binary values" in h["--likelihood"] and "discretized_logistic" in h["--likelihood"]
    assert "auto: dynamic where the likelihood is bernoulli" in h["--binarize"]


def test_export_refuses_an_out_named_like_a_graph(run, tmp_path, capsys):
    out = tmp_path / "dec.onnx"
    assert main(["export", run, "--out", str(out)]) == 2
    assert "--out is a folder: the files are encoder.onnx and decoder.onnx" in capsys.readouterr().err
    assert not out.exists()


def test_a_finished_run_says_which_epochs_extend_it():
    line = nothing_to_train(Path("runs/a"), {"epoch": 4, "bad_epochs": 0}, RunConfig().train.__class__(epochs=4))
    assert "pass --epochs N with N > 4 to extend it" in line


@pytest.mark.parametrize("text, n", [("7", 7), ("1e3", 1000), ("1_000", 1000), ("2.0", 2), ("-1", -1)])
def test_a_count_takes_whole_numbers_however_written(text, n):
    assert count(text) == n


@pytest.mark.parametrize("text", ["1.5", "abc", "inf", "nan", ""])
def test_a_count_refuses_other_numbers_in_one_form(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number"):
        count(text)


def test_counts_are_shared_by_the_verbs_and_train(run, tmp_path, capsys):
    assert build_parser().parse_args(["train", "--epochs", "1e1", "--batch-size", "1_000"]).epochs == 10
    assert main(["sample", run, "--n", "1e1", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape[0] == 10
    assert main(["sample", run, "--n", "1.5", "--out", str(tmp_path / "s.npy")]) == 2
    assert "argument --n: expected a whole number" in capsys.readouterr().err


def test_sample_csv_of_an_image_run_and_printed_run_paths(run, tmp_path, capsys):
    assert main(["sample", run, "--out", str(tmp_path / "s.csv")]) == 2
    assert "a .csv holds rows (N, D), this run's items are (1, 8, 8): use .npy or .png" in capsys.readouterr().err
    assert in_run("runs/d1/", "quality.json") == "runs/d1/quality.json" == in_run("runs/d1", "quality.json")
