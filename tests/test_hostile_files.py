"""Run folders whose files were edited or replaced to hang vaekit, fill the memory or garble the terminal: a FIFO or a
link to /dev/zero where a file belongs, flows sized to fill the memory, arguments torch refuses with an assert,
control characters in class names. Each is one line, before anything large is allocated."""

from __future__ import annotations

import json
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.config import RunConfig, validate
from vaekit.config.parse import load_json_config, load_toml
from vaekit.data.images import note
from vaekit.data.run_json import read_classes, read_schema
from vaekit.io import printable, read_json, read_plain
from vaekit.models import build_model
from vaekit.training.checkpoint import unreadable
from vaekit.training.sizes import built, meta_size
from vaekit.viz.curves import read_metrics

from .conftest import tiny_config, train_argv


@contextmanager
def deadline(seconds: int = 5):
    """Fail, rather than hang, a read that waits on a FIFO (an interrupted read raises in Python's loop)."""

    def stop(*_: object) -> None:
        pytest.fail("waited on a FIFO")  # no OSError (TimeoutError is one), which a reader may pass over

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A one-epoch run of 4 x 4 items with a hidden layer of 8."""
    tmp = tmp_path_factory.mktemp("small")
    np.save(tmp / "x.npy", np.random.default_rng(0).random((40, 4, 4), dtype=np.float32))
    assert main(train_argv(tmp / "x.npy", tmp / "run", "--set", "model.hidden=[8]")) == 0
    return tmp / "run"


@pytest.fixture
def run(small_run, tmp_path) -> Path:
    return Path(shutil.copytree(small_run, tmp_path / "run"))


def test_flows_are_sized_without_their_meta_build():
    cfg = RunConfig().model
    cfg.input_shape, cfg.hidden, cfg.latent_dim, cfg.likelihood = [1, 4, 4], [8], 3, "bernoulli"
    cfg.posterior, cfg.prior, cfg.flow_transforms, cfg.flow_hidden = "nsf", "flow", 2, [6, 5]
    real = sum(v.numel() * v.element_size() for v in build_model(cfg).state_dict().values())
    found = meta_size(lambda: build_model(cfg))
    assert found is not None and real - 64 <= found <= real  # the flow prior's base loc and scale left out
    cfg.posterior = "iaf"
    real = sum(v.numel() * v.element_size() for v in build_model(cfg).state_dict().values())
    assert real - 64 <= meta_size(lambda: build_model(cfg)) <= real


def test_a_flow_sized_beyond_its_weights_is_refused_before_it_is_built(run, capsys, monkeypatch):
    init = nn.Linear.reset_parameters

    def checked(self: nn.Linear) -> None:
        if self.weight.numel() > 10**5 and not self.weight.is_meta:
            pytest.fail(f"{self} was allocated")
        init(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", checked)  # zuko's MaskedLinear is one
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"].update(posterior="iaf", flow_hidden=[12000, 12000])  # 4 GB of flow steps
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["sample", str(run), "--out", str(run / "s.png")]) == 2
    assert "its config.json builds a model of 4,3" in capsys.readouterr().err


@pytest.mark.parametrize(("key", "value"), [("flow_transforms", 10**6), ("flow_hidden", [128, 10**6])])
def test_flow_sizes_far_beyond_use_are_refused(key, value):
    cfg = RunConfig()
    setattr(cfg.model, key, value)
    with pytest.raises(vaekit.VaekitError, match=rf"model.{key} must .* (1,000|65,536)"):
        validate(cfg)


@pytest.mark.parametrize("name", ["config.json", "model.json", "metrics.csv"])
def test_a_fifo_in_a_run_folder_is_one_line_not_a_wait(run, name):
    (run / name).unlink(missing_ok=True)
    os.mkfifo(run / name)
    with deadline():
        if name == "config.json":
            with pytest.raises(vaekit.VaekitError, match=r"config.json: not a plain file"):
                load_json_config(run / name)
        elif name == "model.json":
            with pytest.raises(vaekit.VaekitError, match=r"model.json: not a plain file \(a FIFO\)"):
                read_json(run / name)
        else:  # repr(run) reads metrics.csv: the best loss is then unknown; the curves' reader says why
            assert "best_val_loss=?" in repr(vaekit.load_run(run))
            with pytest.raises(vaekit.VaekitError, match=r"metrics.csv: not a plain file \(a FIFO\)"):
                read_metrics(run / name)


def test_fifo_weights_are_never_opened(run):
    weights = run / "model.safetensors"
    weights.unlink()
    os.mkfifo(weights)
    keep = os.open(weights, os.O_RDWR)  # a writer: safetensors' open would not wait, the file is still no file
    try:
        assert "not a plain file" in unreadable(weights)
        with pytest.raises(vaekit.VaekitError, match=r"model.safetensors: not a plain file"):
            vaekit.load_run(run)
    finally:
        os.close(keep)


def test_devices_and_oversized_files_are_refused_before_a_byte_is_read(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    with pytest.raises(vaekit.VaekitError, match=r"zero.json: not a plain file \(a device\)"):
        read_plain(tmp_path / "zero.json")
    (tmp_path / "big.json").write_bytes(b" " * 101)
    with pytest.raises(vaekit.VaekitError, match=r"big.json: 101 bytes or more; vaekit reads at most 100"):
        read_plain(tmp_path / "big.json", limit=100)
    assert read_plain(tmp_path / "big.json", limit=101) == b" " * 101


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory) -> Path:
    """A run of a VAE with nn.Sequential networks on (1, 4, 4) items: its model.json names them."""
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    nets = nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4)))
    out = tmp_path_factory.mktemp("custom") / "run"
    vaekit.fit(vaekit.VAE(*nets, latent_dim=2), x, epochs=1, out=out, progress=False, pictures=False)
    return out


def module(name: str, args: object) -> dict:
    return {"module": {"class": f"torch.nn:{name}", "args": args}}


CUDA = {"in_features": 16, "out_features": 8, "device": "cuda:0"}


@pytest.mark.parametrize(
    ("encoder", "why"),
    [
        (module("Embedding", {"num_embeddings": 3, "embedding_dim": 2, "padding_idx": 99}), "Padding_idx must be"),
        (module("MultiheadAttention", [5, 2]), "embed_dim must be divisible by num_heads"),
        ({"dict": {"a": 1}}, "the encoder must be a torch.nn.Module, got dict"),  # a dict where a network belongs
        *([(module("Linear", CUDA), "Torch not compiled with CUDA")] if not torch.cuda.is_available() else []),
    ],
)
def test_networks_torch_refuses_are_one_line_naming_the_files(custom_run, tmp_path, encoder, why):
    run = shutil.copytree(custom_run, tmp_path / "run")
    saved = json.loads((run / "model.json").read_text())
    saved["spec"]["args"]["encoder"] = encoder
    (run / "model.json").write_text(json.dumps(saved))
    with pytest.raises(vaekit.VaekitError, match=rf"its config.json and model.json do not build a model(: | \(){why}"):
        vaekit.load_run(run)


def test_a_models_own_refusal_names_the_run(tmp_path):
    with pytest.raises(vaekit.VaekitError, match=rf"^{tmp_path}: its config.json does not build a model: latent_dim"):
        built(tmp_path, "", lambda: vaekit.VAE(nn.Identity(), nn.Identity(), latent_dim={}))  # type: ignore[arg-type]


def test_deep_toml_and_huge_decimals_are_one_line(tmp_path):
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(vaekit.VaekitError, match=r"deep.toml: not valid TOML \(nested too deeply\)"):
        load_toml(tmp_path / "deep.toml")
    (tmp_path / "table.json").write_text(
        json.dumps({"columns": [{"name": "a", "kind": "numeric", "decimals": 10**18}]})
    )
    with pytest.raises(vaekit.VaekitError, match=r"column 0: decimals 1000000000000000000"):
        read_schema(tmp_path / "table.json")


def test_printable_escapes_what_a_terminal_would_act_on(capsys):
    assert printable("\x1b]0;title\x07\x1b[31mred\r\u202eok é 猫") == "\\x1b]0;title\\x07\\x1b[31mred\\r\\u202eok é 猫"
    note("folder \x1b[2Jname\r")  # the data layer's notes name folders and columns read from files
    assert capsys.readouterr().err == "vaekit: folder \\x1b[2Jname\\r\n"


@pytest.fixture(scope="module")
def conditional(tmp_path_factory) -> Path:
    """A tiny conditional run of three classes."""
    tmp = tmp_path_factory.mktemp("cvae")
    rng = np.random.default_rng(0)
    np.savez(tmp / "xy.npz", x=(rng.random((30, 4, 4)) > 0.5).astype(np.float32), y=np.arange(30) % 3)
    cfg = tiny_config(str(tmp / "xy.npz"), tmp / "run")
    cfg.model.family, cfg.train.epochs = "cvae", 1
    vaekit.train(cfg, pictures=False)
    return tmp / "run"


@pytest.mark.parametrize(
    ("names", "why"),
    [(["a", "b"], "lists 2 class names, and the run's model has 3"), (["a", "b", "a"], "names the class 'a' twice")],
)
def test_class_names_must_name_each_class_once(conditional, tmp_path, names, why):
    run = shutil.copytree(conditional, tmp_path / "run")
    (run / "classes.json").write_text(json.dumps({"classes": names}))
    with pytest.raises(vaekit.VaekitError, match=why):
        vaekit.load_run(run).classes  # noqa: B018 - the property reads the file
    assert read_classes(run / "classes.json") == names  # an unconditional run's: the data's, as they are


def test_class_names_are_printed_escaped(conditional, tmp_path, capsys):
    run = shutil.copytree(conditional, tmp_path / "run")
    (run / "classes.json").write_text(json.dumps({"classes": ["\x1b[2Jred", "\rfake", "c"]}))
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[2Jred, \\rfake, c" in out and "\x1b" not in out and "\r" not in out
    assert main(["sample", str(tmp_path / "no\x1b[31mrun"), "--out", str(tmp_path / "s.png")]) == 2
    assert "no\\x1b[31mrun" in capsys.readouterr().err


@pytest.mark.parametrize(
    "layer",
    [
        module("LSTM", {"input_size": 1, "hidden_size": 1, "num_layers": 40_000}),
        module("LSTM", [1, 1, 40_000]),  # by position
        module(
            "TransformerEncoder", {"encoder_layer": module("TransformerEncoderLayer", [1, 1, 1]), "num_layers": 20_000}
        ),
    ],
)
def test_layers_a_module_repeats_count_toward_the_module_limit(custom_run, tmp_path, layer):
    run = shutil.copytree(custom_run, tmp_path / "run")
    saved = json.loads((run / "model.json").read_text())
    saved["spec"]["args"]["encoder"] = module("Sequential", [module("Flatten", {}), layer])
    (run / "model.json").write_text(json.dumps(saved))
    with deadline(30), pytest.raises(vaekit.VaekitError, match=r"names [0-9,]+ modules; a model.json may name"):
        vaekit.load_run(run)
