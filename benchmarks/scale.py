"""Data larger than memory: one epoch over a >= 6 GB memory-mapped .npy, peak RSS, and 1 vs 2 processes.

1. Writes an (N, 28, 28) uint8 .npy of ``--gb`` GB in chunks (never whole in memory): Fashion-MNIST images
   drawn at random, shifted by up to 2 pixels and given noise.
2. Trains an MLP VAE for one epoch over it with data.in_memory=false (memory-mapped, read in loader
   workers), sampling the resident memory of the whole process tree (trainer + loader workers) all along.
3. Trains on the first ``--compare`` items with 1 and then 2 processes (torchrun, gloo) for samples/s.
Prints a markdown table and writes it as JSON (``--json``, default benchmarks/results/scale.json, or
scale_verbs.json with ``--verbs``) with the command, the machine, torch, the commit and the date; the file is
deleted afterwards unless --keep.

With ``--verbs`` it instead trains a model on the file's first 60,000 items and runs the verbs that read data
over the whole file, streamed: ``evaluate`` (the test split, ``--limit`` 20,000, K = 100) and ``encode`` (every
item), with the peak memory of each.

    .venv/bin/python benchmarks/scale.py                      # 6 GB; about 25 min on 2 busy CPU cores
    .venv/bin/python benchmarks/scale.py --gb 0.2 --compare 50000   # a smoke run
    .venv/bin/python benchmarks/scale.py --verbs              # evaluate and encode over 6 GB
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import common
import numpy as np
import runner

from vaekit.data.idx import read_idx

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
# Bernoulli on dynamically binarised pixels, as before likelihood auto: this measures the data path, and auto's
# discretized logistic mixture for 8-bit images makes each step several times dearer on a CPU
MODEL = [
    "--model",
    "mlp",
    "--hidden",
    "256",
    "--latent-dim",
    "16",
    "--batch-size",
    "256",
    "--quiet",
    "--likelihood",
    "bernoulli",
    "--set",
    "data.in_memory=false",
    "--set",
    "data.val_fraction=0.001",
    "--set",
    "data.test_fraction=0.001",
    "--set",
    "train.checkpoint_minutes=0",
]


def make_data(path: Path, gb: float, chunk: int = 65536, seed: int = 0) -> int:
    """Write ``gb`` GB of (N, 28, 28) uint8 items to ``path`` chunk by chunk; returns N."""
    src = read_idx(FASHION)  # (60000, 28, 28) uint8
    rng = np.random.default_rng(seed)
    noise = rng.integers(-16, 17, (4096, 28, 28)).astype(np.int16)  # a bank of noise images
    n = int(gb * 1e9) // (28 * 28)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": (n, 28, 28)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            x = src[rng.integers(0, len(src), m)].astype(np.int16)  # (m, 28, 28)
            dy, dx = rng.integers(-2, 3, 2)
            x = np.roll(x, (int(dy), int(dx)), axis=(1, 2)) + noise[rng.integers(0, len(noise), m)]
            f.write(np.clip(x, 0, 255).astype(np.uint8).tobytes())
    return n


def tree_memory(pid: int) -> tuple[int, int]:
    """Bytes of ``pid`` and all its descendants: RSS summed (shared pages counted in each process: an upper
    bound) and PSS summed (shared pages split between their users)."""
    parent, rss = {}, {}
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": state, ppid, ...
            parent[int(d.name)], rss[int(d.name)] = int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    return sum(rss.get(p, 0) for p in tree), sum(_pss(p) for p in tree)


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return int(next(line for line in text.splitlines() if line.startswith("Pss:")).split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return 0


def train(args: list[str], out: Path) -> dict:
    """Run ``vaekit train`` with ``args``; returns its metrics row, wall seconds and the tree's peak RSS."""
    r = measure(["train", *args, "--out", str(out), "--overwrite"])
    r["row"] = common.metrics_rows(out)[-1]
    return r


