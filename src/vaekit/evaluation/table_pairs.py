"""Column pairs of synthetic rows measured against real ones, with SDMetrics' definitions: Pearson's correlation of
two numeric columns, over the rows where both are filled (CorrelationSimilarity = 1 - |r_real - r_syn| / 2), and
the total variation distance of two categorical columns' joint frequencies (ContingencySimilarity = 1 - TVD).

Correlations come from one (D, D) matrix per side (``correlations``), not a loop over the D (D - 1) / 2 pairs
(2,000 columns: 2 million pairs). The means are over every pair; quality.json lists at most ``PAIRS_KEPT`` pairs
of each kind by name, every one where there are no more, else the worst (largest error or TVD) first, and
counts them all (``correlation_pairs``, ``contingency_pairs``) and the correlations defined on both sides, which
the means cover (``correlation_pairs_defined``)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np

from .table_tstr import floats, text

PAIRS_KEPT = 100  # pairs of each kind listed by name in quality.json: all of them up to this many, else the worst
FLAT = 1e-12  # a column's spread over a pair's rows, relative to its spread about its mean, taken as none


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """(1/2) sum_k |p_a(k) - p_b(k)| of two samples' category frequencies (rows of (N, 2) arrays: pairs)."""
    pa, pb = _freq(a), _freq(b)
    return 0.5 * sum(abs(pa.get(k, 0.0) - pb.get(k, 0.0)) for k in set(pa) | set(pb))


def _freq(values: np.ndarray) -> dict:
    counts = Counter(map(tuple, values.tolist()) if values.ndim == 2 else values.tolist())
    return {k: c / len(values) for k, c in counts.items()}


def correlations(x: np.ndarray) -> np.ndarray:
    """Pearson's r (D, D) of the columns of x (N, D) float64, each pair over the rows where both are filled (not
    NaN); NaN where undefined: fewer than 2 such rows, or a column constant on them (as SDMetrics' NaN). Without
    gaps, one ``np.corrcoef``; with them, sums over the pair's rows of the columns centred by their own means."""
    filled = ~np.isnan(x)
    if filled.all():
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.corrcoef(x, rowvar=False).reshape(x.shape[1], x.shape[1]) if len(x) > 1 else np.nan
        flat = np.ptp(x, axis=0) == 0 if len(x) else np.ones(x.shape[1], bool)  # (D,) constant columns
        return np.where(flat[:, None] | flat[None, :], np.nan, r)
    m = filled.astype(np.float64)  # (N, D)
    mean = np.where(filled, x, 0.0).sum(0) / np.maximum(m.sum(0), 1)  # (D,) over each column's filled rows
    x0 = np.where(filled, x - mean, 0.0)  # (N, D) centred, gaps 0
    n = m.T @ m  # (D, D) rows where both are filled
    sa, saa = x0.T @ m, (x0 * x0).T @ m  # [a, b]: sums of a and a^2 over pair (a, b)'s rows
    with np.errstate(divide="ignore", invalid="ignore"):
        va = saa - sa * sa / n  # [a, b]: n times a's variance over the pair's rows
        cov = x0.T @ x0 - sa * sa.T / n
        r = np.clip(cov / np.sqrt(va * va.T), -1.0, 1.0)
    flat = (va <= FLAT * saa) | (va.T <= FLAT * saa.T) | (n < 2)
    return np.where(flat, np.nan, r)


def column_pairs(real: dict, synthetic: dict, kinds: dict[str, str]) -> dict:
    """Pearson correlation errors of numeric pairs and contingency TVDs of categorical pairs (a gap one category of
    its own), with their means over every pair and their counts; the pairs listed as ``PAIRS_KEPT`` says."""
    numeric = [k for k, v in kinds.items() if v == "numeric"]
    categorical = [k for k, v in kinds.items() if v == "categorical"]
    a, b = np.triu_indices(len(numeric), 1)  # (P,) each pair once, in the order of ``combinations``
    r, s = (
        correlations(np.stack([floats(t[k]) for k in numeric], 1))[a, b] if numeric else np.zeros(0)
        for t in (real, synthetic)
    )
    error = np.abs(r - s)  # (P,) NaN where a side has none
    known = np.round(error[~np.isnan(error)], 6)  # as the pairs' listed errors are rounded
    corr = {
        f"{numeric[a[i]]}|{numeric[b[i]]}": {"real": _value(r[i]), "synthetic": _value(s[i]), "error": _value(error[i])}
        for i in _kept(np.nan_to_num(error, nan=-1.0))
    }
    cont = {
        f"{x}|{y}": round(tv_distance(_joint(real, x, y), _joint(synthetic, x, y)), 6)
        for x, y in combinations(categorical, 2)
    }
    tvd = np.array(list(cont.values()))
    names = list(cont)
    return {
        "correlations": corr,
        "correlation_pairs": len(error),
        "correlation_pairs_defined": len(known),  # r on both sides (not a constant column): the means' pairs
        "correlation_error": _mean(known),
        "correlation_similarity": _mean(1 - known / 2),
        "contingency_tvd": {names[i]: cont[names[i]] for i in _kept(tvd)},
        "contingency_pairs": len(cont),
        "contingency_similarity": _mean(1 - tvd),
    }


def _joint(rows: dict, x: str, y: str) -> np.ndarray:
    """Two categorical columns as pairs of names (N, 2), a gap one name of its own."""
    return np.stack([text(rows[x]), text(rows[y])], 1)


def _mean(values: np.ndarray) -> float | None:
    """The mean of figures (P,), rounded as quality.json's figures are; None for none."""
    return round(float(np.mean(values)), 6) if len(values) else None


def _kept(badness: np.ndarray) -> list[int]:
    """Positions of the pairs listed (``PAIRS_KEPT``): all in order where there are no more, else the worst first
    (``badness`` (P,): -1 for a pair without a figure, listed last)."""
    if len(badness) <= PAIRS_KEPT:
        return list(range(len(badness)))
    worst = np.argpartition(-badness, PAIRS_KEPT)[:PAIRS_KEPT]
    return worst[np.argsort(-badness[worst], kind="stable")].tolist()


def _value(v: np.floating) -> float | None:
    """A figure as JSON holds it: a float rounded to 6 decimals, or None for NaN."""
    return None if np.isnan(v) else round(float(v), 6)
