"""Memory at scale, round 6: fit's split of an in-memory array casts each split alone from the array as given
(no full float32 copy beside the split ones), with the very items and split of before; a likelihood's support is
checked a chunk of items at a time, its refusal said as of all of them; the IWAE estimator keeps no chunk's weights
past it and the heap keeps a chunk's freed memory for the next; evaluate reads a .npy's scored split alone."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

import vaekit
from vaekit.core import allocator, objectives
from vaekit.data import item_arrays, prepare
from vaekit.data.item_arrays import support_check
from vaekit.data.user import from_user
from vaekit.errors import VaekitError

from .conftest import tiny_config, train_run

RNG = np.random.default_rng(3)
CASES = {  # name: (items, labels), drawn in this order from RNG
    "u8": (RNG.integers(0, 256, (20, 1, 4, 4), dtype=np.uint8), None),
    "f64": (RNG.normal(size=(15, 3)), RNG.integers(0, 3, 15)),
    "nhwc": (RNG.integers(0, 256, (12, 5, 5, 3), dtype=np.uint8), None),
}
# from_user(x, val_fraction=0.25, seed=7) as the code before round 6 split them: rows, and sha256 of the float32
# bytes (first 16 hex digits) of the train and val items
BEFORE = {
    "u8": (
        [1, 19, 3, 4, 11, 18, 8, 2, 14, 16, 0, 10, 13, 6, 5],
        [15, 17, 9, 12, 7],
        ("ce55e4b918a69844", "6037f5ccfb9c183a"),
    ),
    "f64": ([2, 12, 14, 4, 11, 1, 13, 9, 8, 3, 10], [0, 7, 6, 5], ("b5f19d826fdec61d", "c8ea8503be84e5a4")),
    "nhwc": ([5, 7, 9, 11, 6, 8, 1, 10, 2], [3, 4, 0], ("bc3af92cf7d9880b", "8d7d70298f298fc0")),
}


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(CASES))
def test_fit_split_of_an_array_gives_the_items_of_before(name):
    x, y = CASES[name]
    d = from_user(x if y is None else (x, y), val_fraction=0.25, seed=7, labels=y is not None)
    rows, val_rows, digests = BEFORE[name]
    assert d.train.rows.tolist() == rows and d.val.rows.tolist() == val_rows
    assert (digest(d.train.x), digest(d.val.x)) == digests
    assert d.train.x.dtype == torch.float32 and d.train.x.is_contiguous() and d.val.x.is_contiguous()
    if y is not None:
        assert d.train.y.tolist() == y[rows].tolist() and d.val.y.tolist() == y[val_rows].tolist()


def test_fit_split_casts_no_float32_copy_of_every_item(monkeypatch):
    x = RNG.integers(0, 256, (50, 1, 8, 8), dtype=np.uint8)
    made, from_numpy = [], torch.from_numpy

    def spy(a: np.ndarray) -> torch.Tensor:
        made.append((a.dtype, len(a)))
        return from_numpy(a)

    monkeypatch.setattr(torch, "from_numpy", spy)
    d = from_user(x, val_fraction=0.2, seed=0)
    floats = sorted(n for dtype, n in made if dtype == np.float32)
    assert floats == [10, 40]  # each split cast alone, from the uint8 items: no (50, 1, 8, 8) float32 in between
    assert len(d.train) == 40 and float(d.train.x.max()) <= 1.0


def test_support_check_reads_a_chunk_at_a_time_and_refuses_as_of_all_items(monkeypatch):
    x = torch.rand(3000, 1, 16, 16)  # 3 MB: several chunks
    x[10, 0, 0, 0], x[2900, 0, 1, 1] = -0.5, 2.0
    with pytest.raises(VaekitError, match=r"values in \[-0\.5, 2\] lie outside"):  # lo and hi of every item
        support_check("bernoulli", x, "data")
    seen, check = [], item_arrays.check_support
    monkeypatch.setattr(
        item_arrays, "check_support", lambda lik, part, where: seen.append(len(part)) or check(lik, part, where)
    )
    support_check("bernoulli", x.clamp(0, 1), "data")
    assert sum(seen) == 3000 and max(seen) < 3000


def test_iwae_bound_keeps_no_chunk_of_weights_alive_and_gives_the_bound_of_all(monkeypatch):
    model = vaekit.build_model(input_shape=(6,), latent_dim=2, hidden=[8], likelihood="gaussian")
    x, weights, before = torch.randn(5, 6), [], objectives._flat_weights

    def spy(*args):  # each chunk's (n, B) log weights: the earlier ones freed before it runs
        assert all(w() is None for w, _ in weights), "a chunk's weights outlived it"
        out = before(*args)
        weights.append((weakref.ref(out), out.clone()))
        return out

    monkeypatch.setattr(objectives, "_flat_weights", spy)
    torch.manual_seed(0)
    bound = vaekit.iwae_bound(model, x, k=7, chunk=10)  # 2 samples a chunk: 4 chunks
    assert len(weights) == 4
    assert torch.equal(bound, torch.cat([w for _, w in weights]).logsumexp(0) - math.log(7))


KEPT = """
import json, resource, torch
from vaekit.core.allocator import keep_freed_memory
keep_freed_memory()
faults = []
for _ in range(6):  # 96 MiB in 8 tensors each below KEEP, freed together: a chunk of the IWAE estimator's
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ts = [torch.ones(3 << 20) for _ in range(8)]
    del ts
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_a_chunk_of_tensors_above_keep_together_is_kept_not_trimmed(monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "VAEKIT_MALLOC"}
    out = subprocess.run([sys.executable, "-c", KEPT], env=env, capture_output=True, text=True, check=True)
    faults, pages = json.loads(out.stdout), (96 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert max(faults[-3:]) < pages // 20  # trimmed at 64 MiB free, most runs faulted their 96 MiB in afresh
    calls = {}

    class Libc:  # glibc's as keep_freed_memory sets it, recorded
        gnu_get_libc_version = True

        def mallopt(self, key: int, value: int) -> int:
            calls[key] = value
            return 1

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: Libc())
    monkeypatch.delenv("VAEKIT_MALLOC", raising=False)
    assert allocator.keep_freed_memory.__wrapped__()
    assert (
        calls[allocator.M_MMAP_THRESHOLD] == allocator.KEEP and calls[allocator.M_TRIM_THRESHOLD] >= 8 * allocator.KEEP
    )


def test_evaluate_reads_the_scored_split_of_a_npy_alone_to_the_figures_of_loading_it_whole(tmp_path, monkeypatch):
    np.save(tmp_path / "u8.npy", RNG.integers(0, 256, (60, 1, 4, 4), dtype=np.uint8))
    cfg = tiny_config(str(tmp_path / "u8.npy"), tmp_path / "run", epochs=1)  # data.in_memory auto: loaded whole
    run = vaekit.load_run(train_run(cfg))
    run.config.data.in_memory = "true"
    whole = vaekit.evaluate(run, iw_samples=5, limit=4)
    run.config.data.in_memory = "auto"

    def refused(*args, **kwargs):
        raise AssertionError("every split loaded whole to score one")

    monkeypatch.setattr(prepare, "load_dataset", refused)
    streamed = vaekit.evaluate(run, iw_samples=5, limit=4)
    assert {k: v for k, v in streamed.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}
