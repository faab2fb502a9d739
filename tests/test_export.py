"""Shipping a model: ONNX export matches torch (100 random inputs, any batch size); TensorBoard events from training."""

from __future__ import annotations

import copy
import json
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
    models = {
        "vae": ["--model", "conv", "--set", "model.channels=4,8"],
        "cvae": ["--model", "cvae", "--hidden", "16"],
        "cbernoulli": ["--hidden", "16", "--likelihood", "cbernoulli"],  # its mean: no boolean max in the graph
    }
    return trained(tmp_path_factory.mktemp("ship"), models)


@pytest.fixture(scope="module")
def more_runs(runs, tmp_path_factory) -> dict[str, Run]:
    """``runs`` (which test_explore serves) and a CVAE of learned label embeddings, and a table of 60 rows (a
    numeric column with gaps under data.numeric=modes, a categorical one; labels a and b)."""
    models = {
        "cvae-embedded": ["--model", "cvae", "--hidden", "16", "--set", "model.label_embedding=2"],
        "table": ["--hidden", "16", "--set", "data.missing=mean", "--set", "data.numeric=modes"],
    }
    return runs | trained(tmp_path_factory.mktemp("ship"), models)


def trained(tmp, models: dict[str, list[str]]) -> dict[str, Run]:
    """One-epoch runs of ``models`` ({name: flags}): tables on a CSV of 60 rows, the others on 60 9x11 images."""
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=rng.integers(0, 3, 60))
    rows = [f"{'' if i % 7 == 0 else 20 + i % 50},{['lyon', 'paris'][i % 2]},{'ab'[i % 3 == 0]}" for i in range(60)]
    (tmp / "people.csv").write_text("age,city,label\n" + "\n".join(rows) + "\n")
    for name, flags in models.items():
        data = tmp / ("people.csv" if name == "table" else "img.npz")
        assert main(train_argv(data, tmp / name, *flags, "--latent-dim", "3", "--batch-size", "16")) == 0
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


def test_a_continuous_bernoulli_decoder_gives_the_models_own_mean_at_large_logits(runs, tmp_path):
    """Logits of -25..25 (past torch's frozen probs, |l| ~ 15.9): the graph's mean is the model's own, not torch's
    probs-based one (0.0627 where the model says 0.04); the check holds the graph to the model's mean."""
    import onnxruntime as ort

    run = runs["cbernoulli"]
    size = int(np.prod(run.config.model.input_shape))
    last = [m for m in run.model.modules() if isinstance(m, nn.Linear) and m.out_features == size][-1]
    saved = copy.deepcopy(last.state_dict())
    try:
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.linspace(-25, 25, last.out_features))
        path = export.export_onnx(run, tmp_path, part="decoder")["decoder"]["path"]
        z = export.example_inputs(run, "decoder", 3)[0]
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})[0]
        with torch.no_grad():
            want = run.model.decode(z).mean
        assert want.min() < 0.045 and want.max() > 0.955 and np.abs(got - want.numpy()).max() <= 1e-4
    finally:
        last.load_state_dict(saved)


def test_a_colour_8_bit_decoder_exports_its_mixtures_mean_for_any_batch_size(tmp_path):
    """The discretized logistic mixture's colour mean (quadrature over the earlier channels) traces to ONNX, also
    from a decoder whose sizes are traced as constants (its batch size was fixed at 2 before)."""
    import onnxruntime as ort

    x = (np.random.default_rng(0).integers(0, 256, (40, 3, 4, 5)) / 255).astype(np.float32)
    decoder = nn.Sequential(nn.Linear(3, 25 * 60), nn.Unflatten(1, (25, 3, 4, 5)))  # K (C + 2) = 25 per value
    model = vaekit.VAE(nn.Sequential(nn.Flatten(), nn.Linear(60, 16)), decoder, 3, likelihood="discretized_logistic")
    run = vaekit.fit(model, x, epochs=1, batch_size=20, progress=False, pictures=False)
    path = export.export_onnx(run, tmp_path, part="decoder")["decoder"]["path"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 6):
        z = export.example_inputs(run, "decoder", n, seed=n)[0]
        with torch.no_grad():
            want = run.model.decode(z).mean.numpy()
        assert np.abs(sess.run(None, {"z": z.numpy()})[0] - want).max() <= 1e-4


