"""Data as it comes: photo folders of mixed sizes and modes (resized, centre-cropped, cached, unreadable files
skipped) and containers as other libraries hand them over (dict items, channels-last images, wrong shapes)."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

import vaekit
from vaekit.cli import main
from vaekit.data import all_items, all_labelled, load_dataset, photos
from vaekit.data.image_cache import open_folder
from vaekit.data.lazy import every_item
from vaekit.data.photos import ImageOptions
from vaekit.data.prepare import auto_settings
from vaekit.data.signals import model_items
from vaekit.data.user import frame_array, from_user
from vaekit.errors import VaekitError

from .conftest import OwnModel, tiny_config, train_run

QUIET = {"progress": False, "pictures": False}


def photo(path, w, h, mode="RGB", colour=(200, 30, 30)):
    """A (w, h) image: ``colour`` in a centred h x h square, blue beside it (wide images only)."""
    im = Image.new("RGB", (w, h), (0, 0, 255))
    im.paste(colour, ((w - h) // 2, 0, (w - h) // 2 + h, h))
    (im if mode == "RGB" else im.convert(mode)).save(path)


@pytest.fixture
def folder(tmp_path):
    """Six images: sizes 40x10 .. 12x9 and modes RGB, L, RGBA, P, plus a JPEG."""
    root = tmp_path / "photos"
    root.mkdir()
    for i, (w, h, mode) in enumerate(
        [(40, 10, "RGB"), (30, 20, "L"), (12, 9, "RGBA"), (16, 16, "P"), (25, 11, "RGB"), (20, 20, "L")]
    ):
        photo(root / f"{i}.png", w, h, mode)
    photo(root / "6.jpg", 33, 17)
    return root


def test_mixed_sizes_are_centre_cropped_and_resized_never_stretched(folder):
    ds = load_dataset(str(folder), images=ImageOptions(size=(4, 6)), val_fraction=0.2, test_fraction=0.2)
    assert ds.shape == (3, 4, 6) and ds.image_mode == "RGB"
    x = load_dataset(str(folder), images=ImageOptions(size=(5, 5)), limit=None).train.x
    assert x.shape[1:] == (3, 5, 5)
    wide = load_dataset(
        str(folder), images=ImageOptions(size=(3, 3), mode="RGB"), val_fraction=0.01, test_fraction=0.01, seed=0
    )
    everything = torch.cat([wide.train.x, wide.val.x, wide.test.x])
    # 40x10 with its red centre square: the centre crop keeps only red (a stretch would bring in blue)
    red = [bool((im[0] > 0.7).all() and (im[2] < 0.2).all()) for im in everything]
    assert sum(red) >= 2
    with pytest.raises(VaekitError, match=r"another aspect ratio than data.image_size 3x3 and data.crop=none"):
        load_dataset(str(folder), images=ImageOptions(size=(3, 3), crop="none"))


@pytest.mark.parametrize("mode, channels", [("auto", 3), ("L", 1), ("RGB", 3)])
def test_grey_rgb_rgba_and_palette_become_one_mode(folder, mode, channels):
    ds = load_dataset(str(folder), images=ImageOptions(size=(4, 4), mode=mode))
    assert ds.shape == (channels, 4, 4) and ds.image_mode == ("RGB" if mode == "auto" else mode)


def test_mixed_sizes_without_image_size_are_refused_with_the_setting_named(folder):
    with pytest.raises(VaekitError, match=r"1.png: image size 30x20 differs from 40x10 .*set data.image_size"):
        load_dataset(str(folder))


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_an_unreadable_file_is_refused_or_skipped_and_listed(folder, tmp_path, capsys, in_memory):
    (folder / "broken.png").write_bytes(b"not an image at all")
    cfg = tiny_config(str(folder), tmp_path / "run", epochs=1)
    cfg.data.image_size, cfg.data.in_memory, cfg.data.workers = [4, 4], in_memory, 0
    with pytest.raises(VaekitError, match=r"broken.png: cannot read image .*data.skip_unreadable=true"):
        train_run(cfg, pictures=False)
    cfg.data.skip_unreadable = True
    run = train_run(cfg, pictures=False)
    listed = json.loads((run / "skipped.json").read_text())
    assert listed["count"] == 1 and listed["files"][0]["file"].endswith("broken.png")
    assert "skipped 1 unreadable file" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["data"]["mode"] == "RGB"


def test_the_cache_is_read_on_the_second_open_and_remade_when_a_file_changes(folder, tmp_path, monkeypatch):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    opts = ImageOptions(size=(4, 4), cache=True, cache_dir=str(tmp_path / "cache"), skip_unreadable=True, workers=0)
    first = open_folder(folder, opts)
    x = first.read(np.arange(len(first)))
    assert len(first) == 7 and len(first.skipped) == 1 and first.mode == "RGB"
    npy = sorted((tmp_path / "cache").glob("*.npy"))
    monkeypatch.setattr(photos, "load", lambda *a: pytest.fail("decoded an image on a cache hit"))
    again = open_folder(folder, opts)
    assert np.array_equal(again.read(np.arange(7)), x) and again.skipped == first.skipped
    with pytest.raises(VaekitError, match=r"broken.png: cannot read image"):
        open_folder(folder, ImageOptions(**{**opts.__dict__, "skip_unreadable": False}))
    monkeypatch.undo()
    photo(folder / "0.png", 40, 10, colour=(0, 255, 0))
    os.utime(folder / "0.png", ns=(1, 1))
    changed = open_folder(folder, opts)
    assert sorted((tmp_path / "cache").glob("*.npy")) != npy and len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert not np.array_equal(changed.read(np.arange(7)), x)


# (data.in_memory, data.cache): decoded in memory, streamed from the files, read from the cache
PATHS = [("true", False), ("false", False), ("true", True)]


def every(spec, in_memory, size, cache_dir, cache=False, **settings) -> torch.Tensor:
    """Every item of ``spec`` in file order, read where ``in_memory`` and ``cache`` say, (N, C, H, W)."""
    opts = ImageOptions(size=size, cache=cache, cache_dir=str(cache_dir), workers=0, **settings)
    lazy = every_item(spec, in_memory, opts)
    return all_items(spec, images=opts) if lazy is None else lazy[np.arange(len(lazy))]


@pytest.mark.parametrize("in_memory, cache", PATHS)
def test_a_folder_named_like_a_built_in_set_is_refused_and_read_as_dot_slash(tmp_path, monkeypatch, in_memory, cache):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    for i in range(3):
        photo(tmp_path / "digits" / f"{i}.png", 6, 6)
    with pytest.raises(VaekitError, match=r"^digits: both the name of a built-in .*write ./digits for the folder"):
        every("digits", in_memory, (4, 4), tmp_path / "cache", cache)
    assert every("./digits", in_memory, (4, 4), tmp_path / "cache", cache).shape == (3, 3, 4, 4)  # not 1797 8x8
    (tmp_path / "digits" / "config.json").write_text("{}")  # a run folder (--out digits) is no data: no clash
    assert every("digits", "true", None, tmp_path / "cache").shape == (1797, 1, 8, 8)  # built-ins never stream


@pytest.mark.parametrize("in_memory, cache", PATHS)
def test_exif_orientation_turns_images_upright_wherever_they_are_decoded(tmp_path, in_memory, cache):
    (tmp_path / "phone").mkdir()
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 20, 20))  # stored: blue left half; shown (turned 90 degrees clockwise): blue top
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone" / "0.jpg", exif=exif.tobytes())
    x = every(str(tmp_path / "phone"), in_memory, (8, 4), tmp_path / "cache", cache, crop="none")
    assert (x[:, 2, 0] > 0.7).all() and (x[:, 0, 0] < 0.3).all() and (x[:, 0, -1] > 0.7).all()
    assert every(str(tmp_path / "phone"), in_memory, None, tmp_path / "c2", cache).shape == (1, 3, 40, 20)  # as shown


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("in_memory, cache", PATHS)
def test_another_aspect_under_crop_none_is_refused_naming_the_file_s_own_size(folder, tmp_path, in_memory, cache, skip):
    """Refused even with skip_unreadable, which is for files that cannot be read; the size is the file's, not
    that of its JPEG draft decoding (39x17)."""
    photo(folder / "6.jpg", 77, 33)
    for path in folder.glob("[0-5].png"):
        photo(path, 33, 33)
    with pytest.raises(VaekitError, match=r"6.jpg: image size 77x33 has another aspect ratio .*set data.crop=center"):
        every(str(folder), in_memory, (8, 8), tmp_path / "cache", cache, crop="none", skip_unreadable=skip)
    with pytest.raises(VaekitError, match=r"6.jpg: image size 77x33 has another"):
        photos.load(folder / "6.jpg", (8, 8), "none", "RGB", False)


@pytest.mark.parametrize("in_memory", ["true", "false"])
@pytest.mark.parametrize("extra", ["a/.thumbs/t.png", "a/deeper/.cache/t.png", "backup.tar.gz", "idx-notes.txt"])
def test_hidden_subfolders_and_gz_or_idx_named_files_are_no_items_of_a_photo_folder(tmp_path, in_memory, extra):
    """Images under a hidden folder at any depth are left out; a .gz or idx-named file beside the classes leaves
    the folder a photo folder (IDX folders are told by their files' contents too)."""
    for name in ("a/0.png", "a/deeper/1.png", "b/2.png", extra):
        path = tmp_path / "pics" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        photo(path, 4, 4) if name.endswith(".png") else path.write_bytes(gzip.compress(b"tar" * 99, mtime=0))
    assert every(str(tmp_path / "pics"), in_memory, None, tmp_path / "cache").shape == (3, 3, 4, 4)


def truncated_png() -> bytes:
    """A PNG whose header reads and whose pixels do not (cut halfway)."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("bad", [b"junk", truncated_png()], ids=["header", "pixels"])
def test_a_class_whose_files_are_all_unreadable_is_left_out_names_and_labels_together(tmp_path, capsys, cache, bad):
    """Class b's only file cannot be read (at the header scan, or as it is decoded): a, c are classes 0, 1 (c's
    images named c), in memory, streamed and from the cache, and from a cache whose .json keeps b's number."""
    for name, colour in (("a", (255, 0, 0)), ("c", (0, 255, 0))):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(3):
            photo(tmp_path / "pics" / name / f"{i}.png", 4, 4, colour=colour)
    (tmp_path / "pics" / "b").mkdir()
    (tmp_path / "pics" / "b" / "x.png").write_bytes(bad)
    opts = ImageOptions(size=(4, 4), skip_unreadable=True, cache=cache, cache_dir=str(tmp_path / "c"), workers=0)
    items, classes = all_labelled(str(tmp_path / "pics"), images=opts)
    assert classes == ["a", "c"] and items.y.tolist() == [0, 0, 0, 1, 1, 1] and (items.x[3:, 1] > 0.9).all()
    assert "pics: class b left with no readable images" in capsys.readouterr().err
    if not cache and bad == b"junk":  # streamed: the header scan leaves b out
        source = open_folder(tmp_path / "pics", opts)
        assert source.classes == ["a", "c"] and source.labels.tolist() == [0, 0, 0, 1, 1, 1]
    if cache:  # a cache an older vaekit wrote: b's number kept in the labels
        (meta,) = (tmp_path / "c").glob("*.json")
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "labels": [0] * 3 + [2] * 3, "classes": [*"abc"]}))
        source = open_folder(tmp_path / "pics", opts)
        assert source.classes == ["a", "c"] and source.labels.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("link", ["..", "../..", "."])
