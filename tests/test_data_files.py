"""Image files and PIL images as they come: 16-bit, 32-bit and float grey, palettes with transparency or of greys
only, rotated TIFFs, symbolic links, huge scans, and image settings checked where they are made; a .npy of 1-D
signals (N, C, L) read as the run's model takes them."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import vaekit
from vaekit.cli import main
from vaekit.config import RunConfig
from vaekit.data import load_dataset
from vaekit.data.images import _list
from vaekit.data.lazy import LazyArray
from vaekit.data.photos import FolderSource, ImageOptions, scan
from vaekit.data.prepare import auto_settings, prepare_data
from vaekit.data.signals import as_model_items
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


def grey16(values) -> Image.Image:
    """A 16-bit grey image (mode I;16) of ``values`` (H, W)."""
    return Image.fromarray(np.asarray(values, dtype=np.uint16))


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


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_a_signal_model_takes_uint8_files_of_n_c_l_and_n_1_c_l_alike_and_images_in_their_range(tmp_path, in_memory):
    """The scale its reading recorded is undone: uint8 files (N, C, L) and (N, 1, C, L) give the same items 0..255,
    a float file of k / 255 stays as it is; built-in sets and photo folders (images) keep their [0, 1]."""
    s8 = GREY.transpose(0, 2, 1)[:, :2]  # (3, 2, 8) uint8: 2 channels of 8
    k, unit = s8.astype(np.float32), s8 / np.float32(255)
    for name, saved in {"ncl": s8, "n1cl": s8[:, None], "float": unit}.items():
        np.save(tmp_path / f"{name}.npy", saved)
    folder_of(tmp_path, [Image.fromarray(a) for a in s8])  # grey photos 8 wide, 2 high: items (1, 2, 8)
    cfg = RunConfig()
    cfg.model.input_shape, cfg.model.likelihood, cfg.data.in_memory = [2, 8], "gaussian", in_memory
    cfg.data.binarize, cfg.data.standardize = "none", "false"
    for spec, want in [("ncl.npy", k), ("n1cl.npy", k), ("float.npy", unit), ("images", unit)]:
        t = prepare_data(cfg, str(tmp_path / spec), stream=True)[0].test  # LazyArray items where streamed
        rows = t.x.index if isinstance(t.x, LazyArray) else t.rows
        s = as_model_items(load_dataset(str(tmp_path / spec)), (2, 8)).test  # a loaded Dataset (evaluate, report)
        assert torch.equal(t.x[:], torch.from_numpy(want[rows])) and torch.equal(s.x, torch.from_numpy(want[s.rows]))
    digits = load_dataset("digits")  # values 0..16 divided by 16: left in [0, 1]
    assert torch.equal(as_model_items(digits, (8, 8)).test.x, digits.test.x[:, 0])


@pytest.mark.parametrize("dtype, levels", [(np.float32, 255), (np.float32, 1), (np.uint8, 255)])
def test_evaluate_takes_a_loaded_dataset_of_signals_as_the_run_s_model_takes_them(tmp_path, dtype, levels):
    """load_dataset reads (N, C, L) as grey images (N, 1, C, L), a uint8 file's divided by 255; evaluate takes its
    items (N, C, L) as fit took the array, as the file holds them (a float file of values k / 255 too)."""
    x = (np.random.default_rng(0).integers(0, 256, (40, 2, 8)) / (256 - levels)).astype(dtype)
    np.save(tmp_path / "s.npy", x)
    model = vaekit.build_model(input_shape=(2, 8), hidden=[8], latent_dim=2, likelihood="gaussian")
    run = vaekit.fit(model, x, epochs=1, standardize="false", progress=False, pictures=False)
    data = load_dataset(str(tmp_path / "s.npy"))
    items = (data.test.x[:, 0] * (255 if dtype == np.uint8 else 1)).numpy()  # k / 255 * 255 is k in float32
    assert np.isin(items, x).all() and data.shape == (1, 2, 8)
    elbo = vaekit.evaluate(run, data, k=2)["elbo"]
    assert elbo == vaekit.evaluate(run, items, k=2)["elbo"]
    page = vaekit.write_report(run, data, k=2, out=tmp_path / "r.html").read_text()  # the report reads it so too
    assert float(page.split("<td>elbo</td><td>")[1].split("<")[0]) == pytest.approx(elbo, rel=1e-3)


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


UPRIGHT = np.zeros((40, 20, 3), np.uint8)  # a portrait image as shown, 20 wide and 40 high, with a red band on top
UPRIGHT[:10, :, 0] = 255


@pytest.mark.parametrize("suffix", [".tif", ".png", ".webp", ".jpg"])
def test_images_stored_sideways_are_measured_as_their_pixels_are_decoded(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left: shown turned back right
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(UPRIGHT).save(root / "a.png")
    Image.fromarray(np.ascontiguousarray(np.rot90(UPRIGHT, 1))).save(root / f"b{suffix}", exif=exif)
    for folder in (FolderSource(root), FolderSource(root, ImageOptions(size=(40, 20), crop="none"))):
        x = folder.read(np.arange(2))  # (2, 3, 40, 20): no "image size 40x20 differs from 20x40"
        assert folder.shape == (3, 40, 20) and x.shape == (2, 3, 40, 20)
        assert (x[:, 0, :10].mean((1, 2)) > 0.9).all() and (x[:, 0, 10:].mean((1, 2)) < 0.1).all()


@pytest.mark.parametrize(
    "mode, values, scale",
    [
        ("F", np.linspace(0, 1, 64, dtype=np.float32), 1.0),
        ("I", np.linspace(0, 65535, 64).astype(np.int32), 65535.0),
        (None, np.linspace(0, 65535, 64).astype(np.uint16), 65535.0),  # I;16
    ],
)
def test_float_and_32_bit_grey_images_in_their_range_are_one_grey_channel_at_16_bits(tmp_path, mode, values, scale):
    images = [Image.fromarray(np.roll(values, k).reshape(8, 8), mode) for k in range(3)]
    folder = folder_of(tmp_path, images, ".tif")
    assert (folder.mode, folder.deep, folder.shape) == ("L", True, (1, 8, 8))
    want = [np.roll(values, k).reshape(1, 8, 8) / scale for k in range(3)]
    assert np.allclose(folder.read(np.arange(3)), want, atol=0.5 / 65535)


def spoilt(value, first, dtype=np.float32) -> np.ndarray:
    """(8, 8) of ``value`` but the first pixel, ``first``."""
    a = np.full((8, 8), value, dtype)
    a[0, 0] = first
    return a


@pytest.mark.parametrize(
    "a, mode, message",
    [
        (spoilt(2.0, -0.5), "F", r"mode F values in \[-0.5, 2\] lie outside \[0, 1\]"),
        (spoilt(0.5, np.nan), "F", r"mode F values in \[0.5, 0.5\] and NaN lie outside \[0, 1\]"),
        (spoilt(70000, 0, np.int32), "I", r"mode I values in \[0, 70000\] lie outside 0..65535"),
    ],
)
def test_float_and_32_bit_images_out_of_range_are_refused_or_skipped_in_one_line(tmp_path, a, mode, message):
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(a, mode).save(root / "bad.tif")
    for i in range(3):
        Image.fromarray(np.full((8, 8), i / 2, np.float32), "F").save(root / f"good{i}.tif")
    with pytest.raises(VaekitError, match=f"^{root / 'bad.tif'}: cannot read image \\({message}"):
        FolderSource(root).read(np.arange(4))
    data = load_dataset(str(root), images=ImageOptions(skip_unreadable=True))  # in memory: every file decoded
    assert sum(len(s.x) for s in (data.train, data.val, data.test)) == 3
    assert [s["file"] for s in data.skipped] == [str(root / "bad.tif")]


def test_a_grey_folder_mixing_8_and_16_bits_is_read_at_8_bits_and_never_binarised(tmp_path, capsys):
    deep = [0, 128 * 257, 32767, 32768, 65534, 65535]  # to 8 bits: 0, 128, 127 (127.498), 128, 255, 255
    images = [Image.fromarray(a) for a in GREY] * 2 + [grey16(np.resize(deep, (8, 8)))]
    folder = folder_of(tmp_path, images)
    assert (folder.mode, folder.deep) == ("L", False)
    assert np.array_equal(folder.read_raw(np.array([6]))[0, 0, 0, :6], [0, 128, 127, 128, 255, 255])
    assert "1 of its 7 images are 16-bit, 32-bit or float grey, the others 8-bit: all are read at 8 bits" in (
        capsys.readouterr().err
    )
    for seed in range(4):  # wherever the 16-bit image lands
        data = load_dataset(folder.where, seed=seed, val_fraction=0.3, test_fraction=0.3)
        assert auto_settings(data, "auto", "auto", "auto")[:2] == ("discretized_logistic", "none")
    folder_of(tmp_path / "deep", [grey16(a.astype(np.uint16) * 200) for a in GREY])
    data = load_dataset(str(tmp_path / "deep" / "images"))
    assert auto_settings(data, "auto", "auto", "auto")[:2] == ("cbernoulli", "none")


def test_16_bit_grey_in_a_colour_folder_is_rounded_to_8_bits(tmp_path):
    folder = folder_of(tmp_path, [Image.fromarray(COLOUR[0]), grey16(np.resize([65534, 32767, 32768, 257], (8, 8)))])
    assert folder.mode == "RGB" and np.array_equal(
        folder.read_raw(np.array([1]))[0, :, 0, :4], [[255, 127, 128, 1]] * 3
    )


def test_symbolic_links_to_folders_are_followed_at_any_depth_once_and_broken_ones_noted(tmp_path, capsys):
    root, away = tmp_path / "root", tmp_path / "away"
    for d in (root / "cats", root / "dogs", root / "empty", away / "more", away / "birds"):
        d.mkdir(parents=True)
    for i, path in enumerate(["cats/c.png", "dogs/d.png"]):
        Image.fromarray(GREY[i]).save(root / path)
    Image.fromarray(GREY[2]).save(away / "more" / "m.png")
    Image.fromarray(GREY[2]).save(away / "birds" / "b.png")
    (root / "empty" / "notes.txt").write_text("no images")  # left out: the classes are numbered without it
    os.symlink(away / "birds", root / "birds")  # a linked class folder
    os.symlink(away / "more", root / "dogs" / "more")  # a linked folder inside a class
    os.symlink(away / "more", away / "more" / "again")  # a loop
    os.symlink(tmp_path / "nothing.png", root / "cats" / "gone.png")
    os.symlink(tmp_path / "nothing", root / "dogs" / "gone")
    files, labels, classes = _list(root)
    assert classes == ["birds", "cats", "dogs"] and labels == [0, 1, 2, 2]
    assert [f.relative_to(root).as_posix() for f in files] == [
        "birds/b.png",
        "cats/c.png",
        "dogs/d.png",
        "dogs/more/m.png",
    ]
    assert capsys.readouterr().err.splitlines() == [
        f"vaekit: {root}: 2 broken symbolic links left out, first {root}/cats/gone.png",
        f"vaekit: {root}: 1 file left out (not image suffixes: .txt), first {root}/empty/notes.txt",
        f"vaekit: {root}: class folder empty holds no image files: left out, the classes numbered without it",
    ]


def test_a_huge_scan_is_said_in_one_line_of_vaekit_not_pillow_s_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 8x8 (64) is below, 12x12 (144) above, below twice it
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(GREY[0]).save(root / "a.png")
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(root / "scan.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = FolderSource(root, ImageOptions(size=(8, 8)))
        assert folder.read(np.arange(2)).shape == (2, 1, 8, 8)
    limit = "above Pillow's decompression-bomb warning limit of 100; read all the same"
    assert capsys.readouterr().err == f"vaekit: {root / 'scan.png'}: 12x12 pixels, {limit}\n"


# Data a run folder from elsewhere may point at: data.data_dir, caches' .json, bombs, pipes, table.json, curves


def idx_bytes(shape: tuple[int, ...]) -> bytes:
    """A uint8 IDX file of ``shape``, all zeros."""
    head = bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    return head + bytes(int(np.prod(shape)))


@pytest.mark.parametrize("own", [False, True])
def test_a_built_in_set_read_from_data_dir_is_said_unless_that_is_vaekit_s_own_folder(tmp_path, monkeypatch, own):
    folder = tmp_path / "black"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (folder / name).write_bytes(idx_bytes((4, 28, 28)))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(idx_bytes((4,)))
    monkeypatch.setenv("VAEKIT_FASHION_MNIST_DIR", str(folder if own else tmp_path / "none"))
    notes = []
    monkeypatch.setattr("vaekit.data.builtin.note", notes.append)
    raw = vaekit.data.read_raw("fashion-mnist", data_dir=str(folder))[0]
    assert raw.x.shape == (4, 1, 28, 28) and raw.x.max() == 0  # the folder's all-black images, as named
    assert notes == (
        [] if own else [f"fashion-mnist: read from {folder} (data.data_dir), not from vaekit's own folders"]
    )


@pytest.mark.parametrize("where", ["tree", "one", "made"])
def test_no_folder_tree_is_made_for_a_data_dir_of_caches(tmp_path, monkeypatch, capsys, where):
    """A data_dir (data.data_dir) that exists, or whose parent does (one folder made), holds the cache; for one
    deeper, which a received run's config.json may name, no folder is made: the cache goes home, said once."""
    from vaekit.data.image_cache import open_folder

    root = tmp_path / "images"
    root.mkdir()
    for i, im in enumerate(GREY):
        Image.fromarray(im).save(root / f"{i}.png")
    data_dir = tmp_path / "received" / "deep" if where == "tree" else tmp_path / "c"
    if where == "made":
        data_dir.mkdir()
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "home"))
    opts = ImageOptions(size=(8, 8), cache=True, cache_dir=str(data_dir), workers=0)
    assert len(open_folder(root, opts)) == len(open_folder(root, opts)) == 3
    holder = tmp_path / "home" if where == "tree" else data_dir
    assert len(list(holder.glob("images-*.npy"))) == 1 and (tmp_path / "received").exists() is False
    said = f"{data_dir} (data.data_dir): neither a folder nor in one here; caching in {tmp_path / 'home'} instead"
    assert capsys.readouterr().err.count(said) == (where == "tree")