def test_the_check_holds_the_graph_to_the_models_own_outputs(runs, tmp_path, monkeypatch):
    """A graph whose mean strays from p(x|z)'s (as the continuous Bernoulli's did) fails the check."""
    forward = export.DecoderGraph.forward
    monkeypatch.setattr(export.DecoderGraph, "forward", lambda self, *a: forward(self, *a) + 0.01)
    with pytest.raises(VaekitError, match=r"differs from torch by 0\.01"):
        export.export_onnx(runs["vae"], tmp_path, part="decoder")


def test_export_one_part_and_timing(runs, tmp_path):
    result = export.export_onnx(runs["vae"], tmp_path, part="decoder")
    assert list(result) == ["decoder"] and not (tmp_path / "encoder.onnx").exists()
    assert result["decoder"]["bytes"] > 1000 and result["decoder"]["max_abs_diff"] <= 1e-4
    assert 0 < export.ort_decode_ms(runs["vae"], result["decoder"]["path"], batch=4, repeats=3) < 100


def test_a_mismatch_is_an_error(runs, tmp_path):
    path = export.export_part(runs["vae"], "decoder", tmp_path / "decoder.onnx")
    bias = runs["vae"].model.decoder.fc.bias
    kept = bias.detach().clone()  # + 1 - 1 need not give the same floats back: the file's weights, restored exactly
    with torch.no_grad():  # the weights change after export: onnxruntime no longer matches torch
        bias.add_(1.0)
    try:
        with pytest.raises(VaekitError, match="differs from torch"):
            export.check_part(runs["vae"], "decoder", path)
    finally:
        with torch.no_grad():
            bias.copy_(kept)


def test_a_flow_posteriors_encoder_is_refused_in_one_line_before_anything_is_written(runs, tmp_path, capsys):
    run = tmp_path / "iaf"
    flags = ("--hidden", "16", "--latent-dim", "3", "--set", "model.posterior=iaf")
    assert main(train_argv(runs["vae"].path.parent / "img.npz", run, *flags)) == 0
    before = sorted(p.name for p in run.iterdir())
    for part in ("both", "encoder"):
        assert main(["export", str(run), "--part", part]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            len(err) == 1
            and "flow posterior (model.posterior iaf)" in err[0]
            and "export the decoder alone with --part decoder" in err[0]
        )
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


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.mark.parametrize("part", ["both", "decoder"])
@pytest.mark.parametrize("out", ["deploy", "deploy/a/b/c"])
def test_a_failed_export_leaves_the_folder_as_it_was(runs, tmp_path, part, out):
    """A decoder whose batch is frozen at trace time fails its check: the good export already in the folder, or
    no folder at all (every folder the export made), is what is left."""
    (tmp_path / "deploy").mkdir()
    if out == "deploy":
        export.export_onnx(runs["vae"], tmp_path / out)
    before = contents(tmp_path / "deploy")
    nets = {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(64, 16)), "decoder": unflatten()}
    bad = fitted(nets["encoder"], nn.Sequential(nets["decoder"], Unsupported(fixed=True)))
    with pytest.raises(VaekitError, match=r"decoder.onnx: onnxruntime cannot run"):
        export.export_onnx(bad, tmp_path / out, part=part)
    assert contents(tmp_path / "deploy") == before and list((tmp_path / "deploy").glob(".*")) == []


@pytest.mark.parametrize("family", ["cvae", "cvae-embedded"])
def test_labels_outside_the_classes_give_nan_in_the_graphs_and_are_still_refused_by_torch(more_runs, family, tmp_path):
    import onnxruntime as ort

    run = more_runs[family]
    export.export_onnx(run, tmp_path)
    k = run.config.model.num_classes
    y = np.array([-1, 0, k - 1, k, 99], np.int64)
    for part, first in (("encoder", "x"), ("decoder", "z")):
        sess = ort.InferenceSession(str(tmp_path / f"{part}.onnx"), providers=["CPUExecutionProvider"])
        args = export.example_inputs(run, part, 5)
        got = sess.run(None, {first: args[0].numpy(), "y": y})
        with torch.no_grad():
            want = export.graph_of(run, part)(args[0][1:3], torch.from_numpy(y[1:3]))  # the valid labels
        for g, w in zip(got, want if isinstance(want, tuple) else (want,)):
            assert np.isnan(g[[0, 3, 4]]).all() and not np.isnan(g[1:3]).any()
            assert np.abs(g[1:3] - w.numpy()).max() <= 1e-4 * max(1, np.abs(w.numpy()).max())
    with pytest.raises(VaekitError, match=r"labels must lie in 0\.\.2"), torch.no_grad():
        run.model.decode(torch.zeros(1, 3), torch.tensor([-1]))