def test_a_link_in_a_class_folder_to_the_data_folder_or_above_stops_there(tmp_path, link):
    for name in ("cats", "dogs"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(3):
            photo(tmp_path / "pics" / name / f"{i}.png", 4, 4)
    (tmp_path / "pics" / "cats" / "up").symlink_to(link)
    items, classes = all_labelled(str(tmp_path / "pics"))
    assert classes == ["cats", "dogs"] and items.y.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "names, said",
    [
        (
            ["0.png", "1.jfif", "2.JPE", "x.tga", "notes.txt", "Thumbs.db", ".DS_Store"],
            r"pics: 2 files left out "
            r"\(not image suffixes: \.tga, \.txt\), first \S*pics/notes.txt\n",
        ),
        (
            ["train/cats/0.png", "train/dogs/1.png", "val/cats/2.png"],
            r"pics: its class folders \(train, val\) "
            r"look like splits holding class folders, .* point at \S*pics/train ",
        ),
        (["train/0.png", "val/1.png", "val/2.png"], None),  # images in train/, val/: classes, nothing said
        (["1/0.png", "10/1.png", "2/2.png"], None),  # classes as text: 1, 10, 2
    ],
)
def test_files_of_other_suffixes_and_a_split_layout_are_said_in_one_line(tmp_path, capsys, names, said):
    """.jfif and .jpe are JPEGs; other files (not hidden ones, not Thumbs.db) are named by suffix; class folders
    named train and val holding class folders are a split data set."""
    for name in names:
        (tmp_path / "pics" / name).parent.mkdir(parents=True, exist_ok=True)
        path = tmp_path / "pics" / name
        photo(path, 4, 4) if path.suffix in (".png", ".jfif", ".JPE") else path.write_text("x")
    items, classes = all_labelled(str(tmp_path / "pics"))
    err = capsys.readouterr().err
    assert len(items.x) == 3 and (re.search(said, err) if said else "left out" not in err and "splits" not in err)
    assert classes in (None, ["train", "val"], ["1", "10", "2"])