CACHE_DAMAGE = {  # what a damaged or foreign cache .json may hold: read as no cache, built again
    "skipped-int": lambda m: m | {"skipped": 5},
    "skipped-text": lambda m: m | {"skipped": [{"file": 1, "error": "x"}]},
    "no-mode": lambda m: {k: v for k, v in m.items() if k != "mode"},
    "mode-other": lambda m: m | {"mode": "CMYK"},
    "deep-text": lambda m: m | {"deep": "yes"},
    "top-list": lambda m: [m],
    "labels-99": lambda m: m | {"labels": [99] * len(m["labels"])},
    "labels-bool": lambda m: m | {"labels": [True] * len(m["labels"])},
    "classes-text": lambda m: m | {"classes": "abc"},
    "nested": lambda m: "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("damage", CACHE_DAMAGE)
def test_a_cache_json_of_wrong_types_is_built_again(tmp_path, monkeypatch, damage):
    from vaekit.data.image_cache import open_folder

    root = tmp_path / "images"
    for i, (cls, im) in enumerate(zip("aab", GREY)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(root / cls / f"{i}.png")
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    opts = ImageOptions(size=(8, 8), cache=True, workers=0)
    first = open_folder(root, opts)
    (meta,) = (tmp_path / "cache").glob("images-*.json")
    good = json.loads(meta.read_text())
    bad = CACHE_DAMAGE[damage](good)
    meta.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    again = open_folder(root, opts)
    assert json.loads(meta.read_text()) == good  # rebuilt as it was
    assert again.labels.tolist() == first.labels.tolist() == [0, 0, 1] and again.classes == ["a", "b"]


def test_a_gzipped_table_is_unpacked_as_read_and_refused_past_a_quarter_of_free_memory(tmp_path, monkeypatch):
    from vaekit.data import csv_text

    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 500_000))  # 2 MB unpacked, a few kB packed
    monkeypatch.setattr(csv_text, "GZIP_CHUNK", 1 << 16)
    monkeypatch.setattr(csv_text, "usable_memory", lambda: 4 << 20)  # a quarter: 1 MB
    with pytest.raises(VaekitError, match=r"bomb.csv.gz: unpacks to more than 0.00 GB, a quarter of the memory"):
        load_dataset(str(path))
    monkeypatch.setattr(csv_text, "usable_memory", lambda: 16 << 20)  # a quarter: 4 MB, room for it
    assert len(csv_text._gunzip(path)) == 4 + 4 * 500_000


