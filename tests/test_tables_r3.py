"""Tables, round 3: a frame run's sampled bools read back, gaps in lists of text, frames held to a run's columns by
name (its label column left out, spaces stripped), quality's label-column target, default target, changed data
and other data's file, table_rows in the guide, a hint for 'None' among numbers, wide tables' legends. Tiny
tables; one run of one epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.data import images, load_dataset
from vaekit.data.user_arrays import encoded_frame, frame_ranges, frame_schema, run_frame
from vaekit.errors import VaekitError
from vaekit.evaluation import outputs
from vaekit.evaluation.table_quality import table_quality
from vaekit.viz import figures, plots

from .conftest import tiny_config

pd = pytest.importorskip("pandas")
ROOT = Path(__file__).resolve().parents[1]


def people(path: Path, n: int = 60) -> Path:
    """age (whole numbers), work (3 categories), hours (one decimal), target (yes/no: found as the label column)."""
    rng = np.random.default_rng(n)
    age, hours = rng.integers(20, 60, n), rng.normal(40, 5, n).round(1)
    rows = [f"{age[i]},{('Gov', 'Private', 'Self')[i % 3]},{hours[i]},{('no', 'yes')[i % 2]}" for i in range(n)]
    path.write_text("age,work,hours,target\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run (not conditional) of a table whose column 'target' is its label column, and another table."""
    folder = tmp_path_factory.mktemp("r3")
    cfg = tiny_config(str(people(folder / "t.csv")), folder / "run", epochs=1)
    cfg.model.hidden, cfg.model.latent_dim = [8], 2
    return vaekit.train(cfg, pictures=False), people(folder / "o.csv", 30)


@pytest.fixture
def schema(tmp_path):
    return load_dataset(str(people(tmp_path / "t.csv"))).table


@pytest.fixture
def said(monkeypatch):
    monkeypatch.setattr(images, "_said", set())  # notes said once per process: said afresh here


def test_a_frame_runs_bool_column_reads_back_the_true_and_false_its_sampled_rows_hold():
    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "b": [True, False, True, False]})
    table = frame_ranges(frame_schema(frame), frame, None)
    cells = np.array([["1.5", "True"], ["2", "false"], ["3", "1"], ["0.5", "0"]])
    x, _ = table.encode(cells, [2, 3, 4, 5], "s.csv")
    assert x[:, 1].tolist() == [1, 0, 1, 0]


def test_gaps_in_lists_of_text_are_gaps_not_a_category_nan():
    real = {"c": ["a", "b", np.nan, "a"], "x": [1.0, 2.0, 3.0, 4.0]}
    synthetic = {"c": ["a", "b", "a", None], "x": [1.0, 2.0, 3.0, 4.0]}
    listed = table_quality(real, synthetic, target=False)
    assert listed == table_quality(pd.DataFrame(real), pd.DataFrame(synthetic), target=False)
    assert listed["columns"]["c"]["tvd"] == 0 and listed["columns"]["c"]["missing"]["real"] == 0.25


def test_a_frame_is_held_to_the_run_s_columns_by_name_without_its_label_column(tmp_path, schema, said, capsys):
    frame = pd.read_csv(tmp_path / "t.csv")
    features = encoded_frame(frame.drop(columns="target"), schema, "data", "")
    for given in (frame, frame[["hours", "target", "work", "age"]], frame.drop(columns="target")):
        assert np.array_equal(run_frame(given, schema, "data items"), features)
    err = capsys.readouterr().err
    assert err.count("column 'target' is the run's label column, not a feature") == 1 and "as y" in err
    assert err.count("the run's columns in another order: taken by name") == 1
    with pytest.raises(VaekitError, match=r"\(extra 'x'\); the run's are age, work, hours$"):
        run_frame(frame.assign(x=1), schema, "data items")  # the label column left out, not named as extra


def test_a_frame_s_cells_are_stripped_of_spaces_as_a_file_s_are(tmp_path, schema):
    frame = pd.read_csv(tmp_path / "t.csv").drop(columns="target")
    spaced = frame.assign(work=" " + frame["work"] + " ")  # as pd.read_csv reads adult.data
    assert np.array_equal(encoded_frame(spaced, schema, "X", ""), encoded_frame(frame, schema, "X", ""))


