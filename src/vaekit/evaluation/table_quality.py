"""Synthetic tables measured against real ones, with SDMetrics' definitions (sdmetrics is not needed):

- column shapes: the Kolmogorov-Smirnov statistic of a numeric column (KSComplement = 1 - KS) and the total
  variation distance of a categorical one (TVComplement = 1 - TVD);
- column pairs: Pearson's correlation of two numeric columns (CorrelationSimilarity = 1 - |r_real - r_syn| / 2,
  the error reported is |r_real - r_syn|) and the TVD of two categorical columns' joint frequencies
  (ContingencySimilarity = 1 - TVD); pairs of a numeric and a categorical column are not measured;
- train on synthetic, test on real (TSTR): scikit-learn's logistic regression (a categorical target) or ridge
  regression (a numeric one) trained on the synthetic rows and, as the yardstick, on the real training rows,
  both scored on held-out real rows.
"""

from __future__ import annotations

import time
from collections import Counter
from itertools import combinations

import numpy as np
import torch

from .. import files
from ..data import Dataset
from ..data.tables import TableSchema
from ..errors import VaekitError
from ..io import atomic_write_json
from ..runs import Run


def columns_of(table) -> dict[str, np.ndarray]:
    """{name: (N,) values} of a dict of columns or a pandas DataFrame."""
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # a DataFrame
        return {str(c): np.asarray(table[c].to_numpy()) for c in table.columns}
    return {str(k): np.asarray(v) for k, v in dict(table).items()}


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup_t |F_a(t) - F_b(t)| of two samples' empirical distribution functions."""
    a, b = np.sort(a.astype(np.float64)), np.sort(b.astype(np.float64))
    t = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, t, "right") / len(a) - np.searchsorted(b, t, "right") / len(b)).max())


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """(1/2) sum_k |p_a(k) - p_b(k)| of two samples' category frequencies (rows of (N, 2) arrays: pairs)."""
    pa, pb = _freq(a), _freq(b)
    return 0.5 * sum(abs(pa.get(k, 0.0) - pb.get(k, 0.0)) for k in set(pa) | set(pb))


def _freq(values: np.ndarray) -> dict:
    counts = Counter(map(tuple, values.tolist()) if values.ndim == 2 else values.tolist())
    return {k: c / len(values) for k, c in counts.items()}


def kinds_of(real: dict[str, np.ndarray], schema: TableSchema | None) -> dict[str, str]:
    """numeric or categorical per column: from the schema, else numbers are numeric and the rest categorical."""
    if schema is not None:  # and a label column beside the features: categories
        kinds = {c.name: c.kind for c in schema.columns}
        return kinds | {k: "categorical" for k in real if k not in kinds}
    return {k: "numeric" if v.dtype.kind in "biuf" else "categorical" for k, v in real.items()}


def table_quality(
    real, synthetic, schema: TableSchema | None = None, target: str | None = None, test=None, seed: int = 0
) -> dict:
    """Column shapes, column pairs and TSTR of ``synthetic`` rows against ``real`` ones (dicts of columns or
    DataFrames with the same columns). ``target``: the column TSTR predicts (default: the last categorical
    column; none: no TSTR); ``test``: held-out real rows (default: a seeded 30% of ``real``, the rest trains)."""
    real, synthetic = columns_of(real), columns_of(synthetic)
    if set(real) != set(synthetic):
        raise VaekitError(f"synthetic columns {sorted(synthetic)} differ from the real ones {sorted(real)}")
    kinds = kinds_of(real, schema)
    shapes: dict[str, dict] = {}
    for name, kind in kinds.items():
        stat = (
            ks_statistic(real[name], synthetic[name])
            if kind == "numeric"
            else tv_distance(real[name].astype(str), synthetic[name].astype(str))
        )
        shapes[name] = {"kind": kind, "ks" if kind == "numeric" else "tvd": round(stat, 6), "score": round(1 - stat, 6)}
    pairs = column_pairs(real, synthetic, kinds)
    result = {"columns": shapes, "column_shapes": _mean([c["score"] for c in shapes.values()]), **pairs}
    target = (
        target if target is not None else next((k for k in reversed(list(kinds)) if kinds[k] == "categorical"), None)
    )
    if target is not None:
        result["tstr"] = tstr(real, synthetic, kinds, target, None if test is None else columns_of(test), seed)
    return result


