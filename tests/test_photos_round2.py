"""Photo folders, round two: symbolic links read once across classes, grey photos stored as RGB, one header scan
and a limit that decodes only its draw, what loading chose said in one line, more suffixes and animated files,
sizes turned by EXIF orientation and the wording of unreadable files."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from vaekit.data import image_cache, images, load_dataset, photos
from vaekit.data.image_cache import open_folder, read_folder
from vaekit.data.images import _list
from vaekit.data.lazy import load_streamed, open_streamed
from vaekit.data.photos import FolderSource, ImageOptions
from vaekit.errors import VaekitError

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (10, 8, 8), dtype=np.uint8)


def save(path, a: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, **kw)


def grey_rgb(i: int) -> np.ndarray:
    """Grey image i stored as RGB: (8, 8, 3), R = G = B."""
    return np.repeat(GREY[i][:, :, None], 3, 2)


def test_links_read_each_real_folder_and_file_once_across_the_classes(tmp_path, capsys):
    root = tmp_path / "pics"
    for i, name in enumerate(["a/0.png", "a/1.png", "b/0.png", "c/0.png"]):
        save(root / name, GREY[i])
    (root / "a_again").symlink_to("a")  # a class linked to another class
    (root / "b" / "more").symlink_to("../a")  # a link inside a class to another class
    (root / "a" / "to_c").symlink_to("../c")  # ... to a class sorted after it: c's images stay c's
    (root / "a" / "twin.png").symlink_to("1.png")  # a linked file read already
    (root / "all").symlink_to(".")  # the data folder
    (root / "parent_link").symlink_to("..")  # above it
    (root / "a" / "gone.png").symlink_to("nothing.png")  # reached once, whichever link leads to a
    files, labels, classes = _list(root)
    assert classes == ["a", "b", "c"] and labels == [0, 0, 1, 2]
    assert [f.relative_to(root).as_posix() for f in files] == ["a/0.png", "a/1.png", "b/0.png", "c/0.png"]
    assert capsys.readouterr().err.splitlines() == [
        f"vaekit: {root}: 1 broken symbolic link left out, first {root}/a/gone.png",
        f"vaekit: {root}: 4 linked duplicates left out (each real folder and file is read once), first {root}/a/to_c",
    ]


def test_grey_pixels_stored_as_rgb_are_one_channel_in_memory_and_cached_said_in_one_line(tmp_path, capsys):
    root = tmp_path / "grey"
    for i in range(3):
        save(root / f"{i}.png", grey_rgb(i))
    raw = read_folder(root)
    assert raw.image_mode == "L" and np.array_equal(raw.x[:, 0], GREY[:3]) and raw.x.shape == (3, 1, 8, 8)
    assert np.array_equal(read_folder(root, ImageOptions(mode="L")).x, raw.x)
    assert f"vaekit: {root}: mode L: all 3 images are grey (stored as RGB)\n" in capsys.readouterr().err
    cached = open_folder(root, ImageOptions(cache=True, cache_dir=str(tmp_path / "c"), workers=0))
    assert cached.mode == "L" and np.array_equal(cached.read(np.arange(3)), raw.x / np.float32(255))
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1  # the RGB rows written first are gone
    assert open_folder(root, ImageOptions(cache=True, cache_dir=str(tmp_path / "c"), workers=0)).mode == "L"
    save(root / "3.png", np.dstack([GREY[3], GREY[3], GREY[4]]))  # one image with colour
    assert read_folder(root).image_mode == "RGB"
    assert f"{root}: mode RGB: 1 of 4 images has colour (first: 3.png)\n" in capsys.readouterr().err
    streamed = open_streamed(str(root), "false")  # no pixels before training: the headers decide
    assert streamed is not None and streamed.mode == "RGB"
    said = f"{root}: mode RGB: its 4 images are stored in colour; streamed, their pixels are not checked for grey"
    assert said in capsys.readouterr().err


def test_a_folder_loaded_whole_is_scanned_once_and_a_limit_decodes_only_its_draw(tmp_path, monkeypatch):
    root = tmp_path / "pics"
    for i in range(10):
        save(root / "ab"[i % 2] / f"{i}.png", GREY[i])
    split = dict(val_fraction=0.2, test_fraction=0.2, seed=3, limit=5)
    before = load_dataset(str(root), **split)  # every file decoded, then drawn
    scans, loads = [], []
    scan, load = photos.scan, photos.load
    monkeypatch.setattr(photos, "scan", lambda *a: scans.append(1) or scan(*a))
    monkeypatch.setattr(photos, "load", lambda *a: loads.append(1) or load(*a))
    data = load_streamed(str(root), "auto", **split)
    assert data is not None and len(scans) == 1 and len(loads) == 5
    for name in ("train", "val", "test"):
        now, was = getattr(data, name), getattr(before, name)
        assert np.array_equal(now.x, was.x) and np.array_equal(now.y, was.y) and np.array_equal(now.rows, was.rows)
    assert data.classes == ["a", "b"] and data.num_classes == 2


def test_a_long_decode_is_said_on_a_terminal_alone(tmp_path, monkeypatch, capsys):
    for i in range(3):
        save(tmp_path / "pics" / f"{i}.png", GREY[i])
    monkeypatch.setattr(image_cache, "SAY_FROM", 3)
    read_folder(tmp_path / "pics")
    assert "decoding" not in capsys.readouterr().err  # a log or a pipe: nothing
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    read_folder(tmp_path / "pics")
    assert capsys.readouterr().err == f"vaekit: {tmp_path / 'pics'}: decoding 3 images ...\n"


def test_what_making_images_one_size_did_is_said_in_one_line(tmp_path, capsys):
    root = tmp_path / "sizes"
    save(root / "wide.png", RNG.integers(0, 256, (10, 20), dtype=np.uint8))  # cropped to 10x10
    save(root / "small.png", RNG.integers(0, 256, (4, 4), dtype=np.uint8))  # upscaled 2x
    save(root / "tall.png", RNG.integers(0, 256, (5, 3), dtype=np.uint8))  # cropped to 3x3, upscaled 8/3
    save(root / "same.png", RNG.integers(0, 256, (8, 8), dtype=np.uint8))
    read_folder(root, ImageOptions(size=(8, 8)))
    said = f"vaekit: {root}: 4 images made 8x8: 2 cropped to their aspect ratio, 2 upscaled (by up to 2.67x)\n"
    assert capsys.readouterr().err == said


def test_netpbm_apng_and_avif_are_read_and_animated_files_give_their_first_frame(tmp_path, capsys, monkeypatch):
    root = tmp_path / "formats"
    for i, suffix in enumerate([".pgm", ".pnm", ".apng", ".tif"]):
        save(root / f"{i}{suffix}", GREY[i], **({"format": "PNG"} if suffix == ".apng" else {}))
    save(root / "4.ppm", grey_rgb(4))
    save(root / "5.pbm", GREY[5] > 128)
    frames = [Image.fromarray(GREY[6]), Image.fromarray(GREY[7])]
    frames[0].save(root / "6.gif", save_all=True, append_images=frames[1:])
    frames[0].save(root / "7.tiff", save_all=True, append_images=frames[1:])  # two pages
    raw = read_folder(root)
    assert raw.image_mode == "L" and len(raw.x) == 8 and np.array_equal(raw.x[6, 0], GREY[6])
    assert np.array_equal(raw.x[5, 0], np.where(GREY[5] > 128, 255, 0))
    err = capsys.readouterr().err
    assert f"{root}: 2 files of several frames (animated GIF, WebP or PNG, multi-page TIFF): the first frame" in err
    if images.avif_read():  # this Pillow reads AVIF: a .avif is an image
        save(tmp_path / "avif" / "0.avif", grey_rgb(0))
        assert read_folder(tmp_path / "avif").x.shape[0] == 1
    (root / "8.avif").write_bytes(b"")
    monkeypatch.setattr(images, "avif_read", lambda: False)
    _list(root)
    assert "1 file left out (not image suffixes: .avif (this Pillow reads no AVIF))" in capsys.readouterr().err


def test_a_size_refused_names_the_exif_orientation_and_the_size_stored(tmp_path):
    root = tmp_path / "turned"
    exif = Image.Exif()
    exif[0x0112] = 6
    save(root / "a.png", RNG.integers(0, 256, (12, 24), dtype=np.uint8))
    save(root / "b.png", RNG.integers(0, 256, (12, 24), dtype=np.uint8), exif=exif)
    with pytest.raises(VaekitError, match=r"b.png: image size 12x24 as shown \(EXIF orientation 6; stored 24x12\)"):
        FolderSource(root)


def test_unreadable_files_are_worded_once_each_and_counted(tmp_path):
    root = tmp_path / "bad"
    save(root / "0.png", GREY[0])
    (root / "1.png").write_bytes(b"")
    (root / "2.png").write_bytes(b"not a png")
    (root / "3.png").write_bytes(b"nor this")
    with pytest.raises(VaekitError) as e:
        FolderSource(root)
    assert str(e.value) == (
        f"{root / '1.png'}: cannot read image (empty file (0 bytes)); 2 other files cannot be read either; set "
        "data.skip_unreadable=true to skip such files"
    )
    source = FolderSource(root, ImageOptions(skip_unreadable=True))
    said = "cannot read image (UnidentifiedImageError: cannot identify image file)"  # the path said once
    assert [s["error"] for s in source.skipped] == ["cannot read image (empty file (0 bytes))", said, said]
    for name in ("0.png", "2.png", "3.png"):
        os.remove(root / name)
    with pytest.raises(VaekitError, match=r"bad: its one image file cannot be read$"):
        FolderSource(root, ImageOptions(skip_unreadable=True))