def test_an_idx_file_declaring_more_than_free_memory_or_running_out_is_one_line(tmp_path, monkeypatch):
    from vaekit.data import idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes((50, 28, 28))))  # 39,200 bytes declared and held
    monkeypatch.setattr(idx, "usable_memory", lambda: 30_000)
    with pytest.raises(VaekitError, match=r"declare 39,200 bytes, more than the 30,000 free in memory"):
        load_dataset(str(path))
    monkeypatch.setattr(idx, "usable_memory", lambda: 1 << 30)

    def out_of_memory(f, n):
        raise MemoryError

    monkeypatch.setattr(idx, "_read_exact", out_of_memory)
    with pytest.raises(VaekitError, match=r"train-images-idx3-ubyte.gz: too big to read in the memory free here"):
        load_dataset(str(path))
    monkeypatch.undo()

    def no_room(*args, **kwargs):
        raise MemoryError("Unable to allocate 8.76 GiB")  # numpy's, as the items become float32

    monkeypatch.setattr(vaekit.data, "build_dataset", no_room)
    with pytest.raises(VaekitError, match=r"too big to load whole in the memory free here \(Unable to allocate 8"):
        load_dataset(str(path))


def test_a_pipe_named_as_the_data_is_refused_not_read(tmp_path):
    import threading

    path = tmp_path / "data.csv"
    os.mkfifo(path)

    done = threading.Event()

    def unblock() -> None:  # a reader the fault would leave blocked gets end-of-file
        while not done.wait(0.01):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:  # no reader: nobody is blocked
                pass

    writer = threading.Thread(target=unblock, daemon=True)
    writer.start()
    with pytest.raises(VaekitError, match=r"data.csv: neither a regular file nor a folder \(a pipe"):
        load_dataset(str(path))
    done.set()
    writer.join()