def column_pairs(real: dict, synthetic: dict, kinds: dict[str, str]) -> dict:
    """Pearson correlation errors of numeric pairs and contingency TVDs of categorical pairs, with their means."""
    numeric = [k for k, v in kinds.items() if v == "numeric"]
    categorical = [k for k, v in kinds.items() if v == "categorical"]
    corr = {}
    for a, b in combinations(numeric, 2):  # a pair with a constant column has no correlation: null, left out
        r, s = _pearson(real[a], real[b]), _pearson(synthetic[a], synthetic[b])
        error = None if r is None or s is None else round(abs(r - s), 6)
        corr[f"{a}|{b}"] = {"real": _round(r), "synthetic": _round(s), "error": error}
    cont = {
        f"{a}|{b}": round(
            tv_distance(
                np.stack([real[a], real[b]], 1).astype(str), np.stack([synthetic[a], synthetic[b]], 1).astype(str)
            ),
            6,
        )
        for a, b in combinations(categorical, 2)
    }
    errors = [c["error"] for c in corr.values() if c["error"] is not None]
    return {
        "correlations": corr,
        "correlation_error": _mean(errors),
        "correlation_similarity": _mean([1 - e / 2 for e in errors]),
        "contingency_tvd": cont,
        "contingency_similarity": _mean([1 - v for v in cont.values()]),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r of two columns (N,), None where it is undefined (a constant column, as SDMetrics' NaN)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 6) if values else None


def tstr(real: dict, synthetic: dict, kinds: dict, target: str, test: dict | None, seed: int) -> dict:
    """Train on real and on synthetic rows, test both on real rows: accuracy and macro F1 (a categorical
    target, logistic regression) or R^2 (a numeric one, ridge regression)."""
    if target not in kinds:
        raise VaekitError(f"TSTR target {target!r} is not a column ({', '.join(kinds)})", key="target")
    if test is None:
        order = np.random.default_rng(seed).permutation(len(real[target]))
        cut = int(0.7 * len(order))
        real, test = ({k: v[order[:cut]] for k, v in real.items()}, {k: v[order[cut:]] for k, v in real.items()})
    features = [k for k in kinds if k != target]
    encode = _encoder(real, kinds, features)
    y_test = test[target]
    out: dict[str, object] = {
        "target": target,
        "model": "logistic_regression" if kinds[target] == "categorical" else "ridge",
    }
    for name, rows in (("real", real), ("synthetic", synthetic)):
        out[name] = _fit_score(encode(rows), rows[target], encode(test), y_test, kinds[target] == "categorical")
    return out


def _encoder(real: dict, kinds: dict, features: list[str]):
    """rows -> (N, F) features: numeric columns standardised by the real rows, categorical ones one-hot."""
    stats = {
        k: (real[k].astype(float).mean(), real[k].astype(float).std() or 1.0) for k in features if kinds[k] == "numeric"
    }
    cats = {k: sorted(set(real[k].astype(str).tolist())) for k in features if kinds[k] == "categorical"}

    def encode(rows: dict) -> np.ndarray:
        parts = [((rows[k].astype(float) - m) / s)[:, None] for k, (m, s) in stats.items()]
        parts += [(rows[k].astype(str)[:, None] == np.asarray(c)[None]).astype(float) for k, c in cats.items()]
        return np.concatenate(parts, 1) if parts else np.zeros((len(next(iter(rows.values()))), 0))

    return encode


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


def table_run_quality(
    run: Run,
    dataset: Dataset,
    *,
    sampler: str | None = None,
    n: int | None = None,
    seed: int = 0,
    write: bool = True,
    target: str | None = None,
    split: str = "test",
) -> dict:
    """``table_quality`` of a table run: n rows drawn from it (default: as many as the training split) against
    the real training rows, TSTR tested on ``split`` (test or val); written to RUN/quality.json with the weights'
    digest."""
    start = time.perf_counter()
    if run.table is None or dataset.table is None:
        raise VaekitError("table quality needs a run trained on a .csv/.tsv table (with its table.json)")
    if sampler is not None:
        raise VaekitError("a table run's rows come from its prior: a post-hoc sampler does not apply", key="sampler")
    if split not in ("test", "val"):
        raise VaekitError(f"split {split!r}: TSTR is tested on rows it did not train on, test or val", key="split")
    schema, held_out = run.table, getattr(dataset, split)
    real, test = schema.decode(dataset.train.x), schema.decode(held_out.x)
    n = n or len(dataset.train.x)
    torch.manual_seed(seed)
    y = dataset.train.y if run.model.needs_labels else None  # a conditional run: classes as often as the real rows
    labels = None if y is None else y[torch.randint(len(y), (n,))]
    synthetic = run.sample_table(n, label=labels)  # with its label column, named as the file names it
    if y is not None:  # the real rows with theirs: measured, and by default what train-on-synthetic predicts
        name = run.config.data.label_column or "label"
        real = schema.with_labels(real, y.numpy(), run.classes, name)
        test = schema.with_labels(test, held_out.y.numpy(), run.classes, name)
        target = target or (schema.label or name)
    out = {
        "kind": "table",
        "data": dataset.name,
        "n_real": len(dataset.train.x),
        "n_synthetic": n,
        "split": split,
        "n_test": len(held_out.x),
        "seed": seed,
        **table_quality(real, synthetic, schema, target, test, seed),
        "seconds": round(time.perf_counter() - start, 3),
        files.DIGEST: run.digest,
    }
    if write and run.path is not None:
        atomic_write_json(run.path / files.QUALITY, out)
    return out


def table_quality_rows(result: dict) -> list[dict]:
    """A table run's quality.json as rows: each column's kind, distance (KS or TVD) and score."""
    return [
        {
            "column": name,
            "kind": c["kind"],
            "distance": f"{'KS' if 'ks' in c else 'TVD'} {c.get('ks', c.get('tvd')):.3f}",
            "score": c["score"],
        }
        for name, c in result["columns"].items()
    ]


def table_quality_lines(result: dict) -> list[str]:
    """A table run's quality.json in sentences: the rows compared, the overall scores, train-on-synthetic."""
    lines = [f"{result['data']}: {result['n_synthetic']} synthetic rows against {result['n_real']} real training rows"]
    figures = [("column shapes", "column_shapes"), ("correlations", "correlation_similarity")]
    figures.append(("contingency", "contingency_similarity"))
    lines.append(", ".join(f"{what} {result[key]:.3f}" for what, key in figures if result.get(key) is not None))
    if result.get("tstr"):
        t = result["tstr"]
        measure = "accuracy" if "accuracy" in t["real"] else "r2"
        lines.append(
            f"train on synthetic, test on real ({result['split']} split, {result['n_test']} rows): {t['target']} "
            f"{measure} {t['synthetic'][measure]:.3f} (trained on real: {t['real'][measure]:.3f}, {t['model']})"
        )
    return lines
