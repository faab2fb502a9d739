"""Synthetic tables: vaekit on an Adult-census-like table (numeric and categorical columns, missing cells) beside
SDV's TVAE and Gaussian copula, all measured by ``vaekit.evaluation.table_quality`` (SDMetrics' definitions,
checked here against sdmetrics itself on vaekit's rows).

The table is made here (seeded, no download): Adult's columns and rough marginals (age, workclass, education and
its number, marital status, sex, hours per week, capital gain, income), with gaps in age, hours and workclass.
vaekit trains with data.missing=mean (gaps filled by the train split's means and modes, and where they are
modelled); the synthesizers of SDV get the same training rows as quality decodes them (``real_rows``), with their
gaps (NaN, None) where the file has them, which SDV handles its own way. Every model's rows are compared with the
real training rows; train-on-synthetic, test-on-real predicts income on the run's test split.

    python benchmarks/tables.py            # 5,000 rows, a few minutes on 2 CPU cores
    python benchmarks/tables.py --quick    # 1,500 rows, short training: a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write

import vaekit
from vaekit.data.prepare import prepare_data
from vaekit.data.tables import write_csv
from vaekit.evaluation.table_quality import real_rows, table_quality, table_run_quality

EDUCATION = {
    "9th": 5,
    "11th": 7,
    "HS-grad": 9,
    "Some-college": 10,
    "Assoc": 11,
    "Bachelors": 13,
    "Masters": 14,
    "Prof-school": 15,
    "Doctorate": 16,
}
EDUCATION_P = [0.06, 0.06, 0.32, 0.22, 0.08, 0.16, 0.06, 0.02, 0.02]
TARGET = "income"
VAEKIT = "vaekit (VAE, Tabular likelihood)"  # the name of vaekit's rows
HEADLINE_COLUMNS = [
    "rows from",
    "train s",
    "column shapes (mean of 1 - KS, 1 - TVD)",
    "mean KS (numeric)",
    "mean TVD (categorical)",
    "correlation error",
    "contingency similarity",
    "TSTR accuracy",
    "TSTR macro F1",
]


def adult_like(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n rows of an Adult-census-like table as {column: values}; gaps are '' (numbers) and '?' (workclass)."""
    rng = np.random.default_rng(seed)
    age = np.clip(17 + rng.gamma(2.2, 9.0, n), 17, 90).round()
    sex = np.where(rng.random(n) < 0.67, "Male", "Female")
    education = rng.choice(list(EDUCATION), n, p=EDUCATION_P)
    edu_num = np.vectorize(EDUCATION.get)(education).astype(float)
    married = rng.random(n) < 0.7 / (1 + np.exp(-(age - 30) / 5))
    marital = np.where(
        married, "Married", np.where(age < 35, "Never-married", rng.choice(["Divorced", "Widowed", "Separated"], n))
    )
    self_emp = rng.random(n) < 0.04 + 0.003 * (age - 17)
    workclass = np.where(self_emp, "Self-emp", rng.choice(["Private", "Gov", "Other"], n, p=[0.8, 0.15, 0.05]))
    hours = np.where(rng.random(n) < 0.45, 40.0, rng.normal(38 + 6 * (sex == "Male"), 11, n)).clip(1, 99).round()
    gain = np.where(rng.random(n) < 0.08 + 0.01 * (edu_num - 9).clip(0), rng.lognormal(8.3, 0.9, n), 0.0).round()
    logit = (
        -9.6 + 0.035 * age + 0.38 * edu_num + 0.03 * hours + 1.6 * married + 0.3 * (sex == "Male") + 2.5 * (gain > 5000)
    )
    income = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    columns = {
        "age": age,
        "workclass": workclass,
        "education": education,
        "education_num": edu_num,
        "marital_status": marital,
        "sex": sex,
        "hours_per_week": hours,
        "capital_gain": gain,
        "income": income,
    }
    out = {k: v.astype(object) for k, v in columns.items()}
    for name, rate, gap in (("age", 0.015, ""), ("hours_per_week", 0.01, ""), ("workclass", 0.05, "?")):
        out[name][rng.random(n) < rate] = gap
    return out