def test_16_bit_colour_pngs_are_read_at_8_bits_by_their_high_byte(tmp_path):
    """As the docs say: Pillow keeps each value's high byte (v // 256, within one level of round(v / 257))."""
    v = np.array([[[200, 51400, 65535], [257, 0, 65280]]], dtype=">u2")  # (H, W, 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 16, 2, 0, 0, 0))  # 2x1, 16-bit RGB
    body = chunk(b"IDAT", zlib.compress(b"\0" + v.tobytes())) + chunk(b"IEND", b"")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "rgb16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + head + body)
    x = all_items(str(tmp_path / "pics"))
    assert torch.equal(x * 255, torch.from_numpy((v.astype(np.float32) // 256).transpose(2, 0, 1))[None])


@pytest.mark.parametrize("first, then, reused", [("auto", "RGB", True), ("RGB", "auto", True), ("L", "auto", False)])
def test_the_verbs_reuse_the_training_cache_whatever_data_mode_said(folder, tmp_path, monkeypatch, first, then, reused):
    """Training with data.mode=auto writes config.json with the mode it resolved to (RGB here), which the verbs
    read: the cache is keyed by the mode the images become."""
    opts = ImageOptions(size=(4, 4), cache=True, cache_dir=str(tmp_path / "cache"), workers=0)
    x = open_folder(folder, ImageOptions(**{**opts.__dict__, "mode": first})).read(np.arange(7))
    if reused:
        monkeypatch.setattr(photos, "load", lambda *a: pytest.fail("decoded an image though the cache was there"))
    again = open_folder(folder, ImageOptions(**{**opts.__dict__, "mode": then}))
    assert again.mode == "RGB" and np.array_equal(again.read(np.arange(7)), x) == reused
    assert len(list((tmp_path / "cache").glob("*.npy"))) == (1 if reused else 2)


def model(shape=(1, 4, 4), **settings) -> nn.Module:
    torch.manual_seed(0)
    widths = {} if settings.get("net") == "conv" else {"hidden": [8]}
    return vaekit.build_model(input_shape=list(shape), latent_dim=2, likelihood="bernoulli", **widths, **settings)


class Items(torch.utils.data.Dataset):
    """Dict items as Hugging Face datasets give them."""

    def __init__(self, x, y, keys=("pixel_values", "label")):
        self.x, self.y, self.keys = x, y, keys

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {self.keys[0]: torch.from_numpy(self.x[i]), self.keys[1]: int(self.y[i]), "id": f"item-{i}"}


@pytest.mark.parametrize(
    "keys, settings",
    [
        (("pixel_values", "label"), {}),
        (("img", "y"), {"x_key": "img"}),
        (("image", "labels"), {"x_key": "image", "y_key": "labels"}),
    ],
)
def test_datasets_of_dicts_train_with_and_without_keys(keys, settings):
    rng = np.random.default_rng(0)
    x, y = (rng.random((40, 1, 4, 4)) > 0.5).astype(np.float32), rng.integers(0, 3, 40)
    run = vaekit.fit(model(), Items(x, y, keys), epochs=1, batch_size=8, **settings, **QUIET)
    assert len(run.history) == 1
    cvae = vaekit.build_model(
        family="cvae", input_shape=[1, 4, 4], hidden=[8], latent_dim=2, num_classes=3, likelihood="bernoulli"
    )
    assert len(vaekit.fit(cvae, Items(x, y, keys), epochs=1, **settings, **QUIET).history) == 1


def test_dict_items_without_a_known_name_ask_for_x_key():
    x = np.zeros((10, 1, 4, 4), np.float32)
    with pytest.raises(
        VaekitError,
        match=r"item 0 is a dict with keys 'img', 'cls', 'id': none of pixel_values.*"
        r"pass x_key",
    ):
        vaekit.fit(model(), Items(x, np.zeros(10), ("img", "cls")), epochs=1, **QUIET)
    with pytest.raises(VaekitError, match=r"no entry 'target' \(y_key\)"):
        vaekit.fit(model(), Items(x, np.zeros(10)), y_key="target", epochs=1, **QUIET)


@pytest.mark.parametrize(
    "wrap", [np.asarray, torch.from_numpy, lambda a: torch.utils.data.TensorDataset(torch.from_numpy(a))]
)
def test_channels_last_uint8_images_are_moved_with_one_line(wrap, capsys):
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    run = vaekit.fit(model((3, 8, 8), net="conv", channels=[4]), wrap(x), epochs=1, batch_size=8, **QUIET)
    assert run.config.model.input_shape == [3, 8, 8]
    err = capsys.readouterr().err
    assert err.count("read as channels-last images, moved to (3, 8, 8)") == 1


def test_a_uint8_mask_and_a_standardised_table_each_get_one_line(capsys):
    mask = np.random.default_rng(0).integers(0, 2, (20, 1, 4, 4), dtype=np.uint8)
    vaekit.fit(model(), mask, epochs=1, **QUIET)  # divided by 255 as image files are, with a note saying so
    assert "these hold only 0 and 1" in capsys.readouterr().err
    table = np.random.default_rng(0).normal(size=(20, 5)) * 10
    user_model = vaekit.build_model(input_shape=[5], hidden=[8], latent_dim=2, likelihood="gaussian")
    assert vaekit.fit(user_model, table, epochs=1, **QUIET).model is not user_model
    assert "run.model wraps the model passed to fit" in capsys.readouterr().err


@pytest.mark.parametrize(
    "loader, given, refused",
    [
        ({"batch_size": 8}, {"batch_size": 16}, "batch_size 16 and the DataLoader's 8"),
        ({"batch_size": 8, "sampler": torch.utils.data.SubsetRandomSampler(range(5))}, {}, "SubsetRandomSampler"),
        ({"batch_sampler": [[0, 1], [2, 3]]}, {}, "a batch_sampler cannot take effect"),
        ({"batch_size": 8, "collate_fn": lambda items: items}, {}, "collate_fn cannot take effect"),
    ],
)
def test_what_of_a_dataloader_cannot_take_effect_is_refused(loader, given, refused):
    data = torch.utils.data.TensorDataset(torch.rand(20, 1, 4, 4))
    with pytest.raises(VaekitError, match=refused):
        vaekit.fit(model(), torch.utils.data.DataLoader(data, **loader), epochs=1, **given, **QUIET)


class UserVAE(OwnModel):
    """A user's own model for (1, 4, 4) items that declares no input shape."""

    latent_dims, needs_labels = [2], False

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(16, 4), nn.Linear(2, 16)

    def encode(self, x, y=None):
        loc, s = self.enc(x.flatten(1)).chunk(2, -1)
        return Independent(Normal(loc, s.exp()), 1)

    def decode(self, z, y=None):
        return Independent(Bernoulli(logits=self.dec(z).view(-1, 1, 4, 4)), 3)

    def prior(self, y=None):
        return Independent(Normal(torch.zeros(2), torch.ones(2)), 1)


@pytest.mark.parametrize("make", [model, lambda: UserVAE()])
def test_a_wrong_item_shape_is_one_line_naming_both_shapes(make):
    x = (np.random.default_rng(0).random((20, 3, 5, 5)) > 0.5).astype(np.float32)
    with pytest.raises(
        VaekitError,
        match=r"^(data: items have shape \(3, 5, 5\), the model takes items of shape \(1, 4, 4\)|"
        r"UserVAE.decode's p\(x\|z\) has event shape \(1, 4, 4\) while the items are \(3, 5, 5\): [^\n]*)$",
    ):
        vaekit.fit(make(), x, epochs=1, **QUIET)
    with pytest.raises(VaekitError, match=r"(\(3, 5, 5\), the model takes .*|shape )\(1, 4, 4\)"):
        vaekit.fit(make(), torch.utils.data.TensorDataset(torch.from_numpy(x)), epochs=1, **QUIET)


def test_image_settings_on_other_data_are_refused(tiny_images, tmp_path):
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=1)
    cfg.data.image_size = [8]
    with pytest.raises(VaekitError, match=r"data.image_size applies to folders of images, and .*tiny.npy is not one"):
        train_run(cfg, pictures=False)


class NoShapeVAE(UserVAE):
    """A user's model that cannot tell its item shape before it sees data."""

    def generate(self, n, temperature=1.0, y=None):
        raise NotImplementedError


def test_a_layer_error_on_the_first_items_is_one_line_naming_their_shape():
    x = np.zeros((20, 3, 5, 5), np.float32)
    with pytest.raises(VaekitError, match=r"^NoShapeVAE cannot take items of shape \(3, 5, 5\): mat1 and mat2"):
        vaekit.fit(NoShapeVAE(), x, epochs=1, **QUIET)


def test_data_frames_are_read_by_rows_and_bf16_tensors_as_floats():
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    x[:, 0] += 100  # a square frame read by columns would mix this column into every other
    gaussian = {"input_shape": [4], "hidden": [8], "latent_dim": 2, "likelihood": "gaussian"}
    for data in (pd.DataFrame(x), pd.DataFrame(x, columns=list("abcd")), torch.from_numpy(x).bfloat16()):
        run = vaekit.fit(vaekit.build_model(**gaussian), data, epochs=1, **QUIET)
        assert run.model.loc.tolist() == pytest.approx(x.mean(0).tolist(), abs=0.2)  # standardised by columns
    frame = pd.DataFrame(x, columns=list("abcd"))
    for g in ("x", pd.Categorical([1, 2] * 15)):  # text, or categories whatever they are
        with pytest.raises(VaekitError, match=r"^data: the frame's columns g are not numeric \(text or categories\)"):
            vaekit.fit(vaekit.build_model(**gaussian), frame.assign(g=g), epochs=1)
    assert frame_array(frame.assign(g=pd.array([1, None] * 15, dtype="Int64")), "data")[:2, 4].tolist()[0] == 1


@pytest.mark.parametrize("mode, channels", [("L", 1), ("1", 1), ("RGBA", 3), ("P", 3)])
def test_pil_items_and_grey_arrays_come_as_a_folder_s_images_do(mode, channels):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).convert(mode) for _ in range(12)]
    net = model((channels, 8, 8), net="conv", channels=[4])
    run = vaekit.fit(net, [{"image": im} for im in images], epochs=1, batch_size=4, **QUIET)
    assert run.config.model.input_shape == [channels, 8, 8]
    if channels == 1:  # the same images as an (N, H, W) array
        grey = np.stack([np.asarray(im.convert("L")) for im in images])
        assert len(vaekit.fit(model((1, 8, 8), net="conv", channels=[4]), grey, epochs=1, **QUIET).history) == 1


