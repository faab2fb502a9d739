"""Photo folders, round three: each item's file named exactly, a folder edited after training said, the file
column of anomaly's default split, PIL images and late-eXIf PNGs turned upright, 16-bit depth decided on the files
kept, image_size checked alike, the documented resize recipe, and `vaekit data` on odd folders."""

from __future__ import annotations

import csv
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.data.containers import as_array
from vaekit.data.describe import describe
from vaekit.data.image_cache import open_folder, read_folder, row_files
from vaekit.data.photos import FolderSource, ImageOptions, load
from vaekit.errors import VaekitError
from vaekit.evaluation import outputs
from vaekit.runs import Run

RNG = np.random.default_rng(0)
ORIENTATION = 0x0112
SKIP = ImageOptions(size=(8, 8), skip_unreadable=True)


def save(path: Path, a: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, **kw)
    return path


def pixels(*shape: int, dtype=np.uint8) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def turned6(path: Path, a: np.ndarray, late: bool = False) -> Path:
    """``a`` saved with EXIF orientation 6 (shown turned 90 degrees clockwise); ``late``: a PNG whose eXIf chunk
    follows its pixels (IDAT), which a header read does not see."""
    exif = Image.fromarray(a).getexif()
    exif[ORIENTATION] = 6
    if not late:
        return save(path, a, exif=exif)
    save(path, a)
    b, at = path.read_bytes(), path.read_bytes().index(b"IEND") - 4
    data = exif.tobytes()
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data))
    path.write_bytes(b[:at] + chunk + b[at:])
    return path


def truncated(path: Path, a: np.ndarray) -> Path:
    """A JPEG cut in half: its header reads, its pixels do not."""
    save(path, a, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """A run on a folder of 12 8x8 colour PNGs in two classes (1 epoch)."""
    root = tmp_path_factory.mktemp("photos") / "pics"
    for i in range(12):
        save(root / "ab"[i % 2] / f"{i:02d}.png", pixels(8, 8, 3))
    fitted = vaekit.train(
        data=str(root), epochs=1, hidden=[8], latent_dim=2, progress=False, pictures=False, out=str(root.parent / "run")
    )
    return Run.load(fitted.path)


@pytest.mark.parametrize("cache", [False, True])
def test_each_item_is_named_by_its_own_file_where_a_skipped_path_ends_as_another(tmp_path, cache):
    root = tmp_path / "collide"
    for name in ("birds/a.png", "birds/b.png", "sub/deep.png", "sub/x.png"):
        save(root / name, pixels(8, 8))
    (root / "birds" / "sub").mkdir()
    (root / "birds" / "sub" / "deep.png").write_bytes(b"")  # skipped: its path ends as sub/deep.png
    opts = ImageOptions(skip_unreadable=True, cache=cache, cache_dir=str(tmp_path / "c"), workers=0)
    names, skipped = row_files(root, opts)
    assert names == ["birds/a.png", "birds/b.png", "sub/deep.png", "sub/x.png"] == names[: len(open_folder(root, opts))]
    assert [s["file"] for s in skipped] == [str(root / "birds" / "sub" / "deep.png")]


def test_a_folder_edited_to_as_many_files_is_said_changed_and_an_old_checkpoint_by_counts(run, monkeypatch, capsys):
    root = Path(run.config.data.spec)
    outputs.items(run.config, None, "test", run)
    assert "changed" not in capsys.readouterr().err
    gone, kept = root / "b" / "11.png", (root / "b" / "11.png").read_bytes()
    gone.unlink()
    save(root / "a" / "000.png", pixels(8, 8, 3))  # sorts first: every seeded split shifts
    try:
        outputs.items(run.config, None, "test", run)
        err = capsys.readouterr().err
        assert "changed since training: as many items as its checkpoint records (10 training, 1 validation" in err
        monkeypatch.setattr(outputs, "recorded_data", lambda path: {"items": [10, 1, 1]})  # no digest: counts alone
        outputs.items(run.config, None, "test", run)
        assert "changed" not in capsys.readouterr().err
    finally:
        (root / "a" / "000.png").unlink()
        gone.write_bytes(kept)


def test_anomaly_writes_the_file_column_for_its_default_split(run, tmp_path):
    out = tmp_path / "an.csv"
    assert main(["anomaly", str(run.path), "--out", str(out), "--score", "neg_elbo"]) == 0
    rows = list(csv.DictReader(out.open()))
    names = row_files(Path(run.config.data.spec), ImageOptions.of(run.config.data))[0]
    assert rows and [r["file"] for r in rows] == [names[int(r["index"])] for r in rows]


@pytest.mark.parametrize("late", [False, True], ids=["exif", "late-exif"])
def test_pil_images_and_folders_are_turned_upright_by_exif_even_after_the_pixels(tmp_path, late):
    a = pixels(6, 10, 3)  # stored 10 wide, 6 high: shown 6 wide, 10 high
    path = turned6(tmp_path / "t.png", a, late)
    upright = np.rot90(a, -1)  # orientation 6: turned 90 degrees clockwise
    assert np.array_equal(load(path, None, "center", "RGB", False), upright)
    with Image.open(path) as im:
        assert np.array_equal(as_array(im), upright)


def test_sixteen_bit_grey_stays_sixteen_bit_beside_a_skipped_eight_bit_file(tmp_path, capsys):
    root = tmp_path / "deep"
    for i in range(3):
        save(root / f"{i}.png", pixels(8, 8, dtype=np.uint16))
    truncated(root / "cut.jpg", pixels(64, 64))  # 8-bit grey by its header
    raw = read_folder(root, SKIP)
    assert raw.x.dtype == np.uint16 and raw.scale == 65535.0 and len(raw.x) == 3
    assert FolderSource(root, SKIP).deep and "read at 8 bits" not in capsys.readouterr().err
    save(root / "fine.png", pixels(8, 8))  # a readable 8-bit one: the folder is read at 8 bits, said
    assert not FolderSource(root, SKIP).deep and "read at 8 bits" in capsys.readouterr().err


def test_image_size_takes_one_int_and_three_sizes_are_refused_as_training_refuses_them(tmp_path):
    assert ImageOptions(size=32).size == (32, 32)
    save(tmp_path / "one" / "a.png", pixels(8, 8))
    with pytest.raises(VaekitError, match=r"data.image_size must be one size or H,W, got \[10, 20, 30\]"):
        describe(str(tmp_path / "one"), [("data.image_size", "10,20,30")])


def test_the_guides_resize_recipe_gives_vaekits_pixels(tmp_path, monkeypatch):
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "data.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", guide, re.S) if "def as_vaekit_reads" in b]
    monkeypatch.chdir(tmp_path)
    exec(block, {})  # asserts every pixel of a 1500x1000 JPEG made 16x16, in RGB and L


