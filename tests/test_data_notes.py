"""What vaekit says of the data it reads: ``vaekit data PATH`` (a file or folder described without training), rows
of pixels read as a table, a thousands-comma column's example, and a photo folder's counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaekit.data.npz as npz
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.data.photos import ImageOptions
from vaekit.data.pixels import flat_images


def described(capsys, *argv: str) -> dict[str, list[str]]:
    """``vaekit data ARGV`` run here: each line's value by what it names (several lines may name one thing)."""
    assert main(["data", *argv]) == 0
    lines: dict[str, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        what, _, found = line.partition(":")
        lines.setdefault(what, []).append(found.strip())
    return lines


def photos(folder: Path, sizes: list[tuple[int, int]], colour: list[bool]) -> Path:
    """Two class subfolders of PNGs of (W, H) ``sizes``, in colour or grey, and a text file named .jpg in one."""
    rng = np.random.default_rng(0)
    for i, ((w, h), rgb) in enumerate(zip(sizes, colour)):
        (folder / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        (im if rgb else im.convert("L")).save(folder / "ab"[i % 2] / f"{i}.png")
    (folder / "a" / "notes.jpg").write_text("not a picture")
    return folder


def test_a_photo_folder_is_described_by_its_scan_classes_skipped_files_and_likelihood(tmp_path, capsys):
    found = described(capsys, str(photos(tmp_path / "pics", [(6, 6)] * 5, [True, False] * 3)))
    assert found["items"] == ["5 (3 train, 1 val, 1 test)"] and found["item shape"][0].startswith("3x6x6 ")
    assert found["dtype"] == ["uint8"] and found["scaling"] == ["divided by 255, to [0, 1]"]
    assert found["classes"] == ["2: a 3, b 2"] and found["likelihood (auto)"] == ["discretized_logistic"]
    assert found["skipped"][0].startswith("1 unreadable file: left out with data.skip_unreadable=true")
    assert found["skipped"][1].endswith(
        "notes.jpg: cannot read image (UnidentifiedImageError: cannot identify image file)"
    )


def test_photos_of_several_sizes_are_counted_and_described_at_the_size_given(tmp_path, capsys):
    folder = photos(tmp_path / "pics", [(6, 6), (9, 7), (8, 8)], [True] * 3)
    found = described(capsys, str(folder))
    assert found["item shape"][0].startswith("none yet: ") and "set data.image_size" in found["item shape"][0]
    assert found["items"] == ["3"] and found["classes"] == ["a 2, b 1"] and len(found["skipped"]) == 2
    found = described(capsys, str(folder), "--set", "data.image_size=4")
    assert found["items"] == ["3 (1 train, 1 val, 1 test)"] and found["item shape"][0].startswith("3x4x4 ")


def test_a_flattened_uint8_npy_is_described_from_its_header_with_the_note_on_its_rows(tmp_path, capsys, monkeypatch):
    path = tmp_path / "u8.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (30, 784), dtype=np.uint8))
    monkeypatch.setattr(npz, "read_numpy", lambda *a: pytest.fail("a .npy is memory-mapped, not read whole"))
    found = described(capsys, str(path))
    assert found["items"] == ["30 (24 train, 3 val, 3 test)"] and found["item shape"] == ["784 (a row of numbers)"]
    assert found["dtype"] == ["uint8"] and found["scaling"] == [
        "numeric columns standardised by the training split's mean and sd (data.standardize=auto)"
    ]
    assert "read as a table of 784 numbers" in found["note"][0] and "(N, 28, 28)" in found["note"][0]
    assert found["likelihood (auto)"] == ["gaussian"] and found["classes"] == ["none (no labels)"]


def test_a_table_is_described_by_its_columns_labels_and_gaps(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(
        "price,kind,label\n" + "".join(f'"{i},000.5",{"xy"[i % 2] if i != 3 else ""},{i % 3}\n' for i in range(1, 10))
    )
    found = described(capsys, str(path))
    assert found["gaps"][0].startswith("training refuses them as data.missing=refuse: ")
    assert found["classes"] == ["labels in column 'label'; 3: 0 3, 1 3, 2 3"]
    assert found["column 'price'"][0].startswith("numeric: numbers written with thousands commas, ")
    assert found["column 'kind'"] == ["categorical, 2 categories ('x', 'y'), with gaps"]


@pytest.mark.parametrize(
    ("shape", "dtype", "said"),
    [
        ((5, 784), np.uint8, "28x28 image flattened, reshape the array to (N, 28, 28)"),
        ((5, 3072), np.uint8, "32x32 colour image flattened, reshape the array to (N, 3, 32, 32)"),
        ((5, 4096), np.uint16, "(0..65535, not divided by 65,535 as images are); if each row is a 64x64"),
        ((5, 256), np.uint8, "16x16 image"),
        ((5, 64), np.uint8, ""),  # 8x8: as likely a table of 64 counts
        ((5, 785), np.uint8, ""),
        ((5, 49), np.uint8, ""),  # 7x7: a small table
        ((5, 784), np.float32, ""),  # floats are read as given either way
        ((5, 1, 28, 28), np.uint8, ""),
    ],
)
def test_rows_of_pixels_of_an_image_dtype_are_said_to_be_read_as_a_table(shape, dtype, said):
    note = flat_images(shape, np.dtype(dtype), "x.npy")
    assert (said in note) and bool(note) == bool(said)


def test_the_thousands_comma_note_shows_a_cell_with_its_comma(tmp_path, capsys):
    path = tmp_path / "amounts.csv"
    path.write_text('amount ($)\n12.50\n999.99\n"1,234.50"\n3.00\n')
    load_dataset(str(path))
    assert "holds numbers with thousands commas (1,234.50): read as numbers" in capsys.readouterr().err


def test_the_photo_note_counts_the_images_decoded_in_both_its_parts(tmp_path, capsys):
    folder = photos(tmp_path / "pics", [(10, 8)] * 4, [True, False, True, False])
    (folder / "a" / "notes.jpg").unlink()
    data = (folder / "a" / "2.png").read_bytes()
    (folder / "a" / "2.png").write_bytes(data[: len(data) // 2])  # its header reads, its pixels do not
    load_dataset(str(folder), images=ImageOptions(size=(4, 4), skip_unreadable=True))
    err = capsys.readouterr().err
    assert "3 images made 4x4: 3 cropped to their aspect ratio" in err and "1 of 3 images has colour" in err
