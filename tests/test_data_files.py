"""Image files and PIL images as they come: 16-bit grey, palettes with transparency or of greys only, and image
settings checked where they are made."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from vaekit.data import load_dataset
from vaekit.data.images import _list
from vaekit.data.photos import FolderSource, ImageOptions, scan
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