def test_a_folder_too_small_to_split_is_described_by_its_scan(tmp_path):
    for name in ("a", "b"):
        save(tmp_path / "two" / f"{name}.png", pixels(8, 8, 3))
    lines = describe(str(tmp_path / "two"))
    assert ("items", "2") in lines and ("item shape", "3x8x8 (an image: channels x height x width)") in lines
    assert dict(lines)["training"].endswith("2 items, need at least 3 to split into train/val/test")


def test_a_streamed_folder_lists_the_files_whose_pixels_do_not_read(tmp_path):
    root = tmp_path / "odd"
    for i in range(6):
        save(root / f"{i}.png", pixels(8, 8, 3))
        truncated(root / f"{i}cut.jpg", pixels(64, 64, 3))
    lines = describe(str(root), [("data.in_memory", "false"), ("data.image_size", "8")])
    listed = [v for k, v in lines if k == "unreadable"]
    assert "streamed without a cache, training stops at the first" in listed[0]
    assert listed[1:] and all(re.search(r"\dcut\.jpg: cannot read image \(OSError", v) for v in listed[1:])
    assert dict(lines)["likelihood (auto)"] == "discretized_logistic"


def test_a_folder_of_no_readable_file_names_the_first_and_why(tmp_path):
    for name in ("y.jpg", "z.png"):
        (tmp_path / "e" / "a").mkdir(parents=True, exist_ok=True)
        (tmp_path / "e" / "a" / name).write_bytes(b"")
    with pytest.raises(VaekitError, match=r"none of its 2 image files can be read; first .*y.jpg: cannot read image "):
        FolderSource(tmp_path / "e", SKIP)


def test_skipped_files_are_said_left_out_where_skip_unreadable_is_given(tmp_path):
    save(tmp_path / "f" / "a.png", pixels(8, 8))
    (tmp_path / "f" / "b.png").write_bytes(b"")
    lines = describe(str(tmp_path / "f"), [("data.skip_unreadable", "true")])
    assert ("skipped", "1 unreadable file: left out with data.skip_unreadable=true") in lines
