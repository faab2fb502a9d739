"""Table verbs, round 5: evaluate and quality take --unknown, quality compares other data's every row, the
figures line counts the correlation pairs defined, TSTR's default target passes over columns of many classes.
Tiny tables; one run of one epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.evaluation.table_quality import OTHER_TEST_ROWS, table_quality, table_quality_lines

from .conftest import tiny_config

CITIES = ("Brest", "Lyon", "Paris")


def shops(path: Path, n: int, city: str | None = None) -> Path:
    """x (numbers), city (3 levels, every 10th a gap; ``city`` in row 0), code (25 levels, last)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=n).round(2)
    cities = ["" if i % 10 == 9 else CITIES[i % 3] for i in range(n)]
    cities[0] = city or cities[0]
    rows = [f"{x[i]},{cities[i]},c{i % 25:02d}" for i in range(n)]
    path.write_text("x,city,code\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of a 60-row table whose city gaps it models, and a 10-row file with a city it never saw."""
    folder = tmp_path_factory.mktemp("r5")
    cfg = tiny_config(str(shops(folder / "t.csv", 60)), folder / "run", epochs=1)
    cfg.model.hidden, cfg.model.latent_dim, cfg.data.missing = [8], 2, "mean"
    return vaekit.train(cfg, pictures=False).path, shops(folder / "o.csv", 10, "Marseille")


def test_evaluate_and_quality_read_an_unseen_category_as_a_gap_with_unknown_gap(run, capsys):
    folder, other = run
    for verb in (["evaluate", str(folder), "--iw-samples", "2"], ["quality", str(folder), "--target", "none"]):
        assert main([*verb, "--data", str(other)]) != 0
        assert "category 'Marseille'" in capsys.readouterr().err
        assert main([*verb, "--data", str(other), "--unknown", "gap"]) == 0
        assert "1 cell(s) of categories the run was not trained on read as gaps" in capsys.readouterr().err
    assert json.loads((folder / "eval-o.csv-all.json").read_text())["n"] == 10


def test_quality_of_other_data_compares_every_row_of_it_and_passes_over_many_classes(run, capsys):
    folder, other = run
    assert main(["quality", str(folder), "--data", str(other), "--unknown", "gap"]) == 0
    out = capsys.readouterr().out
    q = json.loads((folder / "quality-o.csv-all.json").read_text())
    assert (q["n_real"], q["n_synthetic"], q["split"], q["n_test"]) == (10, 10, "all", 3)
    assert q["tstr"]["test_rows"] == OTHER_TEST_ROWS and q["tstr"]["passed_over"] == {"code": 25}
    assert "o.csv: 10 synthetic rows against the 10 rows of o.csv\n" in out
    assert "train on synthetic, test on real (3 of them held out): city accuracy" in out
    assert "TSTR target 'city': the last categorical column holding more than one value; passed over for more " in out
    assert "than 20 classes (an accuracy near chance): 'code' (25)" in out  # the run's 25, not the file's 10


def test_default_target_skips_columns_of_many_classes_and_says_so_where_none_is_left():
    rng = np.random.default_rng(0)
    a = rng.normal(size=100)
    real = {"a": a, "c": np.where(a > 0, "hi", "lo"), "code": np.array([f"k{i % 40}" for i in range(100)])}
    picked = table_quality(real, real, seed=0)["tstr"]
    assert picked["target"] == "c" and picked["passed_over"] == {"code": 40}
    alone = table_quality({"a": a, "code": real["code"]}, {"a": a, "code": real["code"]})
    assert "tstr" not in alone and alone["tstr_left_out"] == "no categorical column holds 2 to 20 classes ('code' 40)"
    lines = table_quality_lines({"data": "t.csv", "n_real": 100, "n_synthetic": 100, "split": "test", **alone})
    assert lines[-1] == "train on synthetic, test on real: left out, no categorical column holds 2 to 20 classes " + (
        "('code' 40)"
    )
    numbers = table_quality({"a": a}, {"a": a})  # no categorical column at all: said too
    assert numbers["tstr_left_out"].endswith("(the table has no categorical column)")


def test_the_figures_line_says_how_many_correlation_pairs_are_defined():
    result = {"data": "t.csv", "n_real": 9, "n_synthetic": 9, "split": "test", "column_shapes": 0.9}
    result |= {"correlation_similarity": 0.963838, "correlation_pairs": 21}
    assert table_quality_lines(result)[1] == "column shapes 0.900, correlations 0.964"
    shown = table_quality_lines(result | {"correlation_pairs_defined": 15})[1]
    assert shown == "column shapes 0.900, correlations 0.964 (15 of 21 pairs defined)"
    assert (
        table_quality_lines(result | {"correlation_pairs_defined": 21})[1] == "column shapes 0.900, correlations 0.964"
    )


def test_column_pairs_count_the_correlations_defined_beside_every_pair():
    a = np.arange(10.0)
    real = {"a": a, "b": a**2, "k": np.full(10, 7.0)}  # k constant: its two pairs have no r
    q = table_quality(real, real, target=False)
    assert (q["correlation_pairs"], q["correlation_pairs_defined"], q["correlation_error"]) == (3, 1, 0)


def test_quality_of_a_file_for_a_run_fitted_on_a_frame_compares_every_row_as_other_data(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(3, 2, 60).round(2)})
    model = vaekit.build_model(input_shape=(2,), likelihood="gaussian", hidden=[8], latent_dim=2)
    run = vaekit.fit(model, frame, epochs=1, progress=False, out=tmp_path / "run")
    frame.to_csv(tmp_path / "f.csv", index=False)
    capsys.readouterr()
    assert main(["quality", str(run.path), "--data", str(tmp_path / "f.csv"), "--target", "none"]) == 0
    out, err = capsys.readouterr()
    assert "changed since training" not in err and "against the 60 rows of f.csv" in out and "quality-f.csv-all" in out
    assert (tmp_path / "run" / "quality-f.csv-all.json").is_file() and not (tmp_path / "run" / "quality.json").exists()
