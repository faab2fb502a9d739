"""Where the tables benchmark's rows come from (benchmarks/tables.py): the Adult-like table it makes (seeded, no
download), SDV's TVAE and Gaussian copula fitted on the same training rows as vaekit, and the check of vaekit's
measures against sdmetrics' own on the same rows."""

from __future__ import annotations

import time

import numpy as np
import torch

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
