"""The command line at its edges: files of the user's in --out, a stdout that refuses writes, flags shortened or
empty, TOML values of the wrong type, typos, sizes the memory cannot hold."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import vaekit
from vaekit.cli import FLAGS, Terminated, build_parser, flag_for, main, train_config
from vaekit.cli.verbs import VERBS
from vaekit.config import RunConfig, TrainConfig, load_toml_config, set_value
from vaekit.errors import VaekitError
from vaekit.io import atomic_write
from vaekit.training.launcher import TORCHRUN, torchrun_command

from .conftest import train_argv

TINY = ("--hidden", "8", "--latent-dim", "2", "--batch-size", "16")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture
def trained(tiny_images, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, *train_argv(tiny_images, run, *TINY))[0] == 0
    return run


@pytest.mark.parametrize("flags", [[], ["--overwrite"]], ids=["new", "overwrite"])
def test_a_users_file_with_a_vaekit_name_is_never_written_over(tiny_images, tmp_path, capsys, flags):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "metrics.csv").write_text("a,b\n")
    code, cap = run_cli(capsys, *train_argv(tiny_images, folder, *TINY, *flags))
    assert code == 2 and "metrics.csv" in cap.err and len(cap.err.splitlines()) == 1
    assert (folder / "metrics.csv").read_text() == "a,b\n" and not (folder / "config.json").exists()


def test_overwrite_removes_only_the_files_vaekit_wrote(trained, tiny_images, capsys):
    (trained / "report.html").write_text("my report")
    (trained / "eval.json").write_text('{"mine": 1}')
    (trained / "quality.json").write_text(json.dumps({"vaekit_weights_sha256": "ab"}))  # stamped: vaekit's
    assert run_cli(capsys, "sample", str(trained), "--n", "4", "--out", str(trained / "mine-drawn.png"))[0] == 0
    Image.new("L", (4, 4)).save(trained / "mine.png")  # the user's own picture: no weights recorded
    other = PngInfo()
    other.add_text("vaekit_weights_sha256", "ab" * 32)  # another run's picture, put here
    Image.new("L", (4, 4)).save(trained / "of-another-run.png", pnginfo=other)
    assert run_cli(capsys, *train_argv(tiny_images, trained, *TINY, "--overwrite"))[0] == 0
    assert (trained / "report.html").read_text() == "my report" and (trained / "eval.json").exists()
    assert not (trained / "quality.json").exists() and not (trained / "mine-drawn.png").exists()
    assert (trained / "mine.png").exists() and (trained / "of-another-run.png").exists()


@pytest.mark.parametrize("empty", [["--out", ""], ["--set", "out="]], ids=["flag", "set"])
def test_an_empty_out_is_refused(tiny_images, capsys, empty):
    code, cap = run_cli(capsys, "train", "--data", tiny_images, "--epochs", "1", "--quiet", *empty)
    assert code == 2 and "--out" in cap.err and cap.out == ""


class Full(io.StringIO):
    """A stdout on a full disk (> /dev/full)."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_training_outlives_a_stdout_that_refuses_writes(tiny_images, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr("sys.stdout", Full())
    code = main(["train", "--data", str(tiny_images), *TINY, "--epochs", "2", "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("progress lines cannot be written") == 1
    assert err.splitlines()[-1] == "vaekit: error: cannot write the output (No space left on device)"
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # both epochs trained


def test_a_verb_whose_output_cannot_be_written_says_so(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout", Full())
    assert main(["models"]) == 1
    assert capsys.readouterr().err == "vaekit: error: cannot write the output (No space left on device)\n"


def test_sigterm_while_a_verb_writes_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    """SIGTERM outside training stops a verb as Ctrl-C does: its file's temporary copy is removed, exit 143."""

    def killed(tmp):  # the verb's file half-written when the signal comes
        tmp.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGTERM)

    def verb(args):
        atomic_write(tmp_path / "out.csv", killed)

    verb.__module__ = VERBS["models"].run.__module__  # the help groups verbs by their module
    monkeypatch.setattr(VERBS["models"], "run", verb)
    ignored = lambda signum, frame: None  # noqa: E731  (pytest's own SIGTERM, were the verb's not installed)
    old = signal.signal(signal.SIGTERM, ignored)
    try:
        assert main(["models"]) == 143 and capsys.readouterr().err == "vaekit: stopped by SIGTERM\n"
        assert list(tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGTERM) is ignored
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize(
    "stop, code, line", [(KeyboardInterrupt, 130, "interrupted"), (Terminated, 143, "stopped by SIGTERM")]
)
def test_an_interrupt_wrapped_in_a_runtime_error_is_the_one_line(capsys, monkeypatch, stop, code, line):
    """A Ctrl-C in a dataclass's __set_name__ (a lazy import) arrives as a RuntimeError from the interrupt."""

    def verb(args):
        raise RuntimeError("Error calling __set_name__") from stop()

    verb.__module__ = VERBS["models"].run.__module__
    monkeypatch.setattr(VERBS["models"], "run", verb)
    assert main(["models"]) == code and capsys.readouterr().err == f"vaekit: {line}\n"


@pytest.mark.parametrize("own", [None, "INFO"], ids=["default", "users"])
def test_torchrun_logs_no_warnings_of_its_own(monkeypatch, own):
    """A stopped --nproc run says its one line without torchelastic's "Received 2 death signal" and the like."""
    if own is not None:
        monkeypatch.setenv("LOGLEVEL", own)
    cmd, env = torchrun_command(["train", "--nproc", "2", "--out", "r"], 2)
    assert cmd[-4:] == ["vaekit", "train", "--out", "r"] and env["TORCH_CPP_LOG_LEVEL"] == "ERROR"
    names = ["agent.server.api", "multiprocessing.api"]  # where the warnings come from
    check = f"print([logging.getLogger('torch.distributed.elastic.' + n).getEffectiveLevel() for n in {names}])"
    done = subprocess.run([cmd[0], "-c", TORCHRUN.split("try:")[0] + check], env=env, capture_output=True, text=True)
    level = logging.getLevelName(own or "CRITICAL")
    assert done.stdout.strip() == str([level, level])


def test_binarizing_real_values_names_binarize_not_the_likelihood(tmp_path, capsys):
    data = tmp_path / "real.npy"
    np.save(data, np.random.default_rng(0).normal(3, 2, (40, 5)).astype(np.float32))
    flags = ("--binarize", "dynamic", "--likelihood", "gaussian", *TINY)
    code, cap = run_cli(capsys, *train_argv(data, tmp_path / "run", *flags))
    assert code == 2 and "data.binarize dynamic" in cap.err and "--binarize" in cap.err
    assert "gaussian likelihood" not in cap.err


def test_a_model_too_large_for_the_memory_is_one_line(tiny_images, tmp_path, capsys):
    code, cap = run_cli(capsys, *train_argv(tiny_images, tmp_path / "run", "--latent-dim", str(10**12)))
    assert (
        code == 2 and cap.err.startswith("vaekit: error: cannot allocate the model") and "model.latent_dim" in cap.err
    )
    assert len(cap.err.splitlines()) == 1


@pytest.mark.parametrize("short", [["--lim", "30"], ["--ou", "elsewhere"], ["--over"]])
def test_shortened_flags_are_refused(tiny_images, tmp_path, capsys, short, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a --ou taken for --out would write there
    code, cap = run_cli(capsys, "train", "--data", tiny_images, "--out", tmp_path / "run", *short)
    assert code == 2 and "unrecognized arguments" in cap.err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "toml, key",
    [
        ('[train]\nepochs = "1"', "train.epochs"),
        ('[model]\nhidden = "64,32"', "model.hidden"),
        ("[model]\nhidden = 64", "model.hidden"),
    ],
)
def test_toml_values_keep_their_types(tmp_path, toml, key):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(VaekitError, match=rf"^{path}: {key} must be"):
        load_toml_config(path)


@pytest.mark.parametrize(
    "flags, said",
    [
        ([], "has its 1 epoch (train.epochs 1); pass --epochs"),
        (["--patience", "1", "--lr", "1e-30"], "to train.epochs 14"),
    ],
    ids=["finished", "stopped-early"],
)
def test_resuming_a_run_with_nothing_to_train_says_why(tiny_images, tmp_path, capsys, flags, said):
    """The epochs named are those asked (--epochs 14), not those of the run's config.json (6)."""
    run, more = tmp_path / "run", ["--set", "train.epochs=6"] if flags else []
    assert run_cli(capsys, *train_argv(tiny_images, run, *TINY, *flags, *more))[0] == 0
    code, cap = run_cli(capsys, "train", "--resume", run, "--quiet", *(["--epochs", "14"] if flags else []))
    assert code == 0 and cap.out.startswith("nothing to train") and said in cap.out


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"vaekit {vaekit.__version__}"


@pytest.mark.parametrize(
    "key, meant",
    [("lrr", "train.lr"), ("latent-dim", "model.latent_dim"), ("trian.lr", "train.lr"), ("train.lrr", "train.lr")],
)
def test_a_mistyped_key_gets_a_hint(key, meant):
    with pytest.raises(VaekitError, match=rf"did you mean {meant}\?"):
        set_value(RunConfig(), key, "1")


@pytest.mark.parametrize("toml, meant", [("[trian]\nlr = 1\n", "train"), ("epochs = 1\n", r"\[train\] epochs")])
def test_a_mistyped_toml_section_gets_a_hint(tmp_path, toml, meant):
    (tmp_path / "c.toml").write_text(toml)
    with pytest.raises(VaekitError, match=rf"did you mean {meant}\?"):
        load_toml_config(tmp_path / "c.toml")


@pytest.mark.parametrize(
    "argv, said",
    [(["train", "--epoch", "1"], "--epoch 1 (did you mean --epochs?)"), (["trian"], "'trian' (did you mean train?)")]
    + [(["evaluate", "r", "--split", "tset"], "'tset' (did you mean test?)"), ([], "are required: command")]
    + [(["train", "--split", "x"], "unrecognized arguments: --split x")],  # no --limit: their dashes alone match
)
def test_a_mistyped_flag_or_verb_gets_a_hint(capsys, argv, said):
    code, cap = run_cli(capsys, *argv)  # vaekit alone: its help, then the line
    assert (code, cap.out) == (2, "") and cap.err.endswith(f"{said}\n") and ("usage: vaekit" in cap.err) == (not argv)
    assert len(cap.err.splitlines()) == 1 or not argv


@pytest.mark.parametrize("sets", [["lr=0.1", "train.lr=0.2"], ["train.lr=0.1", "train.lr=0.2"]], ids=["names", "same"])
def test_a_setting_set_twice_is_refused(tmp_path, capsys, sets):
    code, cap = run_cli(capsys, "train", "--out", tmp_path / "run", *[a for s in sets for a in ("--set", s)])
    assert code == 2 and "give it once" in cap.err and "(--lr)" not in cap.err and not (tmp_path / "run").exists()
    args = build_parser().parse_args(["train", "--out", "run", "--lr", "0.1", "--set", "train.lr=0.2"])
    assert train_config(args).train.lr == 0.2  # a flag that --set overrides: as documented


@pytest.mark.parametrize(
    "given, named",
    [(["--lr", "1"], "--lr"), (["--set", "lr=1"], "--set train.lr=..."), ([], "--lr")]
    + [(["--config", "c.toml"], "train.lr in c.toml; --lr changes it")],  # not --lr: c.toml set it
)
def test_a_setting_at_fault_is_named_where_it_was_given(tmp_path, monkeypatch, given, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text("[train]\nlr = 0.5\n")
    args = build_parser().parse_args(argv := ["train", "--out", "run", *given])
    args.argv = argv
    assert flag_for(build_parser(), args, "train.lr") == named


def test_schedules_longer_than_the_run_are_noted():  # the warm-up's note: test_cli's run at home
    cfg = RunConfig(train=TrainConfig(epochs=2, capacity_max=9, capacity_epochs=4, dimwise_warmup_epochs=4))
    notes = vaekit.config.checks.short_runs(cfg)
    assert [n.split()[0] for n in notes] == ["train.capacity_epochs", "train.dimwise_warmup_epochs"]


@pytest.mark.parametrize("model", ["custom", "convv"])
def test_a_model_the_command_line_cannot_build_is_named_with_the_choices(tiny_images, tmp_path, capsys, model):
    code, cap = run_cli(capsys, *train_argv(tiny_images, tmp_path / "run", "--model", model))
    known = "mlp, conv, vae, cvae, deep, gumbel, ladder, vq"
    assert (code, cap.err) == (2, f"vaekit: error: --model {model!r}: expected a network or a model family: {known}\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "models, family, net",
    [(["ladder", "conv"], "ladder", "conv"), (["conv", "vq"], "vq", "conv"), (["ladder"], "ladder", "mlp")]
    + [(["conv"], "vae", "conv"), ([], "vae", "mlp")],
)
def test_model_takes_a_family_and_a_network_together(models, family, net):
    argv = ["train", *[a for m in models for a in ("--model", m)], "--out", "run"]
    cfg = train_config(build_parser().parse_args(argv))
    assert (cfg.model.family, cfg.model.net) == (family, net)


@pytest.mark.parametrize(
    "models, kind", [(["ladder", "conv", "vq"], "model family"), (["conv", "mlp"], "network")], ids=["family", "net"]
)
def test_two_families_or_two_networks_in_one_line_are_refused(tiny_images, tmp_path, capsys, models, kind):
    argv = train_argv(tiny_images, tmp_path / "run", *[a for m in models for a in ("--model", m)])
    code, cap = run_cli(capsys, *argv)
    first, last = [m for m in models if (m in ("mlp", "conv")) == (kind == "network")]
    assert (code, cap.out) == (2, "") and not (tmp_path / "run").exists()
    assert (
        cap.err == f"vaekit: error: --model {first} and --model {last} cannot both take effect: each names the {kind}\n"
    )


def test_every_train_flag_says_what_it_sets():
    actions = [a for a in build_parser().verb_parsers["train"]._actions if a.option_strings]
    assert [a.option_strings[0] for a in actions if not a.help] == []
    helps = {a.dest: a.help for a in actions}
    assert all(f"({key})" in helps[flag] for flag, key in FLAGS.items())
    assert "line per epoch" in helps["quiet"]


@pytest.mark.parametrize("shape, outputs", [("1,28,28", 15), ("3,32,32", 25), ("13", None)])
def test_models_says_which_likelihood_it_counts_and_what_8_bit_data_gets(capsys, shape, outputs):
    assert main(["models", "--shape", shape]) == 0
    out = capsys.readouterr().out
    assert f"parameters for {shape.replace(',', 'x')}, Bernoulli p(x\\|z) |" in out.splitlines()[0]
    assert "Counted with a Bernoulli p(x|z)" in out
    assert outputs is None or f"has {outputs} per value" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| likelihood | model.likelihood | discretized_")]
    assert "8-bit data" in row
