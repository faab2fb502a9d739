"""Image files and PIL images as they come: 16-bit grey, palettes with transparency or of greys only, and image
settings checked where they are made; a .npy of 1-D signals (N, C, L) read as the run's model takes them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import vaekit
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.data.images import _list
from vaekit.data.lazy import LazyArray
from vaekit.data.photos import FolderSource, ImageOptions, scan
from vaekit.data.prepare import prepare_data
from vaekit.data.user import TorchSource
from vaekit.errors import VaekitError

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (3, 8, 8), dtype=np.uint8)  # three 8x8 grey images
COLOUR = RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)


def chw(im: Image.Image) -> np.ndarray:
    """A PIL image as a folder's item: (C, H, W) float32 in [0, 1]."""
    a = np.asarray(im)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).astype(np.float32) / np.float32(255.0)


def folder_of(tmp_path, images: list[Image.Image], suffix: str = ".png", **save) -> FolderSource:
    root = tmp_path / "images"
    root.mkdir(parents=True)
    for i, im in enumerate(images):
        im.save(root / f"{i}{suffix}", **save)
    return FolderSource(root)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16_bit_pil_items_are_divided_by_65535_as_in_a_folder(tmp_path, mode):
    deep = (RNG.integers(0, 65536, (3, 8, 8))).astype(np.uint16)
    folder = folder_of(tmp_path, [Image.fromarray(a) for a in deep])  # 16-bit grey PNGs
    items = [{"image": Image.fromarray(a.astype(np.uint16 if mode == "I;16" else np.int32))} for a in deep]
    x = TorchSource(items, "data", expected=(1, 8, 8)).read(np.arange(3))
    assert np.array_equal(x, folder.read(np.arange(3))) and np.allclose(x[:, 0], deep / 65535.0)


@pytest.mark.parametrize("pixels, mode", [(GREY, "L"), (COLOUR, "RGB")])
def test_palette_images_with_transparency_bytes_lose_their_alpha_without_a_warning(tmp_path, pixels, mode):
    images = [Image.fromarray(a).convert("P") for a in pixels]
    folder = folder_of(tmp_path, images, transparency=bytes([0, 128] + [255] * 20))
    assert Image.open(folder.files[0]).info["transparency"][:2] == b"\x00\x80"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = folder.read(np.arange(3))  # (3, C, 8, 8)
    assert folder.mode == mode and np.array_equal(x, [chw(im.convert(mode)) for im in images])


def test_grey_palette_images_give_one_channel_from_their_headers_alone(tmp_path, monkeypatch):
    grey = folder_of(tmp_path, [Image.fromarray(a).convert("P") for a in GREY], ".gif")
    assert grey.mode == "L" and np.array_equal(grey.read(np.arange(3)), [chw(Image.fromarray(a)) for a in GREY])
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the scan decoded pixels"))
    assert scan(_list(Path(grey.where))[0], skip=False)[2] == ["L"] * 3
    monkeypatch.undo()
    colour = folder_of(tmp_path / "c", [Image.fromarray(a).convert("P") for a in COLOUR], ".gif")
    assert colour.mode == "RGB" and colour.shape == (3, 8, 8)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"size": (0, 5)}, r"data.image_size must be \(H, W\), two whole numbers > 0, got \(0, 5\)"),
        ({"size": (4,)}, r"data.image_size must be \(H, W\), two whole numbers > 0, got \(4,\)"),
        ({"size": (4.5, 4)}, r"data.image_size must be .* got \(4.5, 4\)"),
        ({"crop": "middle"}, r"data.crop must be one of center, none, got 'middle'"),
        ({"mode": "RGBA"}, r"data.mode must be one of auto, L, RGB, got 'RGBA'"),
    ],
)
def test_image_options_are_checked_in_one_line_when_made(tmp_path, settings, message):
    Image.fromarray(GREY[0]).save(tmp_path / "x.png")
    with pytest.raises(VaekitError, match=f"^{message}$"):
        load_dataset(str(tmp_path), images=ImageOptions(**settings))
    assert ImageOptions(size=[4, np.int64(6)]).size == (4, 6)  # a list would never equal an image's shape


