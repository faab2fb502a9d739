"""Input checks of the disentanglement metrics (``disentangle``): codes, factors and counts, refused in one line;
and which code dims count as active for the FactorVAE score."""

from __future__ import annotations

import numpy as np

from ..errors import VaekitError

PRUNE = 0.05  # the FactorVAE score's least std of an active dim: absolute, as in disentanglement_lib


def check(codes, factors, test: tuple | None = None, **counts: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N, D) as float64 and factors (N, K) as int64: both non-empty, finite codes, whole-number factors;
    every count >= 1; a ``test`` pair (codes, factors) of the same D and K. Else VaekitError in one line."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or not codes.size or not factors.size:
        raise VaekitError(
            f"codes {codes.shape} and factors {factors.shape}: expected non-empty (N, D) and (N, K) of the same N"
        )
    if codes.dtype.kind not in "biuf" or not np.isfinite(codes).all():
        raise VaekitError(f"codes: expected finite numbers, got {codes.dtype} with NaN, infinite or other values")
    if factors.dtype.kind not in "biuf" or not np.isfinite(factors).all() or (factors != np.round(factors)).any():
        raise VaekitError(
            f"factors: expected whole numbers (the index of each factor's value), got {factors.dtype} values that "
            "are not: discretise continuous factors first"
        )
    if bad := {k: v for k, v in counts.items() if v < 1}:
        raise VaekitError(f"{', '.join(bad)}: must be at least 1, got {', '.join(map(str, bad.values()))}")
    if test is not None:
        c, f = check(*test)
        if (c.shape[1], f.shape[1]) != (codes.shape[1], factors.shape[1]):
            raise VaekitError(f"test codes {c.shape} and factors {f.shape}: expected D and K as in {codes.shape}, "
                              f"{factors.shape}")  # fmt: skip
    return codes.astype(np.float64), factors.astype(np.int64)


def active_dims(variance: np.ndarray, prune: float = PRUNE) -> np.ndarray:
    """(D,) bools: the dims whose std over the data (``variance`` (D,)) is at least ``prune`` (absolute)."""
    return np.sqrt(np.asarray(variance)) >= prune


def binnable(codes: np.ndarray) -> np.ndarray:
    """``codes`` (N, D), refused in one line where a dim's range overflows (no equal-width bins fit it)."""
    with np.errstate(over="ignore"):
        if np.isfinite(np.ptp(codes, 0)).all():
            return codes
    raise VaekitError(f"codes: a dim's range overflows float64 ({codes.min():.3g} to {codes.max():.3g}): rescale them")


def votes(ks: np.ndarray, n_train: int, score: str) -> np.ndarray:
    """``ks`` (n,) as factor indices >= 0, with ``n_train`` in [1, n): else one line naming them."""
    ks = np.asarray(ks)
    if ks.ndim != 1 or ks.dtype.kind not in "biuf" or (ks < 0).any():
        raise VaekitError(f"{score}: ks must be factor indices >= 0 (n,), got {ks.dtype} {ks.shape} {ks[:3]}...")
    if not 1 <= n_train < len(ks):
        raise VaekitError(f"{score}: n_train must be in [1, {len(ks)}) (the other ks evaluate), got {n_train}")
    return ks
