"""Tables as they come (gaps, categories), the Tabular p(x|z), synthetic rows and their quality, MLflow."""

from __future__ import annotations

import csv
import gzip
import json
import sys
from contextlib import nullcontext
from dataclasses import asdict

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.core.tabular import Tabular
from vaekit.data import load_dataset
from vaekit.data.modes import Modes
from vaekit.data.readers import _cells
from vaekit.data.tables import MISSING_MODES, Column, TableOptions, TableSchema, table_options, write_csv
from vaekit.errors import VaekitError
from vaekit.evaluation.quality_run import quality_data
from vaekit.evaluation.table_quality import ks_statistic, table_quality, table_quality_rows, table_run_quality

from .conftest import tiny_config

COLORS = ["blue", "green", "red"]


def make_table(path, n=200, gaps=True):
    """age and hours (numbers, age with gaps), color (3 categories, '?' gaps) and income (depends on age)."""
    rng = np.random.default_rng(0)
    age = rng.normal(40, 10, n).round()
    rows = ["age,color,hours,income"]
    for i in range(n):
        a = "" if gaps and i % 37 == 5 else f"{age[i]:g}"
        c = "?" if gaps and i % 41 == 7 else COLORS[i % 3 if i % 2 else 0]
        rows.append(f"{a},{c},{rng.normal(40, 5):.1f},{'>50K' if age[i] > 42 else '<=50K'}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def table_csv(tmp_path):
    return make_table(tmp_path / "t.csv")


def test_gaps_refused_naming_row_and_column(table_csv):
    with pytest.raises(
        VaekitError,
        match=r"t.csv: missing value '' on line 7, column index 0 \('age'\); set "
        r"data.missing to drop",
    ):
        load_dataset(str(table_csv))


@pytest.mark.parametrize("missing", ["drop", "mean"])
def test_gaps_dropped_or_filled_from_the_train_split(table_csv, missing):
    ds = load_dataset(str(table_csv), table=TableOptions(missing=missing), seed=3)
    n = sum(len(s) for s in (ds.train, ds.val, ds.test))
    age, color = ds.table.columns[0], ds.table.columns[1]
    if missing == "drop":
        assert n == 200 - 6 - 5 and age.fill is None
        return
    assert n == 200
    assert float(ds.train.x[:, 0].mean()) == pytest.approx(age.fill, rel=1e-5)  # filling with the mean keeps it
    assert float(ds.test.x[:, 0].mean()) != pytest.approx(age.fill, rel=1e-5)
    train_colors = ds.train.x[:, 2:5].sum(0)  # after the two numeric columns: color's one-hot code
    assert color.fill == COLORS[int(train_colors.argmax())] == "blue"


def test_categories_detected_or_listed_and_coded_one_hot(tmp_path):
    path = make_table(tmp_path / "t.csv", gaps=False)
    ds = load_dataset(str(path))
    kinds = {c.name: c.kind for c in ds.table.columns}
    assert kinds == {"age": "numeric", "color": "categorical", "hours": "numeric", "income": "categorical"}
    assert ds.table.categories == [3, 2] and ds.shape == (2 + 5,)
    codes = ds.train.x[:, 2:]
    assert torch.equal(codes[:, :3].sum(1), torch.ones(len(codes))) and set(codes.unique().tolist()) == {0.0, 1.0}
    listed = load_dataset(str(path), table=TableOptions(categorical=["age"]))
    assert listed.table.columns[0].kind == "categorical" and listed.shape[0] > 7
    with pytest.raises(VaekitError, match=r"data\.categorical names 'size'"):
        load_dataset(str(path), table=TableOptions(categorical=["size"]))


@pytest.mark.parametrize(("key", "value"), [("missing", "mean"), ("numeric", "modes")])
def test_table_settings_refused_for_other_data(tiny_images, tmp_path, key, value):
    cfg = tiny_config(str(tiny_images), tmp_path / "run")
    setattr(cfg.data, key, value)
    with pytest.raises(VaekitError, match=rf"data\.{key} applies to \.csv/\.tsv tables, and .*tiny.npy is not one"):
        vaekit.train(cfg)


def bimodal_table(path, n=300, gap=0):
    """a: half N(0, 1), half N(10, 1) (every ``gap``-th cell a gap); b: N(5, 2); c: two categories. Returns the
    CSV and a's values."""
    rng = np.random.default_rng(0)
    a = np.where(rng.random(n) < 0.5, rng.normal(0, 1, n), rng.normal(10, 1, n)).round(4)
    b, c = rng.normal(5, 2, n).round(4), rng.choice(["x", "y"], n)
    cells = ["" if gap and i % gap == 0 else a[i] for i in range(n)]
    path.write_text("a,b,c\n" + "".join(f"{cells[i]},{b[i]},{c[i]}\n" for i in range(n)))
    return path, a


def test_modes_code_a_bimodal_column_and_decode_it_back(tmp_path):
    path, a = bimodal_table(tmp_path / "t.csv")
    ds = load_dataset(str(path), table=TableOptions(numeric="modes"))
    col = ds.table.columns[0]
    assert len(col.modes.mean) == 2 and sorted(round(m) for m in col.modes.mean) == [0, 10]
    k = ds.table.categories  # a's modes, b's modes, then c's 2 categories
    assert k[0] == 2 and k[-1] == 2 and ds.shape == (2 + sum(k),) and ds.table.width == ds.shape[0]
    assert torch.allclose(ds.train.x[:, :2].std(0, correction=0), torch.ones(2))  # the alphas, of unit spread
    cells = np.array([line.split(",") for line in path.read_text().splitlines()[1:]])
    x, _ = ds.table.encode(cells, list(range(2, len(a) + 2)), "t.csv")  # file order, with the fitted modes
    assert np.abs(x[:, 2:4].argmax(1) - (a > 5)).sum() == 0  # each value in its own mode
    saved = TableSchema.from_dict(json.loads(json.dumps(ds.table.to_dict())))
    back = saved.decode(x)
    assert np.abs(back["a"] - a).max() < 1e-4 and list(back) == ["a", "b", "c"] and set(back["c"]) == {"x", "y"}
    with pytest.raises(VaekitError, match=r"data\.numeric must be one of standard, modes, got 'mode'"):
        load_dataset(str(path), table=TableOptions(numeric="mode"))


def test_modes_are_fitted_on_a_columns_values_and_its_gaps_coded_inside_a_mode(tmp_path):
    path, _ = bimodal_table(tmp_path / "t.csv", gap=15)  # 20 gaps of 300: a mean fill of 5 would be a mode
    ds = load_dataset(str(path), table=TableOptions(numeric="modes", missing="mean"))
    (x, _), col, heavy = every_item(ds), ds.table.columns[0], int(np.argmax(ds.table.columns[0].modes.weight))
    assert sorted(round(m) for m in col.modes.mean) == [0, 10] and col.fill == col.modes.mean[heavy]
    gap = x[:, -1] == 1  # a's gap indicator (filled, gap), the last slots
    assert gap.sum() == 20 and x[gap, 0].abs().max() < 1e-5 and torch.all(x[gap, 2 + heavy] == 1)  # not at a clip


def test_a_modes_run_samples_both_modes_in_the_tables_units(tmp_path):
    path, _ = bimodal_table(tmp_path / "t.csv")
    cfg = tiny_config(str(path), tmp_path / "run", epochs=2)
    cfg.data.numeric, cfg.model.scale = "modes", "0.05"  # a tight Gaussian on the alphas
    run = vaekit.train(cfg, pictures=False)
    assert torch.equal(run.model.loc[:2], torch.zeros(2)) and torch.equal(run.model.scale[:2], torch.ones(2))
    saved = json.loads((run.path / files.TABLE).read_text())
    assert saved["numeric"] == "modes" and len(saved["columns"][0]["modes"]["mean"]) == 2
    rows = vaekit.load_run(run.path).sample_table(400)
    assert list(rows) == ["a", "b", "c"] and set(rows["c"]) <= {"x", "y"}
    a = rows["a"]
    assert np.mean(np.abs(a) < 2.5) > 0.1 and np.mean(np.abs(a - 10) < 2.5) > 0.1  # near each mode
    assert np.mean(np.abs(a - 5) < 2) < 0.1  # and few between them, as in the data


def test_tabular_log_prob_is_normalised_over_categories():
    logits = torch.randn(4, 3)
    px = Tabular(torch.zeros(4, 1), torch.ones(4, 1), logits, [3])
    codes = torch.eye(3)  # every category of the one column, with the number 0.5
    total = sum(px.log_prob(torch.cat([torch.full((4, 1), 0.5), c.expand(4, 3)], 1)).exp() for c in codes)
    gauss = torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(0.5)).exp()
    assert px.log_prob(torch.zeros(4, 4)).shape == (4,)
    assert torch.allclose(total / gauss, torch.ones(4))
    assert torch.allclose(px.mean[:, 1:].sum(1), torch.ones(4))
    assert torch.equal(px.sample()[:, 1:].sum(1), torch.ones(4))


