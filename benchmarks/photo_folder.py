"""A photo folder as it comes: mixed sizes and modes, one corrupt file, N and then 10N files, peak memory.

1. Cuts scikit-learn's two sample photographs (427x640) into ``--n`` crops of random sizes (16..160 pixels a
   side) at random places, saved as PNG or JPEG, some made grey, RGBA or palette images; adds one corrupt file.
2. Trains ``vaekit train --data FOLDER --set data.image_size=32 --set data.skip_unreadable=true`` for one epoch
   on it, streamed (data.in_memory=false: decoded in loader workers) and cached (data.cache=true as well: the
   first pass writes a uint8 cache the epoch then reads a batch at a time), sampling the memory of the whole
   process tree all along, and checks that the corrupt file is listed in the run's skipped.json; and, for
   comparison, with data.in_memory left at auto, which loads a folder whole (decoded in the training process)
   while it fits in memory.
3. Makes the folder 10x larger (more crops) and trains again; the peak memory should not grow with the folder.
Prints markdown tables and writes benchmarks/results/photo_folder.json.

    nice .venv/bin/python benchmarks/photo_folder.py             # 3,000 and 30,000 files: about 10 min
    nice .venv/bin/python benchmarks/photo_folder.py --n 300 --json /tmp/pf.json   # a smoke run

Its files go to a folder it makes in --dir (default /tmp), vaekit-photo-folder, marked as its own: a later run
empties only a folder that holds that mark.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import common
import numpy as np
import runner
from PIL import Image
from scale import MEMORY_NOTE, gib, measure
from sklearn.datasets import load_sample_images

MODEL = [
    "--model",
    "mlp",
    "--hidden",
    "256",
    "--latent-dim",
    "16",
    "--batch-size",
    "128",
    "--quiet",
    "--epochs",
    "1",
    "--likelihood",
    "cbernoulli",
    "--set",
    "data.standardize=false",
    "--set",
    "train.checkpoint_minutes=0",
]
SETTINGS = ["--set", "data.image_size=32", "--set", "data.skip_unreadable=true"]
# data.in_memory=auto loads a folder whole while its float32 copies fit in half the free memory
PATHS = {
    "streamed": ["--set", "data.in_memory=false"],
    "cached": ["--set", "data.in_memory=false", "--set", "data.cache=true"],
    "auto": [],
}
OWN, MARK = "vaekit-photo-folder", ".vaekit-photo-folder"  # the folder the script makes in --dir, and its mark


def make_folder(folder: Path, start: int, stop: int, seed: int) -> None:
    """Crops ``start``..``stop`` of the sample photographs into ``folder``, of random sizes, modes and formats."""
    photos = load_sample_images().images  # two (427, 640, 3) uint8
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, stop):
        src = photos[rng.integers(2)]
        h, w = rng.integers(16, 161, 2)
        top, left = rng.integers(0, src.shape[0] - h), rng.integers(0, src.shape[1] - w)
        im = Image.fromarray(src[top : top + h, left : left + w])
        kind = rng.random()
        if kind < 0.5:
            im.save(folder / f"{i:06d}.jpg", quality=90)
            continue
        im = (
            im.convert("L")
            if kind < 0.6
            else im.convert("RGBA")
            if kind < 0.65
            else im.convert("P", palette=Image.Palette.ADAPTIVE)
            if kind < 0.7
            else im
        )
        im.save(folder / f"{i:06d}.png")


def train(folder: Path, path: str, out: Path, cache: Path) -> dict:
    """One epoch of ``vaekit train`` on ``folder`` ('streamed' or 'cached'): seconds, peak memory, skipped files."""
    shutil.rmtree(cache, ignore_errors=True)
    extra = ["--set", f"data.data_dir={cache}"] if path == "cached" else []
    r = measure(
        ["train", "--data", str(folder), *SETTINGS, *PATHS[path], *extra, *MODEL, "--out", str(out), "--overwrite"]
    )
    r["skipped"] = json.loads((out / "skipped.json").read_text())
    r["mode"] = json.loads((out / "config.json").read_text())["data"]["mode"]
    return r


def parse_args() -> argparse.Namespace:
    """The command line: --n checked (a split needs 3 readable files) before any file is made."""
    p = runner.parser(__doc__)
    p.add_argument("--n", type=int, default=3000, help="files in the small folder (the large one has 10x; >= 3)")
    p.add_argument("--dir", default="/tmp", help=f"where the script makes its own folder, {OWN}, for its files")
    p.add_argument("--json", help="the result (default: benchmarks/results/photo_folder.json)")
    args = p.parse_args()
    if args.n < 3:
        p.error(f"--n {args.n}: the small folder needs at least 3 photos (train, validation and test)")
    common.budget(p, args, "n")
    return args


def own_folder(parent: Path) -> Path:
    """``parent``/OWN, empty and marked as this script's: a folder an earlier run made (it holds the mark) is
    emptied; any other folder of that name is left alone, and the run stops."""
    root = parent / OWN
    if root.exists() and not (root / MARK).is_file():
        raise SystemExit(f"{root} exists and is not a folder this benchmark made (no {MARK}): move it or pick --dir")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARK).write_text("made by benchmarks/photo_folder.py, which empties it on its next run\n")
    return root


def main() -> None:
    args = parse_args()
    root = own_folder(Path(args.dir))
    folder = root / "photos"
    rows, results = [], {}
    for n in (args.n, 10 * args.n):
        start = time.perf_counter()
        make_folder(folder, len(list(folder.glob("0*"))) if folder.exists() else 0, n, seed=n)
        (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
        print(f"{folder}: {n + 1:,} files in {time.perf_counter() - start:.0f} s", flush=True)
        for path in PATHS:
            r = train(folder, path, root / f"run-{path}-{n}", root / "cache")
            results[(path, n)] = r
            listed = ", ".join(Path(f["file"]).name for f in r["skipped"]["files"])
            rows.append([f"{n + 1:,}", path, round(r["wall"]), gib(r["rss"]), gib(r["pss"]), r["mode"], listed])
    table = common.table(
        "One epoch of an MLP VAE on a folder of photo crops of mixed sizes and modes, resized to 32x32",
        ["files", "data path", "seconds", "peak RSS (sum)", "peak PSS (sum)", "mode", "skipped.json lists"],
        rows,
    )
    report(table, results, args)


def report(table: dict, results: dict[tuple[str, int], dict], args: argparse.Namespace) -> None:
    """The headline (peak PSS of the N and 10N folders per data path) and the notes; written with ``table``."""
    n = args.n
    growth = {path: results[(path, 10 * n)]["pss"] / results[(path, n)]["pss"] for path in PATHS}
    pss = {key: gib(r["pss"]) for key, r in results.items()}
    headline = (
        f"{n + 1:,} -> {10 * n + 1:,} photo files resized to 32x32: peak PSS "
        f"{pss['streamed', n]} -> {pss['streamed', 10 * n]} streamed ({growth['streamed']:.2f}x), "
        f"{pss['cached', n]} -> {pss['cached', 10 * n]} cached "
        f"({growth['cached']:.2f}x); the corrupt file skipped and listed"
    )
    notes = [
        "Crops of scikit-learn's two sample photographs (china.jpg, flower.jpg), 16..160 pixels a side at "
        "random, half JPEG, the rest PNG (some grey, RGBA or palette), plus corrupt.jpg (not an image).",
        "vaekit train --data FOLDER --set data.image_size=32 --set data.skip_unreadable=true, with "
        "data.in_memory=false: decoded in 2 loader workers each epoch ('streamed'), or with data.cache=true "
        "too: the first pass decodes every file in 2 loader workers into a uint8 cache, which the epoch then "
        "reads a batch at a time ('cached'); an MLP VAE "
        "(hidden 256, z 16, batch 128, continuous Bernoulli), 1 epoch, OMP_NUM_THREADS=1.",
        "'auto': data.in_memory left at auto (the default), which loads both folders whole here (their float32 "
        "copies fit in half of the free memory), decoded in the training process: its memory grows with the "
        "folder, up to that half, past which it streams.",
        "The folder's 10x version adds crops to the same folder; each cached run starts without a cache.",
        MEMORY_NOTE,
    ]
    common.write("photo_folder", "A photo folder as it comes", headline, [table], notes, out=args.json)


if __name__ == "__main__":
    runner.entry(main)
