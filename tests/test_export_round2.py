"""ONNX export, second round: the check is element by element and runs a batch other than the trace's, a pair is
replaced all or none, onnxruntime's errors keep their shapes, and the metadata says what a consumer needs (colour
levels, mode codes, gumbel order, numbered labels) and ships no absolute path."""

from __future__ import annotations

import errno
import json
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.data.modes import Modes
from vaekit.errors import VaekitError
from vaekit.export import meta
from vaekit.export import onnx as export
from vaekit.runs import Run

from .conftest import train_argv

pytestmark = pytest.mark.skipif(
    find_spec("onnxruntime") is None or find_spec("onnx") is None,
    reason="needs onnx and onnxruntime (pip install 'vaekit[onnx]')",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """One-epoch runs: a table of 60 rows (income ~20,000-26,000, a city, labels a and b), and a CVAE and a gumbel
    VAE on 60 9x11 images labelled 0..2 by number."""
    tmp = tmp_path_factory.mktemp("round2")
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=rng.integers(0, 3, 60))
    rows = [f"{20000 + 100 * i},{['lyon', 'paris'][i % 2]},{'ab'[i % 3 == 0]}" for i in range(60)]
    (tmp / "people.csv").write_text("income,city,label\n" + "\n".join(rows) + "\n")
    models = {"table": [], "cvae": ["--model", "cvae"], "gumbel": ["--model", "gumbel"]}
    for name, flags in models.items():
        data = tmp / ("people.csv" if name == "table" else "img.npz")
        argv = train_argv(data, tmp / name, *flags, "--hidden", "16", "--latent-dim", "3", "--batch-size", "16")
        assert main(argv) == 0
    return {name: Run.load(tmp / name) for name in models}


def shipped(run: Run, part: str = "decoder") -> dict:
    return {k: json.loads(v) for k, v in meta.metadata(run, part).items()}


def test_the_check_is_element_by_element_beside_a_large_column(runs, tmp_path, monkeypatch):
    """City's probabilities off by 0.5 fail, though the income column (~20,000) is in the same output."""
    run = runs["table"]
    n = len(run.table.numeric)
    forward = export.DecoderGraph.forward
    shift = torch.zeros(run.config.model.input_shape[0])
    shift[n] = 0.5  # the first category slot
    monkeypatch.setattr(export.DecoderGraph, "forward", lambda self, *a: forward(self, *a) + shift)
    with pytest.raises(VaekitError, match=rf"differs from torch by 0\.5 in mean\[\d+, {n}\]"):
        export.export_onnx(run, tmp_path, part="decoder")


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_folder_where_a_graph_goes_is_refused_before_tracing(runs, tmp_path, monkeypatch, capsys):
    export.export_onnx(runs["gumbel"], tmp_path, part="encoder")
    (tmp_path / "decoder.onnx").mkdir()
    before = contents(tmp_path)
    monkeypatch.setattr(export, "export_part", lambda *a, **k: pytest.fail("traced before the folder was checked"))
    assert main(["export", str(runs["cvae"].path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'decoder.onnx'}: a folder stands where" in err[0]
    assert contents(tmp_path) == before


def test_a_failed_rename_puts_the_earlier_pair_back(runs, tmp_path, monkeypatch):
    export.export_onnx(runs["gumbel"], tmp_path)
    before = contents(tmp_path)
    replace = os.replace

    def failing(src, dst):  # the decoder's rename into place fails, after the encoder's succeeded
        if Path(dst).name == "decoder.onnx":
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(VaekitError, match=r"decoder\.onnx: cannot write \(No space left on device\)"):
        export.export_onnx(runs["cvae"], tmp_path)
    assert contents(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def fitted(encoder: nn.Module, decoder: nn.Module, x: np.ndarray, likelihood: str = "bernoulli") -> Run:
    """A VAE of these nets (latent size 3) fitted for an epoch on ``x``, without a folder."""
    model = vaekit.VAE(encoder, decoder, latent_dim=3, likelihood=likelihood)
    return vaekit.fit(model, x, epochs=1, batch_size=20, progress=False, pictures=False)


class LenView(nn.Module):
    def forward(self, x):
        return x.reshape(len(x), 64)  # len(x) is traced as the constant 2


def test_a_batch_the_trace_fixed_fails_at_any_n_check_and_says_the_shapes(tmp_path):
    x = (np.random.default_rng(0).random((40, 1, 8, 8)) > 0.5).astype(np.float32)
    run = fitted(
        nn.Sequential(LenView(), nn.Linear(64, 16)), nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8))), x
    )
    with pytest.raises(VaekitError, match=r"on 3 inputs: .*Input shape:\{3,1,8,8\}, requested shape:\{2,64\}$"):
        export.export_onnx(run, tmp_path / "out", n_check=2)
    assert not (tmp_path / "out").exists()