SCHEMA_DAMAGE = {  # table.json field -> a value of the wrong type, and the words that name it
    "min-text": (lambda d: d["columns"][0].update(min="a"), "column 0: min 'a'"),
    "scale-nan": (lambda d: d["columns"][0].update(scale=float("nan")), "column 0: scale nan"),
    "kind-other": (lambda d: d["columns"][1].update(kind="ordinal"), "column 1: kind 'ordinal'"),
    "categories-text": (lambda d: d["columns"][1].update(categories="xy"), "column 1: categories 'xy'"),
    "unknown-field": (lambda d: d["columns"][0].update(x=1), "column 0: unknown field 'x'"),
    "label-index": (lambda d: d.update(label_index=-1), "label_index: -1"),
    "columns-none": (lambda d: d.update(columns=None), "expected an object with a list of columns"),
    "column-list": (lambda d: d["columns"].__setitem__(0, [1]), "column 0: expected an object, got [1]"),
}


@pytest.mark.parametrize("damage", SCHEMA_DAMAGE)
def test_a_table_json_of_wrong_types_is_one_line_naming_the_field(tmp_path, damage):
    from vaekit.data.table_schema import Column, TableSchema

    path = tmp_path / "table.json"
    numbers = Column("x", "numeric", loc=1.0, scale=2.0, min=0.0, max=3.0)
    TableSchema([numbers, Column("c", "categorical", categories=["a", "b"])]).save(path)
    assert TableSchema.load(path).columns[0].min == 0.0
    d = json.loads(path.read_text())
    change, words = SCHEMA_DAMAGE[damage]
    change(d)
    path.write_text(json.dumps(d))
    with pytest.raises(VaekitError, match=r"table\.json: cannot read the table's schema") as e:
        TableSchema.load(path)
    assert words in str(e.value) and len(str(e.value).splitlines()) == 1
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(VaekitError, match=r"table\.json: not valid JSON \(nested too deeply"):
        TableSchema.load(path)