@pytest.fixture(scope="module")
def signals(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """(a run fitted on 1-D signals (40, 1, 16), as the README's Python example, its folder; their .npy; them)."""
    tmp = tmp_path_factory.mktemp("signals")
    x = np.random.default_rng(1).random((40, 1, 16)).astype(np.float32)
    np.save(tmp / "sig.npy", x)
    model = vaekit.build_model(input_shape=(1, 16), hidden=[8], latent_dim=3, likelihood="gaussian")
    vaekit.fit(model, x, epochs=1, out=tmp / "run", standardize="false", progress=False, pictures=False)
    return tmp / "run", tmp / "sig.npy", x


@pytest.mark.parametrize(
    "verb",
    [
        ["evaluate", "--iw-samples", "2"],
        ["anomaly", "--score", "neg_elbo", "--out", "{tmp}/a.csv", "--samples", "2"],
        ["anomaly", "--split", "all", "--score", "neg_elbo", "--out", "{tmp}/a.csv", "--samples", "2"],
        ["encode", "--out", "{tmp}/z.npz"],
        ["interpolate", "--out", "{tmp}/i.png"],
        ["traverse", "--out", "{tmp}/t.png"],
        ["report", "--out", "{tmp}/r.html", "--iw-samples", "2"],
    ],
)
def test_the_cli_verbs_read_a_npy_of_signals_as_the_run_s_model_takes_them(signals, verb, tmp_path, capsys):
    flags = [a.format(tmp=tmp_path) for a in verb[1:]]
    assert main([verb[0], str(signals[0]), "--data", str(signals[1]), *flags]) == 0, capsys.readouterr().err


def test_signals_are_read_as_the_file_holds_them_streamed_or_whole(signals):
    cfg = vaekit.load_run(signals[0]).config
    read = {}
    for in_memory in ("true", "false"):
        cfg.data.in_memory = in_memory
        read[in_memory] = prepare_data(cfg, str(signals[1]), stream=True)[0]
        assert read[in_memory].shape == (1, 16) and read[in_memory].kind == "table"  # as fit took the array
    lazy = read["false"].test.x
    assert isinstance(lazy, LazyArray) and torch.equal(lazy[:], torch.from_numpy(signals[2][lazy.index]))
    assert torch.equal(read["true"].test.x, lazy[:])


def test_write_report_takes_the_arrays_evaluate_takes(signals, tmp_path):
    run, x = vaekit.load_run(signals[0]), signals[2]
    saved = [p.read_bytes() for p in run.folder.glob("eval.json")]
    page = vaekit.write_report(run, x, k=2, out=tmp_path / "r.html").read_text()
    elbo = vaekit.evaluate(run, x, k=2)["elbo"]
    assert page.count('<img src="data:image/png;base64,') == 7 and f"<td>elbo</td><td>{elbo:.4g}</td>" in page
    assert [p.read_bytes() for p in run.folder.glob("eval.json")] == saved  # items in memory: no eval.json
    with pytest.raises(VaekitError, match=r"^split 'val' names one of the run's own splits; items given are"):
        vaekit.write_report(run, torch.from_numpy(x), split="val", out=tmp_path / "v.html")


def test_a_run_s_relative_data_path_is_sought_beside_the_run_folder_and_named_where_missing(tmp_path, monkeypatch):
    from vaekit.config import RunConfig, load_json_config

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "run").mkdir(parents=True)
    elsewhere.mkdir()
    for spec in ("digits", "t.csv"):  # a run that stored its data as given (vaekit before absolute paths)
        cfg = RunConfig(out="run")
        cfg.data.spec = spec
        (project / "run" / "config.json").write_text(json.dumps(cfg.to_dict()))
        monkeypatch.chdir(elsewhere)  # no t.csv here, nor beside the run: named where it was sought
        assert load_json_config(project / "run" / "config.json").data.spec == (
            str(project / "t.csv") if spec == "t.csv" else "digits"  # a built-in name is no path
        )
    (project / "t.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    assert load_json_config(project / "run" / "config.json").data.spec == str(project / "t.csv")
    monkeypatch.chdir(project)  # found from here: as it was stored
    assert load_json_config(Path("run/config.json")).data.spec == "t.csv"