def read_csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_table_run_gives_its_table_back_and_is_scored(table_csv, tmp_path, capsys):
    cfg = tiny_config(str(table_csv), tmp_path / "run", epochs=2)
    cfg.data.missing = "mean"
    run = vaekit.train(cfg, pictures=False)
    z = torch.randn(5, 3)
    x = run.model.decode(z).sample()  # (5, 2 + 3 + 2): numbers, then one-hot codes
    loaded = vaekit.load_run(run.path)
    assert torch.equal(loaded.model.decode(z).log_prob(x), run.model.decode(z).log_prob(x))
    assert json.loads((run.path / files.TABLE).read_text())["columns"][0]["loc"] > 30  # age in years
    assert main(["sample", str(run.path), "--n", "30", "--out", str(tmp_path / "synth.csv")]) == 0
    rows = read_csv_rows(tmp_path / "synth.csv")
    assert rows[0] == ["age", "color", "hours", "income"] and len(rows) == 31
    assert {r[1] for r in rows[1:]} <= {*COLORS, ""} and {r[3] for r in rows[1:]} <= {">50K", "<=50K"}
    assert all(float(r[0]).is_integer() for r in rows[1:] if r[0])  # whole ages, or gaps (empty) as the data has
    assert main(["reconstruct", str(run.path), "--n", "3", "--out", str(tmp_path / "rec.csv")]) == 0
    rec = read_csv_rows(tmp_path / "rec.csv")  # each row's row in the file first
    assert rec[0] == ["index", *rows[0]] and len(rec) == 4
    (tmp_path / "other.csv").write_text("age,color,hours,income\n30,red,40,>50K\n31,blue,41,>50K\n32,red,39,<=50K\n")
    for verb, extra in (("reconstruct", []), ("anomaly", ["--score", "neg_elbo"])):  # another file: its every row
        argv = [verb, str(run.path), "--data", str(tmp_path / "other.csv"), "--out", str(tmp_path / "o.csv")]
        assert main(argv + extra) == 0 and [r[0] for r in read_csv_rows(tmp_path / "o.csv")] == ["index", "0", "1", "2"]
    assert (
        main(["anomaly", str(run.path), "--split", "all", "--score", "neg_elbo", "--out", str(tmp_path / "a.csv")]) == 0
    )
    assert len(read_csv_rows(tmp_path / "a.csv")) == 201
    (tmp_path / "new.csv").write_text("age,color,hours,income\n30,purple,40,>50K\n31,red,41,>50K\n32,red,39,<=50K\n")
    assert main(["encode", str(run.path), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "z.csv")]) == 2
    assert "category 'purple' on line 2" in capsys.readouterr().err
    assert main(["quality", str(run.path)]) == 0
    quality = json.loads((run.path / files.QUALITY).read_text())
    assert quality[files.DIGEST] == loaded.digest and set(quality["columns"]) == {"age", "color", "hours", "income"}
    text, tvd = capsys.readouterr().out, quality["columns"]["color"]["tvd"]  # printed as a table, not JSON
    assert (
        main(["report", str(run.path), "--iw-samples", "2"]) == 0
        and f"<td>TVD {tvd:.3f}" in (run.path / files.REPORT).read_text()  # then its gaps, real and synthetic
    )
    assert (
        f"| color | categorical | TVD {tvd:.3f}" in text
        and f"income accuracy {quality['tstr']['synthetic']['accuracy']:.3f}" in text
    )