def test_curves_leave_out_values_too_large_to_plot(tmp_path):
    from vaekit.viz.curves import plot_losses

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,train_loss,val_loss,train_kl\n1,1.0,2.0,0.5\n2,1e308,-1e308,inf\n3,0.5,1e100,0.4\n")
    out = plot_losses(metrics, tmp_path / "curves.png")
    assert Image.open(out).size[0] > 100


def test_an_npz_of_keras_splits_keeps_its_validation_split_in_training_and_in_the_verbs(tmp_path):
    x, y = np.arange(30, dtype=np.float32)[:, None].repeat(3, 1), np.arange(30) % 3  # item i holds i
    path = str(tmp_path / "k.npz")
    np.savez(path, x_train=x[:20], y_train=y[:20], x_val=x[20:25], y_val=y[20:25], x_test=x[25:], y_test=y[25:])
    ds = load_dataset(path, val_fraction=0.5)  # the val split as given, not carved from train
    for split, first, n in ((ds.train, 0, 20), (ds.val, 20, 5), (ds.test, 25, 5)):
        i = split.x[:, 0].long()
        assert sorted(i.tolist()) == list(range(first, first + n)) and torch.equal(split.y, torch.as_tensor(y)[i])
    every = vaekit.data.all_labelled(path)[0]  # the verbs' items: train, val, test in file order
    assert every.x[:, 0].tolist() == list(range(30)) and torch.equal(every.x[ds.val.rows], ds.val.x)


