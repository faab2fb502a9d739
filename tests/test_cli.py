"""The command line end to end, resume, and a trained run refusing data of another shape (the bad-input corpus
lives in test_bad_inputs.py)."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.cli import VERBS, build_parser, main, train_config
from vaekit.config import load_json_config, load_toml_config
from vaekit.errors import VaekitError

TINY = ["--model", "mlp", "--hidden", "16", "--latent-dim", "3", "--batch-size", "16", "--quiet"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_train_sample_reconstruct_end_to_end(tiny_images, tmp_path):
    """Training and sampling in processes of their own, as a user runs them; the other verbs in this one."""
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "vaekit"]
    train = subprocess.run(
        [
            *cli,
            "train",
            "--data",
            tiny_images,
            "--model",
            "conv",
            "--set",
            "model.channels=4,8",
            "--latent-dim",
            "2",
            "--epochs",
            "2",
            "--out",
            run,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert train.returncode == 0, train.stderr
    for name in (
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "samples.png",
        "reconstructions.png",
        "loss.png",
    ):
        assert (run / name).stat().st_size > 0, name
    assert not list(run.glob(".*tmp"))  # atomic writes leave no temporaries
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,train_loss,train_rec,train_kl,val_loss")
    r = subprocess.run([*cli, "sample", run, "--n", "6", "--out", tmp_path / "s.npy"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert main(["sample", str(run), "--n", "6", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0 and np.load(tmp_path / "s.npy").shape == (6, 1, 9, 11)
    assert (
        main(["reconstruct", str(run), "--data", str(tiny_images), "--n", "4", "--out", str(tmp_path / "r.npy")]) == 0
    )
    assert np.load(tmp_path / "r.npy").shape == (4, 1, 9, 11)


def test_resume_after_a_stop_gives_the_same_weights(tiny_images, tmp_path, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 4, "--out", whole)[0] == 0
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 2, "--out", part)[0] == 0
    assert run_cli(capsys, "train", "--resume", part, "--epochs", 4, "--quiet")[0] == 0
    a, b = load_file(whole / "checkpoint.safetensors"), load_file(part / "checkpoint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (part / "metrics.csv").read_text().count("\n") == 5
    code, cap = run_cli(capsys, "train", "--resume", part, "--epochs", 3, "--quiet")
    assert code == 2 and "train.epochs 3: the run has trained 4 already" in cap.err
    assert run_cli(capsys, "train", "--resume", part, "--epochs", 5, "--set", "train.beta=4", "--quiet")[0] == 0
    code, cap = run_cli(capsys, "train", "--resume", part, "--set", "train.objective=iwae", "--quiet")
    assert code == 2 and f"(train.beta in {part}/config.json; --beta changes it)" in cap.err  # not the user's flag
    quiet = [train_config(build_parser().parse_args(["train", "--resume", str(part), *q])) for q in ([], ["--quiet"])]
    assert [c.train.progress for c in quiet] == [True, False]  # the first run's --quiet is not the resumed one's


def test_run_with_a_mismatched_data_shape_is_refused(tiny_images, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 1, "--out", run)[0] == 0
    code, cap = run_cli(capsys, "reconstruct", run, "--data", "digits", "--out", tmp_path / "r.png")
    assert code == 2 and "shape" in cap.err and not (tmp_path / "r.png").exists()
    code, cap = run_cli(capsys, "train", "--data", tiny_images, *TINY, "--out", run)
    assert code == 2 and "--overwrite" in cap.err
    (run / "model.safetensors").write_bytes(b"not safetensors")
    code, cap = run_cli(capsys, "sample", run, "--out", tmp_path / "s.png")
    assert code == 2 and "model.safetensors" in cap.err


def test_run_folders_at_home_long_warm_ups_and_unfinished_runs(tiny_images, tmp_path, capsys, monkeypatch):
    """'~' in --out, RUN, a TOML's out and load_run is the home folder; a schedule longer than the run is one warning
    line; a run without best weights (stopped in its first epoch), or a file, is named as such."""
    (home := tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", tiny_images, *TINY[:-1], "--epochs", 1, "--warmup-epochs", 5, "--out", "~/run"]
    code, cap = run_cli(capsys, *argv)  # not --quiet: the epoch line
    assert code == 0 and (home / "run" / "model.safetensors").is_file() and not (tmp_path / "~").exists()
    note = "vaekit: warning: train.warmup_epochs 5 is longer than the run (train.epochs 1): the KL weight ends at 20%"
    assert "items/s" in cap.out and cap.err.count(note) == 1
    assert run_cli(capsys, "sample", "~/run", "--n", 2, "--out", "~/s.png")[0] == 0 and (home / "s.png").is_file()
    (tmp_path / "c.toml").write_text('out = "~/t"\n')
    assert load_toml_config(tmp_path / "c.toml").out == str(home / "t")
    assert vaekit.load_run("~/run").path == home / "run"
    for name in ("model.safetensors", "metrics.csv"):  # as a run stopped before its first epoch ended
        (home / "run" / name).unlink()
    code, cap = run_cli(capsys, "sample", home / "run", "--out", tmp_path / "s.png")
    said = f"{home / 'run'}: the run has not finished an epoch yet; resume its training"
    assert (code, cap.err) == (2, f"vaekit: error: {said} (vaekit train --resume {home / 'run'})\n")
    with pytest.raises(VaekitError, match="a file, not a run folder"):
        vaekit.load_run(tiny_images)


def test_anomaly_s_help_names_its_csv_columns_in_order(tmp_path):
    from vaekit.evaluation.outputs import write_scores

    write_scores(tmp_path / "s.csv", {"e": np.zeros(2), "outlier": np.zeros(2)}, torch.tensor([0, 1]), ["a", "b"], "xy")
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "index,label,e,outlier,class_name,file"
    said = next(a.help for a in build_parser().verb_parsers["anomaly"]._actions if a.dest == "out")
    at = [said.index(name) for name in ("index (", "label (", "per score", "outlier (", "class_name (", "file (")]
    assert at == sorted(at)


def test_mlflow_s_own_info_lines_are_held_back(monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra")
    from vaekit.viz.mlflow import MLflow

    monkeypatch.setattr(logging.getLogger("mlflow"), "level", logging.INFO)  # as mlflow sets it; restored after
    with pytest.raises(VaekitError, match="bogus"):
        MLflow("bogus://x")  # its loggers are held back before the store is opened
    assert logging.getLogger("mlflow").level == logging.WARNING


@pytest.mark.parametrize("verb", [[], *[[v] for v in sorted(VERBS)]], ids=lambda v: v[0] if v else "vaekit")
def test_every_help_page_prints(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([*verb, "--help"])
    assert e.value.code == 0 and "usage: vaekit" in capsys.readouterr().out


def test_a_worker_that_loses_a_peer_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    from vaekit.cli import run_command

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")  # the other ranks stop with it, silently

    def failing(message: str):
        def run(args):
            raise RuntimeError(message)

        run.__module__ = "vaekit.cli.train"  # where the help orders it
        return run

    for gloo in (
        "[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:34181",
        "[../gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:2817: Connection reset by peer",  # a SIGKILL
    ):
        monkeypatch.setattr(VERBS["train"], "run", failing(gloo))
        assert run_command(["train", "--data", "digits", "--out", str(tmp_path / "r")]) == 1
        assert capsys.readouterr().err.strip() == f"vaekit: error: rank 0 lost a process of its run ({gloo})"
    monkeypatch.setattr(VERBS["train"], "run", failing("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):  # any other error stays a traceback
        run_command(["train", "--data", "digits", "--out", str(tmp_path / "r")])


def test_output_piped_into_a_reader_that_stops_ends_quietly(monkeypatch, capsys, tmp_path):
    from vaekit.cli import run_command

    def printing(args):  # what `vaekit ... | head -1` meets once head has stopped reading
        raise BrokenPipeError(32, "Broken pipe")

    printing.__module__ = "vaekit.cli.evaluate"
    monkeypatch.setattr(VERBS["curves"], "run", printing)
    assert run_command(["curves", str(tmp_path)]) == 141 and capsys.readouterr().err == ""


def stopped_early(tiny_images, run, monkeypatch):
    """A run that stops early (patience 1 at a learning rate that learns nothing), resumed for more epochs."""
    flags = ["--lr", "1e-9", "--patience", "1", "--epochs", "40", "--out", str(run)]
    assert main(["train", "--data", str(tiny_images), *TINY, *flags]) == 0
    return ["--epochs", "80"]


def killed_in_checkpoint(tiny_images, run, monkeypatch):
    """A run killed while epoch 2's checkpoint was written: metrics.csv holds its row, the checkpoint epoch 1."""
    import vaekit
    from vaekit.training import trainer

    saves, save = [], trainer.save_checkpoint

    def dies(*args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            raise RuntimeError("killed")
        return save(*args, **kwargs)

    monkeypatch.setattr(trainer, "save_checkpoint", dies)
    with pytest.raises(RuntimeError, match="killed"):
        vaekit.train(data=str(tiny_images), hidden=[16], latent_dim=3, epochs=2, progress=False, out=run)
    monkeypatch.undo()
    assert (run / "metrics.csv").read_text().count("\n") == 3
    return []


@pytest.mark.parametrize(
    "start, said",
    [
        (stopped_early, "stopped early after"),
        (killed_in_checkpoint, "run written to"),
    ],
)
def test_a_resume_says_whether_it_trained_and_what_would_train_on(
    start, said, tiny_images, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    flags = start(tiny_images, run, monkeypatch)
    config = (run / "config.json").read_bytes()
    code, cap = run_cli(capsys, "train", "--resume", run, *flags, "--quiet")
    assert code == 0 and said in cap.out
    if start is stopped_early:
        assert "pass --patience 2 or more, or --patience 0, to train on" in cap.out and "--epochs" not in cap.out
        assert (run / "config.json").read_bytes() == config  # was: rewritten with the 80 epochs never trained


def test_a_run_s_config_json_records_its_versions_and_trains_it_again(tiny_images, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 1, "--out", "a")[0] == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["out"] == str(tmp_path / "a") and config["train"]["progress"] is False
    assert set(config["written_by"]) == {"vaekit", "torch", "python"}
    assert run_cli(capsys, "train", "--config", "a/config.json", "--out", "b")[0] == 0  # the run again
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    del config["written_by"]  # as a run of an earlier vaekit wrote it
    (tmp_path / "a" / "config.json").write_text(json.dumps(config))
    assert load_json_config(tmp_path / "a" / "config.json").train.epochs == 1
    (tmp_path / "bad.json").write_text("{not json")
    code, cap = run_cli(capsys, "train", "--config", "bad.json", "--out", "c")
    assert code == 2 and cap.err.count("\n") == 1 and "bad.json: not valid JSON" in cap.err
    (tmp_path / "deep.json").write_text("[" * 100_000)
    code, cap = run_cli(capsys, "train", "--config", "deep.json", "--out", "c")
    assert code == 2 and cap.err.count("\n") == 1 and "deep.json: not valid JSON (nested too deeply)" in cap.err


def test_a_run_s_config_json_never_writes_to_the_folder_it_records(tiny_images, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", 1, "--out", "a")[0] == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**config, "out": str(tmp_path / "elsewhere")}))
    code, cap = run_cli(capsys, "train", "--config", "a/config.json", "--quiet")
    assert code == 2 and cap.err.count("\n") == 1 and not (tmp_path / "elsewhere").exists()
    assert "(--out) is empty: name the folder to write (--config a/config.json: the folder a run's config" in cap.err
    assert run_cli(capsys, "train", "--config", "a/config.json", "--set", "out=b")[0] == 0 and (tmp_path / "b").is_dir()
    assert run_cli(capsys, "train", "--resume", "a", "--epochs", 2)[0] == 0  # a resume keeps its own folder
    assert len((tmp_path / "a" / "metrics.csv").read_text().splitlines()) == 3


def meaningful(default) -> bool:
    return not (default is None or default is False or default == [] or default == argparse.SUPPRESS)


@pytest.mark.parametrize("name", sorted(VERBS))
def test_every_help_page_shows_the_defaults(name):
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    page = verbs.choices[name]
    for action in page._actions:
        if meaningful(action.default) and action.help != argparse.SUPPRESS:
            assert "default" in page._get_formatter()._expand_help(action), (name, action.dest)
        assert action.dest != "seed" or not action.help.startswith("("), name  # says what it seeds


def test_python_and_the_command_line_draw_paths_of_as_many_steps_by_default():
    import inspect

    import vaekit

    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cli = verbs.choices["interpolate"].get_default("steps")
    assert inspect.signature(vaekit.interpolate).parameters["steps"].default == cli == 10


def test_only_the_verbs_that_draw_at_random_take_a_seed():
    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    seeded = {name for name, page in verbs.items() if any(a.dest == "seed" for a in page._actions)}
    assert {"evaluate", "report", "sample"} <= seeded and not {"interpolate", "traverse", "latent-map"} & seeded


@pytest.mark.parametrize("tty", [True, False])
def test_evaluate_tells_a_terminal_what_its_minutes_are_for(tiny_images, tmp_path, capsys, monkeypatch, tty):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", tiny_images, *TINY, "--epochs", "1", "--out", run)[0] == 0
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    code, out = run_cli(capsys, "evaluate", run, "--iw-samples", "3", "--limit", "5")
    assert code == 0 and ("evaluating 5 items, the IWAE bound with K = 3 each" in out.err) == tty
