"""Shipping a model: ONNX export matches torch (100 random inputs, any batch size); TensorBoard events from training."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.export import onnx as export
from vaekit.runs import Run

from .conftest import train_argv

pytestmark = pytest.mark.skipif(
    find_spec("onnxruntime") is None or find_spec("onnx") is None,
    reason="needs onnx and onnxruntime (pip install 'vaekit[onnx]')",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Tiny runs of the flat (conv), the conditional (MLP) and a continuous Bernoulli VAE on 60 labelled 9x11
    images, 3-D latents."""
    tmp = tmp_path_factory.mktemp("ship")
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=rng.integers(0, 3, 60))
    models = {
        "vae": ["--model", "conv", "--set", "model.channels=4,8"],
        "cvae": ["--model", "cvae", "--hidden", "16"],
        "cbernoulli": ["--hidden", "16", "--likelihood", "cbernoulli"],  # its mean: no boolean max in the graph
    }
    for name, flags in models.items():
        assert main(train_argv(tmp / "img.npz", tmp / name, *flags, "--latent-dim", "3", "--batch-size", "16")) == 0
    return {name: Run.load(tmp / name) for name in models}


@pytest.mark.parametrize("family", ["vae", "cvae", "cbernoulli"])
def test_export_matches_torch_for_any_batch_size(runs, family, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    run = runs[family]
    assert main(["export", str(run.path), "--format", "onnx", "--out", str(tmp_path)]) == 0
    assert "max |onnxruntime - torch|" in capsys.readouterr().out
    for part in ("encoder", "decoder"):
        path = tmp_path / f"{part}.onnx"
        onnx.checker.check_model(onnx.load(str(path)))
        assert export.check_part(run, part, path, n=100) <= 1e-4
        graph = (export.EncoderGraph if part == "encoder" else export.DecoderGraph)(run.model)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        assert all(o.shape[0] == "batch" and all(isinstance(d, int) for d in o.shape[1:]) for o in sess.get_outputs())
        assert names == (["x" if part == "encoder" else "z"] + (["y"] if family == "cvae" else []))
        for n in (1, 7):  # the batch axis is dynamic
            args = export.example_inputs(run, part, n, seed=n)
            with torch.no_grad():
                want = graph(*args)
            want = want if isinstance(want, tuple) else (want,)
            got = sess.run(None, {k: a.numpy() for k, a in zip(names, args)})
            assert [g.shape for g in got] == [tuple(w.shape) for w in want]
            assert max(np.abs(g - w.numpy()).max() for g, w in zip(got, want)) <= 1e-4


def test_export_one_part_and_timing(runs, tmp_path):
    result = export.export_onnx(runs["vae"], tmp_path, part="decoder")
    assert list(result) == ["decoder"] and not (tmp_path / "encoder.onnx").exists()
    assert result["decoder"]["bytes"] > 1000 and result["decoder"]["max_abs_diff"] <= 1e-4
    assert 0 < export.ort_decode_ms(runs["vae"], result["decoder"]["path"], batch=4, repeats=3) < 100


def test_a_mismatch_is_an_error(runs, tmp_path):
    path = export.export_part(runs["vae"], "decoder", tmp_path / "decoder.onnx")
    with torch.no_grad():  # the weights change after export: onnxruntime no longer matches torch
        runs["vae"].model.decoder.fc.bias.add_(1.0)
    try:
        with pytest.raises(VaekitError, match="differs from torch"):
            export.check_part(runs["vae"], "decoder", path)
    finally:
        with torch.no_grad():
            runs["vae"].model.decoder.fc.bias.sub_(1.0)


def test_a_flow_posteriors_encoder_is_refused_in_one_line_before_anything_is_written(runs, tmp_path, capsys):
    run = tmp_path / "iaf"
    flags = ("--hidden", "16", "--latent-dim", "3", "--set", "model.posterior=iaf")
    assert main(train_argv(runs["vae"].path.parent / "img.npz", run, *flags)) == 0
    before = sorted(p.name for p in run.iterdir())
    for part in ("both", "encoder"):
        assert main(["export", str(run), "--part", part]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "flow posterior (model.posterior iaf)" in err[0] and "--part decoder" in err[0]
    assert sorted(p.name for p in run.iterdir()) == before
    assert main(["export", str(run), "--part", "decoder"]) == 0 and (run / "decoder.onnx").exists()


class Transformer(nn.Module):
    """(B, 1, 8, 8) -> (B, 16): the rows of an image as a sequence of 8 tokens through an nn.TransformerEncoder."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.layers = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1)

    def forward(self, x):
        return self.layers(self.embed(x[:, 0])).mean(1)


class Unsupported(nn.Module):
    """An operator ONNX lacks (aten::i0) or a size fixed at the trace's batch (of 2): a graph onnxruntime refuses
    at another batch size."""

    def __init__(self, fixed: bool):
        super().__init__()
        self.fixed = fixed

    def forward(self, x):
        return x + torch.zeros(int(x.shape[0]), *x.shape[1:]) if self.fixed else torch.special.i0(x)


def fitted(encoder: nn.Module, decoder: nn.Module) -> Run:
    """A VAE of these nets fitted for an epoch on 40 8x8 images under a continuous Bernoulli p(x|z)."""
    x = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
    model = vaekit.VAE(encoder, decoder, latent_dim=3, likelihood="cbernoulli")
    return vaekit.fit(model, x, epochs=1, batch_size=20, progress=False, pictures=False)


def unflatten() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8)))  # its sizes traced as constants


def test_a_transformer_encoder_exports_and_nothing_is_printed(tmp_path, capfd):
    run = fitted(Transformer(), unflatten())
    result = export.export_onnx(run, tmp_path)
    assert [r["max_abs_diff"] <= 1e-4 for r in result.values()] == [True, True]
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "part, fixed, match",
    [
        ("encoder", False, r"^the encoder cannot be exported to ONNX: Exporting the operator 'aten::i0' to ONNX"),
        ("decoder", True, r"decoder.onnx: onnxruntime cannot run the exported decoder on 100 inputs: .*Add node"),
    ],
)
def test_a_part_onnx_cannot_take_is_one_line_and_leaves_nothing(tmp_path, capfd, part, fixed, match):
    nets = {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(64, 16)), "decoder": unflatten()}
    nets[part] = nn.Sequential(nets[part], Unsupported(fixed))
    run = fitted(nets["encoder"], nets["decoder"])
    with pytest.raises(VaekitError, match=match) as e:
        export.export_onnx(run, tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["export", "{tmp}/norun"], "norun"),
        (["export", "{run}", "--part", "middle"], "--part"),
        (["export", "{run}", "--format", "tflite"], "--format"),
    ],
)
def test_bad_export_input_exits_2(runs, argv, needle, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, run=runs["vae"].path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


@pytest.mark.skipif(find_spec("tensorboard") is None, reason="needs tensorboard (pip install 'vaekit[tensorboard]')")
def test_training_writes_tensorboard_events(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for run in runs.values():
        assert len(list(run.path.glob("events.out.tfevents.*"))) == 1  # beside metrics.csv
        events = EventAccumulator(str(run.path))
        events.Reload()
        tags = events.Tags()
        want = {"step/loss", "step/rec", "step/kl", "step/beta", "epoch/val_loss", "epoch/train_kl"}
        assert want <= set(tags["scalars"])
        assert set(tags["images"]) == {"samples", "reconstructions"}
        assert [e.step for e in events.Scalars("epoch/val_loss")] == [1]


def test_tensorboard_logger_is_a_no_op_without_tensorboard(tmp_path, monkeypatch):
    from vaekit.config import RunConfig
    from vaekit.data import Dataset, Split
    from vaekit.training import FitInfo
    from vaekit.viz import tensorboard

    monkeypatch.setattr(tensorboard, "_writer_class", lambda: None)
    tb = tensorboard.TensorBoard()
    x = Split(torch.zeros(2, 1, 3, 3), None)
    info = FitInfo(tmp_path, RunConfig(), Dataset("x", x, x, x, (1, 3, 3), "image", None), resumed=False)
    tb.on_fit_start(None, info)
    tb.on_step_end(0, {}, None)
    tb.on_epoch_end(1, {"epoch": 1}, None)
    tb.on_fit_end(None, info)
    assert not tb.active and list(tmp_path.iterdir()) == []
