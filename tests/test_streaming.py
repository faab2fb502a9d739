"""Streamed data: a memory-mapped .npy or an image folder trains like the same data in memory, its splits are
index views of one mapping, and bad items are refused per batch with the in-memory path's one-line errors."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.data import draws, image_cache, lazy, load_dataset
from vaekit.data.batching import batches
from vaekit.data.draws import fixed_draw
from vaekit.data.lazy import LazyArray, drawn_once
from vaekit.data.packed import pack
from vaekit.data.photos import FolderSource, ImageOptions
from vaekit.data.prepare import check_and_binarize, prepare_data
from vaekit.data.user import from_user
from vaekit.errors import VaekitError
from vaekit.evaluation import outputs
from vaekit.evaluation.codes import WRITERS
from vaekit.evaluation.metrics import evaluate, pick_split
from vaekit.evaluation.outputs import prepared_split, write_scores
from vaekit.io import atomic_write_text
from vaekit.runs import Run
from vaekit.training import trainer
from vaekit.training.state import check_same_data, fingerprint

from .conftest import tiny_config, train_argv, train_run


@pytest.fixture
def uint8_images(tmp_path):
    """(80, 6, 7) uint8 'images': streamed, they must be scaled by 1/255 like the in-memory path does."""
    path = tmp_path / "u8.npy"
    np.save(path, np.random.default_rng(1).integers(0, 256, (80, 6, 7), dtype=np.uint8))
    return path


def config(spec, out, in_memory: str, workers: int = 0, epochs: int = 2):
    cfg = tiny_config(str(spec), out, epochs=epochs)
    cfg.data.in_memory, cfg.data.workers, cfg.model.likelihood = in_memory, workers, "bernoulli"
    return cfg


@pytest.mark.parametrize("workers", [0, 1])
def test_a_streamed_npy_trains_to_the_weights_of_the_same_data_in_memory(uint8_images, tmp_path, workers):
    # dynamic binarisation of the training batches draws from the same generator on both paths
    whole = train_run(config(uint8_images, tmp_path / "whole", "true"))
    streamed = train_run(config(uint8_images, tmp_path / "streamed", "false", workers))
    a, b = load_file(whole / "checkpoint.safetensors"), load_file(streamed / "checkpoint.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))


def test_splits_are_index_views_of_one_memory_map(uint8_images, tmp_path):
    data, mode = prepare_data(config(uint8_images, tmp_path, "false"), stream=True)
    splits = [data.train.x, data.val.x, data.test.x]
    assert all(isinstance(x, LazyArray) for x in splits) and mode == "dynamic"
    assert isinstance(splits[0].source.x, np.memmap) and len({id(x.source) for x in splits}) == 1
    rows = np.sort(np.concatenate([x.index for x in splits]))
    assert np.array_equal(rows, np.arange(80))  # every item in exactly one split
    raw = np.load(uint8_images)
    x = data.train.x[torch.tensor([4, 0])]
    assert x.dtype == torch.float32 and x.shape == (2, 1, 6, 7)
    assert torch.equal(x[1, 0], torch.from_numpy(raw[data.train.x.index[0]] / np.float32(255)).float())


def test_fixed_binarisation_gives_an_item_the_same_draw_in_any_batch(uint8_images, tmp_path):
    data, _ = prepare_data(config(uint8_images, tmp_path, "false"), stream=True)
    val = data.val.x  # dynamic mode binarises validation once (per item) and training per batch
    both, one = val[np.array([0, 1, 2])], val[np.array([2])]
    assert set(both.unique().tolist()) <= {0.0, 1.0} and torch.equal(both[2], one[0])
    assert not torch.equal(data.train.x[0:4], data.train.x[0:4].round())  # training items stay grey


@pytest.fixture
def grey(tmp_path):
    """(300, 5, 7) grey 'images' in [0, 1], each value 0, 1 or a level between."""
    x = np.random.default_rng(2).choice([0.0, 0.3, 0.5, 0.9, 1.0], (300, 5, 7)).astype(np.float32)
    np.save(tmp_path / "grey.npy", x)
    return tmp_path / "grey.npy"


def fixed_items(spec, tmp_path, in_memory: str, limit: int | None = None) -> dict[int, torch.Tensor]:
    """{row in the file: the item as training gets it} over every split of ``spec`` binarised 'fixed'."""
    cfg = config(spec, tmp_path, in_memory)
    cfg.data.binarize, cfg.data.limit = "fixed", limit
    data, _ = prepare_data(cfg, stream=True)
    items = {}
    for s in (data.train, data.val, data.test):
        lazy = isinstance(s.x, LazyArray)
        assert lazy == (in_memory == "false") and s.fixed and s.part == 0
        x, rows = (s.x[np.arange(len(s))], s.x.index) if lazy else (s.x, s.rows)
        items |= dict(zip(rows.tolist(), x))
    return items


@pytest.mark.parametrize("limit", [None, 40])
def test_fixed_binarisation_draws_the_same_items_in_memory_and_streamed(grey, tmp_path, limit):
    whole, streamed = fixed_items(grey, tmp_path, "true", limit), fixed_items(grey, tmp_path, "false", limit)
    assert whole.keys() == streamed.keys() and len(whole) == (limit or 300)
    assert all(torch.equal(whole[r], streamed[r]) for r in whole)
    assert all(set(x.unique().tolist()) <= {0.0, 1.0} for x in whole.values())
    every = fixed_items(grey, tmp_path, "true")  # a limit takes some items, each as the whole file draws it
    assert all(torch.equal(every[r], whole[r]) for r in whole)
    ds = load_dataset(str(grey), binarize="fixed", limit=limit)  # the public loader draws the same
    assert all(torch.equal(x, whole[r]) for s in (ds.train, ds.val, ds.test) for r, x in zip(s.rows.tolist(), s.x))


def test_a_dynamic_runs_training_items_drawn_once_for_evaluation_are_the_same_in_memory_and_streamed(grey, tmp_path):
    drawn = {}
    for in_memory in ("true", "false"):  # evaluate's probe and a sampler's codes take the first items of the split
        cfg = config(grey, tmp_path, in_memory)
        cfg.data.binarize = "dynamic"
        s = pick_split(prepare_data(cfg, stream=True)[0], "train", 50)
        x = drawn_once(s, seed=4).x
        drawn[in_memory] = x[np.arange(50)] if isinstance(x, LazyArray) else x
    assert torch.equal(drawn["true"], drawn["false"]) and set(drawn["true"].unique().tolist()) == {0.0, 1.0}


def test_the_fixed_draw_has_the_mean_of_x_and_keys_on_seed_part_and_row(monkeypatch):
    x = torch.full((400, 49), 0.3)  # an odd item size: two values per 64-bit hash, one left over
    x[:, 0], x[:, 1] = 0.0, 1.0
    rows = np.arange(1000, 1400)
    a = fixed_draw(x, rows, seed=5)
    freq = a[:, 2:].mean().item()
    assert abs(freq - 0.3) < 5 * (0.3 * 0.7 / a[:, 2:].numel()) ** 0.5, freq
    assert (a[:, 0] == 0).all() and (a[:, 1] == 1).all()
    assert abs(a[:, 2:].mean(0) - 0.3).max() < 0.1  # every position, not just the whole
    assert not torch.equal(a, fixed_draw(x, rows, seed=6)) and not torch.equal(a, fixed_draw(x, rows, 5, part=1))
    monkeypatch.setattr(draws, "CHUNK", 49 * 3)  # in batches of 3 rows, in another order: the same items
    order = np.random.default_rng(0).permutation(400)
    assert torch.equal(fixed_draw(x[order], rows[order], seed=5), a[order])


def test_fixed_draws_of_items_of_two_parts_are_each_drawn_as_its_own_part(monkeypatch):
    x, rows, parts = torch.rand(30, 7), np.r_[np.arange(20), np.arange(10)], np.repeat([0, 1], [20, 10])
    whole = torch.cat([fixed_draw(x[:20], rows[:20], 5), fixed_draw(x[20:], rows[20:], 5, part=1)])
    monkeypatch.setattr(draws, "CHUNK", 7 * 3)  # batches of 3 rows that straddle the change of part
    assert torch.equal(fixed_draw(x, rows, 5, parts), whole)


@pytest.mark.parametrize("binarize", ["fixed", "dynamic"])
def test_every_item_in_file_order_is_drawn_as_in_its_own_split(tmp_path, binarize):
    x = np.random.default_rng(3).choice([0.0, 0.3, 0.5, 1.0], (50, 5, 7)).astype(np.float32)
    np.savez(tmp_path / "s.npz", x_train=x[:40], x_test=x[40:])  # a test file: its rows are keyed as part 1
    cfg = config(tmp_path / "s.npz", tmp_path / "run", "true", epochs=1)
    cfg.data.binarize = binarize
    run = Run.load(train_run(cfg))
    every = prepared_split(run, None, "all")[0].x
    assert set(every.unique().tolist()) == {0.0, 1.0}
    for name, offset in (("train", 0), ("test", 40)):
        s = prepared_split(run, None, name)[0]
        assert torch.equal(s.x, every[offset + s.rows]), name


def test_fit_data_is_drawn_by_its_rows_in_memory_and_as_a_dataset():
    x = torch.rand(120, 1, 4, 4)
    whole = fixed_draw(x, np.arange(120), seed=3)
    for data in (x, torch.utils.data.TensorDataset(x)):
        ds = check_and_binarize(from_user(data, seed=3), "fixed", "bernoulli", 3)
        for s in (ds.train, ds.val):
            rows = s.x.index if isinstance(s.x, LazyArray) else s.rows
            assert torch.equal(s.x[np.arange(len(s))] if isinstance(s.x, LazyArray) else s.x, whole[rows])
    val = check_and_binarize(from_user(x, x[:30], seed=3), "fixed", "bernoulli", 3).val  # val_data: another source
    assert val.part == 1 and torch.equal(val.x, fixed_draw(x[:30], np.arange(30), 3, part=1))


def test_a_checkpoint_drawn_before_the_per_item_draw_is_named_on_resume(grey, tmp_path):
    cfg = config(grey, tmp_path, "true")
    cfg.data.binarize = "fixed"
    now = fingerprint(prepare_data(cfg)[0])
    before = {"items": now["items"], "sha256": "0" * 64}  # drawn then by torch.bernoulli: other values
    with pytest.raises(VaekitError, match="fixed binarisation's draw changed since it was written") as e:
        check_same_data(before, now)
    assert e.value.key == "out" and "data.binarize fixed, none or dynamic" in str(e.value)
    with pytest.raises(VaekitError, match=r"as many, other values\); train a new run"):
        check_same_data({**before, "fixed_draw": now["fixed_draw"]}, now)  # other data, drawn the same way


@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, "contains 1 NaN or infinite values, the first in item 7$"),
        (1e39, r"1 value beyond float32's range \(\+-3\.4e38\), the first 1e\+39 in item 7: the model reads float32"),
        (2.0, "lie outside the bernoulli likelihood's support"),
    ],
)
def test_a_bad_item_is_refused_when_its_batch_is_read(tmp_path, value, message):
    """Named by its item as load_dataset names it (1e39 in float64: not NaN after the cast to float32)."""
    x = np.random.default_rng(0).random((50, 4, 4))
    x = x if value == 1e39 else x.astype(np.float32)
    x[7, 1, 1] = value
    np.save(tmp_path / "bad.npy", x)
    cfg = config(tmp_path / "bad.npy", tmp_path / "run", "false", workers=1, epochs=1)
    cfg.data.binarize = "none"
    with pytest.raises(VaekitError, match=message) as e:
        train_run(cfg)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def write_images(folder, sizes):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(folder / f"{i:02d}.png")


def test_an_image_folder_is_read_lazily_and_a_mixed_size_is_refused(tmp_path):
    write_images(tmp_path / "ok", [(5, 6)] * 30)
    run = train_run(config(tmp_path / "ok", tmp_path / "run", "false", workers=1))
    assert len((run / "metrics.csv").read_text().splitlines()) == 3
    write_images(tmp_path / "mixed", [(5, 6)] * 29 + [(6, 6)])
    with pytest.raises(VaekitError, match="image size 6x6 differs from 6x5"):
        train_run(config(tmp_path / "mixed", tmp_path / "run2", "false", epochs=1))


def test_auto_streams_only_what_does_not_fit(uint8_images, tmp_path, monkeypatch):
    cfg = config(uint8_images, tmp_path, "auto")
    assert isinstance(prepare_data(cfg, stream=True)[0].train.x, torch.Tensor)  # a few KB fit
    monkeypatch.setattr(lazy, "available_memory", lambda: 1000)
    assert isinstance(prepare_data(cfg, stream=True)[0].train.x, LazyArray)
    with pytest.raises(VaekitError, match=r"streams .npy files and image folders only"):
        prepare_data(config("digits", tmp_path, "false"), stream=True)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--set", "data.in_memory=maybe"], "data.in_memory must be one of auto, true, false"),
        (["--set", "data.workers=-1"], "data.workers must be >= 0"),
        (["--data", "digits", "--set", "data.in_memory=false"], "streams .npy files and image folders only"),
    ],
)
def test_bad_scale_settings_are_refused_in_one_line(tmp_path, capsys, flags, message):
    assert main(["train", *flags, "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("in_memory", ["auto", "false", "true"])
@pytest.mark.parametrize("kind", ["garbage", "objects"])
def test_a_pickled_or_garbage_npy_is_one_line_that_never_advises_unpickling(tmp_path, capsys, in_memory, kind):
    path = tmp_path / f"{kind}.npy"
    if kind == "garbage":
        path.write_bytes(b"hello world")
    else:
        np.save(path, np.array([[1, None], [2, "x"]], dtype=object), allow_pickle=True)
    assert main(["train", "--data", str(path), "--set", f"data.in_memory={in_memory}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{path}: cannot read NumPy file ({lazy.NOT_NUMERIC})") and "\n" not in err


def test_every_verb_that_reads_data_streams_it(tmp_path, monkeypatch):
    """A run on streamed data: evaluate, encode, anomaly, reconstruct and report read it a batch at a time (at most
    1,000 of 1,500 items at once), and encode writes the codes that the same items in memory give."""
    images = tmp_path / "u8.npy"
    np.save(images, np.random.default_rng(1).integers(0, 256, (1500, 6, 7), dtype=np.uint8))
    cfg = config(images, tmp_path / "run", "false", epochs=1)
    cfg.data.binarize = "none"
    run = train_run(cfg)
    largest = {"rows": 0}
    read = lazy.NpySource.read

    def counted(self, rows):
        largest["rows"] = max(largest["rows"], len(rows))
        return read(self, rows)

    monkeypatch.setattr(lazy.NpySource, "read", counted)
    verbs = [
        ["evaluate", run, "--iw-samples", "4", "--split", "train"],
        ["encode", run, "--out", tmp_path / "z.npy"],
        ["anomaly", run, "--out", tmp_path / "a.csv", "--score", "neg_elbo,recon_error"],
        ["reconstruct", run, "--n", "8", "--out", tmp_path / "r.png"],
        ["report", run, "--iw-samples", "4"],
    ]
    for argv in verbs:
        assert main([str(a) for a in argv]) == 0, argv
    assert 0 < largest["rows"] <= 1000 < 1500  # a batch at a time (encode: 1,000), never the whole set
    codes = np.load(tmp_path / "z.npy")
    x = torch.from_numpy(np.load(images)[:, None] / np.float32(255))
    from vaekit.runs import Run

    assert codes.shape == (1500, 6) and np.allclose(codes[:, :3], Run.load(run).encode(x).mean.numpy(), atol=1e-6)


@pytest.mark.parametrize(("kind", "packs"), [("8-bit", True), ("binary", True), ("real", False), ("nan", False)])
def test_8bit_and_binary_data_pack_into_a_quarter_and_read_back_bit_for_bit(kind, packs):
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 256, (70, 1, 3, 4), generator=g)
    x = {
        "8-bit": torch.from_numpy(levels.numpy().astype(np.float32) / np.float32(255)),  # as the data layer divides
        "binary": (levels > 127).float(),
        "real": torch.rand(70, 1, 3, 4, generator=g),
        "nan": levels.float().div(255).index_fill_(0, torch.tensor([69]), float("nan")),
    }[kind]
    packed = pack(x)
    assert (packed is not None) == packs
    if packed is not None:
        assert packed.q.dtype == torch.uint8 and len(packed) == 70 and packed.q.shape == x.shape
        perm, cpu = torch.randperm(70, generator=g), torch.device("cpu")
        pairs = zip(batches(packed, None, perm, 16, 0, 0, cpu), batches(x, None, perm, 16, 0, 0, cpu), strict=True)
        assert all(torch.equal(a[1], b[1]) for a, b in pairs) and torch.equal(packed[3:9], x[3:9])


def test_a_run_on_packed_data_trains_to_the_same_weights(uint8_images, tmp_path, monkeypatch):
    """What a GPU gets (uint8 on the device), here on the CPU: the run ends bit for bit where the float one does."""
    whole = train_run(config(uint8_images, tmp_path / "whole", "true"))
    packs = []
    monkeypatch.setattr(trainer, "to_device", lambda x, device: packs.append(pack(x)) or packs[-1])
    packed = train_run(config(uint8_images, tmp_path / "packed", "true"))
    assert len(packs) == 2 and None not in packs  # the training and validation splits were packed
    a, b = load_file(whole / "checkpoint.safetensors"), load_file(packed / "checkpoint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


TRUNC = "g05b_trunc.jpg"  # its header reads, its pixels do not


@pytest.fixture
def grey_photos(tmp_path):
    """A flat folder of 12 flat-grey PNGs g00..g11 (level 20 * i, so a row's pixels name its file) and, among
    them in file order, a truncated JPEG whose header reads and whose pixels do not."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(folder / f"g{i:02d}.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / TRUNC).write_bytes(buf.getvalue()[: len(buf.getvalue()) * 6 // 10])
    return folder


def photo_options(tmp_path, cache: bool, skip: bool = True) -> ImageOptions:
    return ImageOptions(size=(8, 8), mode="L", skip_unreadable=skip, cache=cache, cache_dir=str(tmp_path / "c"))


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("read_first", [True, False])  # the verbs read the items first; Python callers may not
def test_item_files_name_each_row_after_a_file_skipped_while_decoding(grey_photos, tmp_path, cache, read_first):
    opts = photo_options(tmp_path, cache)
    image_cache._skipped.clear()  # no record of an earlier test's read
    raw = image_cache.read_folder(grey_photos, opts) if read_first else None
    names, skipped = image_cache.row_files(grey_photos, opts)
    raw = raw or image_cache.read_folder(grey_photos, opts)
    levels = np.round(raw.x.reshape(len(raw.x), -1).mean(1) / 20).astype(int)
    assert names == [f"g{i:02d}.png" for i in levels] and len(names) == 12
    assert [Path(s["file"]).name for s in skipped] == [TRUNC]


@pytest.mark.parametrize("cache", ["false", "true"])
def test_anomaly_and_encode_of_every_item_name_their_own_files_and_say_what_was_skipped(
    grey_photos, tmp_path, capsys, cache
):
    run = tmp_path / "run"
    flags = ["--set", "data.image_size=8", "--set", "data.skip_unreadable=true", "--set", f"data.cache={cache}"]
    main([*train_argv(grey_photos, run, *flags, "--set", f"data.data_dir={tmp_path / 'c'}"), "--hidden", "8"])
    capsys.readouterr()
    main(["anomaly", str(run), "--split", "all", "--score", "recon_error", "--out", str(tmp_path / "a.csv")])
    main(["encode", str(run), "--split", "all", "--out", str(tmp_path / "c.csv")])
    main(["encode", str(run), "--split", "all", "--out", str(tmp_path / "c.npz")])
    expected = [f"g{i:02d}.png" for i in range(12)]
    for name in ("a.csv", "c.csv"):
        with open(tmp_path / name) as f:
            assert [r["file"] for r in csv.DictReader(f)] == expected, name
    assert np.load(tmp_path / "c.npz")["files"].tolist() == expected
    main(["encode", str(run), "--split", "test", "--out", str(tmp_path / "t.csv")])  # a split joins back too
    main(["encode", str(run), "--split", "test", "--out", str(tmp_path / "t.npz")])
    assert capsys.readouterr().err.count(f"skipped 1 unreadable file (data.skip_unreadable), first {grey_photos}") == 5
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    codes = np.load(tmp_path / "t.npz")
    assert len(rows) == 1 and [r["file"] for r in rows] == [expected[int(r["index"])] for r in rows]
    assert codes["index"].tolist() == [int(r["index"]) for r in rows] and codes["files"].tolist() == [
        r["file"] for r in rows
    ]


@pytest.mark.parametrize(
    "how", ["cache written skipping, read refusing", "cache written refusing", "in memory, no cache", "streamed"]
)
def test_a_file_whose_pixels_cannot_be_read_is_named_once_with_the_setting_that_skips_it(grey_photos, tmp_path, how):
    if how.startswith("cache written skipping"):
        image_cache.read_folder(grey_photos, photo_options(tmp_path, True))
    refusing = photo_options(tmp_path, how.startswith("cache"), skip=False)
    with pytest.raises(VaekitError) as e:
        if how == "streamed":
            FolderSource(grey_photos, refusing).read(np.arange(13))
        else:
            image_cache.read_folder(grey_photos, refusing)
    message = str(e.value)
    assert message.startswith(f"{grey_photos / TRUNC}: cannot read image (OSError: image file is truncated")
    assert message.count("cannot read image") == 1 and message.endswith(
        "set data.skip_unreadable=true to skip such files"
    )


@pytest.mark.parametrize("rebuilt", [False, True])
def test_a_killed_cache_builds_temporary_file_is_removed_once_stale(grey_photos, tmp_path, rebuilt):
    opts = photo_options(tmp_path, True)
    image_cache.open_folder(grey_photos, opts)
    (npy,) = (tmp_path / "c").glob("images-*.npy")
    killed, building = (npy.with_name(f".{npy.name}.{k}.tmp") for k in ("k1ll3d", "l1v3"))  # as atomic_write names
    for tmp, age in ((killed, image_cache.STALE_S + 60), (building, 0)):
        tmp.write_bytes(b"\0" * 128)
        os.utime(tmp, (time.time() - age, time.time() - age))
    if rebuilt:  # the folder's files changed: a new cache is built, the old one goes
        (grey_photos / "g99.png").write_bytes((grey_photos / "g00.png").read_bytes())
    image_cache.open_folder(grey_photos, opts)
    assert not killed.exists() and building.exists()  # another process's build may be writing it now
    assert npy.exists() != rebuilt


def test_a_cache_of_another_format_is_not_read(grey_photos, tmp_path, monkeypatch):
    opts = photo_options(tmp_path, True)
    image_cache.open_folder(grey_photos, opts)
    (old,) = (tmp_path / "c").glob("images-*.npy")
    monkeypatch.setattr(image_cache, "FORMAT", image_cache.FORMAT + 1)  # a vaekit that decodes files otherwise
    image_cache.open_folder(grey_photos, opts)
    (new,) = (tmp_path / "c").glob("images-*.npy")
    assert new != old  # built anew, the older format's removed


@pytest.fixture
def latin1_folder(tmp_path):
    """Photos named in Latin-1 bytes, as old Windows zips unpack them: 'café.png' and a good one."""
    folder = tmp_path / "latin1"
    folder.mkdir()
    for i, name in enumerate([b"caf\xe9.png", b"good.png"]):
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(f, "PNG")
    return folder


@pytest.mark.parametrize("cache", [False, True])
def test_file_names_that_are_not_utf8_are_cached_and_written_as_escapes(latin1_folder, tmp_path, cache):
    names = image_cache.row_files(latin1_folder, photo_options(tmp_path, cache))[0]
    assert names == ["caf\udce9.png", "good.png"]  # the name as the file system gives it back
    write_scores(tmp_path / "s.csv", {"recon_error": np.zeros(2)}, files=names)
    codes = iter([np.zeros((2, 2), np.float32)])
    WRITERS[".csv"](tmp_path / "c.csv", codes, 2, 1, {"index": None, "file": names})
    for out in ("s.csv", "c.csv"):
        text = (tmp_path / out).read_text(encoding="utf-8")
        assert "caf\\xe9.png" in text and "good.png" in text, out
    atomic_write_text(tmp_path / "t.txt", "caf\udce9")  # any text: an escape, never a traceback
    assert (tmp_path / "t.txt").read_text() == "caf\\udce9"


def changed(npy: Path, extra: int) -> None:
    """``extra`` more rows appended to a .npy, as photos added to a folder."""
    x = np.load(npy)
    np.save(npy, np.concatenate([x, x[:extra]]))


@pytest.mark.parametrize(
    "verb",
    [
        lambda run: prepared_split(run, None, "test"),
        lambda run: outputs.items(run.config, None, "test", run),
        lambda run: evaluate(run, k=2),
    ],
    ids=["anomaly-reconstruct", "encode", "evaluate"],
)
@pytest.mark.parametrize("extra", [0, 10])
def test_a_verb_on_the_runs_own_data_says_when_it_changed_since_training(uint8_images, tmp_path, capsys, verb, extra):
    run = Run.load(train_run(config(uint8_images, tmp_path / "run", "true", epochs=1)))
    changed(uint8_images, extra)
    capsys.readouterr()
    verb(run)
    err = capsys.readouterr().err
    if extra:
        assert "its data changed since training: its checkpoint records 64 training, 8 validation, 8 test " in err
        assert "the data now has 72, 9, 9; the seeded splits hold other items than in training" in err
    else:
        assert "changed" not in err
