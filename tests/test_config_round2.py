"""Configs as a new user writes them: presets whose comments are true, a name that finds two configs or none, flags
given twice, settings in the wrong table, values out of range named by file and flag, and what a run's config.json
carries over."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from vaekit.cli import build_parser, main, train_config
from vaekit.cli.verbs import expanded
from vaekit.config import FORMAT, RunConfig, load_toml_config, refuse_conflicts, set_value, validate
from vaekit.data.builtin import FASHION_CLASSES
from vaekit.errors import VaekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "src" / "vaekit" / "configs"


def refused(argv: list[str], capsys) -> str:
    """The one line ``vaekit train ARGV`` is refused with (exit code 2)."""
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def parsed(argv: list[str]):
    args = expanded(build_parser().parse_args(["train", *argv]))
    args.argv = ["train", *argv]
    return args


def test_preset_comments_say_what_works_and_how_their_numbers_were_measured():
    labels = re.findall(r"--label (\S+)", (PRESETS / "cvae-conv.toml").read_text())
    assert labels and all(name in FASHION_CLASSES for name in labels)  # labels are class names, not numbers
    text = (PRESETS / "beta-capacity.toml").read_text()
    assert load_toml_config("beta-capacity").data.binarize == "dynamic"  # as benchmarks/families.py measured it
    assert "train.epochs = capacity_epochs = 5" in text and "binarised" in text
    beta_table = (ROOT / "benchmarks" / "families.py").read_text()
    assert "beta_epochs=5" in beta_table and 'settings["train.capacity_epochs"] = args.beta_epochs' in beta_table


def test_the_guide_shows_the_demo_preset_as_shipped():
    guide = (ROOT / "docs" / "guides" / "training.md").read_text()
    block = guide.split("# the preset demo (vaekit/configs/demo.toml)\n", 1)[1].split("```", 1)[0]
    assert tomllib.loads(block) == tomllib.loads((PRESETS / "demo.toml").read_text())


def test_a_name_of_a_preset_and_a_file_here_is_refused_naming_both(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.toml").write_text("[train]\nepochs = 3\n")
    err = refused(["--config", "demo", "--out", "r"], capsys)
    assert (
        "the preset demo and the file demo.toml" in err and "./demo.toml" in err and str(PRESETS / "demo.toml") in err
    )
    assert train_config(parsed(["--config", "./demo.toml", "--out", "r"])).train.epochs == 3
    assert train_config(parsed(["--config", str(PRESETS / "demo.toml"), "--out", "r"])).train.epochs == 30
    (tmp_path / "mine.toml").write_text("[train]\nepochs = 3\n")
    assert "mine: config file not found (did you mean mine.toml? presets:" in refused(["--config", "mine"], capsys)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "config.json").write_text("{}")
    assert "runs/demo: a folder: its config is runs/demo/config.json" in refused(["--config", "runs/demo"], capsys)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--epochs", "2", "--epochs", "1"], "--epochs"),
        (["--epochs=2", "--epochs", "1"], "--epochs"),
        (["--config", "demo", "--config", "beta-4"], "--config"),
    ],
)
def test_a_flag_given_twice_is_refused_naming_it(argv, flag, capsys):
    assert f"train: {flag} is given twice: give it once" in refused(argv, capsys)


def test_flags_meant_to_repeat_still_repeat():
    args = parsed(["--model", "ladder", "--model", "conv", "--set", "lr=0.01", "--set", "epochs=2", "--quiet"])
    cfg = train_config(args)
    assert (cfg.model.family, cfg.model.net, cfg.train.lr, cfg.train.epochs) == ("ladder", "conv", 0.01, 2)


def test_a_relative_data_path_in_a_config_is_said_to_be_read_from_the_current_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "cfg.toml").write_text('[data]\nspec = "x.npy"\n')
    (tmp_path / "rel" / "x.npy").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    err = refused(["--config", "rel/cfg.toml", "--out", "r"], capsys)
    assert f"x.npy: no such file in the current folder {tmp_path} (paths in rel/cfg.toml are read from the " in err
    assert train_config(parsed(["--config", "rel/cfg.toml", "--data", "digits", "--out", "r"])).data.spec == "digits"
    monkeypatch.chdir(tmp_path / "rel")
    assert train_config(parsed(["--config", "cfg.toml", "--out", "r"])).data.spec == "x.npy"


def test_a_json_config_written_by_hand_is_refused_outside_a_run_folder(tmp_path, capsys):
    hand = tmp_path / "hand.json"
    hand.write_text(json.dumps({"model": {"family": "ladder"}, "train": {"epochs": 1}}))
    err = refused(["--config", str(hand), "--out", str(tmp_path / "r")], capsys)
    assert (
        'neither "format" nor "written_by"' in err and f'write the settings as TOML, or add "format": {FORMAT}' in err
    )
    (tmp_path / "model.safetensors").write_bytes(b"")  # a run of a vaekit before "format": read as format 1
    cfg = train_config(parsed(["--config", str(hand), "--out", str(tmp_path / "r")]))
    assert cfg.model.ladder_posterior == "precision"
    (tmp_path / "model.safetensors").unlink()
    hand.write_text(json.dumps({"format": FORMAT, "model": {"family": "ladder"}}))
    assert train_config(parsed(["--config", str(hand), "--out", "r"])).model.ladder_posterior == "topdown"


def test_a_family_by_model_blames_the_preset_for_its_net(capsys):
    err = refused(["--config", "demo", "--model", "deep", "--out", "r"], capsys)
    assert "model.net in the preset demo; --set model.net=mlp" in err and "(--model)" not in err
    assert "(--model)" in refused(["--model", "deep", "--model", "conv", "--out", "r"], capsys)


def test_training_again_from_a_quiet_runs_config_json_shows_progress(tmp_path):
    quiet = RunConfig()
    quiet.train.progress = False
    (tmp_path / "config.json").write_text(json.dumps({"format": FORMAT, **quiet.to_dict()}))
    assert train_config(parsed(["--config", str(tmp_path / "config.json"), "--out", "r"])).train.progress
    assert not train_config(parsed(["--config", str(tmp_path / "config.json"), "--out", "r", "--quiet"])).train.progress


@pytest.mark.parametrize(
    "text, said",
    [
        ("[model]\nseed = 3\n", "unknown key 'seed' in [model] (did you mean [train] seed?)"),
        ("[train]\nepochs = 1\nout = 'runs/o'\n", "out is no table's: it goes at the top of the file, above the first"),
        ("[data]\nzzzz = 1\n", "unknown key 'zzzz' in [data] (the keys of [data]: spec, binarize, standardize,"),
    ],
)
def test_a_key_in_the_wrong_table_names_its_table(text, said, tmp_path):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(VaekitError, match=re.escape(said)) as e:
        load_toml_config(tmp_path / "c.toml")
    assert "vaekit.config." not in str(e.value)  # a command-line user is not sent to a Python class


@pytest.mark.parametrize(
    "text, argv, said",
    [
        ("[train]\nlr = -1.0\n", [], "train.lr must be > 0, got -1.0 (train.lr in c.toml; --lr changes it)"),
        ("", ["--lr", "-1"], "train.lr must be > 0, got -1.0 (--lr)"),
        ("[train]\nema = 1.5\n", [], "got 1.5 (train.ema in c.toml; --set train.ema=... changes it)"),
        (
            "[data]\nlimit = -5\n",
            [],
            "data.limit must be > 0 (none: every item), got -5 (data.limit in c.toml; --limit",
        ),
        (
            "[data]\nval_fraction = 0.6\ntest_fraction = 0.5\n",
            [],
            "must be below 1 (the rest trains), got 0.6 + 0.5 (data.test_fraction in c.toml;",
        ),
        ('[data]\nspec = ""\n', [], "data.spec is empty: name a built-in set, a file or a folder (data.spec in c.toml"),
    ],
)
def test_a_value_out_of_range_names_the_file_and_flag_it_came_from(text, argv, said, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(text)
    assert said in refused(["--config", "c.toml", *argv, "--out", "r"], capsys)


def test_a_toml_file_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "bom.toml").write_text("\ufeff[train]\nepochs = 1\n", encoding="utf-8")
    assert load_toml_config(tmp_path / "bom.toml").train.epochs == 1


def test_a_conv_ladder_takes_one_hidden_width():
    cfg = load_toml_config("ladder-conv")
    assert cfg.model.hidden == [400] and refuse_conflicts(validate(cfg)) is cfg
    set_value(cfg, "model.hidden", [300, 400], strict=True)
    with pytest.raises(VaekitError, match=r"model.hidden and model.net .*only the last entry would be used"):
        refuse_conflicts(cfg)
    cfg.model.net = "mlp"  # the MLP ladder's networks use every width
    assert refuse_conflicts(cfg) is cfg


def test_one_image_size_is_taken_as_a_number_too():
    cfg = RunConfig.from_dict({"data": {"image_size": 16}})
    set_value(cfg, "image_size", 24, strict=True)  # vaekit.train(image_size=24)
    assert cfg.data.image_size == [24] and RunConfig.from_dict({"data": {"image_size": 16}}).data.image_size == [16]
    with pytest.raises(VaekitError, match="image_size must be a list"):
        set_value(cfg, "image_size", True, strict=True)