def columns(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    c = np.where(a > 0, "hi", "lo").astype(object)
    return {"a": a, "b": 2 * a + 0.3 * rng.normal(size=n), "c": c, "d": np.where(rng.random(n) < 0.5, c, "x")}


def test_quality_measures_near_zero_on_the_same_rows_and_worse_on_broken_ones():
    real = columns()
    same = table_quality(real, real, target="c")
    rng = np.random.default_rng(1)
    shuffled = {k: rng.permutation(v) for k, v in real.items()}  # the same columns, their links broken
    broken = table_quality(real, shuffled, target="c")
    garbage = table_quality(
        real,
        {
            "a": rng.uniform(5, 6, 400),
            "b": rng.uniform(size=400),
            "c": rng.choice(["hi", "lo", "zz"], 400),
            "d": rng.choice(["x"], 400),
        },
    )
    assert same["column_shapes"] == 1 and same["correlation_error"] == 0 and same["contingency_similarity"] == 1
    assert same["tstr"]["synthetic"] == same["tstr"]["real"]
    assert broken["column_shapes"] == 1 and broken["correlation_error"] > 0.5
    assert broken["contingency_similarity"] < 0.9 and broken["tstr"]["synthetic"]["accuracy"] < 0.8
    assert garbage["columns"]["a"]["ks"] == 1 and garbage["column_shapes"] < 0.5
    flat = table_quality({**real, "e": np.full(400, 3.0)}, {**real, "e": np.full(400, 3.0)})  # no correlation
    assert flat["correlations"]["a|e"]["error"] is None and flat["correlation_error"] == 0  # not a perfect match


def gappy(real):
    """``real`` with a tenth of a's values NaN and an eighth of c's None (c the TSTR target)."""
    a, c = real["a"].copy(), real["c"].copy()
    a[::10], c[3::8] = np.nan, None
    return {**real, "a": a, "c": c}


def test_quality_of_rows_with_gaps_measures_their_share_and_the_values_around_them():
    real = columns()
    gaps = gappy(real)
    filled = ~np.isnan(gaps["a"])
    q = table_quality(gaps, real, target="c")  # TSTR fills a's gaps and leaves out the rows without c
    assert q["columns"]["a"]["ks"] == round(ks_statistic(real["a"][filled], real["a"]), 6) > 0
    assert q["columns"]["a"]["missing"] == {"real": 0.1, "synthetic": 0.0, "similarity": 0.9}
    assert q["columns"]["c"]["missing"]["real"] == 0.125 and q["missing_similarity"] == round((0.9 + 0.875) / 2, 6)
    r = np.corrcoef(real["a"][filled], real["b"][filled])[0, 1]  # over the rows where both are filled
    assert q["correlations"]["a|b"]["real"] == round(r, 6) and q["tstr"]["synthetic"]["accuracy"] > 0.9
    same = table_quality(gaps, gaps, target="c")
    assert same["column_shapes"] == 1 and same["missing_similarity"] == 1 and same["correlation_error"] == 0
    assert same["contingency_similarity"] == 1 and "missing" not in same["columns"]["b"]
    empty = table_quality(gaps, {**real, "a": np.full(400, np.nan)}, target=False)  # no value to compare
    assert empty["columns"]["a"]["ks"] is None and table_quality_rows(empty)[0]["distance"] == (
        "KS -, gaps 10.0% real, 100.0% synthetic"
    )
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(gaps).astype({"c": "string"})  # pandas' NA in c
    assert table_quality(frame, pd.DataFrame(real), target="c") == q


def test_quality_takes_tstr_off_and_says_where_its_test_rows_come_from():
    real = columns()
    for off in (False, "none"):
        assert "tstr" not in table_quality(real, real, target=off)
    assert (
        table_quality({**real, "none": real["c"]}, {**real, "none": real["c"]}, target="none")["tstr"]["target"]
        == "none"
    )
    held = table_quality(real, real)["tstr"]  # the last categorical column, tested on 30% of real held out here
    assert held["target"] == "d" and "a model fitted on all of real saw them" in held["test_rows"]
    given = columns(seed=1)
    assert table_quality(real, real, test=given)["tstr"]["test_rows"] == "given"
    with pytest.raises(VaekitError, match="TSTR target 'c' has no value in the synthetic rows"):
        table_quality(real, {**real, "c": np.full(400, None)}, target="c")


def zero_inflated_table(path, n=300):
    """gain (nine in ten 0, else whole numbers 100..4999), edu (9, 10, 13 or 14) and g (a or b)."""
    rng = np.random.default_rng(0)
    gain = np.where(rng.random(n) < 0.9, 0, rng.integers(100, 5000, n))
    edu, g = rng.choice([9, 10, 13, 14], n), rng.choice(["a", "b"], n)
    path.write_text("gain,edu,g\n" + "".join(f"{gain[i]},{edu[i]},{g[i]}\n" for i in range(n)))
    return path


def test_a_modes_run_is_measured_against_its_real_values(tmp_path):
    path = zero_inflated_table(tmp_path / "t.csv")
    cfg = tiny_config(str(path), tmp_path / "run", epochs=1)
    cfg.data.numeric = "modes"  # whose codes decode to 0 as -1e-10 and 10 as 9.99999
    run = vaekit.train(cfg, pictures=False)
    data = quality_data(run)
    cells = np.array(read_csv_rows(path)[1:])[data.train.rows]  # the training rows as the file holds them
    as_file = {"gain": cells[:, 0].astype(np.int64), "edu": cells[:, 1].astype(np.int64), "g": cells[:, 2]}
    run.sample_table = lambda n, label=None: as_file  # "synthetic" rows that are the real ones: a perfect score
    q = table_run_quality(run, data, write=False, target=False)
    assert {k: v.get("ks", v.get("tvd")) for k, v in q["columns"].items()} == {"gain": 0, "edu": 0, "g": 0}
    assert "tstr" not in q


def test_modes_code_alphas_of_unit_spread_and_decode_them_back():
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(0, 1, 300), rng.normal(10, 0.2, 300)]
    modes = Modes.fit(v, seed=0)
    code, mode = modes.encode(v)  # alpha = (v - mu_k) / (4 sigma_k) spreads ~0.25: divided by its spread
    assert code.std() == pytest.approx(1.0) and 0.1 < modes.alpha_scale < 0.4 and len(modes.mean) == 2
    back = modes.decode(code, mode)
    assert np.mean(np.isclose(back, v, atol=1e-9)) > 0.99  # all but values past the 0.99 clip
    saved = {k: w for k, w in asdict(modes).items() if k != "alpha_scale"}  # a table.json written before it
    old = Modes(**saved)
    assert old.alpha_scale == 1 and np.allclose(old.decode(code * modes.alpha_scale, mode), back)