def test_one_text_among_numbers_of_other_data_is_told_how_a_gap_is_written(tmp_path, schema):
    schema.trained = True
    cells = np.array([["30", "Gov", "None"], ["40", "Self", "41.5"]])
    with pytest.raises(VaekitError, match=r"line 3, column index 2 \('hours'\), is not a number; if 'None' marks a"):
        schema.encode(cells, [3, 4], "o.csv")
    frame = pd.DataFrame(cells, columns=["age", "work", "hours"])
    with pytest.raises(VaekitError, match=r"value 'None' in row 0, .* if 'None' marks a gap, make it NaN"):
        encoded_frame(frame, schema, "X", "")
    two = np.array([["30", "Gov", "None"], ["40", "Self", "-"]])  # two texts: no single gap marker to point at
    with pytest.raises(VaekitError, match=r"is not a number$"):
        schema.encode(two, [3, 4], "o.csv")


def test_a_target_that_is_the_label_column_of_a_run_not_modelling_it_says_so(run):
    with pytest.raises(
        VaekitError,
        match=r"'target' is the run's label column, which this run does not model .* "
        r"data.label_column=off",
    ):
        vaekit.quality(run[0], target="target", write=False)


def test_quality_names_its_default_target_and_notes_changed_data(run, monkeypatch, capsys):
    folder = run[0].path
    monkeypatch.setattr(outputs, "recorded_data", lambda path: {"items": [1, 2, 3]})  # other counts in training
    assert main(["quality", str(folder), "--n", "16"]) == 0
    out, err = capsys.readouterr()
    assert "TSTR target 'work': the last categorical column holding more than one value, the label column " in out
    assert err.count("its data changed since training: its checkpoint records 1 training") == 1
    assert json.loads((folder / files.QUALITY).read_text())["data"] == "t.csv"


def test_quality_of_other_data_goes_to_a_file_of_its_own(run, monkeypatch, capsys):
    folder, other = run[0].path, run[1]
    (folder / files.QUALITY).unlink(missing_ok=True)
    monkeypatch.setattr(outputs, "recorded_data", lambda path: {"items": [1, 2, 3]})  # not said of other data
    assert main(["quality", str(folder), "--data", str(other), "--n", "16", "--target", "none"]) == 0
    out, err = capsys.readouterr()
    written = folder / "quality-o.csv-all.json"  # every row of other data: split all
    assert out.rstrip().endswith(f"-> {written}") and "changed since training" not in err
    assert json.loads(written.read_text())["path"] == str(other) and not (folder / files.QUALITY).exists()


def test_the_guide_turns_items_into_rows_with_table_rows_which_rounds_and_clips(run):
    guide = (ROOT / "docs" / "guides" / "data.md").read_text()
    assert "`run.table_rows(x)` turns items" in guide and "`run.table.decode(x)` turns items" not in guide
    r = run[0]
    x = torch.tensor(encoded_frame(pd.read_csv(run[1]).drop(columns="target"), r.table, "X", ""))
    rows = r.table_rows(r.reconstruct(x))
    assert rows["age"].dtype == np.int64 and set(rows["work"]) <= {"Gov", "Private", "Self"}
    assert np.array_equal(rows["hours"], rows["hours"].round(1))


def test_wide_table_pictures_name_each_column_once_in_a_legend(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    names = ("age", *[f"city=c{k}" for k in range(24)], "hours")
    columns = plots.Columns(names, owners=("age", *["city"] * 24, "hours"))
    ax = Figure().subplots()
    plots.column_lines(ax, np.linspace(0, 1, 5), np.random.default_rng(0).normal(size=(5, 26)), columns)
    plots.column_legend(ax, columns, 26)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["age", "city", "hours"]
    assert len({tuple(np.atleast_1d(line.get_color())) for line in ax.get_lines()}) == 3  # a colour per column
    shown = []
    keep = lambda fig, path: shown.append(fig) or Path(path)  # noqa: E731
    monkeypatch.setattr(plots, "_save_figure", keep)
    monkeypatch.setattr(figures, "_save_figure", keep)
    x = torch.randn(8, 26)
    plots.save_reconstructions(x, x + 0.1, tmp_path / "r.png", columns=columns)
    assert [t.get_text() for t in shown[0].axes[0].get_legend().get_texts()] == ["age", "city", "hours"]
    figures.save_traversal(torch.randn(2, 5, 26), [0, 1], torch.linspace(-2, 2, 5), tmp_path / "t.png", columns)
    assert [t.get_text() for t in shown[1].axes[-1].get_legend().get_texts()] == ["age", "city", "hours"]
    many = plots.Columns(tuple(f"f{j}" for j in range(26)))  # 26 columns of a slot each: none named
    assert plots.slot_groups(many, 26) is None
