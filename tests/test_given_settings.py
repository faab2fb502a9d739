"""A setting the user gives (a flag, --set, their TOML file, a keyword) and that cannot take effect is refused
whatever its value, its default too; a preset's keys, a run's config.json and a resume are held as before."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import vaekit
from vaekit.cli import build_parser, main, train_config
from vaekit.config import FORMAT, RunConfig, load_json_config, load_toml_config, refuse_conflicts, set_value, validate
from vaekit.config.parse import presets

# (a setting given at its default, the settings around it that leave it unread)
AT_DEFAULT = [
    ("train.iw_samples", []),  # the elbo objective
    ("train.mmd_weight", []),
    ("train.factor_gamma", []),
    ("train.gamma", []),  # no capacity
    ("train.beta", ["train.capacity_max=25"]),
    ("model.deep_width", []),
    ("model.hidden", ["model.net=conv"]),
    ("model.learned_prior", []),  # no cvae
    ("model.prior", ["model.family=ladder"]),
    ("model.prior_components", ["model.family=cvae", "model.learned_prior=false"]),
    ("train.gumbel_tau", []),
]


def unread(key: str) -> str:
    """The pattern of the line refusing ``key`` where train.objective does not read it."""
    return re.escape(f"{key} and train.objective cannot both take effect")


def config(settings: list[str]) -> RunConfig:
    """A RunConfig with ``settings`` (key=value), validated; none of them recorded as given."""
    cfg = RunConfig()
    for item in settings:
        set_value(cfg, *item.split("="))
    return validate(cfg)


@pytest.mark.parametrize(("key", "around"), AT_DEFAULT, ids=[k for k, _ in AT_DEFAULT])
def test_a_setting_given_at_its_default_is_refused_where_unread(key: str, around: list[str]) -> None:
    cfg = config(around)
    refuse_conflicts(cfg)  # at its default, not given: as before
    section, name = key.split(".")
    set_value(cfg, key, getattr(getattr(RunConfig(), section), name), given=True)
    assert cfg.given == {key}
    with pytest.raises(vaekit.VaekitError, match="cannot both take effect") as e:
        refuse_conflicts(cfg)
    assert key in str(e.value) and e.value.key in (key, *(s.split("=")[0] for s in around))  # one given
    assert (f"{key} is given at its default" in str(e.value)) == (e.value.key == key)  # said where it is blamed


@pytest.mark.parametrize(("warmup", "refused"), [(0, False), (2, True)])
def test_a_warmup_of_zero_is_the_off_switch_under_an_importance_weighted_bound(warmup: int, refused: bool) -> None:
    cfg = config(["train.objective=iwae"])
    set_value(cfg, "train.warmup_epochs", warmup, given=True)
    if not refused:  # 0 epochs turns the warm-up off, as with vq: nothing is left unread
        refuse_conflicts(cfg)
        return
    with pytest.raises(vaekit.VaekitError, match=unread("train.warmup_epochs")):
        refuse_conflicts(cfg)


def argv_config(argv: list[str]) -> RunConfig:
    """The config ``vaekit train ARGV`` trains, as train_config builds it."""
    args = build_parser().parse_args(["train", *argv])
    args.argv = argv
    return train_config(args)


def test_flags_sets_and_a_toml_file_give_settings(tmp_path: Path) -> None:
    assert argv_config(["--iw-samples", "5", "--set", "lr=1e-3", "--out", "o"]).given == {
        "train.iw_samples",
        "train.lr",
    }
    mine = tmp_path / "mine.toml"
    mine.write_text('[train]\nmmd_weight = 10.0\n[model]\nnet = "mlp"\n')
    cfg = load_toml_config(mine)
    assert cfg.given == {"train.mmd_weight", "model.net"} and cfg == RunConfig()
    with pytest.raises(vaekit.VaekitError, match=unread("train.mmd_weight")):
        refuse_conflicts(cfg)
    with pytest.raises(vaekit.VaekitError, match=unread("train.mmd_weight")):
        vaekit.train(cfg, epochs=1, out=None)  # the file's keys stay given through train's copy


@pytest.mark.parametrize("name", presets())
def test_every_preset_validates_its_keys_not_given(name: str) -> None:
    cfg = load_toml_config(name)
    assert not cfg.given
    refuse_conflicts(validate(cfg))


def test_a_preset_key_left_unread_by_the_users_choice_is_not_refused() -> None:
    cfg = argv_config(["--config", "demo", "--model", "mlp", "--out", "o"])  # demo's channels: read by conv alone
    assert cfg.given == {"model.net"} and cfg.model.channels == RunConfig().model.channels
    refuse_conflicts(validate(cfg))


def test_the_train_verb_refuses_a_flag_at_its_default(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r1"
    argv = ["train", "--data", "digits", "--limit", "50", "--objective", "elbo", "--iw-samples", "5", "--epochs", "1"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "train.iw_samples and train.objective cannot both take effect" in err and "(--iw-samples)" in err
    assert not out.exists()


def test_keywords_of_train_and_fit_are_given(tmp_path: Path) -> None:
    tiny = config(["data.spec=digits", "data.limit=50", "train.epochs=1"])  # cheap, were the check to miss
    with pytest.raises(vaekit.VaekitError, match=unread("train.factor_gamma")):
        vaekit.train(tiny, out=None, factor_gamma=10.0)
    with pytest.raises(vaekit.VaekitError, match=unread("train.mmd_weight")):
        vaekit.fit(tiny, mmd_weight=10.0, out=tmp_path / "f")
    model = vaekit.build_model(input_shape=[4], likelihood="gaussian", hidden=[8], latent_dim=2)
    with pytest.raises(vaekit.VaekitError, match=unread("train.iw_samples")):
        vaekit.fit(model, torch.rand(16, 4), epochs=1, iw_samples=5, out=None, pictures=False)


def test_a_run_config_json_and_its_resume_hold_no_given_keys(tmp_path: Path) -> None:
    cfg = RunConfig()
    set_value(cfg, "train.iw_samples", 5, given=True)
    assert "given" not in cfg.to_dict()  # config.json records the settings alone, as before
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": FORMAT, **cfg.to_dict()}))
    saved = load_json_config(run / "config.json")
    assert not saved.given
    refuse_conflicts(saved)  # every setting is in the file: none counts as given
    refuse_conflicts(argv_config(["--resume", str(run), "--epochs", "3"]), ("train",))
    resumed = argv_config(["--resume", str(run), "--set", "train.mmd_weight=10"])
    with pytest.raises(vaekit.VaekitError, match=unread("train.mmd_weight")):
        refuse_conflicts(resumed, ("train",))


def test_build_model_holds_its_keywords_as_given_and_a_toml_file_is_named(tmp_path: Path, monkeypatch, capsys) -> None:
    with pytest.raises(vaekit.VaekitError, match=re.escape("model.prior and model.family cannot both take effect")):
        vaekit.build_model(family="ladder", prior="standard", likelihood="bernoulli", input_shape=(1, 8, 8))
    monkeypatch.chdir(tmp_path)
    Path("my.toml").write_text('[data]\nspec = "digits"\n[train]\niw_samples = 5\n')  # at its default
    assert main(["train", "--config", "my.toml", "--out", "r"]) == 2
    assert not Path("r").exists() and "(train.iw_samples in my.toml;" in capsys.readouterr().err