def test_write_csv_writes_floats_that_read_back_as_they_were(tmp_path):
    v = np.array([12345678.91, 0.1, 2 / 3, 1e-7, 3.0, -250.0, np.nan])
    c = np.array(["x", None, "y", np.nan, "x", "y", "z"], object)
    path = write_csv({"v": v, "n": np.arange(7), "c": c, "s": v.astype(np.float32)}, tmp_path / "t.csv")
    rows = read_csv_rows(path)
    assert [r[0] for r in rows[1:]] == ["12345678.91", "0.1", "0.6666666666666666", "1e-07", "3", "-250", ""]
    assert np.array_equal([float(r[0] or "nan") for r in rows[1:]], v, equal_nan=True)
    assert rows[2][1:3] == ["1", ""] and rows[4][2] == "" and rows[3][3] == "0.6666667"  # float32: its shortest
    sampled = write_csv({"v": np.array([3266.97265625, 0.5])}, tmp_path / "s.csv", single=True)  # a model's values
    assert [r[0] for r in read_csv_rows(sampled)[1:]] == ["3266.9727", "0.5"]
    formulas = write_csv({"=x": np.array(["=1+1", "@SUM(1)", "-1.5", "a"], object)}, tmp_path / "f.csv")
    assert read_csv_rows(formulas) == [["'=x"], ["'=1+1"], ["'@SUM(1)"], ["-1.5"], ["a"]]  # never run as formulas


def test_mlflow_callback_round_trip(tiny_images, tmp_path, monkeypatch, sqlite_store):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    from vaekit.viz.mlflow import MLflow

    uri = sqlite_store
    client = mlflow.tracking.MlflowClient(uri)
    client.create_experiment("vaekit", artifact_location=(tmp_path / "artifacts").as_uri())
    vaekit.train(tiny_config(str(tiny_images), tmp_path / "run", epochs=2), callbacks=[MLflow(uri, every=2)])
    found = client.search_runs([client.get_experiment_by_name("vaekit").experiment_id])
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    run = found[0]
    assert run.data.params["train.epochs"] == "2" and run.data.params["train.batch_size"] == "16"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    with open(tmp_path / "run" / files.METRICS, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(m.step, round(m.value, 4)) for m in history] == [
        (int(r["epoch"]), round(float(r["val_loss"]), 4)) for r in rows
    ]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "step/loss")]
    assert steps and all(s % 2 == 0 for s in steps)  # every 2 steps
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {files.SAMPLES, files.LOSS, files.CONFIG, files.METRICS} <= artifacts
    again = tiny_config(str(tiny_images), tmp_path / "run", epochs=3)  # resumed: the same MLflow run goes on
    vaekit.train(again, resume=True, callbacks=[MLflow(uri, every=2)])
    (run,) = client.search_runs([run.info.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["resumed.train.epochs"] == "3"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]

    class Fails(vaekit.Callback):
        def on_epoch_end(self, epoch, metrics, model):
            raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        vaekit.train(tiny_config(str(tiny_images), tmp_path / "b", epochs=1), callbacks=[MLflow(uri), Fails()])
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([run.info.experiment_id])}
    assert statuses == {"run": "FINISHED", "b": "FAILED"}  # not left RUNNING


@pytest.mark.parametrize("missing", ["sqlalchemy", "alembic"])
def test_a_database_store_without_sqlalchemy_names_the_extra_in_one_line(missing, tmp_path, monkeypatch):
    """mlflow-skinny alone: a sqlite:/// store is refused naming vaekit[mlflow], not with MLflow's long message."""
    pytest.importorskip("mlflow", reason="the mlflow extra")
    from vaekit.viz.mlflow import MLflow

    monkeypatch.setitem(sys.modules, missing, None)  # import fails, as where it is not installed
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(VaekitError) as e:
        MLflow(uri)
    assert str(e.value) == f"MLflow tracking store {uri} needs sqlalchemy and alembic: pip install 'vaekit[mlflow]'"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(VaekitError, match=r"needs sqlalchemy and alembic"):
        MLflow()  # the default store, from the environment


