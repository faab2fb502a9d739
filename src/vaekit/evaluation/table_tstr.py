"""Train on synthetic, test on real (TSTR) for ``table_quality``: scikit-learn's logistic regression (a
categorical target) or ridge regression (a numeric one) trained on the synthetic rows and, as the yardstick, on
the real training rows, both scored on held-out real rows; and the gaps of columns from anywhere (NaN, None,
pandas' NA and NaT), which TSTR fills and the measures leave out or count."""

from __future__ import annotations

import numpy as np

from ..errors import VaekitError

GAP = "\x00gap"  # a gap's category name (no CSV cell holds it)
HELD_OUT = "a seeded 30% of real, held out here: a model fitted on all of real saw them (pass test= rows it did not)"


def gaps_of(v: np.ndarray) -> np.ndarray:
    """(N,) bool: the cells of a column (N,) that hold no value: NaN, None, pandas' NA and NaT."""
    if v.dtype.kind == "f":
        return np.isnan(v)
    if v.dtype.kind in "mM":
        return np.isnat(v)
    if v.dtype.kind != "O":
        return np.zeros(len(v), bool)
    return np.fromiter((_is_gap(x) for x in v.tolist()), bool, len(v))


def _is_gap(x) -> bool:
    try:
        return x is None or bool(x != x)
    except TypeError:  # pandas.NA is neither equal nor unequal to itself
        return True


def floats(v: np.ndarray) -> np.ndarray:
    """A numeric column (N,) as float64, its gaps NaN; dates and times (datetime64) as days since 1970-01-01,
    durations (timedelta64) in days."""
    gaps = gaps_of(v)
    if v.dtype.kind in "mM":
        v = v.astype(f"{'datetime' if v.dtype.kind == 'M' else 'timedelta'}64[s]").astype(np.int64) / 86400.0
    return np.where(gaps, np.nan, v).astype(np.float64)


def text(v: np.ndarray) -> np.ndarray:
    """A column (N,) as category names, its gaps one name of their own (as SDMetrics' contingency counts them)."""
    return np.where(gaps_of(v), GAP, v.astype(str))


def tstr(real: dict, synthetic: dict, kinds: dict, target: str, test: dict | None, seed: int) -> dict:
    """Train on real and on synthetic rows, test both on real rows: accuracy and macro F1 (a categorical
    target, logistic regression) or R^2 (a numeric one, ridge regression). Rows without a target are left
    out; a numeric feature's gaps are filled with its mean over the real training rows, a categorical one's
    one-hot code is all zeros. ``test`` None: a seeded 30% of ``real`` is held out (``test_rows`` says so)."""
    if target not in kinds:
        raise VaekitError(f"TSTR target {target!r} is not a column ({', '.join(kinds)})", key="target")
    held_out = test is None
    if test is None:
        order = np.random.default_rng(seed).permutation(len(real[target]))
        cut = int(0.7 * len(order))
        real, test = ({k: v[order[:cut]] for k, v in real.items()}, {k: v[order[cut:]] for k, v in real.items()})
    sides = ((real, "real training"), (synthetic, "synthetic"), (test, "test"))
    real, synthetic, test = (_with_target(rows, target, what) for rows, what in sides)
    encode = _encoder(real, kinds, [k for k in kinds if k != target])
    y_test = test[target]
    out: dict[str, object] = {
        "target": target,
        "model": "logistic_regression" if kinds[target] == "categorical" else "ridge",
        "test_rows": HELD_OUT if held_out else "given",
    }
    for name, rows in (("real", real), ("synthetic", synthetic)):
        out[name] = _fit_score(encode(rows), rows[target], encode(test), y_test, kinds[target] == "categorical")
    return out


def _with_target(rows: dict, target: str, what: str) -> dict:
    """The rows whose ``target`` is filled; none is one line."""
    keep = ~gaps_of(rows[target])
    if not keep.any():
        raise VaekitError(f"TSTR target {target!r} has no value in the {what} rows", key="target")
    return rows if keep.all() else {k: v[keep] for k, v in rows.items()}


def _encoder(real: dict, kinds: dict, features: list[str]):
    """rows -> (N, F) features: numeric columns standardised by the real rows (a gap at their mean: 0),
    categorical ones one-hot (a gap all zeros)."""
    stats = {k: _moments(floats(real[k])) for k in features if kinds[k] == "numeric"}
    cats = {k: sorted(set(text(real[k]).tolist()) - {GAP}) for k in features if kinds[k] == "categorical"}

    def encode(rows: dict) -> np.ndarray:
        parts = [np.nan_to_num((floats(rows[k]) - m) / s)[:, None] for k, (m, s) in stats.items()]
        parts += [(text(rows[k])[:, None] == np.asarray(c)[None]).astype(float) for k, c in cats.items()]
        return np.concatenate(parts, 1) if parts else np.zeros((len(next(iter(rows.values()))), 0))

    return encode


def _moments(v: np.ndarray) -> tuple[float, float]:
    """(mean, standard deviation or 1) of a column's filled values (N,) (0, 1 where it has none)."""
    v = v[~np.isnan(v)]
    return (float(v.mean()), float(v.std()) or 1.0) if len(v) else (0.0, 1.0)


def _fit_score(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classify: bool) -> dict:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if not classify:
        model = Ridge(alpha=1.0).fit(x, y.astype(float))
        return {"r2": round(float(r2_score(y_test.astype(float), model.predict(x_test))), 6)}
    y, y_test = y.astype(str), y_test.astype(str)
    one = len(set(y.tolist())) < 2  # a single class: nothing to regress on
    model = (DummyClassifier() if one else LogisticRegression(max_iter=1000)).fit(x, y)
    pred = model.predict(x_test)
    return {
        "accuracy": round(float(accuracy_score(y_test, pred)), 6),
        "f1_macro": round(float(f1_score(y_test, pred, average="macro")), 6),
    }
