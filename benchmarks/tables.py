"""Synthetic tables: vaekit on an Adult-census-like table (numeric and categorical columns, missing cells) beside
SDV's TVAE and Gaussian copula, all measured by ``vaekit.evaluation.table_quality`` (SDMetrics' definitions,
checked here against sdmetrics itself on vaekit's rows).

The table is made here (seeded, no download): Adult's columns and rough marginals (age, workclass, education and
its number, marital status, sex, hours per week, capital gain, income), with gaps in age, hours and workclass
(benchmarks/tables_rows.py). vaekit trains twice with data.missing=mean (gaps filled by the train split's means
and most frequent categories, and where they are modelled), on the same budget: numeric columns standardised
(data.numeric=standard, the default) and under TVAE's mode-specific normalisation (data.numeric=modes). The
synthesizers of SDV get the same training rows as quality decodes them (``real_rows``, of the standard run), with
their gaps (NaN, None) where the file has them, which SDV handles its own way. Every model's rows, both vaekit
runs' included, are compared with those real training rows; train-on-synthetic, test-on-real predicts income on
the runs' test split.

    python benchmarks/tables.py            # 5,000 rows, a few minutes on 2 CPU cores
    python benchmarks/tables.py --quick    # 1,500 rows, short training: a smoke run
    python benchmarks/tables.py --rehead benchmarks/results/tables.json   # its notes rewritten; no run
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import budget, rewrite, table, write
from runner import entry, need_peers, parser
from tables_rows import adult_like, sdmetrics_gap, sdv_rows

import vaekit
from vaekit.data.prepare import prepare_data
from vaekit.data.tables import write_csv
from vaekit.evaluation.table_quality import real_rows, table_quality

TARGET = "income"
BATCH = {"vaekit": 256, "TVAE": 500}  # vaekit's batch here, TVAE's default (as its 128-128 networks)
TVAE_EPOCHS = 300  # TVAE's default, which this benchmark sets lower (``notes``: about as many steps as vaekit's)
ROWS, TRAIN = 5000, 4000  # the table's rows by default, and its training split's (a tenth each to val and test)
VAEKIT = "vaekit (VAE, Tabular likelihood)"  # the name of vaekit's rows (data.numeric=standard, the default)
VAEKIT_MODES = "vaekit, data.numeric=modes"  # the same budget, numbers under TVAE's mode-specific normalisation
NUMERIC = {VAEKIT: "standard", VAEKIT_MODES: "modes"}  # vaekit's rows: their data.numeric
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
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="1,500 rows and short training (a smoke run)")
    p.add_argument("--rows", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON path (default benchmarks/results/tables.json)")
    p.add_argument("--rehead", metavar="JSON", help="rewrite a written result's notes from the facts it holds; no run")
    args = p.parse_args()
    if args.rehead:
        return rehead(args.rehead)
    budget(p, args, "rows", rows=ROWS)
    check_peers()
    n = args.rows or (1500 if args.quick else ROWS)
    epochs = (10, 20) if args.quick else (100, 200)  # vaekit's, TVAE's
    with tempfile.TemporaryDirectory() as tmp:
        facts = measure(Path(tmp), n, epochs, args.seed)
    report(args, n, epochs, facts)


def check_peers() -> None:
    """Exit with one line before any training when SDV or sdmetrics, which the result compares against, is missing."""
    need_peers("tables", "sdv", "sdmetrics")


def fit_vaekit(csv: Path, out: Path, epochs: int, seed: int, numeric: str) -> tuple[vaekit.Run, float]:
    """vaekit trained on the table ``csv`` into ``out`` with data.numeric=``numeric``: (the run, reloaded;
    training seconds)."""
    start = time.perf_counter()
    run = vaekit.train(
        data=str(csv),
        out=str(out),
        **{
            "data.missing": "mean",
            "data.numeric": numeric,
            "train.epochs": epochs,
            "train.batch_size": BATCH["vaekit"],
            "model.hidden": [128, 128],
            "model.latent_dim": 16,
            "train.seed": seed,
            "train.progress": False,
        },
    )
    seconds = time.perf_counter() - start
    print(f"vaekit (data.numeric={numeric}) trained in {seconds:.0f} s", flush=True)
    return vaekit.load_run(run.path), seconds


def score_vaekit(run: vaekit.Run, real: dict, test: dict, schema, seed: int) -> tuple[dict, float]:
    """The quality of a vaekit run's rows (as many as ``real``'s, drawn as ``table_run_quality`` draws them) against
    the real rows, and the largest difference of its measures from sdmetrics' on the same rows."""
    torch.manual_seed(seed)
    synthetic = run.sample_table(len(real[schema.columns[0].name]))
    quality = table_quality(real, synthetic, schema, TARGET, test, seed)
    return quality, sdmetrics_gap(real, synthetic, quality, schema)