@pytest.mark.parametrize("family", ["vae", "cvae", "table"])
def test_the_graphs_say_what_they_take_and_give(more_runs, family, tmp_path):
    import onnxruntime as ort

    run = more_runs[family]
    export.export_onnx(run, tmp_path)
    shape, kind = list(run.config.model.input_shape), "table" if family == "table" else "image"
    for part in ("encoder", "decoder"):
        sess = ort.InferenceSession(str(tmp_path / f"{part}.onnx"), providers=["CPUExecutionProvider"])
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        assert meta.pop("vaekit_weights_sha256") == run.digest
        meta = {k: json.loads(v) for k, v in meta.items()}  # every other value is JSON
        assert meta["vaekit_classes"] == (["a", "b"] if family == "table" else None) == run.classes
        assert meta["vaekit_latent"]["D"] == 3
        assert meta["vaekit_latent"]["standard_normal_samples"] == (family != "cvae")  # its p(z|y) is learned
        assert list(meta["vaekit_inputs"]) == [i.name for i in sess.get_inputs()]
        assert list(meta["vaekit_outputs"]) == [o.name for o in sess.get_outputs()]
        if part == "encoder":
            assert meta["vaekit_inputs"]["x"]["shape"] == ["batch", *shape]
        if family == "cvae":
            assert "0..2" in meta["vaekit_inputs"]["y"]["what"]
        assert meta["vaekit_data"]["kind"] == kind and ("vaekit_table" in meta) == (kind == "table")
    if family == "table":
        assert meta["vaekit_table"] == json.loads((run.path / "table.json").read_text())  # fills, modes included
        assert meta["vaekit_table"]["numeric"] == "modes" and meta["vaekit_table"]["columns"][0]["fill"] is not None
        slots = meta["vaekit_table_layout"]
        assert sum(s.get("slots", 1) for s in slots) == shape[0] and slots[0] == {"column": "age", "kind": "number"}
        assert {"column": "age", "kind": "modes", "slots": run.table.categories[0]} in slots


@pytest.mark.parametrize("other, warned", [("vae", False), ("cvae", True)])
def test_one_part_beside_the_other_part_of_other_weights_is_a_warning(runs, tmp_path, capsys, other, warned):
    export.export_onnx(runs[other], tmp_path, part="encoder")
    capsys.readouterr()
    assert main(["export", str(runs["vae"].path), "--part", "decoder", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == int(warned)
    assert all(f"warning: {tmp_path / 'encoder.onnx'} is from other weights" in line for line in err)


@pytest.mark.parametrize("n_check", [0, -5, 2.5, True])
def test_a_bad_n_check_is_one_line_naming_it(runs, tmp_path, n_check):
    with pytest.raises(VaekitError, match=r"^n_check .*: expected a whole number"):
        export.export_onnx(runs["vae"], tmp_path / "out", n_check=n_check)
    assert not (tmp_path / "out").exists()


def test_outputs_of_another_shape_fail_the_check_even_where_they_broadcast(runs, tmp_path, monkeypatch):
    run = runs["vae"]
    path = export.export_part(run, "decoder", tmp_path / "decoder.onnx")

    class Extra:  # torch's own numbers with a leading axis of 1: (1, B, *shape) broadcasts against (B, *shape)
        def run(self, _, feed):
            with torch.no_grad():
                return [export.graph_of(run, "decoder")(torch.from_numpy(feed["z"])).numpy()[None]]

    monkeypatch.setattr(export, "_session", lambda *a, **k: Extra())
    with pytest.raises(
        VaekitError, match=r"gives mean of shape \(1, 100, 1, 9, 11\) where torch gives \(100, 1, 9, 11\)"
    ):
        export.check_part(run, "decoder", path)


def test_the_refusals_run_the_model_on_its_own_device(runs):
    """A model on another device (CUDA after training on a GPU; here 'meta') gets its probe inputs there."""
    run = Run(None, copy.deepcopy(runs["vae"].config), copy.deepcopy(runs["vae"].model).to("meta"))
    export.refuse_drawn_mean(run)
    export.refuse_estimated_scale(run)
    assert [a.device.type for a in export.example_inputs(run, "encoder", 1, device=export.model_device(run.model))] == [
        "meta"
    ]
