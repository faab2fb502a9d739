"""Synthetic tables measured against real ones, with SDMetrics' definitions (sdmetrics is not needed):

- column shapes: the Kolmogorov-Smirnov statistic of a numeric column (KSComplement = 1 - KS) and the total
  variation distance of a categorical one (TVComplement = 1 - TVD);
- column pairs: Pearson's correlation of two numeric columns (CorrelationSimilarity = 1 - |r_real - r_syn| / 2,
  the error reported is |r_real - r_syn|) and the TVD of two categorical columns' joint frequencies
  (ContingencySimilarity = 1 - TVD); pairs of a numeric and a categorical column are not measured; the means
  cover every pair, quality.json lists at most ``table_pairs.PAIRS_KEPT`` (100) pairs of each kind, the worst;
- train on synthetic, test on real (TSTR, ``table_tstr``): scikit-learn's logistic regression (a categorical
  target) or ridge regression (a numeric one) trained on the synthetic rows and, as the yardstick, on the real
  training rows, both scored on held-out real rows; by default it predicts the last categorical column of 2 to
  ``MAX_CLASSES`` (20) classes (``default_target``), none where no column has;
- gaps (rows from anywhere: NaN, None, pandas' NA), as SDMetrics takes them: KS and TVD over a column's filled
  cells, correlations over the rows where both columns are filled, a gap one category of its own in a
  contingency table, and each column's share of gaps compared as a measure of its own (MissingValueSimilarity).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from .. import files
from ..data import Dataset, Split
from ..data.prepare import same_spec
from ..data.tables import TableSchema
from ..errors import VaekitError
from ..io import atomic_write_json, run_lock
from ..runs import Run
from ..training.rng import keeps_rng
from .eval_files import data_path, eval_file, saved_path
from .outputs import note_changed_data
from .table_pairs import column_pairs, tv_distance
from .table_tstr import MAX_CLASSES, check_target, default_target, floats, gaps_of, read_column, same_kinds, tstr

OTHER_TEST_ROWS = "a seeded 30% of the rows given, held out from the real-trained model's rows (the rest)"


def columns_of(table) -> dict[str, np.ndarray]:
    """{name: (N,) values} of a dict of columns or a pandas DataFrame, each read as ``read_column`` reads it."""
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # a DataFrame
        return {str(c): read_column(np.asarray(table[c].to_numpy())) for c in table.columns}
    return {str(k): read_column(_listed(v)) for k, v in dict(table).items()}


def _listed(v) -> np.ndarray:
    """A column (N,) given as an array or a list; a list of text and gaps (None, NaN, pandas' NA) as objects, its
    gaps kept: numpy makes ['a', nan] the text ['a', 'nan'], a category 'nan'."""
    a = np.asarray(v)
    if a.dtype.kind in "US" and not isinstance(v, np.ndarray) and not all(isinstance(x, str) for x in v):
        a = np.empty(len(a), object)
        a[:] = list(v)
    return a


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup_t |F_a(t) - F_b(t)| of two samples' empirical distribution functions, over their filled values."""
    a, b = (np.sort(v[~np.isnan(v)]) for v in (floats(a), floats(b)))
    t = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, t, "right") / len(a) - np.searchsorted(b, t, "right") / len(b)).max())


def kinds_of(real: dict[str, np.ndarray], schema: TableSchema | None) -> dict[str, str]:
    """numeric or categorical per column: from the schema, else numbers, dates and durations are numeric and the
    rest (text, booleans) categorical."""
    if schema is not None:  # and a label column beside the features: categories
        kinds = {c.name: c.kind for c in schema.columns}
        return kinds | {k: "categorical" for k in real if k not in kinds}
    return {k: "numeric" if v.dtype.kind in "iufmM" else "categorical" for k, v in real.items()}


