"""Train on synthetic, test on real (TSTR) for ``table_quality``: scikit-learn's logistic regression (a
categorical target) or ridge regression (a numeric one) trained on the synthetic rows and, as the yardstick, on
the real training rows, both scored on held-out real rows; and columns from anywhere: their gaps (NaN, None,
pandas' NA and NaT), which TSTR fills and the measures leave out or count, ISO date text read as dates as the
CSV reader reads it, and a column of one kind of values on one side and another on the other refused."""

from __future__ import annotations

import numpy as np

from ..data.tables import TIME_CELLS, TableSchema
from ..errors import VaekitError

GAP = "\x00gap"  # a gap's category name (no CSV cell holds it)
HELD_OUT = "a seeded 30% of real, held out here: a model fitted on all of real saw them (pass test= rows it did not)"


MAX_CLASSES = 20  # the most classes of a column TSTR predicts by default (``default_target``)


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


def read_column(v: np.ndarray) -> np.ndarray:
    """A column (N,) of objects or text as the CSV reader reads its cells (gaps aside): ISO dates and times
    (``data.tables.TIME_CELLS``) as datetime64[s], numbers (not bools) as float64; else as it is."""
    if v.dtype.kind not in "OUT":
        return v
    gaps = gaps_of(v)
    filled = v[~gaps].tolist()
    if filled and all(isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_)) for x in filled):
        return np.where(gaps, np.nan, v).astype(np.float64)
    if not filled or not isinstance(filled[0], str) or not any(p.fullmatch(filled[0]) for p in TIME_CELLS.values()):
        return v  # no date or time first: not read further
    cells = set(filled)
    if not any(all(isinstance(x, str) and p.fullmatch(x) for x in cells) for p in TIME_CELLS.values()):
        return v
    out = np.full(len(v), np.datetime64("NaT"), "M8[s]")
    try:
        out[~gaps] = np.asarray(filled, "M8[s]")
    except ValueError:  # 2023-02-30: text, as the CSV reader leaves it
        return v
    return out


def kind_of(v: np.ndarray) -> str | None:
    """What a column (N,) holds, as its dtype says: numbers, dates, durations or categories (text, booleans);
    None where it holds gaps only."""
    if gaps_of(v).all():
        return None
    return {"i": "numbers", "u": "numbers", "f": "numbers", "M": "dates", "m": "durations"}.get(
        v.dtype.kind, "categories"
    )


def same_kinds(real: dict, synthetic: dict, kinds: dict[str, str], schema: bool) -> None:
    """Refuse, in one line, a column that holds one kind of values in the real rows and another in the synthetic
    ones (dates beside text or numbers), or text where it is measured as numeric; a ``schema``'s categorical
    columns are measured as text whatever they hold."""
    for name, kind in kinds.items():
        sides = {side: kind_of(rows[name]) for side, rows in (("real", real), ("synthetic", synthetic))}
        held = {side: k for side, k in sides.items() if k is not None}
        if kind == "categorical" and schema:
            continue
        if len(set(held.values())) > 1 or (kind == "numeric" and "categories" in held.values()):
            said = " and ".join(f"{k} in the {side} rows" for side, k in held.items())
            raise VaekitError(
                f"column {name!r} holds {said}, measured as {kind}: give both sides the same kind of values (read "
                "both files alike)"
            )


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
    check_target(target, list(kinds))
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


def check_target(target: object, columns: list[str]) -> None:
    """Refuse, in one line, a TSTR ``target`` that names none of ``columns`` (None, False and "none", unless a
    column is named so, ask for no TSTR or the default): before any rows are drawn to measure."""
    if target not in (None, False) and not (target == "none" and "none" not in columns) and target not in columns:
        raise VaekitError(f"TSTR target {target!r} is not a column ({', '.join(columns)})", key="target")


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


def default_target(real: dict, kinds: dict, schema: TableSchema | None = None) -> tuple[str | None, dict[str, int]]:
    """(the column TSTR predicts unless told: the last categorical column holding 2 or more values in ``real`` of
    at most ``MAX_CLASSES`` classes (the ``schema``'s categories, else its values), or None; {column: classes}
    of the categorical columns of more, passed over: an accuracy near chance, 40 classes at 0.02, tells nothing)."""
    held = {k: len(set(text(real[k][~gaps_of(real[k])]).tolist())) for k in kinds if kinds[k] == "categorical"}
    trained = {c.name: len(c.categories) for c in schema.columns} if schema is not None else {}
    counts = {k: max(n, trained.get(k, 0)) for k, n in held.items()}
    target = next((k for k in reversed(counts) if held[k] >= 2 and counts[k] <= MAX_CLASSES), None)
    return target, {k: n for k, n in counts.items() if n > MAX_CLASSES}
