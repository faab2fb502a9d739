"""Plug-in information estimates on discrete values, for the disentanglement metrics (``disentangle``): codes cut
into equal-width bins, the mutual information between code dims and factors, and the factors' entropies."""

from __future__ import annotations

import numpy as np


def inner_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """The (bins - 1,) inner edges of ``bins`` equal-width bins over x (N,), as ``np.histogram`` places them; none
    (one bin) where x is constant or its range too narrow for distinct edges (constant up to rounding)."""
    lo, hi = float(x.min()), float(x.max())
    with np.errstate(over="ignore", invalid="ignore"):
        edges = np.linspace(lo, hi, bins + 1)
        return edges[1:-1] if lo < hi and (np.diff(edges) > 0).all() else edges[:0]


def discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """(N, D) codes -> (N, D) bin indices 0..bins-1, equal-width bins per dimension (dl's histogram discretiser); a
    dim constant up to rounding falls in one bin. Also turns continuous factors into the integer codes the
    disentanglement metrics take."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        out[:, d] = np.clip(np.digitize(codes[:, d], inner_edges(codes[:, d], bins)), 0, bins - 1)
    return out


def mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D) and (N, K) discrete values -> (D, K) mutual information in nats (plug-in estimate)."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(b[:, k], a[:, d]) for k in range(b.shape[1])] for d in range(a.shape[1])])


def entropies(factors: np.ndarray) -> np.ndarray:
    """(N, K) discrete factors -> (K,) entropies in nats."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(f, f) for f in factors.T])