def table_quality(
    real, synthetic, schema: TableSchema | None = None, target: str | bool | None = None, test=None, seed: int = 0
) -> dict:
    """Column shapes, column pairs and TSTR of ``synthetic`` rows against ``real`` ones (dicts of columns or
    DataFrames with the same columns; gaps: NaN, None, pandas' NA). ``target``: the column TSTR predicts
    (default: ``default_target``, its result's ``passed_over`` naming columns of more classes, or where none
    has, no TSTR and ``tstr_left_out`` saying why; False or "none": no TSTR); ``test``: held-out real rows, which
    the synthetic rows' model never saw (default: a seeded 30% of ``real``, which a model fitted on all of
    ``real`` did see: the result's ``tstr.test_rows`` says so)."""
    real, synthetic = columns_of(real), columns_of(synthetic)
    if set(real) != set(synthetic):
        raise VaekitError(f"synthetic columns {sorted(synthetic)} differ from the real ones {sorted(real)}")
    kinds = kinds_of(real, schema)
    same_kinds(real, synthetic, kinds, schema is not None)
    shapes = column_shapes(real, synthetic, kinds)
    result: dict = {"columns": shapes, "column_shapes": _mean([c["score"] for c in shapes.values()])}
    missing = [c["missing"]["similarity"] for c in shapes.values() if "missing" in c]
    result |= {"missing_similarity": _mean(missing)} if missing else {}
    result |= column_pairs(real, synthetic, kinds)
    if target is False or (target == "none" and "none" not in kinds):
        return result
    check_target(target, list(kinds))
    target, many = (target, {}) if target else default_target(real, kinds, schema)
    if target is not None:
        result["tstr"] = tstr(real, synthetic, kinds, str(target), None if test is None else columns_of(test), seed)
        if many:  # {column: classes}: too many to predict by default
            result["tstr"]["passed_over"] = many
    else:  # said why: a column of too many classes, or none to predict by default
        said = ", ".join(f"{k!r} {n}" for k, n in many.items()) or "the table has no categorical column"
        result["tstr_left_out"] = f"no categorical column holds 2 to {MAX_CLASSES} classes ({said})"
    return result


def column_shapes(real: dict, synthetic: dict, kinds: dict[str, str]) -> dict[str, dict]:
    """Each column's KS (numeric) or TVD (categorical) over its filled cells, as SDMetrics drops gaps, with
    its score 1 - distance (None where a side has no value); where a side has gaps, their share on each side
    and its similarity 1 - |share_real - share_synthetic| (SDMetrics' MissingValueSimilarity)."""
    shapes: dict[str, dict] = {}
    for name, kind in kinds.items():
        gr, gs = gaps_of(real[name]), gaps_of(synthetic[name])
        r, s = real[name][~gr], synthetic[name][~gs]
        stat = None
        if len(r) and len(s):
            stat = ks_statistic(r, s) if kind == "numeric" else tv_distance(r.astype(str), s.astype(str))
        figures = (None, None) if stat is None else (round(stat, 6), round(1 - stat, 6))
        shapes[name] = {"kind": kind, "ks" if kind == "numeric" else "tvd": figures[0], "score": figures[1]}
        if gr.any() or gs.any():
            share = (float(gr.mean()), float(gs.mean()))
            shapes[name]["missing"] = {"real": round(share[0], 6), "synthetic": round(share[1], 6)}
            shapes[name]["missing"]["similarity"] = round(1 - abs(share[0] - share[1]), 6)
    return shapes


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 6) if values else None


@keeps_rng
def _table_run(run: Run, dataset: Dataset, sampler: str | None, split: str) -> TableSchema:
    """The run's table schema, or one line where ``table_run_quality`` cannot measure it: a run or data of no
    table, a post-hoc sampler, a split other than test or val (or all, every row of other data)."""
    if run.table is None or dataset.table is None:
        raise VaekitError("table quality needs a run trained on a .csv/.tsv table (with its table.json)")
    if sampler is not None:
        raise VaekitError("a table run's rows come from its prior: a post-hoc sampler does not apply", key="sampler")
    if split not in ("test", "val", "all"):
        raise VaekitError(f"split {split!r}: TSTR is tested on rows it did not train on, test or val", key="split")
    return run.table


