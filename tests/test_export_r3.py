"""ONNX export, third round, from a consumer without vaekit: a Gaussian decoder gives its scale (draws spread as
vaekit's, scores are its log p(x|z)), the metadata says how this run's file was scaled, what a gumbel decoder
takes and its prior, a colour decoder's memory, how dates, units and booleans are coded, that an unconditional
run's classes are no input and what the weights digest is; a gumbel encoder takes an empty batch."""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.cli import main
from vaekit.export import meta
from vaekit.export.graphs import mean_memory
from vaekit.runs import Run

from .conftest import tiny_config, train_argv

pytestmark = pytest.mark.skipif(
    find_spec("onnxruntime") is None or find_spec("onnx") is None,
    reason="needs onnx and onnxruntime (pip install 'vaekit[onnx]')",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One-epoch runs, each exported into its folder: a table of 150 rows (dates, true/false, prices in $ with
    thousands commas, a score ~ N(50, 20); labels yes/no it does not condition on), a gumbel VAE and a Gaussian
    VAE of decoded scale on 60 9x11 images."""
    tmp = tmp_path_factory.mktemp("r3")
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32))
    day = datetime.date(2021, 1, 3)
    rows = [
        f'{day + datetime.timedelta(int(d))},{["false", "TRUE"][i % 2]},"${p:,}",{s:.1f},{"yes" if i % 3 else "no"}'
        for i, (d, p, s) in enumerate(
            zip(rng.integers(0, 700, 150), rng.integers(100, 3000, 150), rng.normal(50, 20, 150))
        )
    ]
    (tmp / "people.csv").write_text("when,active,price,score,label\n" + "\n".join(rows) + "\n")
    models = {
        "table": [],
        "gumbel": ["--model", "gumbel"],
        "decoded": ["--likelihood", "gaussian", "--set", "model.scale=decoded"],
    }
    for name, flags in models.items():
        data = tmp / ("people.csv" if name == "table" else "img.npz")
        assert (
            main(train_argv(data, tmp / name, *flags, "--hidden", "16", "--latent-dim", "2", "--batch-size", "32")) == 0
        )
        assert main(["export", str(tmp / name)]) == 0
    return {name: tmp / name for name in models}


def sessions(folder: Path):
    import onnxruntime as ort

    return [
        ort.InferenceSession(str(folder / f"{p}.onnx"), providers=["CPUExecutionProvider"])
        for p in ("encoder", "decoder")
    ]


def said(session) -> dict:
    return {
        k: v if k == "vaekit_weights_sha256" else json.loads(v)
        for k, v in session.get_modelmeta().custom_metadata_map.items()
    }


def consumers_log_px(mean: np.ndarray, scale: np.ndarray, x: np.ndarray, layout: list[dict] | None) -> np.ndarray:
    """log p(x|z) (B,) as vaekit_likelihood's score says, from the graph's outputs alone."""
    n = x[0].size if layout is None else sum(s["kind"] == "number" for s in layout)  # a table's numbers come first
    x, mean, scale = (a.reshape(len(a), -1) for a in (x, mean, scale))
    gauss = -np.log(scale[:, :n]) - np.log(2 * np.pi) / 2 - ((x[:, :n] - mean[:, :n]) / scale[:, :n]) ** 2 / 2
    hot = np.log(np.where(x[:, n:] == 1, mean[:, n:], 1.0))  # the probability at each one-hot code's 1
    return gauss.sum(1) + hot.sum(1)


@pytest.mark.parametrize("name", ["table", "decoded"])
def test_a_gaussian_decoder_gives_the_scale_that_scores_vaekits_log_px(runs, name):
    run = Run.load(runs[name])
    _, decoder = sessions(runs[name])
    z = torch.randn(8, 2)
    mean, scale = decoder.run(["mean", "scale"], {"z": z.numpy()})
    with torch.no_grad():
        px = run.model.decode(z)
        x = px.sample()
        want = px.log_prob(x).numpy()
    layout = said(decoder).get("vaekit_table_layout")
    assert np.allclose(consumers_log_px(mean, scale, x.numpy(), layout), want, rtol=1e-4, atol=1e-3)
    assert said(decoder)["vaekit_likelihood"]["exact"] is True
    if name == "decoded":  # a scale per item and value, the model's own
        assert np.allclose(scale, px.stddev.numpy(), atol=1e-5) and scale.std(0).max() > 0


def test_draws_from_a_tables_graph_spread_as_sample_tables(runs):
    run = Run.load(runs["table"])
    _, decoder = sessions(runs["table"])
    rng = np.random.default_rng(0)
    mean, scale = decoder.run(["mean", "scale"], {"z": rng.standard_normal((2000, 2)).astype(np.float32)})
    at = [s["column"] for s in said(decoder)["vaekit_table_layout"]].index("score")
    drawn = mean[:, at] + scale[:, at] * rng.standard_normal(2000)
    vaekits = np.asarray(run.sample_table(2000)["score"], float).std()
    assert 0.75 < drawn.std() / vaekits < 1.33 and mean[:, at].std() / vaekits < 0.5  # the means alone: narrow


def test_a_tables_cells_coded_as_the_metadata_says_are_vaekits_items(runs):
    """Dates as days since 1970-01-01 minus origin, '$2,289' as 2289, true/false as the categories False/True."""
    run = Run.load(runs["table"])
    encoder, _ = sessions(runs["table"])
    shipped = said(encoder)
    how, columns = shipped["vaekit_table_how"], {c["name"]: c for c in shipped["vaekit_table"]["columns"]}
    assert (
        "1970-01-01" in how["number"] and "'$2,289' -> 2289" in how["number"] and "'true' -> 'True'" in how["category"]
    )
    with open(runs["table"].parent / "people.csv") as f:
        cells = np.array([row[:4] for row in list(csv.reader(f))[1:]])
    days = cells[:, 0].astype("datetime64[D]").astype(float) - columns["when"]["origin"]
    price = np.char.replace(np.char.replace(cells[:, 2], "$", ""), ",", "").astype(float)
    active = np.char.capitalize(np.char.lower(cells[:, 1]))
    hot = np.array([[a == c for c in columns["active"]["categories"]] for a in active], float)
    mine = np.column_stack([days, price, cells[:, 3].astype(float), hot])
    assert np.array_equal(mine.astype(np.float32), run.table.encode(cells, list(range(len(cells))), "rows")[0])
    assert shipped["vaekit_classes"] == ["no", "yes"] and shipped["vaekit_labels"]["input"] is False
    assert "not an input" in shipped["vaekit_labels"]["what"] and "y" not in shipped["vaekit_inputs"]


def test_the_weights_digest_is_said_and_the_files_own_is_shipped(runs):
    encoder, _ = sessions(runs["table"])
    shipped, weights = said(encoder), runs["table"] / "model.safetensors"
    assert shipped["vaekit_weights"]["file_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "not of a file" in shipped["vaekit_weights"]["vaekit_weights_sha256"]
    from safetensors.torch import load_file

    tensors, digest = load_file(weights), hashlib.sha256()  # the recipe the text gives
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(
            f"{name}|{t.dtype}|{tuple(t.shape)}|".encode() + t.reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    assert digest.hexdigest() == shipped["vaekit_weights_sha256"]


def test_a_gumbel_graph_decodes_as_vaekit_does_and_takes_an_empty_batch(runs):
    run = Run.load(runs["gumbel"])
    encoder, decoder = sessions(runs["gumbel"])
    x = np.random.default_rng(1).random((5, 1, 9, 11)).astype(np.float32)
    loc, _ = encoder.run(None, {"x": x})
    assert np.abs(decoder.run(None, {"z": loc})[0] - run.reconstruct(x).numpy()).max() < 1e-4  # probabilities
    latent = said(decoder)["vaekit_latent"]
    assert "expects one-hot" not in latent["what"] and "decode loc" in latent["what"]
    k = latent["categories"]
    assert latent["prior"] == "uniform categorical" and torch.allclose(run.model.prior().probs, torch.tensor(1 / k))
    assert "the graph alone samples the model" in latent["samples"]
    assert [a.shape for a in encoder.run(None, {"x": x[:0]})] == [(0, latent["D"])] * 2


def test_the_scaling_of_this_runs_file_and_a_photo_folders_settings_are_said(tmp_path):
    levels = np.random.default_rng(0).integers(0, 256, (10, 8, 8))
    np.save(tmp_path / "u8.npy", levels.astype(np.uint8))
    np.save(tmp_path / "f32raw.npy", levels.astype(np.float32))
    (tmp_path / "pics").mkdir()
    Image.fromarray(levels[0].astype(np.uint8)).convert("RGB").save(tmp_path / "pics" / "a.png")

    def scaling(spec: Path, shape=(1, 8, 8), **data) -> dict:
        cfg = tiny_config(str(spec), tmp_path / "run")
        cfg.model.input_shape = list(shape)
        for key, value in data.items():
            setattr(cfg.data, key, value)
        return meta.scaling(cfg)

    u8, raw = scaling(tmp_path / "u8.npy"), scaling(tmp_path / "f32raw.npy")
    assert (u8["dtype"], u8["divided_by"], raw["dtype"], raw["divided_by"]) == ("uint8", 255, "float32", None)
    assert u8["what"] == "u8.npy uint8: divided by 255" and raw["what"] == "f32raw.npy float32: taken as given"
    photos = scaling(tmp_path / "pics", (3, 4, 4), image_size=[4], mode="RGB")
    assert photos["images"] == {
        "image_size": [4, 4],
        "crop": "center",
        "mode": "RGB",
        "resampling": "Pillow LANCZOS, reducing_gap=3.0",
    }
    assert "Image.Resampling.LANCZOS" in photos["what"] and "reducing_gap=3.0" in photos["what"]
    rgb = meta.x_what("image", "photos:32", 3)
    assert "grey" not in rgb and "RGB values channel by channel" in rgb


def test_a_colour_decoders_memory_per_item_is_said():
    """onnxruntime took 11.6 MiB more per 3 x 32 x 32 image (K = 5) decoding batches of 256 against 1."""
    said = mean_memory((3, 32, 32), 5)
    assert said is not None and abs(said["bytes_per_item"] / 2**20 - 11.6) < 0.6 and said["batch_within_1_gib"] == 87
    assert mean_memory((1, 28, 28), 5) is None  # a grey mean is a closed form