X5 = np.zeros((6, 5), np.float32)
NPZ_REFUSED = {  # arrays that would be left unread: refused in one line
    "unknown keys": (
        {"feats": X5, "other": X5[:, :3]},
        r"a\.npz: holds the arrays feats, other, none under a key read: data under x \(or X, data, images\), labels",
    ),
    "test labels only": (
        {"x_train": X5, "x_test": X5, "y_test": np.arange(6)},
        r"has x_train, x_test, y_test: give the labels of every split \(y_train, y_test\), or none",
    ),
    "val of another shape": ({"x_train": X5, "x_val": X5[:, :4], "x_test": X5}, r"val items have shape \(4,\), train"),
}


@pytest.mark.parametrize("arrays, message", NPZ_REFUSED.values(), ids=NPZ_REFUSED)
def test_npz_arrays_that_would_be_left_unread_are_refused_in_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "a.npz", **arrays)
    for read in (load_dataset, vaekit.data.all_labelled):
        with pytest.raises(VaekitError, match=message) as e:
            read(str(tmp_path / "a.npz"))
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("source", ["npz", "idx"])
def test_train_and_test_items_of_other_shapes_are_one_line_in_the_verbs_as_in_training(tmp_path, source):
    path, shapes = tmp_path / "s.npz", r"\(4,\), train items \(5,\)"
    if source == "npz":
        np.savez(path, x_train=np.zeros((20, 5)), x_test=np.zeros((10, 4)))
    else:
        path, shapes = tmp_path, r"\(1, 7, 7\), train items \(1, 6, 6\)"
        (path / "train-images-idx3-ubyte").write_bytes(idx_bytes((4, 6, 6)))
        (path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes((4, 7, 7)))
    for read in (load_dataset, vaekit.data.all_labelled):  # all_labelled: encode, anomaly, reconstruct
        with pytest.raises(VaekitError, match=rf"{path.name}: test items have shape {shapes}$"):
            read(str(path))


@pytest.mark.parametrize("item", [(torch.zeros(4), 1, 7), (np.zeros(4), "cat", 7, None)])
def test_dataset_items_of_more_than_x_and_y_are_refused_in_one_line(item):
    entries = f"a tuple of {len(item)} entries: items must be x, \\(x,\\), \\(x, y\\), or a dict with x under x_key"
    with pytest.raises(VaekitError, match=f"^data: item 0 is {entries}"):
        TorchSource([item] * 3, "data")
    assert TorchSource([(0.5, 1.5, 2.5)] * 3, "data").shape == (3,)  # values of one row: x


@pytest.mark.parametrize("labelled, other", [("train", "t10k"), ("t10k", "train")])
def test_an_idx_folder_with_labels_of_one_split_names_the_file_to_add_or_remove(tmp_path, labelled, other):
    for part in ("train", "t10k"):
        (tmp_path / f"{part}-images-idx3-ubyte").write_bytes(idx_bytes((4, 6, 6)))
    (tmp_path / f"{labelled}-labels-idx1-ubyte").write_bytes(idx_bytes((4,)))
    split, given = "train" if labelled == "train" else "test", f"{labelled}-labels-idx1-ubyte"
    with pytest.raises(VaekitError, match=f"labels for {split} only \\({given}, .*; add the labels of {other}-images-"):
        load_dataset(str(tmp_path))
    with pytest.raises(VaekitError, match=f"\\({other}-labels-idx1-ubyte\\), or remove {given} to read the images wi"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("encoding, bom", [("utf-16", b""), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-32", b"")])
def test_a_csv_with_a_utf_16_or_32_byte_order_mark_reads_as_pandas_reads_it(tmp_path, encoding, bom):
    import pandas as pd

    path = tmp_path / "wide.csv"
    path.write_bytes(bom + ("größe,wert\n" + "".join(f"{i / 4},{i * 1.5}\n" for i in range(30))).encode(encoding))
    raw, frame = vaekit.data.read_raw(str(path))[0], pd.read_csv(path, encoding=encoding[:6])
    assert [c.name for c in raw.table.columns] == list(frame.columns) and np.array_equal(raw.x, frame.to_numpy())
    path.write_bytes(path.read_bytes()[:-1])  # cut within a character
    with pytest.raises(VaekitError, match=f"wide.csv: starts with a {encoding[:6].upper()} byte-order mark but is not"):
        vaekit.data.read_raw(str(path))
