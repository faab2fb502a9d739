"""Data as large files bring it: .npz splits of mixed dtypes each scaled by its own, a limit that reads and
converts its items alone (a .npy memory-mapped, a photo folder's first files decoded alone), and
data.in_memory=auto held to the memory a process may really take (address space, cgroups), said in one note."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit.data
from vaekit.config import RunConfig
from vaekit.data import all_labelled, item_arrays, lazy, limits, load_dataset, npz, photos
from vaekit.data.lazy import NpySource, open_streamed, whole_bytes
from vaekit.data.prepare import prepare_data
from vaekit.data.tables import TableOptions
from vaekit.errors import VaekitError
from vaekit.evaluation.outputs import every_labelled

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "dtypes",
    [
        {"x_train": np.uint8, "x_test": np.float32},
        {"x_train": np.float32, "x_test": np.uint8},
        {"x_train": np.uint8, "x_val": np.float32, "x_test": np.uint8},
    ],
)
def test_npz_splits_of_mixed_dtypes_are_each_scaled_by_their_own(dtypes, tmp_path, capsys):
    levels = {k: RNG.integers(0, 256, (12, 4, 4), dtype=np.uint8) for k in dtypes}  # each split's 8-bit values
    given = {k: v if t == np.uint8 else (v / 255).astype(t) for (k, v), t in zip(levels.items(), dtypes.values())}
    np.savez(tmp_path / "mix.npz", **given)
    data = load_dataset(str(tmp_path / "mix.npz"))
    want = {k: torch.from_numpy(v.astype(np.float32) / np.float32(255))[:, None] for k, v in levels.items()}
    torch.testing.assert_close(data.test.x, want["x_test"])  # not divided twice (max 0.004), nor left at 0..255
    seen = torch.cat([data.train.x, data.val.x])
    trained = torch.cat([want[k] for k in ("x_train", "x_val") if k in want])
    assert float(seen.max()) <= 1.0 and sorted(seen.flatten().tolist()) == sorted(trained.flatten().tolist())
    every = all_labelled(str(tmp_path / "mix.npz"))[0].x  # the verbs' items: each file's in order
    torch.testing.assert_close(every, torch.cat([trained, want["x_test"]]))
    assert "each is scaled by its own dtype" in capsys.readouterr().err


def _indexed(path, n: int = 400, d: int = 3) -> np.ndarray:
    """A float64 .npy whose item i holds i in its first column, saved at ``path``."""
    x = RNG.random((n, d))
    x[:, 0] = np.arange(n)
    np.save(path, x)
    return x


def test_a_limit_reads_and_checks_its_items_alone_from_a_mapped_npy(tmp_path, monkeypatch):
    x = _indexed(tmp_path / "x.npy")
    modes, load = [], np.load
    monkeypatch.setattr(npz.np, "load", lambda *a, **k: modes.append(k.get("mmap_mode")) or load(*a, **k))
    monkeypatch.setattr(item_arrays, "CHUNK_BYTES", 50)  # a few items a chunk: every chunk path taken
    data = load_dataset(str(tmp_path / "x.npy"), limit=40, seed=3)
    assert modes == ["r"]
    idx = np.random.default_rng(3).permutation(400)[:40]  # the items chosen: shuffled, then the limit (as ever)
    for split, rows in (("test", idx[:4]), ("val", idx[4:8]), ("train", idx[8:])):
        s = getattr(data, split)
        assert s.x[:, 0].tolist() == rows.tolist() and s.rows.tolist() == rows.tolist()
        torch.testing.assert_close(s.x, torch.from_numpy(x[rows].astype(np.float32)))
    others = np.setdiff1d(np.arange(400), idx)
    bad = x.copy()
    bad[others[:2], 1], bad[others[2], 2] = np.nan, 1e39  # in items the limit leaves: never read nor checked
    np.save(tmp_path / "x.npy", bad)
    assert len(load_dataset(str(tmp_path / "x.npy"), limit=40, seed=3).train) == 32
    bad[idx[[5, 30]], 1] = np.nan  # in items taken, chunks apart: counted and named as one check of all
    np.save(tmp_path / "x.npy", bad)
    first = int(np.sort(idx[[5, 30]])[0])
    with pytest.raises(VaekitError, match=rf"contains 2 NaN or infinite values, the first in item {first}$"):
        load_dataset(str(tmp_path / "x.npy"), limit=40, seed=3)


def test_the_verbs_limit_reads_the_first_items_alone_labelled_as_among_all(tmp_path):
    x = _indexed(tmp_path / "x.npy", 30)
    y = np.array(["b", "a", "c"] * 10)
    x[20:, 1] = np.nan  # in x.npy past the verbs' limit: not read
    np.savez(tmp_path / "s.npz", x_train=x[:8], y_train=y[:8], x_test=x[8:20], y_test=y[8:20])
    s, classes = all_labelled(str(tmp_path / "s.npz"), limit=11)
    assert s.x[:, 0].tolist() == list(range(11)) and classes == ["a", "b", "c"]
    assert s.y.tolist() == [1, 0, 2] * 3 + [1, 0] and s.rows.tolist() == [*range(8), 0, 1, 2]
    assert s.part.tolist() == [0] * 8 + [1] * 3
    np.save(tmp_path / "x.npy", x)
    cfg = RunConfig()
    cfg.data.spec, cfg.data.in_memory = str(tmp_path / "x.npy"), "true"
    assert every_labelled(cfg, cfg.data.spec, 20)[0].x[:, 0].tolist() == list(range(20))
    with pytest.raises(VaekitError, match="contains 10 NaN"):
        every_labelled(cfg, cfg.data.spec)
    out = np.empty((3, 3), np.float32)
    assert item_arrays.float_items(np.ones((5, 3), np.uint8), np.arange(3), 255.0, out) is out  # divided in place


def test_a_photo_folder_s_first_items_alone_are_decoded_and_all_is_every_file(tmp_path, monkeypatch):
    for i, name in enumerate(["a/0.png", "a/1.png", "b/2.png", "b/3.png", "b/4.png"]):
        (tmp_path / "pics" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / "pics" / name)
    decoded, load = [], photos.load
    monkeypatch.setattr(photos, "load", lambda path, *a: decoded.append(path.name) or load(path, *a))
    opts = photos.ImageOptions(mode="L")
    s, classes = all_labelled(str(tmp_path / "pics"), images=opts, limit=3)
    assert decoded == ["0.png", "1.png", "2.png"] and classes == ["a", "b"] and s.y.tolist() == [0, 0, 1]
    torch.testing.assert_close(s.x[:, 0, 0, 0], torch.tensor([0.0, 40.0, 80.0]) / 255)
    decoded.clear()
    assert len(all_labelled(str(tmp_path / "pics"), images=opts)[0].x) == 5 and len(decoded) == 5
    limited = TableOptions(limit=2)  # a limited run's options: "all" is every file still, not the limit's draw
    every = all_labelled(str(tmp_path / "pics"), images=opts, table=limited)[0].x
    assert (every[:, 0, 0, 0] * 255).round().tolist() == [0, 40, 80, 120, 160]


def _cgroup(root, v2: bool, limit: str, used: int, cache: int) -> None:
    """A fake cgroup tree under ``root``: this process in /box/inner, /box limited (v2 or v1 files)."""
    names = limits.V2 if v2 else limits.V1
    base = root if v2 else root / "memory"
    (base / "box" / "inner").mkdir(parents=True)
    (base / "box" / names[0]).write_text(f"{limit}\n")
    (base / "box" / names[1]).write_text(f"{used}\n")
    (base / "box" / "memory.stat").write_text(f"anon 5\n{names[2]} {cache}\n")
    (base / "box" / "inner" / names[0]).write_text("max\n" if v2 else f"{1 << 63}\n")
    (root / "membership").write_text("0::/box/inner\n" if v2 else "4:memory:/box/inner\n1:cpu:/\n")


@pytest.mark.parametrize("v2", [True, False])
def test_usable_memory_is_held_to_the_cgroup_and_auto_streams_past_it(v2, tmp_path, monkeypatch, capsys):
    _cgroup(tmp_path, v2, "1000000", 700_000, 100_000)
    monkeypatch.setattr(limits, "CGROUPS", tmp_path)
    monkeypatch.setattr(limits, "MEMBERSHIP", tmp_path / "membership")
    assert limits.cgroup_free() == 400_000 and limits.usable_memory() <= 400_000
    np.save(tmp_path / "x.npy", np.zeros((100, 1000), np.uint8))  # 100,000 values: 600,000 bytes loaded whole
    assert isinstance(open_streamed(str(tmp_path / "x.npy"), "auto"), NpySource)  # MemAvailable alone: loaded
    err = capsys.readouterr().err
    assert "x.npy: data.in_memory=auto streams it" in err and "more than half the 0.00 GB" in err
    monkeypatch.setattr(limits, "cgroup_free", lambda: 2_000_000)  # fits in half: loaded, said as it takes 1/8+
    assert open_streamed(str(tmp_path / "x.npy"), "auto") is None
    assert "auto loads it whole: about 0.00 GB at its peak, within half" in capsys.readouterr().err


def test_auto_s_estimate_is_what_loading_holds_and_running_out_names_streaming(tmp_path, monkeypatch):
    for dtype in (np.uint8, np.float64):
        np.save(tmp_path / f"{np.dtype(dtype).name}.npy", np.zeros((50, 4), dtype))
    u8, f64 = (NpySource(tmp_path / f"{n}.npy") for n in ("uint8", "float64"))
    assert whole_bytes(u8) == whole_bytes(f64) == 50 * 4 * (4 + lazy.WHOLE_EXTRA)  # the file's pages handed back

    def no_room(*args, **kwargs):
        raise MemoryError("Unable to allocate 8.76 GiB")

    monkeypatch.setattr(vaekit.data, "build_dataset", no_room)
    with pytest.raises(VaekitError, match=r"too big to load whole .*8.76 GiB\); data.in_memory=false streams") as e:
        load_dataset(str(tmp_path / "uint8.npy"))
    assert e.value.key == "data.in_memory"
    (tmp_path / "t.csv").write_text("a,b\n" + "1,2\n" * 5)
    with pytest.raises(VaekitError, match=r"8.76 GiB\)$"):  # a table is not streamed: no such advice
        load_dataset(str(tmp_path / "t.csv"))
    monkeypatch.setattr(npz, "usable_memory", lambda: 100)
    with pytest.raises(VaekitError, match=r"to read it whole; data\.in_memory=false streams it"):
        npz.read_numpy(tmp_path / "float64.npy")


def test_prepare_data_says_once_that_auto_streams(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "x.npy", RNG.random((40, 3)))
    cfg = RunConfig()
    cfg.data.spec = str(tmp_path / "x.npy")
    monkeypatch.setattr(limits, "cgroup_free", lambda: 1000)
    for _ in range(2):
        assert isinstance(prepare_data(cfg, stream=True)[0].train.x, lazy.LazyArray)
    assert capsys.readouterr().err.count("data.in_memory=auto streams it") == 1