def sdv_rows(kind: str, real: dict, schema, n: int, epochs: int, seed: int) -> tuple[dict, float]:
    """n rows from SDV's TVAE or Gaussian copula fitted on ``real`` (same columns and kinds); (rows, seconds)."""
    import pandas as pd
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer, TVAESynthesizer

    sdtypes = {c.name: {"sdtype": "numerical" if c.kind == "numeric" else "categorical"} for c in schema.columns}
    metadata = Metadata.load_from_dict({"METADATA_SPEC_VERSION": "V1", "tables": {"t": {"columns": sdtypes}}})
    start = time.perf_counter()
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - SDV draws from numpy's global generator
    model = (
        TVAESynthesizer(metadata, epochs=epochs, enable_gpu=False)
        if kind == "tvae"
        else GaussianCopulaSynthesizer(metadata)
    )
    model.fit({"t": pd.DataFrame(real)})
    rows = model.sample(n)["t"]
    return {k: rows[k].to_numpy() for k in real}, time.perf_counter() - start


def sdmetrics_gap(real: dict, synthetic: dict, result: dict, schema) -> float:
    """The largest |ours - sdmetrics'| over the column shapes and the numeric pairs' correlation similarity."""
    import pandas as pd
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    r, s = pd.DataFrame(real), pd.DataFrame(synthetic)
    gaps = []
    for c in schema.columns:
        metric = KSComplement if c.kind == "numeric" else TVComplement
        gaps.append(abs(metric.compute(r[c.name], s[c.name]) - result["columns"][c.name]["score"]))
    for pair, v in result["correlations"].items():
        a, b = pair.split("|")
        gaps.append(abs(CorrelationSimilarity.compute(r[[a, b]], s[[a, b]]) - (1 - v["error"] / 2)))
    for pair, v in result["contingency_tvd"].items():
        a, b = pair.split("|")
        gaps.append(abs(ContingencySimilarity.compute(r[[a, b]], s[[a, b]]) - (1 - v)))
    return float(max(gaps))