@pytest.mark.parametrize("kind", ["frame", "array"])
def test_data_in_memory_given_to_train_is_one_line_pointing_to_fit_and_a_path_is_taken(kind, tmp_path):
    pd = pytest.importorskip("pandas")
    x = np.zeros((30, 4))
    data = pd.DataFrame(x, columns=list("abcd")).assign(city="x") if kind == "frame" else x
    with pytest.raises(VaekitError) as e:
        vaekit.train(data=data, epochs=1)
    message = str(e.value)
    assert "\n" not in message and f"got {type(data).__name__} of shape {data.shape}; " in message
    assert "vaekit.fit(model, data)" in message and "df.to_csv('table.csv', index=False)" in message
    from vaekit.config import RunConfig, set_value

    cfg = RunConfig()
    set_value(cfg, "data.spec", tmp_path / "t.csv")  # a pathlib.Path, as str
    assert cfg.data.spec == str(tmp_path / "t.csv")


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_uint8_signals_in_a_file_are_read_by_the_verbs_as_fit_read_the_array(tmp_path, suffix):
    """The verbs read a file's (N, C, L) uint8 array as grey images divided by 255, where fit took it as it is."""
    s8 = np.random.default_rng(0).integers(0, 256, (30, 2, 6), dtype=np.uint8)
    path = tmp_path / f"sig{suffix}"
    np.save(path, s8) if suffix == ".npy" else np.savez(path, x=s8, y=np.zeros(30))
    signals = vaekit.build_model(input_shape=[2, 6], hidden=[8], latent_dim=2, likelihood="gaussian")
    run = vaekit.fit(signals, s8, epochs=1, out=tmp_path / "run", **QUIET)
    assert main(["encode", str(run.path), "--data", str(path), "--out", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy")[:, :2], run.encode(s8).mean.numpy(), rtol=1e-4, atol=1e-5)
    if suffix == ".npy":  # streamed, as a large file is read, alike
        assert torch.equal(model_items(every_item(str(path), "false"), (2, 6))[:], torch.from_numpy(s8).float())


def test_8_bit_images_in_float16_get_the_8_bit_likelihood_and_bfloat16_a_note(tmp_path, capsys):
    """float16 holds k / 255 only to 0.06 of a level near 1: such images got the Bernoulli, dynamically binarised."""
    x = np.random.default_rng(0).integers(0, 256, (30, 1, 4, 4)) / 255
    np.save(tmp_path / "f16.npy", x.astype(np.float16))
    for data in (x.astype(np.float16), torch.from_numpy(x).half(), load_dataset(str(tmp_path / "f16.npy"))):
        data = data if isinstance(data, vaekit.Dataset) else from_user(data)
        assert auto_settings(data, "auto", "auto", "auto")[0] == "discretized_logistic"
    sixteenths = (np.round(x * 16) / 16).astype(np.float16)  # levels k / 16 (digits'), each one a float16: not 8-bit
    assert auto_settings(from_user(sixteenths), "auto", "auto", "auto")[:2] == ("bernoulli", "dynamic")
    assert "bfloat16" not in capsys.readouterr().err
    assert auto_settings(from_user(torch.from_numpy(x).bfloat16()), "auto", "auto", "auto")[0] == "bernoulli"
    assert "data: bfloat16 holds 8 significant bits, too few for the 256 levels" in capsys.readouterr().err
    items = from_user(torch.utils.data.TensorDataset(torch.from_numpy(x).bfloat16()), val_fraction=0.5).train.x
    assert items[np.arange(15)].dtype == torch.float32 and items[np.arange(15)].shape == (15, 1, 4, 4)
    assert capsys.readouterr().err.count("bfloat16 holds") == 1  # a Dataset's: said of item 0, not of each


def test_a_column_below_float32_s_resolution_is_noted_for_arrays_frames_and_npy_files(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    seconds = 1.7e9 + np.random.default_rng(0).uniform(-100, 100, (30, 2))  # float32 steps by 128 there
    np.save(tmp_path / "t.npy", seconds)
    load_dataset(str(tmp_path / "t.npy"))
    from_user(seconds)
    from_user(pd.DataFrame(seconds, columns=["start", "end"]))
    from_user(seconds - 1.7e9)  # an offset taken off: no note
    from_user((seconds - 1.7e9) * 1e-30)  # tiny, but float32's steps are as fine there: no note
    err = capsys.readouterr().err.splitlines()
    kept = len(np.unique(seconds[:, 0].astype(np.float32)))  # 3: the column's own, not its two ends' 2
    assert f"leave at most {kept} distinct values" in err[0] and f"leave {kept} distinct values" in err[2]
    for where, name in (("t.npy", "0"), ("data", "0"), ("data", "1"), ("data", "start"), ("data", "end")):
        assert sum(f"{where}: column '{name}' varies by" in line for line in err) >= 1, err
    assert len(err) == 6 and all("below what float32 resolves there" in line for line in err)


def test_a_frame_s_columns_are_the_run_s_taken_by_name_and_other_frames_are_held_to_them(tmp_path):
    """A frame's columns were not recorded: one with columns reordered was encoded as if they were the run's."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 3)) * [1, 100, 1e4], columns=list("abc"))
    gaussian = {"input_shape": [3], "hidden": [8], "latent_dim": 2, "likelihood": "gaussian"}
    run = vaekit.fit(vaekit.build_model(**gaussian), frame, epochs=1, out=tmp_path / "run", **QUIET)
    assert [c["name"] for c in json.loads((tmp_path / "run" / "table.json").read_text())["columns"]] == list("abc")
    for r in (run, vaekit.load_run(tmp_path / "run")):
        assert torch.equal(r.encode(frame).mean, r.encode(frame.to_numpy()).mean)  # a plain array still taken
        assert torch.equal(r.encode(frame[["c", "b", "a"]]).mean, r.encode(frame).mean)  # taken by name
        with pytest.raises(VaekitError, match=r"\(missing 'a'; extra 'x'\); the run's are a, b, c$"):
            r.reconstruct(frame.rename(columns={"a": "x"}))
    assert np.isfinite(vaekit.evaluate(run, frame, k=2)["nll"])
    reordered, same = (vaekit.evaluate(run, f, k=2, seed=0) for f in (frame[["b", "a", "c"]], frame))
    assert {**reordered, "seconds": 0} == {**same, "seconds": 0}
    with pytest.raises(VaekitError, match=r"^val_data: the columns differ .*\(missing 'c'\)"):
        vaekit.fit(vaekit.build_model(**gaussian), frame, val_data=frame[["a", "b"]], epochs=1, **QUIET)
    assert vaekit.fit(vaekit.build_model(**gaussian), pd.DataFrame(frame.to_numpy()), epochs=1, **QUIET).table is None
    assert torch.equal(run.encode(pd.DataFrame(frame.to_numpy())).mean, run.encode(frame).mean)  # no names to check


def test_read_only_arrays_are_read_without_a_warning_and_left_as_they_are(tmp_path):
    x = (np.random.default_rng(0).random((20, 1, 4, 4)) > 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch: "The given NumPy array is not writable"
        run = vaekit.fit(model(), mapped, epochs=1, **QUIET)
        run.encode(mapped)
    assert np.array_equal(np.load(tmp_path / "x.npy"), x)


@pytest.mark.parametrize("form", ["dataset", "array", "frame", "npy"])
def test_an_item_holding_nan_is_named_whatever_holds_it(form, tmp_path):
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(0).random((20, 16)).astype(np.float32)
    x[7, 2:4] = np.nan
    if form == "npy":  # streamed, read a batch at a time
        np.save(tmp_path / "x.npy", x)
        with pytest.raises(VaekitError, match=r"x\.npy: contains 2 NaN or infinite values, the first in item 7$"):
            every_item(str(tmp_path / "x.npy"), "false")[np.arange(20)]
        return
    data = {"dataset": torch.utils.data.TensorDataset(torch.from_numpy(x)), "array": x, "frame": pd.DataFrame(x)}
    with pytest.raises(VaekitError, match=r"^data: contains 2 NaN or infinite values, the first in item 7$"):
        vaekit.fit(model((16,)), data[form], epochs=1, **QUIET)
