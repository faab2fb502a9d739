"""Input checks of the disentanglement metrics (``disentangle``): codes, factors and counts, refused in one line;
which code dims count as active for the FactorVAE score or as constant (up to rounding); the codes DCI's forests
see; and the fixed-factor batches the vote scores draw from given items."""

from __future__ import annotations

import numpy as np

from ..errors import VaekitError

PRUNE = 0.05  # the FactorVAE score's least std of an active dim: absolute, as in disentanglement_lib
ROUNDING = 64  # float64 steps: a dim whose values span no more (0.3 and 0.1 + 0.2) is constant up to rounding
FLOAT32 = 1e30  # standardised test codes are clipped to it: the forests read float32 (max 3.4e38)
DISCRETIZE = "vaekit.evaluation.information.discretize"  # equal-width bins: continuous factors -> integer codes


def check(codes, factors, test: tuple | None = None, **counts: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N, D) as float64 and factors (N, K) as int64: both non-empty, finite codes, whole-number factors
    within int64; every count >= 1; a ``test`` pair (codes, factors) of the same D and K. Else VaekitError in one
    line."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or not codes.size or not factors.size:
        raise VaekitError(
            f"codes {codes.shape} and factors {factors.shape}: expected non-empty (N, D) and (N, K) of the same N"
        )
    if codes.dtype.kind not in "biuf" or not np.isfinite(codes).all():
        raise VaekitError(f"codes: expected finite numbers, got {codes.dtype} with NaN, infinite or other values")
    if factors.dtype.kind not in "biuf":
        raise VaekitError(
            f"factors: expected integer codes of each factor's values, got {factors.dtype}: map categorical labels "
            "to integers first (np.unique(labels, return_inverse=True)[1])"
        )
    if not np.isfinite(factors).all() or (factors != np.round(factors)).any():
        raise VaekitError(
            f"factors: expected whole numbers (the index of each factor's value), got {factors.dtype} values that "
            f"are not: discretise continuous factors first ({DISCRETIZE})"
        )
    if not -(2**63) <= int(factors.min()) <= int(factors.max()) < 2**63:  # int(): whole, and bools compare
        raise VaekitError(f"factors: {factors.min():.3g} to {factors.max():.3g} overflow int64: give value indices")
    if bad := {k: v for k, v in counts.items() if v < 1}:
        raise VaekitError(f"{', '.join(bad)}: must be at least 1, got {', '.join(map(str, bad.values()))}")
    if test is not None:
        c, f = check(*test)
        if (c.shape[1], f.shape[1]) != (codes.shape[1], factors.shape[1]):
            raise VaekitError(f"test codes {c.shape} and factors {f.shape}: expected D and K as in {codes.shape}, "
                              f"{factors.shape}")  # fmt: skip
    return codes.astype(np.float64), factors.astype(np.int64)


def varying(factors: np.ndarray) -> list[int]:
    """The indices of the factors (N, K) that take more than one value."""
    return [k for k in range(factors.shape[1]) if len(np.unique(factors[:, k])) > 1]


def active_dims(variance: np.ndarray, prune: float = PRUNE) -> np.ndarray:
    """(D,) bools: the dims whose std over the data (``variance`` (D,)) is at least ``prune`` (absolute)."""
    return np.sqrt(np.asarray(variance)) >= prune


def constant_dims(codes: np.ndarray) -> np.ndarray:
    """(D,) bools: the dims of codes (N, D) whose values span at most ``ROUNDING`` float64 steps at their magnitude:
    constant up to rounding, they carry no information."""
    lo, hi = codes.min(0), codes.max(0)
    with np.errstate(over="ignore"):
        return hi - lo <= ROUNDING * np.spacing(np.maximum(np.abs(lo), np.abs(hi)))


def binnable(codes: np.ndarray) -> np.ndarray:
    """``codes`` (N, D) with the dims constant up to rounding set to 0, refused in one line where a dim's range
    overflows (no equal-width bins fit it)."""
    with np.errstate(over="ignore"):
        if not np.isfinite(np.ptp(codes, 0)).all():
            raise VaekitError(
                f"codes: a dim's range overflows float64 ({codes.min():.3g} to {codes.max():.3g}): rescale them"
            )
    return np.where(constant_dims(codes), 0.0, codes)