def _check_run_target(run: Run, schema: TableSchema, target: object) -> None:
    """Refuse, in one line, a TSTR ``target`` that names no column of the run's rows, saying where it names the
    label column of a run that does not model it (no conditional model: its rows have no such column)."""
    if target is not None and target == schema.label and not run.model.needs_labels:
        raise VaekitError(
            f"TSTR target {target!r} is the run's label column, which this run does not model (its model is not "
            "conditional): its synthetic rows have no such column; train with data.label_column=off to model it as "
            "a feature, or with a conditional model (family cvae) to draw it",
            key="target",
        )
    label = [schema.label or run.config.data.label_column or "label"] if run.model.needs_labels else []
    check_target(target, [c.name for c in schema.columns] + label)  # before the rows are drawn


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
    data: str | os.PathLike | None = None,
) -> dict:
    """``table_quality`` of a table run: n rows drawn from it (default: as many as the real rows) against the real
    training rows, TSTR tested on ``split`` (test or val; ``target`` False or "none": no TSTR), written with the
    weights' digest to RUN/quality.json (its item counts checked: ``outputs.note_changed_data``); other data
    (``own_data``; ``data``: the spec ``dataset`` was read from) against every row of it, whatever ``split``
    (recorded as all), TSTR tested on a seeded 30%, written to ``quality_path``'s file. The real rows are items
    decoded and bounded as synthetic rows are (``real_rows``)."""
    start = time.perf_counter()
    own = own_data(run, dataset, data)
    schema = _table_run(run, dataset, sampler, split if own else "all")
    _check_run_target(run, schema, target)
    if own:
        note_changed_data(run, dataset)
    train, held_out = _rows_compared(dataset, split if own else None)
    real, test = real_rows(schema, train.x), None if held_out is None else real_rows(schema, held_out.x)
    n = n or len(train.x)
    torch.manual_seed(seed)
    y = train.y if run.model.needs_labels else None  # a conditional run: classes as often as the real rows
    labels = None if y is None else y[torch.randint(len(y), (n,))]
    synthetic = run.sample_table(n, label=labels)  # with its label column, named as the file names it
    if y is not None:  # the real rows with theirs: measured, and by default what train-on-synthetic predicts
        name = run.config.data.label_column or "label"
        real = schema.with_labels(real, y.numpy(), run.classes, name)
        if test is not None and held_out is not None and held_out.y is not None:  # other data: no split's rows
            test = schema.with_labels(test, held_out.y.numpy(), run.classes, name)
        target = (schema.label or name) if target is None else target
    out = {
        "kind": "table",
        "data": dataset.name,
        "n_real": len(train.x),
        "n_synthetic": n,
        "split": split if own else "all",
        "n_test": len(train.x) - int(0.7 * len(train.x)) if held_out is None else len(held_out.x),  # tstr's 30%
        "seed": seed,
        **table_quality(real, synthetic, schema, target, test, seed),
        "seconds": round(time.perf_counter() - start, 3),
        files.DIGEST: run.digest,
    } | ({} if own or data is None else {"path": data_path(os.fspath(data))})  # whose figures
    if "tstr" in out and not own:  # tstr's own words suppose the run was fitted on these rows
        out["tstr"]["test_rows"] = OTHER_TEST_ROWS
    if write and run.path is not None:
        write_table_quality(run, out, own)
    return out


def _rows_compared(dataset: Dataset, split: str | None) -> tuple[Split, Split | None]:
    """(the real rows' items: the training split, or for ``split`` None every item of the three, read in memory
    (``quality_run.quality_data``); the rows TSTR tests on: the ``split``, or None: a seeded 30% of the real ones)."""
    if split is not None:
        return dataset.train, getattr(dataset, split)
    parts = (dataset.train, dataset.val, dataset.test)
    y = None if any(s.y is None for s in parts) else torch.cat([torch.as_tensor(s.y) for s in parts])
    return Split(torch.cat([torch.as_tensor(s.x) for s in parts]), y), None


def own_data(run: Run, dataset: Dataset | None, spec: str | os.PathLike | None) -> bool:
    """Whether ``dataset`` (read from ``spec``; None: not said, and then ``dataset`` is needed) is the run's own
    data: ``spec`` names it (``prepare.same_spec``), or, none said, it has the file name of the run's data; for an
    image run trained on data in memory (no spec of its own), any data given, the only yardstick it has; for such
    a table run none: a file's rows are other data, every row compared (a re-split would differ from its own)."""
    mine = run.config.data.spec
    if spec is not None and not mine:
        return run.table is None
    if spec is not None:
        return same_spec(os.fspath(spec), mine)
    return bool(mine) and dataset is not None and dataset.name == Path(mine).name


