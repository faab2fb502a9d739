"""Binarisation's draws of x ~ Bernoulli(x): dynamic (afresh per batch, from torch's generator) and fixed (once).

Fixed binarisation has one draw, per item, keyed by (seed, part, row), for data in memory and streamed alike:
value j of the item at ``row`` of a source's ``part`` is 1 when u < x * 2^24, with u 24 bits of SplitMix64 at a
counter fixed by (row, j) on the stream that (seed, part) picks. An item's 0/1 values thus depend on the seed and
which item it is, never on the batch, the order, ``--limit``, which split it was asked for in (a test file's item
is the same in the test split and in every item in file order), or whether the split was loaded or streamed.
``part`` tells apart the rows of two sources of one data set: 0 the training file (or ``vaekit.fit``'s data),
1 an official test file (or its val_data).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # SplitMix64's constants
MASK = (1 << 64) - 1
CHUNK = 1 << 18  # values hashed at a time: a few MB of uint64 temporaries
TEST_PART = VAL_PART = 1  # a data set's second source: an official test file; vaekit.fit's val_data


def binarize_dynamic(x: torch.Tensor) -> torch.Tensor:
    """Draw x ~ Bernoulli(x) afresh with the global torch RNG; x in [0, 1], any shape.

    On the CPU one 64-bit draw gives four 16-bit uniforms u, and x_i = [u_i < x_i * 2^16]: exact at 0 and 1,
    within 2^-16 of x elsewhere, and about 4x faster than ``rand_like`` (whose draw dominated a small step).
    """
    if x.device.type != "cpu":
        return (torch.rand_like(x) < x).to(x.dtype)
    u = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # full 64-bit range
    return (u.view(torch.int16)[: x.numel()].view(x.shape) < x * 65536 - 32768).to(x.dtype)


def _mix(z: int) -> int:
    """SplitMix64's finaliser on one Python int (64 bits)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)


def stream_key(seed: int, part: int) -> int:
    """The 64-bit start of the stream that (seed, part) picks."""
    return _mix((_mix(seed & MASK) + (part + 1) * GOLDEN) & MASK)


def _levels(rows: np.ndarray, d: int, key: int) -> np.ndarray:
    """(B, d) float32 integers u in [0, 2^24) fixed by (key, row, position): SplitMix64 of a counter, each 64-bit
    hash giving two: its top 24 bits to position k, bits 8..31 to position m + k (m = ceil(d / 2))."""
    m = (d + 1) // 2
    with np.errstate(over="ignore"):
        h = rows.astype(np.uint64)[:, None] * np.uint64(m) + np.arange(m, dtype=np.uint64)  # (B, m) counters
        h *= np.uint64(GOLDEN)
        h += np.uint64(key)
        for shift, mult in ((30, MIX1), (27, MIX2)):
            h ^= h >> np.uint64(shift)
            h *= np.uint64(mult)
        h ^= h >> np.uint64(31)
    u = np.empty((len(rows), 2 * m), np.float32)
    u[:, :m] = h >> np.uint64(40)
    u[:, m:] = (h >> np.uint64(8)) & np.uint64(0xFFFFFF)
    return u[:, :d]


def fixed_draw(x: Tensor, rows: np.ndarray, seed: int, part: int | np.ndarray = 0) -> Tensor:
    """x (N, *shape) in [0, 1] -> (N, *shape) float32 0/1 on x's device: item i is the one at ``rows[i]`` (N,) of
    source ``part``: one for every item, or each item's (N,) (every item of a set with a test file). A value is 1
    with probability within 2^-24 of x (exact at 0 and 1)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    parts = np.full(len(rows), part, np.int64) if np.ndim(part) == 0 else np.asarray(part, np.int64).reshape(-1)
    if len(rows) != len(x) or len(parts) != len(x):
        raise ValueError(f"{len(rows)} rows and {len(parts)} parts for {len(x)} items")
    d = int(np.prod(x.shape[1:], dtype=np.int64))
    p = x.detach().to("cpu", torch.float32).reshape(len(x), d).numpy()  # (N, D), a view where it can be
    out = np.empty((len(x), d), np.float32)
    step = max(1, CHUNK // max(d, 1))
    cuts = [0, *(np.flatnonzero(np.diff(parts)) + 1).tolist(), len(x)]  # runs of items of one part
    for a, b in itertools.pairwise(cuts):
        key = stream_key(seed, int(parts[a])) if a < b else 0
        for i in range(a, b, step):  # a batch of rows at a time, in numpy (torch's threads gain nothing here)
            j = slice(i, min(i + step, b))
            np.less(_levels(rows[j], d, key), p[j] * np.float32(2**24), out=out[j])
    return torch.from_numpy(out).reshape(x.shape).to(x.device)