def test_onnxruntimes_errors_lose_their_cpp_signatures_and_keep_their_end():
    sig = "onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::Shape&, bool)"
    for node in ("'/encoder/encoder.0/Reshape'", "'/" + "very/deep/" * 30 + "Reshape'"):
        text = (
            "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Reshape node. "
            f"Name:{node} Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 "
            f"{sig} input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped to the "
            "requested shape. Input shape:{3,1,8,8}, requested shape:{2,64}\n[E:onnxruntime:, executor] ..."
        )
        reason = export._reason(RuntimeError(text))
        assert reason.startswith("running Reshape node") and reason.endswith("requested shape:{2,64}")
        assert "onnxruntime::" not in reason and "onnxruntime_src" not in reason and len(reason) <= 300


def test_a_colour_decoders_mean_is_said_per_channel():
    x = (np.random.default_rng(0).integers(0, 256, (40, 3, 4, 5)) / 255).astype(np.float32)
    decoder = nn.Sequential(nn.Linear(3, 25 * 60), nn.Unflatten(1, (25, 3, 4, 5)))  # K (C + 2) = 25 per value
    run = fitted(nn.Sequential(nn.Flatten(), nn.Linear(60, 16)), decoder, x, "discretized_logistic")
    said = shipped(run)
    for text in (said["vaekit_likelihood"]["mean"], said["vaekit_outputs"]["mean"]):
        assert "256 levels per channel" in text and "grey" not in text and "channels before it" in text


def test_the_table_says_how_its_slots_are_coded_and_the_modes_formula_is_vaekits(runs):
    said = shipped(runs["table"])
    assert {s["kind"] for s in said["vaekit_table_layout"]} <= set(said["vaekit_table_how"])
    how = meta.how("modes")
    assert "alpha_scale" in how["number"] and "log w_k - log sigma_k" in how["number"]
    assert how["gap"].startswith("[filled, gap]")
    v = np.concatenate([np.random.default_rng(0).normal(m, s, 100) for m, s in ((0, 1), (30, 5))])
    modes = Modes.fit(v, seed=0)  # the text's formula, written out, gives vaekit's codes
    w, mu, sigma = (np.asarray(a) for a in (modes.weight, modes.mean, modes.std))
    k = (np.log(w) - np.log(sigma) - ((v[:, None] - mu) / sigma) ** 2 / 2).argmax(1)
    code = np.clip((v - mu[k]) / (4 * sigma[k]), -0.99, 0.99) / modes.alpha_scale
    assert np.allclose(code, modes.encode(v)[0]) and (modes.encode(v)[1].argmax(1) == k).all()


def test_a_gumbel_codes_order_is_said_and_is_the_models(runs):
    run = runs["gumbel"]
    said = shipped(run, "encoder")["vaekit_latent"]
    k = said["categories"]
    assert (
        "(variables, categories) flattened" in said["what"]
        and f"each variable's {k} slots are contiguous" in said["what"]
    )
    with torch.no_grad():
        loc = run.model.encode(torch.rand(4, *run.config.model.input_shape)).mean  # (4, N K)
    assert torch.allclose(loc.unflatten(1, (-1, k)).sum(-1), torch.ones(4, said["D"] // k))


def test_labels_without_names_are_said_to_be_numbered(runs):
    assert runs["cvae"].classes is None
    what = shipped(runs["cvae"])["vaekit_inputs"]["y"]["what"]
    assert "as numbered in the data (vaekit_classes: null)" in what and "names them" not in what


def test_a_run_without_a_folder_is_told_of_export_onnxs_own_out(tmp_path):
    x = (np.random.default_rng(0).random((40, 1, 8, 8)) > 0.5).astype(np.float32)
    run = fitted(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 16)), nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8))), x
    )
    with pytest.raises(VaekitError, match=r"export_onnx\(run, out=\.\.\.\)") as e:
        export.export_onnx(run)
    assert "fit it with" not in str(e.value)
    assert set(export.export_onnx(run, out=tmp_path)) == {"encoder", "decoder"}


def test_the_metadata_ships_the_datas_file_name_not_its_path(runs, tmp_path):
    run = runs["table"]
    assert Path(run.config.data.spec).is_absolute()  # the run keeps where its data is
    assert shipped(run)["vaekit_data"]["spec"] == "people.csv"
    export.export_onnx(run, tmp_path)
    folder = str(run.path.parent).encode()
    assert all(folder not in (tmp_path / f"{part}.onnx").read_bytes() for part in ("encoder", "decoder"))
    for spec in ("digits", "fashion-mnist", "photos:32", "dsprites:32:n=500", ""):
        assert meta.shipped_spec(spec) == spec
    assert meta.shipped_spec("/data/photos/") == "photos"