def quality_path(folder: Path, data: str, split: str, where: str | None) -> Path:
    """The run ``folder``'s file of the table quality of other data (``data``: its name) than its own, named as
    ``evaluate`` names its figures of such data (``eval_files.eval_path``): quality-DATA-SPLIT.json, or
    quality-DATA-HASH-SPLIT.json where that file records another absolute path than ``where``."""
    path = folder / f"quality-{eval_file(data, split, own=False).removeprefix('eval-')}"
    if not where or (saved_path(path) or where) == where:
        return path
    digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return folder / f"quality-{eval_file(data, split, False, digest).removeprefix('eval-')}"


def write_table_quality(run: Run, result: dict, own: bool) -> Path:
    """Write a table run's ``result`` to RUN/quality.json (its ``own`` data's) or ``quality_path``'s file, under
    the folder's lock; the path written."""
    with run_lock(run.folder):
        where = result.get("path")
        path = run.folder / files.QUALITY if own else quality_path(run.folder, result["data"], result["split"], where)
        return atomic_write_json(path, result)


def real_rows(schema: TableSchema, x) -> dict[str, np.ndarray]:
    """Real items (N, D) as rows {column: (N,) values}, decoded and then bounded as synthetic rows are
    (``TableSchema.bounded``: clipped to the training range, whole-number columns rounded), so that the same
    rows score KS 0 against each other: decoded alone, mode codes (data.numeric=modes) come back a little off
    (0 as -1e-10, 10 as 9.99999) while synthetic rows are rounded."""
    return schema.bounded(schema.decode(x))


def table_quality_rows(result: dict) -> list[dict]:
    """A table run's quality.json as rows: each column's kind, distance (KS or TVD) and score."""
    nan = float("nan")  # the score of none: a side without a value
    return [
        {"column": k, "kind": c["kind"], "distance": _distance(c), "score": nan if c["score"] is None else c["score"]}
        for k, c in result["columns"].items()
    ]


def _distance(c: dict) -> str:
    """A column's KS or TVD, "-" where undefined, and its share of gaps on each side where it has some."""
    d = c.get("ks", c.get("tvd"))
    out = f"{'KS' if 'ks' in c else 'TVD'} {'-' if d is None else format(d, '.3f')}"
    gaps = c.get("missing")
    return out if not gaps else f"{out}, gaps {gaps['real']:.1%} real, {gaps['synthetic']:.1%} synthetic"


def table_quality_lines(result: dict) -> list[str]:
    """A table run's quality.json in sentences: the rows compared (the real training rows, or every row of other
    data: split all), the overall scores, train-on-synthetic or why it was left out."""
    data, n, every = result["data"], result["n_real"], result["split"] == "all"
    rows = f"the {n} rows of {data}" if every else f"{n} real training rows"
    lines = [f"{data}: {result['n_synthetic']} synthetic rows against {rows}"]
    figures = [("column shapes", "column_shapes"), ("correlations", "correlation_similarity")]
    figures += [("contingency", "contingency_similarity"), ("gaps", "missing_similarity")]
    pairs, defined = result.get("correlation_pairs"), result.get("correlation_pairs_defined", 0)  # r on both sides
    some = {"correlation_similarity": f" ({defined} of {pairs} pairs defined)"} if 0 < defined != pairs else {}
    lines.append(", ".join(f"{w} {result[k]:.3f}{some.get(k, '')}" for w, k in figures if result.get(k) is not None))
    if t := result.get("tstr"):
        held = f"{result['n_test']} of them held out" if every else f"{result['split']} split, {result['n_test']} rows"
        measure = "accuracy" if "accuracy" in t["real"] else "r2"
        lines.append(
            f"train on synthetic, test on real ({held}): {t['target']} {measure} {t['synthetic'][measure]:.3f} "
            f"(trained on real: {t['real'][measure]:.3f}, {t['model']})"
        )
    elif why := result.get("tstr_left_out"):
        lines.append(f"train on synthetic, test on real: left out, {why}")
    return lines