def test_a_store_error_is_cut_at_a_word_with_an_ellipsis(monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra")
    from vaekit.viz import mlflow

    assert mlflow.clip("short, whole") == "short, whole"
    assert mlflow.clip("alpha beta gamma", 12) == "alpha beta..."  # not 'alpha beta g'
    assert mlflow.clip("x" * 20, 8) == "x" * 8 + "..."  # one long word: cut where it must be

    def refuses(uri):
        raise RuntimeError("unsupported URI; supported schemes are " + "file, http, " * 40 + "https\nsecond line")

    monkeypatch.setattr("mlflow.tracking.MlflowClient", refuses)
    with pytest.raises(VaekitError) as e:
        mlflow.MLflow("bogus://x")
    assert str(e.value).startswith("MLflow tracking store bogus://x: unsupported URI; supported schemes are file,")
    said = str(e.value)
    assert said.endswith("...") and said[:-3].split()[-1] in ("file", "http") and len(said) < 360  # whole words


@pytest.mark.parametrize(
    "text, first_row",
    [
        ("a;b;c\n" + "0,5;1;x\n1,5;2;y\n" * 2, [0.5, 1.0]),  # semicolons, decimal commas
        ("a;b;c\n" + "1.513;1;x\n1.600,5;2;y\n" * 2, [1513, 1]),  # and points that group thousands
        ("a;b;c\n" + "1.513;1;x\n2.5;2;y\n" * 2, [1.513, 1]),  # no decimal commas: points are decimal points
        ("a|b|c\n" + "0.5|1|x\n1.5|2|y\n" * 2, [0.5, 1.0]),
        ("a,b,c\n" + '0.5,1,"x;y"\n1.5,2,"z;w"\n' * 2, [0.5, 1.0]),  # a ; inside quotes is text
        ("1.5,,3\n" + "2.5,1,4\n" * 3, None),  # no header: the first row's gap is a gap, not a column name
    ],
)
def test_csv_separators_are_detected_and_a_gap_is_never_a_header(tmp_path, text, first_row):
    path = tmp_path / "t.csv"
    path.write_text(text)
    if first_row is None:
        with pytest.raises(VaekitError, match="missing value '' on line 1"):
            load_dataset(str(path))
        return
    ds = load_dataset(str(path))
    assert [c.name for c in ds.table.columns] == ["a", "b", "c"]
    x = torch.cat([s.x for s in (ds.train, ds.val, ds.test)])  # (4, 2 + 2): a, b, c one-hot
    assert x.shape == (4, 4) and sorted(x[:, :2].tolist())[0] == pytest.approx(first_row)


def test_semicolons_between_decimal_commas_split_a_file_without_a_header(tmp_path):
    (tmp_path / "t.csv").write_text("0,5;1,25;2\n" + "1,5;2,75;4\n" * 3)  # split on commas: 4 cells a line
    ds = load_dataset(str(tmp_path / "t.csv"))
    x = torch.cat([s.x for s in (ds.train, ds.val, ds.test)])
    assert [c.kind for c in ds.table.columns] == ["numeric"] * 3 and x.shape == (4, 3)
    assert sorted(x.tolist())[0] == pytest.approx([0.5, 1.25, 2])


def test_a_missing_label_is_refused_or_its_row_dropped_with_one_line(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("x,label\n" + "".join(f"{i},{'NA' if i == 3 else i % 2}\n" for i in range(10)))
    with pytest.raises(VaekitError, match="missing label 'NA' on line 5, column 'label'"):
        load_dataset(str(path))
    ds = load_dataset(str(path), table=TableOptions(missing="drop"))
    y = torch.cat([s.y for s in (ds.train, ds.val, ds.test)])
    assert sorted(y.tolist()) == [0] * 5 + [1] * 4 and ds.num_classes == 2
    assert "1 row with gaps left out (data.missing=drop), the first on line 5" in capsys.readouterr().err


def test_a_constant_column_comes_back_as_its_one_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,c\n" + "".join(f"{i * 0.5},7\n" for i in range(8)))
    schema = load_dataset(str(path)).table
    assert [c.constant for c in schema.columns] == [None, 7.0]
    rows = schema.decode(np.random.default_rng(0).normal(size=(5, 2)))
    assert rows["c"].tolist() == [7.0] * 5 and len(set(rows["a"].tolist())) == 5
    schema.save(tmp_path / "table.json")
    assert TableSchema.load(tmp_path / "table.json").columns[1].constant == 7.0


# Tables as SDV users bring them: gaps kept, a label-named column that holds no classes, columns read as what
# they hold (dates, units, codes with leading zeros, booleans), a resumed run's new category named.


def test_gaps_are_modelled_by_an_indicator_and_given_back_where_it_says(table_csv, tmp_path):
    ds = load_dataset(str(table_csv), table=TableOptions(missing="mean"), seed=3)
    schema = ds.table
    assert [c.gaps for c in schema.columns] == [True, True, None, None]  # age and color had gaps in training
    assert schema.categories == [3, 2, 2, 2] and ds.shape == (2 + 3 + 2 + 2 + 2,)
    x = torch.cat([s.x for s in (ds.train, ds.val, ds.test)])
    rows = schema.bounded(schema.decode(x))
    gaps = {c: np.isnan(rows["age"]) if c == "age" else np.asarray([v != v for v in rows[c]]) for c in ("age", "color")}
    assert gaps["age"].sum() == 6 and gaps["color"].sum() == 5  # the file's gaps, each where it was
    assert rows["age"].dtype == np.float64 and np.all(rows["age"][~gaps["age"]] % 1 == 0)  # whole, NaN at gaps
    assert set(rows["color"][~gaps["color"]]) <= set(COLORS) and rows["hours"].dtype == np.float64
    saved = schema.to_dict()  # a table.json written before gaps were modelled: its items as they were
    for c in saved["columns"]:
        del c["gaps"]
    old = TableSchema.from_dict(saved)
    assert old.categories == [3, 2] and old.encode(np.array([["", "?", "40.0", ">50K"]]), [2], "t")[0].shape == (1, 7)


@pytest.mark.parametrize(
    ("cells", "kind", "unit", "values"),
    [
        (["2021-07-06", "2020-01-01", ""], "numeric", None, np.array(["2021-07-06", "2020-01-01", "NaT"], "M8[D]")),
        (["2023-01-01 01:00:00", "2023-01-01 02:30:00", "2023-01-02 00:00:00"], "numeric", None, None),
        (["$1,200.50", "$12", "-$3"], "numeric", "$", np.array([1200.5, 12, -3])),
        (["12%", "3.5%", "100%"], "numeric", "%", np.array([12, 3.5, 100])),
        (["1,200", "15", "2,000,000"], "numeric", "", np.array([1200, 15, 2e6])),
        (["02139", "10001", "00501"], "categorical", None, np.array(["02139", "10001", "00501"], dtype=object)),
        (["TRUE", "true", "False", "false"], "categorical", None, np.array([True, True, False, False])),
        (["10_1", "20_1", "10_2"], "categorical", None, np.array(["10_1", "20_1", "10_2"], dtype=object)),  # codes
    ],
)
def test_columns_are_read_as_what_they_hold_and_given_back_so(tmp_path, capsys, cells, kind, unit, values):
    path = tmp_path / "t.csv"  # each cell on 10 rows: the gap is in the training split
    path.write_text("c,n\n" + "".join(f'"{c}",{i}\n' for i, c in enumerate(cells * 10)))
    ds = load_dataset(str(path), table=TableOptions(missing="mean"))
    c, values = ds.table.columns[0], np.array(cells, "M8[s]") if values is None else values
    assert (c.kind, c.unit, len(c.categories)) == (kind, unit, len(set(values.tolist())) * (kind == "categorical"))
    splits = (ds.train, ds.val, ds.test)
    x = torch.cat([s.x for s in splits])[np.argsort(np.concatenate([s.rows for s in splits]))]  # in file order
    got = ds.table.decode(x)["c"]
    assert got.dtype == values.dtype and [str(v) for v in got] == [str(v) for v in np.tile(values, 10)]
    assert len(capsys.readouterr().err.splitlines()) == (kind == "numeric" or cells[0] in ("02139", "TRUE"))  # a note


def test_a_date_column_distinct_in_every_row_is_no_identifier_and_samples_are_dates(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("day,v\n" + "".join(f"2022-01-{1 + i % 28:02d} {i % 24:02d}:00:00,{i}\n" for i in range(60)))
    schema = load_dataset(str(path)).table
    assert schema.columns[0].time == "%Y-%m-%d %H:%M:%S" and schema.width == 2
    rows = schema.bounded(schema.decode(np.array([[-9.0, 1.0], [20.4, 2.0], [np.nan, 3.0]])))  # days since 1 Jan
    c = schema.columns[0]
    first = np.datetime64(round((c.origin + c.min) * 86400), "s")  # the training split's first hour
    assert rows["day"].dtype == np.dtype("M8[s]") and rows["day"][0] == first  # clipped to the training range
    assert str(rows["day"][1]) == "2022-01-21T10:00:00" and np.isnat(rows["day"][2])  # 09:36 to whole hours
    (tmp_path / "new.csv").write_text("day,v\n2022-02-30 00:00:00,1\n")
    with pytest.raises(
        VaekitError, match=r"value '2022-02-30 00:00:00' on line 2, column index 0 \('day'\), is not a date"
    ):
        load_dataset(str(tmp_path / "new.csv"), table=TableOptions(schema=schema))


def test_a_cell_none_of_a_boolean_columns_categories_is_quoted_as_written(tmp_path):
    (tmp_path / "t.csv").write_text("b,n\n" + "true,1\nFALSE,2\n" * 10)
    (tmp_path / "new.csv").write_text("b,n\ntrue,1\nyes,2\n")
    schema = load_dataset(str(tmp_path / "t.csv")).table
    with pytest.raises(
        VaekitError, match=r"category 'yes' on line 3, column index 0 \('b'\), is not one of the run's 2"
    ):
        load_dataset(str(tmp_path / "new.csv"), table=TableOptions(schema=schema))


@pytest.mark.parametrize(
    ("column", "labels"),
    [
        ([f"{0.1 * i - 3:.2f}" for i in range(120)], False),  # a float y: a data column
        ([str(i % 60) for i in range(120)], False),  # 60 whole numbers: a quantity, not classes
        ([str(i % 40) for i in range(60)], False),  # 40 values in 60 rows: more than half the rows
        ([str(i % 3) for i in range(120)], True),
        (["abc"[i % 3] for i in range(120)], True),
    ],
)
def test_a_column_named_like_labels_is_taken_as_labels_only_if_it_holds_classes(tmp_path, capsys, column, labels):
    path = tmp_path / "t.csv"
    path.write_text("x,target\n" + "".join(f"{i % 7},{v}\n" for i, v in enumerate(column)))
    ds = load_dataset(str(path))
    assert [c.name for c in ds.table.columns] == (["x"] if labels else ["x", "target"])
    assert (ds.num_classes is not None) == labels
    assert ("is named like a label column but holds" in capsys.readouterr().err) != labels
    floats = "labels must be whole numbers or names, found -2.9 in column 'target'; set data.label_column=off to keep"
    with pytest.raises(VaekitError, match=floats) if column[0] == "-3.00" else nullcontext():  # named: labels
        assert load_dataset(str(path), label_column="target").num_classes == len(set(column))


@pytest.mark.parametrize("family, said", [("vae", True), ("cvae", False)])
def test_an_unconditional_run_says_its_label_column_is_not_modelled(tmp_path, capsys, family, said):
    path = make_table(tmp_path / "t.csv", gaps=False)
    (tmp_path / "l.csv").write_text(path.read_text().replace("income", "class"))
    cfg = tiny_config(str(tmp_path / "l.csv"), tmp_path / "run")
    cfg.model.family = family
    options = table_options(cfg, cfg.data.spec)
    assert options.conditional is not said
    load_dataset(cfg.data.spec, table=options)
    err = capsys.readouterr().err
    assert "column 'class' holds the labels" in err and ("sampled rows will not have it" in err) == said


def test_the_runs_own_table_named_by_a_relative_path_is_read_with_the_runs_limit(tmp_path, monkeypatch):
    path = make_table(tmp_path / "t.csv", gaps=False)
    cfg = tiny_config(str(path), tmp_path / "run")  # a run stores its data's absolute path
    cfg.data.limit = 40
    monkeypatch.chdir(tmp_path)
    assert table_options(cfg, "t.csv").limit == table_options(cfg, str(path)).limit == 40
    assert table_options(cfg, "other.csv").limit is None


def test_resuming_on_a_table_that_gained_a_category_names_the_column_and_category(tmp_path, monkeypatch):
    make_table(tmp_path / "t.csv", gaps=False)
    monkeypatch.chdir(tmp_path)
    run = vaekit.train(tiny_config("t.csv", tmp_path / "run", epochs=1), pictures=False)
    assert run.config.data.spec == str(tmp_path / "t.csv")  # stored absolute: read from anywhere later
    assert json.loads((run.path / files.CONFIG).read_text())["data"]["spec"] == str(tmp_path / "t.csv")
    with open(tmp_path / "t.csv", "a") as f:
        f.write("30,purple,40.0,>50K\n")
    with pytest.raises(VaekitError, match=r"category 'purple' on line 202, column index 1 \('color'\), is not one of"):
        vaekit.train(out=str(run.path), resume=True, epochs=2, pictures=False)


def every_item(ds):
    """A Dataset's items (N, D) in file order, and each one's row in its file (N,)."""
    splits = (ds.train, ds.val, ds.test)
    rows = np.concatenate([s.rows for s in splits])
    return torch.cat([s.x for s in splits])[np.argsort(rows)], np.sort(rows)


@pytest.mark.parametrize(
    ("text", "missing", "match"),
    [
        ("a,v,v,c\n" + "1,2,3,x\n" * 4, "refuse", r"column name 'v' given to more than one column in the header"),
        ("a,,c\n" + "1,2,x\n" * 4, "refuse", r"column index 1 has no name in the header"),
        (",a,c\n" + "5,2,x\n" * 4, "refuse", r"column index 0 has no name in the header"),  # not row numbers
        (
            "t,c\n"
            + "".join(f"{1 + i % 12:02d}/{1 + i % 28:02d}/2021 {i % 24:02d}:{i % 60:02d},x\n" for i in range(60)),
            "refuse",
            r"column 't' looks like dates or times \(01/01/2021 00:00\) in a format vaekit does not read as such: it "
            r"reads ISO 8601 ones \(2021-07-06, 2021-07-06 13:45, .*\), one format to a column; write them so",
        ),
        *[
            ("a,e,c\n" + "1,,x\n" * 4, m, r"column index 1 \('e'\) has no values, every cell a gap")
            for m in MISSING_MODES
        ],
    ],
)
def test_tables_that_cannot_be_read_as_they_stand_are_refused_in_one_line(tmp_path, text, missing, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(VaekitError, match=match):
        load_dataset(str(tmp_path / "t.csv"), table=TableOptions(missing=missing))


@pytest.mark.parametrize("empty", ["", ",,", " ;;", "NA,null,?", " na ;N/A; "])  # no cell filled
@pytest.mark.parametrize(
    ("missing", "rows"), [("refuse", None), ("drop", [0, 1, 3, 4, 6, 7, 8, 9]), ("mean", [0, 1, 3, 4, 5, 6, 7, 8, 9])]
)
def test_items_keep_their_rows_in_the_file_past_empty_and_dropped_rows(tmp_path, capsys, empty, missing, rows):
    sep = ";" if ";" in empty else ","
    lines = [f"{i * 0.5}{sep}{'NA' if i == 5 else i}{sep}{'xy'[i % 2]}" for i in range(10)]
    lines[2] = empty  # an empty row between filled ones: no item, but counted
    (tmp_path / "t.csv").write_text(f"a{sep}b{sep}c\n" + "\n".join(lines) + "\n\n\n")  # blank lines at the end
    with pytest.raises(VaekitError, match="missing value 'NA' on line 7") if rows is None else nullcontext():
        x, got = every_item(load_dataset(str(tmp_path / "t.csv"), table=TableOptions(missing=missing)))
        assert got.tolist() == rows and len(x) == len(rows)
    err = capsys.readouterr().err
    assert "1 empty row left out, the first on line 4" in err and len(err.splitlines()) == 1 + (missing == "drop")
    assert ("items keep their rows' numbers in the file" in err) == (missing == "drop")


def test_a_drop_runs_verbs_give_each_item_its_row_in_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i % 7},{'NA' if i < 20 else i % 5}\n" for i in range(40)))
    cfg = tiny_config(str(path), tmp_path / "run", epochs=1)
    cfg.data.missing = "drop"
    run = vaekit.train(cfg, pictures=False)
    kept = [str(i) for i in range(20, 40)]  # not 0..19, the items' places among the rows kept
    for split in ("all", "test"):
        out = tmp_path / f"{split}.csv"
        assert main(["anomaly", str(run.path), "--split", split, "--score", "neg_elbo", "--out", str(out)]) == 0
        index = [r[0] for r in read_csv_rows(out)[1:]]
        assert index == kept if split == "all" else set(index) < set(kept)


def test_a_header_of_numbers_is_noted_and_a_runs_own_columns_read_as_its_header(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("2019,2020,2021\n" + "".join(f"{i * 0.5},{i},{i * 2}\n" for i in range(10)))
    schema = load_dataset(str(tmp_path / "t.csv")).table
    assert "the first row (2019, 2020, 2021) holds only whole numbers: read as data" in capsys.readouterr().err
    assert [c.name for c in schema.columns] == ["0", "1", "2"]
    (tmp_path / "sample.csv").write_text("0,1,2\n" + "1.5,2,3\n" * 3)  # as the run writes its samples
    x, _ = every_item(load_dataset(str(tmp_path / "sample.csv"), table=TableOptions(schema=schema)))
    assert len(x) == 3 and "first row" not in capsys.readouterr().err


def test_pandas_unnamed_index_column_is_left_out_with_a_note(tmp_path, capsys):
    (tmp_path / "t.csv").write_text(
        ",a,label,b\n" + "".join(f"{i + 3},{i * 0.5},{i % 2},{'xy'[i % 3 > 0]}\n" for i in range(9))
    )
    ds = load_dataset(str(tmp_path / "t.csv"))
    assert [c.name for c in ds.table.columns] == ["a", "b"] and ds.num_classes == 2
    assert (ds.table.label, ds.table.label_index) == ("label", 1)  # placed among the columns kept
    assert "first column has no name and holds row numbers (pandas' index): left out" in capsys.readouterr().err


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_separator_at_every_lines_end_leaves_an_empty_column_out_with_a_note(tmp_path, capsys, sep):
    body = "".join(f"{i * 0.5}{sep}{i % 2}{sep}{'xy'[i % 3 > 0]}{sep}\n" + "\n" * (i == 4) for i in range(9))
    (tmp_path / "t.csv").write_text(f"a{sep}label{sep}b{sep}\n" + body)  # a blank line stays an empty row
    ds = load_dataset(str(tmp_path / "t.csv"))
    assert [c.name for c in ds.table.columns] == ["a", "b"] and ds.num_classes == 2
    assert "every line ends in a separator: the empty column after it is left out" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text(f"a{sep}b{sep}\n" + f"1{sep}2{sep}\n" * 4 + f"1{sep}2{sep}3\n")  # one value
    with pytest.raises(VaekitError, match=r"column index 2 has no name in the header"):
        load_dataset(str(tmp_path / "t.csv"))


def test_an_infinite_value_is_refused_without_a_float32_note(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,inf\n5,6\n7,8\n")
    with pytest.raises(VaekitError, match=r"value inf on line 3, column index 1 \('b'\), is not finite"):
        load_dataset(str(tmp_path / "t.csv"))
    assert "float32 resolves" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("a,b", "missing 'c'"),
        ("a,b,c,d", "extra 'd'"),
        ("a,d,c", "missing 'b'; extra 'd'"),
    ],
)
def test_other_data_with_other_columns_is_told_what_differs(tmp_path, header, said):
    (tmp_path / "t.csv").write_text("a,b,c\n" + "".join(f"{i},{i % 3},{i * 2}\n" for i in range(6)))
    schema = load_dataset(str(tmp_path / "t.csv")).table
    (tmp_path / "o.csv").write_text(f"{header}\n" + ",".join("1" * len(header.split(","))) + "\n")
    with pytest.raises(VaekitError, match=rf"columns differ from the run's \({said}\); the run's are a, b, c$"):
        load_dataset(str(tmp_path / "o.csv"), table=TableOptions(schema=schema))


@pytest.mark.parametrize(
    ("name", "text", "first"),
    [
        ("t.csv.gz", "a,b,c\n" + "0.5,1,x\n1.5,2,y\n" * 2, [0.5, 1]),
        ("t.tsv.gz", "a\tb\tc\n" + "0.5\t1\tx\n1.5\t2\ty\n" * 2, [0.5, 1]),
        ("t.csv", "sep=;\na;b;c\n" + "0,5;1;x\n1,5;2;y\n" * 2, [0.5, 1]),  # Excel's line naming the separator
        ("t.csv", "a\tb\tc\n" + "0,5\t1\tx\n-1,25\t2\ty\n" * 2, [-1.25, 2]),  # decimal commas between tabs
    ],
)
def test_gzipped_tables_excel_sep_lines_and_decimal_commas_between_tabs_are_read(tmp_path, name, text, first):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    ds = load_dataset(str(path))
    assert [(c.name, c.kind) for c in ds.table.columns] == [("a", "numeric"), ("b", "numeric"), ("c", "categorical")]
    assert sorted(every_item(ds)[0][:, :2].tolist())[0] == pytest.approx(first)


def test_cells_take_the_memory_their_text_needs():
    rows = [["x" * 5000 if i == j == 0 else str(i) for j in range(10)] for i in range(200)]
    assert _cells(rows).nbytes < 1e6  # fixed width by the longest cell: 40 MB


# Synthetic rows written as the file wrote its values (positional numbers within their range, its decimals, its
# date and time format), and quality measures that read date text as dates and refuse a column of two kinds.


def test_sampled_numbers_are_written_positional_and_within_their_range(tmp_path):
    old = TableSchema([Column("p", "numeric", min=1000007.32, max=1009933.36)])  # a table.json without decimals
    rows = old.bounded({"p": np.array([1010966.56, 1009933.36, 999000.0, 1005611.8125])})  # clipped to the range
    cells = [r[0] for r in read_csv_rows(write_csv(rows, tmp_path / "s.csv", single=True, schema=old))[1:]]
    assert cells == ["1009933.36", "1009933.36", "1000007.32", "1005611.8"]  # float32's 1009933.4 passes the max
    free = write_csv({"p": np.array([1010966.56, 2.5e-5])}, tmp_path / "f.csv", single=True)  # no schema
    assert [r[0] for r in read_csv_rows(free)[1:]] == ["1010966.56", "2.5e-05"]  # an exponent below 1e-4 only


def test_numbers_are_rounded_to_the_decimals_their_training_values_show(tmp_path):
    rng = np.random.default_rng(0)
    values = zip(rng.random(40), rng.uniform(1, 2e6, 40), rng.integers(0, 9, 40), rng.normal(size=40))
    (tmp_path / "t.csv").write_text(
        "ratio,money,n,third\n" + "".join(f"{a:.4f},{b:.2f},{c},{float(d) / 3!r}\n" for a, b, c, d in values)
    )
    schema = load_dataset(str(tmp_path / "t.csv")).table
    assert [c.decimals for c in schema.columns] == [4, 2, 0, None]  # a third needs more than 15: not rounded
    lo, hi = np.array([[c.min, c.max] for c in schema.columns]).T
    drawn = rng.uniform(lo - (hi - lo) / 4, hi + (hi - lo) / 4, (300, 4))  # some beyond the range
    rows = schema.bounded(schema.decode(drawn))
    for j, c in enumerate(schema.columns):
        assert lo[j] <= rows[c.name].min() and rows[c.name].max() <= hi[j]
        want = np.round(np.clip(drawn[:, j], lo[j], hi[j]), c.decimals) if c.decimals is not None else None
        assert np.array_equal(rows[c.name], np.clip(drawn[:, j], lo[j], hi[j]) if want is None else want)
    text = read_csv_rows(write_csv(rows, tmp_path / "s.csv", single=True, schema=schema))
    assert max(len(r[1].partition(".")[2]) for r in text[1:]) == 2 and all("e" not in r[1] for r in text[1:])
    saved = schema.to_dict()  # a table.json written before decimals were kept: rows as they were (clipped only)
    for c in saved["columns"]:
        del c["decimals"]
    old = TableSchema.from_dict(saved).bounded(schema.decode(drawn))
    assert np.array_equal(old["money"], np.clip(drawn[:, 1], lo[1], hi[1])) and old["n"].dtype == np.int64


@pytest.mark.parametrize(
    ("cells", "written"),
    [
        (["2021-01-01T12:43:00", "2021-01-02T03:10:00"], "2021-01-01T13:17:00"),  # whole minutes: no seconds
        (["2021-01-01 12:43", "2021-01-02 03:10"], "2021-01-01 13:17"),
        (["2021-01-01 12:00:00", "2021-01-02 03:00:00"], "2021-01-01 13:00:00"),  # whole hours
        (["2021-01-01", "2021-01-03"], "2021-01-02"),
        (["2021-01-01 12:43:00.338", "2021-01-02 03:10:00.125"], "2021-01-01 13:17:16.000"),  # pandas' to_csv
        (["2021-01-01T12:43:00Z", "2021-01-02T03:10:00Z"], "2021-01-01T13:17:00Z"),  # JavaScript's toISOString
        (["2021-01-01 12:00:00-05:00", "2021-01-02 03:00:00-05:00"], "2021-01-01 13:00:00-05:00"),  # one offset
        (["2021-01-01 12:00:00+01:00", "2021-01-02 03:00:00+02:00"], "2021-01-01 13:00:00+00:00"),  # several: UTC
        (["2021-01-01", "2021-01-02 03:10"], "2021-01-01 13:17"),  # dates beside times: the finer
    ],
)
def test_dates_and_times_are_written_in_their_files_format_to_its_resolution(tmp_path, cells, written):
    (tmp_path / "t.csv").write_text("t,v\n" + "".join(f"{c},{i}\n" for i, c in enumerate(cells * 10)))
    schema = load_dataset(str(tmp_path / "t.csv")).table
    at = (13 * 3600 + 17 * 60 + 16) / 86400  # 2021-01-01 13:17:16, in days since the first midnight
    rows = schema.bounded(schema.decode(np.array([[at, 1.0], [np.nan, 2.0]])))
    out = read_csv_rows(write_csv(rows, tmp_path / "s.csv", single=True, schema=schema))
    assert [r[0] for r in out] == ["t", written, ""]


def test_quality_reads_iso_date_text_as_dates_and_refuses_a_column_of_two_kinds():
    days = np.arange(40) % 28
    dates = np.array([f"2021-02-{d + 1:02d}" if d else None for d in days], object)  # text, and gaps
    real = {"t": dates, "c": np.array(["a", "b"] * 20, object)}
    parsed = {**real, "t": np.array([np.datetime64(d or "NaT", "D") for d in dates])}  # as pandas' parse_dates
    for a, b in ((real, parsed), (parsed, real)):
        q = table_quality(a, b, target=False)
        assert q["columns"]["t"]["kind"] == "numeric" and q["columns"]["t"]["ks"] == 0
    with pytest.raises(VaekitError, match=r"^column 't' holds dates in the real rows and numbers in the synthetic"):
        table_quality(real, {**real, "t": days.astype(float)})
    with pytest.raises(VaekitError, match=r"^column 'n' holds numbers in the real rows and categories in the syn"):
        table_quality({**real, "n": days}, {**real, "n": days.astype(str).astype(object)})


def test_the_default_tstr_target_is_the_last_categorical_column_that_varies(monkeypatch):
    from vaekit.evaluation import table_quality as module

    monkeypatch.setattr(module, "tstr", lambda real, synthetic, kinds, target, test, seed: target)  # no fitting
    real = {**columns(), "k": np.full(400, "same", object)}
    assert table_quality(real, real)["tstr"] == "d"  # not k, one value throughout