def standardised(codes: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N, D) and test codes (M, D) less the codes' mean per dim, over their std; the dims constant up to
    rounding 0 in both. What DCI's forests see: they read float32, where a code times 1e-50 is 0 and one plus
    1e8 loses its digits, so that rescaling or shifting a dim changes nothing."""
    scale = np.abs(codes).max(0)  # (D,): into [-1, 1] first, so that no sum overflows
    scale[scale == 0] = 1.0
    with np.errstate(over="ignore"):
        a, b = codes / scale, test / scale
    mean, std = a.mean(0), a.std(0)
    keep = ~constant_dims(codes) & (std > 0)
    std = np.where(keep, std, 1.0)
    return np.where(keep, (a - mean) / std, 0.0), np.clip(np.where(keep, (b - mean) / std, 0.0), -FLOAT32, FLOAT32)


def votes(ks: np.ndarray, n_train: int, score: str) -> np.ndarray:
    """``ks`` (n,) as factor indices >= 0, with ``n_train`` in [1, n): else one line naming them."""
    ks = np.asarray(ks)
    if ks.ndim != 1 or ks.dtype.kind not in "biuf" or (ks < 0).any():
        raise VaekitError(f"{score}: ks must be factor indices >= 0 (n,), got {ks.dtype} {ks.shape} {ks[:3]}...")
    if not 1 <= n_train < len(ks):
        raise VaekitError(f"{score}: n_train must be in [1, {len(ks)}) (the other ks evaluate), got {n_train}")
    return ks


def fixed_factor_groups(
    factors: np.ndarray,
    n: int,
    batch: int,
    rng: np.random.Generator,
    pairs: bool = False,
    items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index batches among ``items`` (M,) (default: all N) sharing one factor's value: (n, batch) indices into
    factors (N, K) (or (n, 2, batch) pairs of two distinct items) and the factors ks (n,).

    Each batch picks a factor that varies uniformly and a value of it from a random item whose value another item
    shares, then draws its items (with replacement; a pair's two items distinct) among those holding that value.
    Refused in one line where fewer than 2 factors vary (every vote would name the one, a score of 1 by
    construction) or a factor has no value that 2 of the items share (too few items for the votes)."""
    keep = varying(factors)
    if len(keep) < 2:
        raise VaekitError(f"factors: fixed-factor votes need at least 2 factors that vary, got {len(keep)}")
    half = "" if items is None else ", half of all (the training and the evaluation votes each draw from a half)"
    items = np.arange(len(factors)) if items is None else items
    values = {k: np.unique(factors[items, k], return_inverse=True, return_counts=True)[1:] for k in keep}
    if bad := [k for k, (_, counts) in values.items() if counts.max() < 2]:
        raise VaekitError(f"factors: no value of factor {bad[0]} is held by 2 of the {len(items)} items the votes "
                          f"draw from{half}: too few items for the votes, or a factor of unique values")  # fmt: skip
    shared = {k: np.flatnonzero(counts[where] >= 2) for k, (where, counts) in values.items()}  # k -> items
    ks = rng.choice(keep, n)
    idx = np.empty((n, 2 if pairs else 1, batch), dtype=np.int64)
    pools: dict[tuple[int, int], np.ndarray] = {}  # (k, value index) -> the items holding it
    for i, k in enumerate(ks):
        where = values[k][0]  # each item's value index (M,)
        v = where[rng.choice(shared[k])]
        pool = pools.setdefault((k, v), items[where == v])
        first = rng.integers(0, len(pool), batch)  # (batch,); a pair's second item is another one
        idx[i] = pool[[first, (first + rng.integers(1, len(pool), batch)) % len(pool)]] if pairs else pool[first]
    return (idx if pairs else idx[:, 0]), ks


def split_votes(
    factors: np.ndarray, n_train: int, n_eval: int, batch: int, seed: int, pairs: bool = False
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``fixed_factor_groups`` of ``n_train`` training then ``n_eval`` evaluation votes, each kind among its own random
    half of the items, so that no evaluation batch holds an item of a training batch (else a code's noise is
    learned: random codes on 300 items scored 0.27 and 0.36 for chance 0.2): indices, ks (n,) and the halves' items."""
    rng = np.random.default_rng(seed)
    halves = np.array_split(rng.permutation(len(factors)), 2)
    parts = [fixed_factor_groups(factors, n, batch, rng, pairs, h) for h, n in zip(halves, (n_train, n_eval))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), halves