def measure(argv: list[str]) -> dict:
    """Run ``vaekit argv``; returns its wall seconds and the peak RSS and PSS of its process tree."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", *argv], env=env)
    peak = [0, 0]

    def watch() -> None:
        while proc.poll() is None:
            peak[:] = [max(a, b) for a, b in zip(peak, tree_memory(proc.pid))]
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if proc.wait() != 0:
        raise SystemExit(f"vaekit failed ({proc.returncode}): {' '.join(argv)}")
    watcher.join()
    return {"wall": time.perf_counter() - start, "rss": peak[0], "pss": peak[1]}


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


MEMORY_NOTE = (
    "Peak memory sampled every 0.2 s over the vaekit process tree (trainers, loader workers): RSS "
    "summed (shared pages counted in each process: an upper bound) and PSS summed (shared pages split "
    "between their users)."
)


def verbs(data: Path, folder: Path, n: int, args: argparse.Namespace) -> None:
    """A model trained on the first 60,000 items; evaluate and encode over the whole file, streamed."""
    small = folder / "small.npy"
    np.save(small, np.load(data, mmap_mode="r")[:60_000])
    train(["--data", str(small), *MODEL, "--epochs", "1"], folder / "run")
    run = str(folder / "run")
    rows = [
        (
            "evaluate --split test --limit 20000 --iw-samples 100",
            measure(["evaluate", run, "--data", str(data), "--limit", "20000", "--iw-samples", "100"]),
        ),
        (
            f"encode --split all ({n:,} items)",
            measure(["encode", run, "--data", str(data), "--out", str(folder / "codes.npy")]),
        ),
    ]
    (folder / "codes.npy").unlink()
    size = f"{data.stat().st_size / 1e9:.1f} GB"
    table = common.table(
        f"evaluate and encode over a {size} memory-mapped uint8 file, streamed",
        [f"verb over the {size} file", "seconds", "peak RSS (sum)", "peak PSS (sum)"],
        [[name, round(r["wall"]), gib(r["rss"]), gib(r["pss"])] for name, r in rows],
    )
    ev, enc = (r["rss"] for _, r in rows)
    headline = (
        f"evaluate (20,000 test items, K = 100) and encode (all {n:,} items) over a {size} file peak at "
        f"{gib(ev)} and {gib(enc)} resident (summed over processes)"
    )
    notes = [
        f"A model (MLP, hidden 256, z 16) trained 1 epoch on the file's first 60,000 items; evaluate and encode "
        f"read the whole {n:,}-item file memory-mapped, OMP_NUM_THREADS=1.",
        MEMORY_NOTE,
    ]
    common.write("scale_verbs", "Verbs over data larger than memory", headline, [table], notes, out=args.json)


def cell(name: str, nproc: int, r: dict, gb: float) -> list:
    """One row of the training table from ``train``'s result ``r``."""
    seconds, rate = float(r["row"]["seconds"]), float(r["row"]["samples_per_s"])
    items = rate * seconds
    return [name, nproc, round(items), round(seconds), round(rate), gib(r["rss"]), gib(r["pss"]), f"{gb:g} GB uint8"]


def report(rows: list, n: int, args: argparse.Namespace) -> None:
    """The training table, the largest process and the < 2 GiB check: printed and written."""
    cells = [cell(name, nproc, r, args.gb) for name, nproc, r in rows]
    table = common.table(
        f"One epoch over a {args.gb:g} GB memory-mapped .npy ({n:,} items), then 1 vs 2 processes",
        ["run", "processes", "items/epoch", "epoch s", "samples/s", "peak RSS (sum)", "peak PSS (sum)", "file"],
        cells,
    )
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    met = "met" if rows[0][2]["rss"] < 2 * 2**30 else "NOT met"
    check = (
        f"largest single process (ru_maxrss of the children): {largest:.2f} GiB; "
        f"one-epoch peak RSS (process tree, summed) < 2 GiB: {met}"
    )
    print("\n" + check)
    headline = (
        f"one epoch over a {args.gb:g} GB file peaks at {gib(rows[0][2]['rss'])} resident (summed over "
        f"processes); 2 processes train {cells[2][4] / cells[1][4]:.2f}x as many samples/s as 1"
    )
    notes = [
        f"An MLP VAE (hidden 256, z 16, batch 256) trained 1 epoch with data.in_memory=false: the .npy is "
        f"memory-mapped and read in {args.workers} loader workers per trainer, OMP_NUM_THREADS=1.",
        "The file: Fashion-MNIST training images drawn at random, shifted by up to 2 pixels, with noise added.",
        f"1 vs 2 processes: the first {args.compare:,} items, the second with torchrun (gloo).",
        MEMORY_NOTE,
        check,
    ]
    common.write("scale", "Data larger than memory", headline, [table], notes, out=args.json)


def main() -> None:
    p = runner.parser(__doc__)
    p.add_argument("--gb", type=float, default=6.0, help="size of the .npy file (uint8 items)")
    p.add_argument("--dir", default="/tmp", help="where the file and the runs go")
    p.add_argument("--compare", type=int, default=400_000, help="items for the 1 vs 2 process comparison")
    p.add_argument("--workers", type=int, default=2, help="loader worker processes per trainer")
    p.add_argument("--keep", action="store_true", help="keep the .npy file")
    p.add_argument("--verbs", action="store_true", help="evaluate and encode over the file instead of training")
    p.add_argument("--json", help="the result (default: benchmarks/results/scale.json, scale_verbs.json for --verbs)")
    args = p.parse_args()
    common.budget(p, args, "gb", "compare")
    folder = Path(args.dir) / "vaekit-scale"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "scale.npy"
    start = time.perf_counter()
    n = make_data(data, args.gb)
    print(
        f"wrote {data}: {n:,} items, {data.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    base = ["--data", str(data), *MODEL, "--set", f"data.workers={args.workers}"]
    if args.verbs:
        try:
            return verbs(data, folder, n, args)
        finally:
            data.unlink() if not args.keep else None
    try:
        rows = [("1 epoch, all items", 1, train([*base, "--epochs", "1"], folder / "full"))]
        for nproc in (1, 2):
            extra = ["--nproc", "2"] if nproc == 2 else []
            rows.append(
                (
                    f"{args.compare:,} items",
                    nproc,
                    train([*base, "--epochs", "1", "--limit", str(args.compare), *extra], folder / f"p{nproc}"),
                )
            )
    finally:
        if not args.keep:
            data.unlink()
    report(rows, n, args)


if __name__ == "__main__":
    runner.entry(main)
