"""The grid and plot writers from a notebook: PNG names only (one rule, as latent_map's), numpy arrays taken as
tensors are, and the picture itself returned where no path is given."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.errors import VaekitError
from vaekit.viz.plots import _figure, _save_figure, image_grid, save_png, save_reconstructions, save_samples

IMAGES = torch.rand(3, 1, 4, 4)  # (N, C, H, W): enlarged to 28-pixel tiles
ROWS = torch.randn(5, 3)  # a table's items (N, D): a scatter

WRITERS = {  # name -> writer(path)
    "save_samples": lambda p: save_samples(IMAGES, p),
    "save_samples (table)": lambda p: save_samples(ROWS, p),
    "save_reconstructions": lambda p: save_reconstructions(IMAGES, IMAGES, p),
    "save_reconstructions (table)": lambda p: save_reconstructions(ROWS, ROWS + 0.1, p),
    "save_png": lambda p: save_png(np.zeros((4, 4), np.uint8), p),
    "a figure (curves, traversals of tables)": lambda p: _save_figure(_figure(1)[0], p),
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("name", ["s.jpg", "s.webp", "s"])
def test_a_picture_name_not_ending_in_png_is_one_line_and_nothing_is_written(tmp_path, writer, name):
    with pytest.raises(VaekitError, match=rf"{name}: expected a \.png file name \(\w+ writes PNG only") as e:
        WRITERS[writer](tmp_path / name)
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_png_name_in_any_case_gets_png_bytes_and_a_file_object_is_one_line(tmp_path, writer):
    assert WRITERS[writer](tmp_path / "s.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(VaekitError, match=r"writes a PNG file: path must be a file name ending in \.png.*BytesIO"):
        WRITERS[writer](io.BytesIO())


def pixels(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture)


@pytest.mark.parametrize("items", [IMAGES, ROWS], ids=["images", "table"])
def test_numpy_arrays_draw_the_pictures_tensors_draw(items):
    flipped = items.flip(0)  # a numpy view of negative strides, as x[::-1] gives
    arrays = items.numpy()[::-1]
    assert np.array_equal(pixels(save_samples(arrays)), pixels(save_samples(flipped)))
    got = save_reconstructions(arrays, arrays.astype(np.float64) * 0.5)
    assert np.array_equal(pixels(got), pixels(save_reconstructions(flipped, flipped * 0.5)))
    if items is IMAGES:
        assert np.array_equal(image_grid(arrays, nrow=2), image_grid(flipped, nrow=2))
        assert np.array_equal(image_grid(arrays > 0.5), image_grid((flipped > 0.5).float()))  # bool: 0 and 1


REFUSED = {
    "a list": (lambda: save_samples(IMAGES.tolist(), None), "save_samples takes items .* got list"),
    "text": (lambda: save_samples(np.array([["a"]]), None), "save_samples takes items .* got a numpy array of <U1"),
    "x_rec": (lambda: save_reconstructions(IMAGES, "x", None), "save_reconstructions takes items .* got str"),
    "grid": (lambda: image_grid((1, 2)), "image_grid takes items .* got tuple"),
    "grid shape": (
        lambda: image_grid(np.zeros((2, 4, 4))),
        r"image_grid takes images \(N, C, H, W\), got shape \(2, 4, 4",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_other_items_are_refused_in_one_line(case):
    call, says = REFUSED[case]
    with pytest.raises(VaekitError, match=says) as e:
        call()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("writer", [w for w in WRITERS if w.startswith("save_") and w != "save_png"])
def test_no_path_returns_the_picture_a_path_would_get(tmp_path, writer):
    call = WRITERS[writer]
    picture = call(None)
    assert isinstance(picture, Image.Image) and list(tmp_path.iterdir()) == []
    written = Image.open(call(tmp_path / "s.png"))
    if "table" in writer:  # a figure: the same size, opaque, so it saves as JPEG as well
        assert picture.size == written.size and picture.mode == "RGB"
        assert np.array_equal(pixels(picture), pixels(written.convert("RGB")))
        picture.save(tmp_path / "s.jpg")
        assert Image.open(tmp_path / "s.jpg").format == "JPEG"
    else:  # a grid: its pixels exactly, the first image's first pixel where the tile starts
        assert np.array_equal(pixels(picture), pixels(written))
        assert pixels(picture)[2, 2] == round(float(IMAGES[0, 0, 0, 0]) * 255)