def measure(tmp: Path, n: int, epochs: tuple[int, int], seed: int) -> dict:
    """vaekit standard and modes (``epochs[0]``), SDV's TVAE (``epochs[1]``) and Gaussian copula fitted on the same
    rows, each measured: {results: {name: (seconds, quality)}, floor: the held-out rows' quality, gap: vaekit vs
    sdmetrics, schema, real: the training rows, test: the test rows}."""
    csv = write_csv({k: np.asarray(v) for k, v in adult_like(n, seed).items()}, tmp / "adult.csv")
    runs = {name: fit_vaekit(csv, tmp / numeric, epochs[0], seed, numeric) for name, numeric in NUMERIC.items()}
    # every row is compared with the standard run's real rows, decoded exactly: a modes run's codes clip a value
    # past 4 sigma of its mode (11 capital gains of 4,000 at seed 0), which would move its own real rows
    schema, data = runs[VAEKIT][0].table, prepare_data(runs[VAEKIT][0].config)[0]
    real, test = real_rows(schema, data.train.x), real_rows(schema, data.test.x)  # as quality scores them
    results, gaps = {}, []
    for name, (run, seconds) in runs.items():
        quality, gap = score_vaekit(run, real, test, schema, seed)
        results[name] = (seconds, quality)
        gaps.append(gap)
    for kind, name in (("tvae", "SDV TVAE"), ("copula", "SDV Gaussian copula")):
        rows, s = sdv_rows(kind, real, schema, len(data.train.x), epochs[1], seed)
        results[name] = (s, table_quality(real, rows, schema, TARGET, test, seed))
        print(f"{name} fitted and sampled in {s:.0f} s", flush=True)
    floor = table_quality(real, schema.decode(data.val.x), schema, TARGET, test, seed)
    return {"results": results, "floor": floor, "gap": max(gaps), "schema": schema, "real": real, "test": test}


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
    write(
        "tables",
        "Synthetic tables: vaekit beside SDV's TVAE and Gaussian copula",
        headline(n, results),
        tables,
        notes(epochs, facts["gap"], len(facts["real"][names[0]])),
        out=args.out,
    )


def headline(n: int, results: dict) -> str:
    """The result's one line: column shapes and TSTR accuracy of vaekit (standard, modes) and TVAE."""
    v, m, t = (results[k][1] for k in (VAEKIT, VAEKIT_MODES, "SDV TVAE"))
    acc = [q["tstr"]["synthetic"]["accuracy"] for q in (v, m, t)]
    return (
        f"Adult-like table ({n} rows, gaps filled): column shapes {v['column_shapes']:.3f} (vaekit), "
        f"{m['column_shapes']:.3f} (vaekit, numeric=modes) vs {t['column_shapes']:.3f} (TVAE); TSTR accuracy "
        f"{acc[0]:.3f}, {acc[1]:.3f} vs {acc[2]:.3f} (train on real {v['tstr']['real']['accuracy']:.3f})"
    )


def notes(
    epochs: tuple[int, int], gap: float, train: int = TRAIN, versions: tuple[str, str] | None = None
) -> list[str]:
    """The result's notes: the settings of vaekit and SDV (``versions``: SDV's and sdmetrics', by default those
    installed), their gradient steps on ``train`` training rows, how each draws categories, and vaekit's largest
    difference from sdmetrics."""
    versions = versions or (_version("sdv"), _version("sdmetrics"))
    steps = {k: e * math.ceil(train / BATCH[k]) for k, e in zip(BATCH, epochs)}  # both take every row each epoch
    return [
        f"vaekit: {epochs[0]} epochs, batch {BATCH['vaekit']}, MLP 128-128, latent 16 in both rows "
        f"({steps['vaekit']:,} gradient steps); numeric columns standardised, one Gaussian each "
        "(`data.numeric=standard`, the default), or in the modes row TVAE's mode-specific normalisation "
        "(`data.numeric=modes`, [the data guide](../guides/data.md#tables)): each number coded as "
        "its mode of a Gaussian mixture fitted to its column (a softmax) and its offset within that mode (a Gaussian)",
        f"SDV {versions[0]} TVAE: {epochs[1]} epochs, not its default {TVAE_EPOCHS}, so that both take about as many "
        f"gradient steps on the {train:,} training rows ({steps['TVAE']:,} at its default batch {BATCH['TVAE']}, "
        f"against vaekit's {steps['vaekit']:,} at {BATCH['vaekit']}); its defaults otherwise (128-128); Gaussian "
        "copula: its defaults",
        f"vaekit's measures against sdmetrics {versions[1]} on the rows of both vaekit models: largest "
        f"difference {gap:.2e}",
        "one seed; vaekit draws synthetic categories from the softmax, numbers from the Gaussian (under modes: a mode "
        "from its softmax, then the offset from its Gaussian); TVAE picks each category as the argmax of its "
        "decoder's scores (ctgan's one-hot reverse transform), no draw; vaekit: whole-number columns rounded, every "
        "number clipped to its training range",
        "train s: wall-clock seconds of fitting (vaekit: with its run folder), on the machine as it was: other "
        "jobs may share its cores",
    ]


def rehead(path: str) -> None:
    """Rewrite the notes of a written result (``notes``) from the facts it holds: the epochs, SDV's and sdmetrics'
    versions, the largest difference from sdmetrics and the training rows (the first table's caption); no run."""
    result = json.loads(Path(path).read_text())
    said, caption = " ".join(result["notes"]), result["tables"][0]["caption"]
    patterns = (
        r"vaekit: (\d+) epochs",
        r"TVAE: (\d+) epochs",
        r"SDV (\S+) TVAE",
        r"sdmetrics (\S+) on",
        r"difference (\S+)",
    )
    found = [re.search(pattern, said) for pattern in patterns]
    train = re.search(r"\((\d+) train", caption)
    if train is None or not all(found):
        sys.exit(f"{path}: its notes or caption do not say the epochs, versions and training rows to rewrite them from")
    vaekit_epochs, tvae_epochs, sdv, sdmetrics, gap = (m.group(1) for m in found)
    epochs = (int(vaekit_epochs), int(tvae_epochs))
    rewrite(path, notes=notes(epochs, float(gap), int(train.group(1)), (sdv, sdmetrics)))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    entry(main)