def summary(name: str, seconds: float | None, q: dict) -> list:
    """One row of the headline table."""
    cols = q["columns"].values()
    ks = [c["ks"] for c in cols if "ks" in c]
    tvd = [c["tvd"] for c in cols if "tvd" in c]
    tstr = q["tstr"]["synthetic"]
    return [
        name,
        "-" if seconds is None else round(seconds, 1),
        round(q["column_shapes"], 4),
        round(float(np.mean(ks)), 4),
        round(float(np.mean(tvd)), 4),
        round(q["correlation_error"], 4),
        round(q["contingency_similarity"], 4),
        round(tstr["accuracy"], 4),
        round(tstr["f1_macro"], 4),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,500 rows and short training (a smoke run)")
    p.add_argument("--rows", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON path (default benchmarks/results/tables.json)")
    args = p.parse_args()
    check_peers()
    n = args.rows or (1500 if args.quick else 5000)
    epochs = (10, 20) if args.quick else (100, 200)  # vaekit's, TVAE's
    with tempfile.TemporaryDirectory() as tmp:
        facts = measure(Path(tmp), n, epochs, args.seed)
    report(args, n, epochs, facts)


def check_peers() -> None:
    """Exit with one line before any training when SDV or sdmetrics, which the result compares against, is missing."""
    missing = [name for name in ("sdv", "sdmetrics") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"benchmarks/tables.py needs {' and '.join(missing)}: install them with `make bench-peer`")


def fit_vaekit(tmp: Path, n: int, epochs: int, seed: int) -> tuple[vaekit.Run, float]:
    """vaekit trained on n Adult-like rows written as a CSV in ``tmp``: (the run, reloaded; training seconds)."""
    csv = write_csv({k: np.asarray(v) for k, v in adult_like(n, seed).items()}, tmp / "adult.csv")
    start = time.perf_counter()
    run = vaekit.train(
        data=str(csv),
        out=str(tmp / "run"),
        **{
            "data.missing": "mean",
            "train.epochs": epochs,
            "train.batch_size": 256,
            "model.hidden": [128, 128],
            "model.latent_dim": 16,
            "train.seed": seed,
            "train.progress": False,
        },
    )
    seconds = time.perf_counter() - start
    print(f"vaekit trained in {seconds:.0f} s", flush=True)
    return vaekit.load_run(run.path), seconds


def measure(tmp: Path, n: int, epochs: tuple[int, int], seed: int) -> dict:
    """vaekit (``epochs[0]``), SDV's TVAE (``epochs[1]``) and Gaussian copula fitted on the same rows, each measured:
    {results: {name: (seconds, quality)}, floor: the held-out rows' quality, gap: vaekit vs sdmetrics, schema,
    real: the training rows, test: the test rows}."""
    run, seconds = fit_vaekit(tmp, n, epochs[0], seed)
    data = prepare_data(run.config)[0]
    ours = table_run_quality(run, data, seed=seed, target=TARGET)
    schema = run.table
    real, test = real_rows(schema, data.train.x), real_rows(schema, data.test.x)  # as quality scores them
    torch.manual_seed(seed)
    synthetic = run.sample_table(len(data.train.x))
    gap = sdmetrics_gap(real, synthetic, table_quality(real, synthetic, schema, TARGET, test), schema)
    results = {VAEKIT: (seconds, ours)}
    for kind, name in (("tvae", "SDV TVAE"), ("copula", "SDV Gaussian copula")):
        rows, s = sdv_rows(kind, real, schema, len(data.train.x), epochs[1], seed)
        results[name] = (s, table_quality(real, rows, schema, TARGET, test, seed))
        print(f"{name} fitted and sampled in {s:.0f} s", flush=True)
    floor = table_quality(real, schema.decode(data.val.x), schema, TARGET, test, seed)
    return {"results": results, "floor": floor, "gap": gap, "schema": schema, "real": real, "test": test}


def headline_rows(results: dict, floor: dict) -> list[list]:
    """The headline table's rows: each model's, the held-out real rows' (a yardstick), and train-on-real TSTR."""
    rows = [summary(k, s, q) for k, (s, q) in results.items()] + [
        summary("real held-out rows (yardstick)", None, floor)
    ]
    real_tstr = results[VAEKIT][1]["tstr"]["real"]
    rows.append(
        [
            "real training rows (train on real)",
            *["-"] * 6,
            round(real_tstr["accuracy"], 4),
            round(real_tstr["f1_macro"], 4),
        ]
    )
    return rows


def per_column_rows(results: dict, floor: dict, names: list[str]) -> list[list]:
    """Per model and for the held-out real rows: each column's KS statistic or total-variation distance."""
    return [
        [k, *[q["columns"][c].get("ks", q["columns"][c].get("tvd")) for c in names]] for k, (_, q) in results.items()
    ] + [["real held-out rows", *[floor["columns"][c].get("ks", floor["columns"][c].get("tvd")) for c in names]]]


def report(args: argparse.Namespace, n: int, epochs: tuple[int, int], facts: dict) -> None:
    """The measures of ``facts`` (from ``measure``) as two tables, printed and written to the result's JSON."""
    results, floor = facts["results"], facts["floor"]
    names = [c.name for c in facts["schema"].columns]
    tables = [
        table(
            f"Adult-like table, {n} rows ({len(facts['real'][names[0]])} train, {len(facts['test'][names[0]])} "
            f"test); synthetic rows as many as the training rows",
            HEADLINE_COLUMNS,
            headline_rows(results, floor),
        ),
        table(
            "Per column: KS statistic (numeric) or total-variation distance (categorical); lower is closer",
            ["rows from", *names],
            per_column_rows(results, floor, names),
        ),
    ]
    v, t = results[VAEKIT][1], results["SDV TVAE"][1]
    write(
        "tables",
        "Synthetic tables: vaekit beside SDV's TVAE and Gaussian copula",
        f"Adult-like table ({n} rows, gaps filled by train means/modes): column shapes {v['column_shapes']:.3f} "
        f"(vaekit) vs {t['column_shapes']:.3f} (TVAE); TSTR accuracy {v['tstr']['synthetic']['accuracy']:.3f} vs "
        f"{t['tstr']['synthetic']['accuracy']:.3f} (train on real {v['tstr']['real']['accuracy']:.3f})",
        tables,
        notes(epochs, facts["gap"]),
        out=args.out,
    )


def notes(epochs: tuple[int, int], gap: float) -> list[str]:
    """The result's notes: the settings of vaekit and SDV, and vaekit's largest difference from sdmetrics."""
    return [
        f"vaekit: {epochs[0]} epochs, batch 256, MLP 128-128, latent 16, Gaussian numeric columns on "
        "standardised values (`data.numeric=standard`, the default; TVAE's mode-specific normalisation, "
        "`data.numeric=modes`, documented in [the data guide](../guides/data.md#tables), is not measured here)",
        f"SDV {_version('sdv')} TVAE: {epochs[1]} epochs, its defaults otherwise (batch 500, 128-128); "
        "Gaussian copula: its defaults",
        f"vaekit's measures against sdmetrics {_version('sdmetrics')} on vaekit's rows: largest difference {gap:.2e}",
        "one seed; synthetic categories are drawn from the softmax, numbers from the Gaussian (vaekit: whole-number "
        "columns rounded, every number clipped to its training range)",
        "train s: wall-clock seconds of fitting (vaekit: with its run folder), on the machine as it was: other "
        "jobs may share its cores",
    ]


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
