"""Every bad input refused cleanly: one line naming the problem, exit code 2, no traceback, nothing written.

The corpus is made on the spot in tmp_path: damaged data files, damaged copies of one tiny trained run,
and nonsense flags for every command.
"""

from __future__ import annotations

import gzip
import json
import pickle
import re
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import vaekit
from vaekit.cli import main

from .conftest import train_argv

PICKLE = pickle.dumps({"harmless": [1, 2, 3]})  # a pickle must be refused, never loaded


def idx(shape=(6, 3, 3), code=0x08) -> bytes:
    head = b"\x00\x00" + bytes([code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return head + bytes(int(np.prod(shape)) * np.dtype(">u1" if code == 0x08 else ">f4").itemsize)


def png_header(w: int, h: int) -> bytes:
    """A PNG whose IHDR declares w x h pixels (valid CRC): Pillow's bomb check must refuse it on open."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunks = [ihdr, b"IDAT" + zlib.compress(b""), b"IEND"]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks
    )


def corrupt_gz() -> bytes:
    z = bytearray(gzip.compress(idx((50, 4, 4)) + bytes(range(256)) * 4))
    z[12:20] = b"\xff" * 8
    return bytes(z)


CORPUS = {  # name -> (bytes, or a callable writing the file or folder at that path; needle of `train --data name`)
    "trunc-images-idx3-ubyte": (idx()[:-5], "truncated"),
    "trunc-images-idx3-ubyte.gz": (gzip.compress(idx())[:-9], "trunc-images-idx3-ubyte.gz"),
    "header-images-idx3-ubyte": (idx()[:7], "header"),
    "magic-images-idx3-ubyte": (b"\x12\x34" + idx()[2:], "magic"),
    "dtype-images-idx3-ubyte": (b"\x00\x00\x07\x03" + idx()[4:], "dtype code"),
    "zerodim-images-idx3-ubyte": (b"\x00\x00\x08\x00", "0 dimensions"),
    "huge-images-idx3-ubyte": (b"\x00\x00\x08\x03" + struct.pack(">3I", 1 << 31, 1 << 31, 1), "limit"),
    "corrupt-images-idx3-ubyte.gz": (corrupt_gz(), "corrupt-images-idx3-ubyte.gz"),
    "trail-images-idx3-ubyte": (idx() + b"junk", "more data"),
    "trail-images-idx3-ubyte.gz": (gzip.compress(idx() + b"junk"), "more data"),
    "onedim-images-idx1-ubyte": (idx((6,)), "shape"),
    "nanf-images-idx3-ubyte": (idx((6, 3, 3), 0x0D)[:-4] + b"\x7f\xc0\x00\x00", "nan"),
    "obj.npy": (lambda p: np.save(p, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True), "obj.npy"),
    "obj.npz": (lambda p: np.savez(p, x=np.array([{"a": 1}] * 4, dtype=object)), "obj.npz"),
    "nan.npy": (lambda p: np.save(p, np.full((10, 4), np.nan, dtype=np.float32)), "nan"),
    "inf.npy": (lambda p: np.save(p, np.array([[np.inf] * 4] * 10, dtype=np.float64)), "infinite"),
    "huge.npy": (lambda p: np.save(p, np.full((10, 4), -1e39)), "40 values beyond float32's range (+-3.4e38)"),
    "oned.npy": (lambda p: np.save(p, np.zeros(10, dtype=np.float32)), "shape"),
    "fived.npy": (lambda p: np.save(p, np.zeros((4, 2, 2, 2, 2), dtype=np.float32)), "shape"),
    "noitems.npy": (lambda p: np.save(p, np.zeros((0, 4), dtype=np.float32)), "no data"),
    "strings.npy": (lambda p: np.save(p, np.array([["a", "b"]] * 4)), "not numeric"),
    "real.npy": (lambda p: np.save(p, np.linspace(-3, 3, 40, dtype=np.float32).reshape(10, 4)), "support"),
    "two.npy": (lambda p: np.save(p, np.zeros((2, 4), dtype=np.float32)), "need at least 3"),
    "trunc.npy": (lambda p: (np.save(p, np.zeros((10, 4))), p.write_bytes(p.read_bytes()[:-30])), "trunc.npy"),
    "empty.npz": (lambda p: np.savez(p), "no arrays"),
    "pickle.npy": (PICKLE, "pickle"),
    "pickle.pkl": (PICKLE, "unsupported"),
    "missing.npy": (None, "missing.npy"),  # never written
    "wrongshape.npy": (lambda p: np.save(p, np.zeros((20, 3, 3), dtype=np.float32)), None),
    "empty.csv": (b"", "empty"),
    "blank.csv": (b"\n \n,,\n", "empty"),
    "text.csv": (b"a,b\n0.1,0.2\n0.3,oops\n", "oops"),
    "ragged.csv": (b"0.1,0.2,0.3\n0.4,0.5\n", "line 2"),
    "header.csv": (b"a,b,c\n", "no data rows"),
    "nul.csv": (b"a,b\n0,\x001\n1,2\n3,4\n", "non-numeric value '\\x001' on line 2"),  # a binary file's NUL
    "huge.csv": (b"a,b\n0.1,0.2\n1e39,0.4\n0.5,0.6\n", "value 1e+39 on line 3"),
    "nolabel.csv": (b"a,label\n0.1,0\n0.2,\n0.3,1\n", "missing label '' on line 3"),
    "mixed": (
        lambda p: [
            Image.new(m, s).save(p / f"{i}.png")
            for i, (m, s) in enumerate([("L", (4, 4)), ("RGB", (5, 4)), ("RGBA", (4, 4))])
        ],
        "differs",
    ),
    "broken": (
        lambda p: ((p / "a.png").write_bytes(png_header(4, 4)[:20]), Image.new("L", (4, 4)).save(p / "b.png")),
        "a.png",
    ),
    "bomb": (lambda p: (p / "bomb.png").write_bytes(png_header(20000, 20000)), "decompressionbomb"),
    "noimages": (lambda p: (p / "readme.txt").write_text("nothing here"), "no image files"),
    "bad.toml": (b"[train\nlr = ", None),
    "unknown.toml": (b"[train]\nbogus_key = 1\n", None),
    "wrongtype.toml": (b"[model]\nlatent_dim = 'three'\n", None),
    "hugeint.toml": (b"[train]\nepochs = " + b"9" * 5000 + b"\n", None),
}


def make_corpus(root: Path) -> None:
    for name, (make, _) in CORPUS.items():
        path = root / name
        if callable(make):
            if "." not in name:
                path.mkdir()
            make(path)
        elif make is not None:
            path.write_bytes(make)


def edit_config(run: Path, **changes) -> None:
    cfg = json.loads((run / "config.json").read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        (cfg[section] if name else cfg)[name or section] = value
    (run / "config.json").write_text(json.dumps(cfg))


def damage_weights(run: Path, nan: bool) -> None:
    """Flip the last bytes of model.safetensors' data, or write a NaN into its first weight (without a checksum,
    as earlier files were written)."""
    path = run / "model.safetensors"
    if not nan:
        data = bytearray(path.read_bytes())
        data[-4:] = bytes(b ^ 0x55 for b in data[-4:])
        path.write_bytes(bytes(data))
        return
    tensors = load_file(path)
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].clone().index_fill_(-1, torch.tensor([0]), float("nan"))
    save_file(tensors, path)


T, R = "{tmp}", "{tmp}/run"
M, C, CK = "model.safetensors", "config.json", "checkpoint.safetensors"
DAMAGE = {  # name -> (what it does to the copy of the trained run in tmp/run, needle of the command in READS)
    "model-garbage": (lambda r: (r / M).write_bytes(b"not safetensors at all"), M),
    "model-truncated": (lambda r: (r / M).write_bytes((r / M).read_bytes()[:200]), M),
    "model-pickle": (lambda r: (r / M).write_bytes(PICKLE), M),
    "model-missing": (lambda r: (r / M).unlink(), M),
    "model-is-folder": (lambda r: ((r / M).unlink(), (r / M).mkdir()), M),
    "model-flipped": (lambda r: damage_weights(r, nan=False), "checksum mismatch"),
    "model-nan": (lambda r: damage_weights(r, nan=True), "NaN or infinite"),
    "config-missing": (lambda r: (r / C).unlink(), C),
    "config-invalid": (lambda r: (r / C).write_text("{not json"), C),
    "config-list": (lambda r: (r / C).write_text("[1, 2]"), C),
    "config-unknown-key": (lambda r: edit_config(r, model__bogus=1), "bogus"),
    "config-unknown-section": (lambda r: edit_config(r, extras={}), "extras"),
    "config-wrong-type": (lambda r: edit_config(r, model__latent_dim="three"), "latent_dim"),
    "config-huge-int": (lambda r: (r / C).write_text('{"train": {"epochs": ' + "9" * 5000 + "}}"), C),
    "config-is-folder": (lambda r: ((r / C).unlink(), (r / C).mkdir()), C),
    "config-bad-value": (lambda r: edit_config(r, model__net="transformer"), "model.net"),
    "config-negative": (lambda r: edit_config(r, model__hidden=[-16]), "model.hidden"),
    "config-shape": (lambda r: edit_config(r, model__latent_dim=5), M),
    "checkpoint-pickle": (lambda r: (r / CK).write_bytes(PICKLE), CK),
    "checkpoint-missing": (lambda r: (r / CK).unlink(), CK),
    "checkpoint-is-weights": (lambda r: shutil.copy(r / M, r / CK), "checkpoint"),
    "metrics-missing": (lambda r: (r / "metrics.csv").unlink(), "metrics.csv"),
    "metrics-garbage": (lambda r: (r / "metrics.csv").write_text("epoch,train_loss\n1,abc\n"), "metrics.csv"),
}
READS = {  # the part of the run a damage name starts with -> the command that reads it
    "model": ["sample", R, "--out", f"{T}/s.png"],
    "config": ["sample", R, "--out", f"{T}/s.png"],
    "checkpoint": ["train", "--resume", R, "--epochs", "2"],
    "metrics": ["curves", R],
}

TRAIN = ["train", "--data", f"{T}/tiny.npy", "--out", f"{T}/out", "--quiet"]
BERNOULLI = {"real.npy": ["--likelihood", "bernoulli"]}  # real values are refused by the bernoulli likelihood
CASES = [
    (f"data:{name}", [*TRAIN[:2], f"{T}/{name}", *TRAIN[3:], *BERNOULLI.get(name, [])], needle, None)
    for name, (_, needle) in CORPUS.items()
    if needle
]
FLAGS = [  # train flags -> needle
    (["--epochs", "0"], "train.epochs"),
    (["--epochs", "two"], "train.epochs"),
    (["--batch-size", "-3"], "train.batch_size"),
    (["--latent-dim", "0"], "model.latent_dim"),
    (["--hidden", "0"], "model.hidden"),
    (["--hidden", "-4"], "model.hidden"),
    (["--hidden", "a,b"], "model.hidden"),
    (["--channels", "0", "--model", "conv"], "model.channels"),
    (["--lr", "-1"], "train.lr"),
    (["--lr", "fast"], "train.lr"),
    (["--lr", "nan"], "train.lr"),
    (["--lr", "inf"], "train.lr"),
    (["--beta", "-1"], "train.beta"),
    (["--model", "transformer"], "--model 'transformer': expected a network"),
    (["--likelihood", "poisson"], "model.likelihood"),
    (["--device", "tpu"], "train.device"),
    (["--precision", "fp8"], "train.precision"),
    (["--binarize", "maybe"], "data.binarize"),
    (["--limit", "0"], "limit"),
    (["--seed", "-1"], "seed"),
    (["--warmup-epochs", "-2"], "train.warmup_epochs"),
    (["--patience", "1.5"], "train.patience"),
    (["--set", "nonsense=1"], "nonsense"),
    (["--set", "train.lr"], "--set"),
    (["--set", "data.val_fraction=1.5"], "data.val_fraction"),
    (["--set", "data.test_fraction=0"], "each split keeps at least one item"),
    (["--set", "model.scale=-2"], "model.scale"),
    (["--set", "train.lr_schedule=weekly"], "train.lr_schedule"),
    (["--no-such-flag"], "no-such-flag"),
    (["--config", f"{T}/missing.toml"], "missing.toml"),
    (["--config", f"{T}/bad.toml"], "bad.toml"),
    (["--config", f"{T}/unknown.toml"], "unknown.toml"),
    (["--config", f"{T}/wrongtype.toml"], "wrongtype.toml"),
    (["--config", f"{T}/hugeint.toml"], "hugeint.toml"),
    (["--config", f"{T}/mixed"], "mixed"),
]
CASES += [("train " + " ".join(f).replace(T + "/", ""), TRAIN + f, needle, None) for f, needle in FLAGS]
NEEDS = {"sample": ["--out", f"{T}/s.png"], "reconstruct": ["--out", f"{T}/r.png"], "explore": ["--port", "0"]}
VERBS = [*NEEDS, "evaluate", "interpolate", "traverse", "latent-map", "curves", "report", "export"]  # read a run
RUN_CASES = [  # (damage, argv, needle)
    (None, ["train", "--data", f"{T}/tiny.npy", "--out", R, "--quiet"], "--overwrite"),
    (None, ["train", "--resume", f"{T}/norun"], "norun"),
    (None, ["train", "--data", f"{T}/tiny.npy", "--nproc", "3", "--out", f"{T}/out"], "multiple of the 3 processes"),
    (None, ["train", "--data", f"{T}/tiny.npy", "--nproc", "2", "--device", "cuda", "--out", f"{T}/o"], "no CUDA"),
    (None, ["train", "--resume", R, "--latent-dim", "5"], "model.latent_dim: a resumed run keeps what its"),
    (None, ["train", "--resume", R, "--seed", "3"], "train.seed: a resumed run keeps what its checkpoint rests on"),
    (None, ["train", "--data", f"{T}/tiny.npy", "--out", f"{T}/out", "--mlflow", "bogus://x"], "store bogus://x"),
    (None, ["train", "--data", f"{T}/tiny.npy", "--out", f"{T}/out", "--seed", "-1"], "train.seed must be"),
    (None, ["train", "--resume", R, "--set", "data.limit=20"], "data.limit: a resumed run keeps"),
    (None, ["train", "--resume", f"{T}/pickle.pkl"], "pickle.pkl"),
    (None, ["train", "--resume", R, "--epochs", "0"], "train.epochs"),
    *[(d, READS[d.split("-")[0]], needle) for d, (_, needle) in DAMAGE.items()],
    *[(None, [verb, f"{T}/norun", *NEEDS.get(verb, [])], "norun") for verb in VERBS],  # no run there at all
    (None, ["sample", R, "--n", "0", "--out", f"{T}/s.png"], "--n"),
    (None, ["sample", R, "--n", "-1", "--out", f"{T}/s.png"], "--n"),
    (None, ["sample", R, "--out", f"{T}/s.gif"], "--out"),
    (None, ["sample", R, "--label", "1", "--out", f"{T}/s.png"], "not conditional"),
    (None, ["anomaly", R, "--score", "neg_elbo", "--iw-samples", "7", "--out", f"{T}/a.csv"], "cannot take effect"),
    (None, ["sample", R, "--sampler", "gmm", "--temperature", "0.5", "--out", f"{T}/s.png"], "no temperature"),
    (None, ["sample", R, "--temperature", "1,0.5", "--out", f"{T}/s.png"], "per resolution takes a deep run"),
    (None, ["latent-map", R, "--limit", "1"], "2 or more"),
    (None, ["anomaly", R, "--llr-k", "0", "--out", f"{T}/a.csv"], "--llr-k"),
    (
        None,
        ["anomaly", R, "--score", "llr", "--out", f"{T}/a.csv"],
        "needs a hierarchical model (family deep or ladder); this VAE has 1 latent level(s) (--score)",
    ),
    (None, ["sample", R, "--out", f"{T}/tiny.npy/s.png"], "a file stands where a folder"),
    (None, ["train", "--data", f"{T}/tiny.npy", "--out", f"{T}/tiny.npy/run", "--quiet"], "cannot write there"),
    (None, ["sample", R, "--temperature", "nan", "--out", f"{T}/s.png"], "--temperature"),
    (None, ["sample", R, "--n", "many", "--out", f"{T}/s.png"], "--n"),
    (None, ["reconstruct", R, "--n", "0", "--out", f"{T}/r.png"], "--n"),
    (None, ["reconstruct", R, "--split", "holdout", "--out", f"{T}/r.png"], "--split"),
    (None, ["reconstruct", R, "--data", f"{T}/wrongshape.npy", "--out", f"{T}/r.png"], "wrongshape.npy"),
    (None, ["reconstruct", R, "--data", f"{T}/nan.npy", "--out", f"{T}/r.png"], "nan"),
    (None, ["evaluate", R, "--data", f"{T}/wrongshape.npy"], "wrongshape.npy"),
    (None, ["evaluate", R, "--iw-samples", "0"], "--iw-samples"),
    (None, ["evaluate", R, "--limit", "0"], "--limit"),
    (None, ["interpolate", R, "--data", f"{T}/wrongshape.npy"], "wrongshape.npy"),
    (None, ["interpolate", R, "--steps", "1"], "--steps must be >= 2"),
    (None, ["traverse", R, "--range", "0"], "--range must be a finite number > 0"),
    (None, ["latent-map", R, "--grid", "1"], "--grid must be >= 2"),
    (None, ["interpolate", R, "--items", "0,x"], "--items"),
    (None, ["interpolate", R, "--items", "0,999"], "--items"),
    (None, ["interpolate", R, "--out", f"{T}/i.txt"], "--out"),
    (None, ["traverse", R, "--n-dims", "0"], "--n-dims"),
    (None, ["traverse", R, "--dims", "7"], "--dims"),
    (None, ["traverse", R, "--item", "999"], "--item"),
    (None, ["traverse", R, "--steps", "0"], "--steps"),
    (None, ["traverse", R, "--range", "nan"], "--range"),
    (None, ["latent-map", R, "--grid", "0"], "--grid"),
    (None, ["latent-map", R, "--limit", "-5"], "--limit"),
    (None, ["report", R, "--data", f"{T}/wrongshape.npy"], "wrongshape.npy"),
    (None, ["train", "--resume", R, "--set", f"data.spec={T}/wrongshape.npy"], "wrongshape.npy"),
    (None, ["report", R, "--iw-samples", "0"], "--iw-samples"),
    (None, ["report", R, "--limit", "0"], "--limit"),
    (None, ["export", R, "--part", "middle"], "--part"),
    (None, ["explore", R, "--port", "70000"], "--port"),
    (None, ["explore", R, "--data", f"{T}/wrongshape.npy", "--port", "0"], "wrongshape.npy"),
    (None, ["frobnicate"], "frobnicate"),
]
CASES += [(f"{a[0]}:{d or ' '.join(a[2:4]).replace(T + '/', '')}", a, n, d) for d, a, n in RUN_CASES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny valid run (40 4x4 binary images, MLP, latent 3, one epoch), trained once per module."""
    root = tmp_path_factory.mktemp("trained")
    x = (np.random.default_rng(0).random((40, 4, 4)) > 0.5).astype(np.float32)  # (N, H, W) binary
    np.save(root / "tiny.npy", x)
    flags = ["--model", "mlp", "--hidden", "16", "--latent-dim", "3", "--batch-size", "16"]
    assert main(train_argv(root / "tiny.npy", root / "run", *flags)) == 0
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("argv,needle,damage", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(argv, needle, damage, trained, tmp_path, capsys):
    make_corpus(tmp_path)
    shutil.copy(trained / "tiny.npy", tmp_path / "tiny.npy")
    shutil.copytree(trained / "run", tmp_path / "run")
    if damage:
        DAMAGE[damage][0](tmp_path / "run")
    before, threads = snapshot(tmp_path), torch.get_num_threads()
    code = main([a.format(tmp=tmp_path) for a in argv])
    torch.set_num_threads(threads)  # explore pins one thread before it checks its input
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error:"), err
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in out + err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def test_nothing_users_hand_over_is_executed():
    """No pickle loading anywhere in the package (np.load without pickles, torch.load only with torch's
    restricted unpickler: a user's Inception weights file); Pillow's bomb limit kept."""
    text = "\n".join(p.read_text() for p in Path(vaekit.__file__).parent.rglob("*.py"))
    for banned in ("import pickle", "joblib", "allow_pickle=True"):
        assert banned not in text, banned
    assert not re.search(r"(MAX_IMAGE_PIXELS|LOAD_TRUNCATED_IMAGES)\s*=[^=]", text)  # read (to say it), never set
    lines = text.splitlines()
    assert all("allow_pickle=False" in line for line in lines if "np.load(" in line)
    assert all("weights_only=True" in line for line in lines if "torch.load(" in line)


@pytest.mark.parametrize(
    "text",
    ['{"classes": null}', '{"classes": "abc"}', '{"classes": [1, 2]}', '["a", "b"]', "[" * 100_000 + "]" * 100_000],
    ids=["null", "text", "numbers", "list", "nested"],
)
def test_a_classes_json_that_lists_no_names_as_text_is_one_line(text, trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    (tmp_path / "run" / "classes.json").write_text(text)
    with pytest.raises(vaekit.VaekitError, match=r"classes\.json: (cannot read the class names|not valid JSON)") as e:
        assert vaekit.load_run(tmp_path / "run").classes is None
    assert len(str(e.value).splitlines()) == 1
    (tmp_path / "run" / "classes.json").write_text('{"classes": ["a", "b"]}')
    assert vaekit.load_run(tmp_path / "run").classes == ["a", "b"]


def _items(n: int = 3) -> torch.Tensor:
    """n items of the trained run's shape (1, 4, 4)."""
    return torch.rand(n, 1, 4, 4)


IN_MEMORY = {  # items handed to fit or to a run method -> the one line they give (both, unless only the run's)
    "sparse": (lambda: _items().to_sparse(), r"a sparse tensor \(sparse_coo\): pass x\.to_dense\(\)$"),
    "meta": (lambda: torch.empty(3, 1, 4, 4, device="meta"), r"a tensor on the meta device holds no data"),
    "quantized": (
        lambda: torch.quantize_per_tensor(_items(), 1 / 255, 0, torch.quint8),
        r"a quantized tensor \(quint8\): pass x\.dequantize\(\)$",
    ),
    "complex": (lambda: _items().to(torch.complex64), r"dtype complex64 is not numeric$"),
    "masked": (
        lambda: np.ma.masked_array(_items().numpy(), mask=np.arange(48).reshape(3, 1, 4, 4) == 20),
        r"1 masked value \(gaps\), the first in item 1: fill them",
    ),
    "huge": (lambda: (_items().double() + 1) * 1e39, r"48 values beyond float32's range \(\+-3\.4e38\), the first "),
    "pair": (lambda: (_items().numpy(), np.arange(3)), r"an \(x, y\) pair is not taken here: pass the items x, and"),
    "ragged": (
        lambda: [np.zeros((1, 4, 4)), np.zeros((1, 4, 2))],
        r"the items have different shapes: item 1 \(1, 4, 2\)",
    ),
    "none": (lambda: [_items(1)[0], None], r"item 1 is None$"),
    "loader": (
        lambda: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_items())),
        r"expected a numpy array, a torch tensor, a numeric data frame or a list of items of one shape, got "
        "DataLoader$",
    ),
}


@pytest.mark.parametrize("name", list(IN_MEMORY))
def test_items_in_memory_that_cannot_be_read_are_one_line(name, trained):
    """Tracebacks (sparse, meta, quantized, a pair or ragged list to encode), a mask lost, overflow as NaN."""
    make, needle = IN_MEMORY[name]
    run = vaekit.load_run(trained / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow in the cast to float32
        with pytest.raises(vaekit.VaekitError, match=r"^data items: " + needle) as e:
            run.encode(make())
        assert len(str(e.value).splitlines()) == 1
        if name not in ("pair", "ragged", "none", "loader"):  # what fit takes: read as run methods read it
            net = vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli")
            with pytest.raises(vaekit.VaekitError, match=r"^data: " + needle):
                vaekit.fit(net, make(), epochs=1, progress=False, pictures=False)
    if name == "masked":  # no masked cell: taken as its values
        x = _items()
        assert torch.equal(run.encode(np.ma.masked_array(x.numpy())).mean, run.encode(x).mean)
    if name == "none":  # a list of tensors of any float width, needing grad or not, is read as their stack
        x = _items().bfloat16()
        for items in (list(x), [t.float().requires_grad_() for t in x]):
            assert torch.equal(run.encode(items).mean, run.encode(x.float()).mean)
