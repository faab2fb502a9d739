"""Tables as they come, round 2: a numeric column of one value under data.numeric=modes, near-unique text
columns, missing=drop leaving too few rows, stray quotes, new data's unmodelled gaps, a gap marker among
numbers, the tables benchmark's notes and the report page's drawn rows. Tiny CSVs, no training."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vaekit.data import load_dataset, table_cells
from vaekit.data.modes import Modes
from vaekit.data.table_values import clip_note
from vaekit.data.tables import Column, TableOptions, TableSchema
from vaekit.errors import VaekitError
from vaekit.viz.report_tables import rows_section

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, header: str, rows: list[str]) -> str:
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def test_modes_of_a_column_of_one_value_are_that_value_without_a_mixture(tmp_path):
    rows = [f"{i / 7:.3f},{'5' if i == 3 else ''}" for i in range(60)]  # b: one value, in one row
    ds = load_dataset(write(tmp_path / "t.csv", "a,b", rows), table=TableOptions(missing="mean", numeric="modes"))
    b = ds.table.columns[1].modes
    assert (b.mean, b.weight, b.std) == ([5.0], [1.0], [1e-3])
    assert Modes.fit(np.full(40, 5.0), 0) == Modes.fit(np.array([5.0]), 0)  # one row or many, the same mode


def emails(n: int, distinct: int) -> list[str]:
    return [f"u{i % distinct}@x.com,{i % 7}" for i in range(n)]


def test_a_text_column_of_more_values_than_half_its_rows_is_refused_naming_it(tmp_path):
    path = write(tmp_path / "t.csv", "email,v", emails(100, 51))
    with pytest.raises(VaekitError, match=r"column 'email' holds 51 different texts in its 100 rows .* add 51 slots"):
        load_dataset(path)
    assert load_dataset(write(tmp_path / "half.csv", "email,v", emails(100, 50))).shape == (1 + 50,)
    assert load_dataset(path, table=TableOptions(categorical=["email"])).shape == (1 + 51,)  # listed: modelled


def test_items_past_the_memory_free_are_refused_naming_the_widest_category(tmp_path, monkeypatch):
    path = write(tmp_path / "t.csv", "email,v", emails(100, 51))
    monkeypatch.setattr(table_cells, "usable_memory", lambda: 2 * 4 * 100 * 52 - 2)
    with pytest.raises(VaekitError, match=r"100 rows of 52 slots .* widest categorical column, 'email', adds 51"):
        load_dataset(path, table=TableOptions(categorical=["email"]))


def test_drop_leaving_too_few_rows_says_how_many_and_which_column(tmp_path):
    rows = [f"{i},{i if i < 2 else ''},x" for i in range(20)]
    with pytest.raises(VaekitError, match=r"drop leaves 2 of 20 rows \(18 with a gap .* column 'b' has the most gaps"):
        load_dataset(write(tmp_path / "t.csv", "a,b,c", rows), table=TableOptions(missing="drop"))


@pytest.mark.parametrize(
    ("tail", "said"),
    [
        (['"ab,3,4', "cd,5,6", 'ef",7,8', "gh,9,10"], "opened on line 4 runs to line 6"),  # a cell of 3 lines
        (["ab,3,4", 'cd,5,"6', "ef,7,8"], "opened on line 5 runs to line 6"),  # to the end, ragged
        (["ab,3,4", '"cd,5,6'], "opened on line 5 runs to the end of the file"),  # on the last line
    ],
)
def test_a_stray_quote_is_refused_naming_where_its_field_opens_and_ends(tmp_path, tail, said):
    with pytest.raises(VaekitError, match=said):
        load_dataset(write(tmp_path / "t.csv", "n,v,w", ["xy,1,2", "zz,2,3", *tail]))


def test_a_quoted_cell_of_text_over_lines_is_kept(tmp_path):
    rows = [f'x{i},{i},"line one\nline two of {i}"' for i in range(6)]  # valid CSV: text over lines, no row in it
    ds = load_dataset(write(tmp_path / "t.csv", "n,v,w", rows), table=TableOptions(categorical=["w"]))
    assert len(ds.train) + len(ds.val) + len(ds.test) == 6


def test_gaps_where_training_had_none_are_filled_in_one_note(tmp_path, capsys):
    rows = [f"{'' if i % 3 == 0 else i},{i % 5},{'pq'[i % 2]}" for i in range(40)]  # gaps in a only
    ds = load_dataset(write(tmp_path / "t.csv", "a,b,c", rows), table=TableOptions(missing="mean"))
    ds.table.save(tmp_path / "table.json")
    capsys.readouterr()
    cells = np.array([["", "", "?"], ["", "1", ""], ["3", "", "p"]])
    TableSchema.load(tmp_path / "table.json").encode(cells, [2, 3, 4], "new.csv")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new.csv: 4 gap(s) filled in column(s) 'b' (2), 'c' (2), which had none" in err


def test_one_gap_marker_among_numbers_says_how_to_write_a_gap(tmp_path):
    with pytest.raises(VaekitError, match=r"data.categorical if it holds categories; if 'None' marks a gap, write an"):
        load_dataset(write(tmp_path / "t.csv", "a,b", ["1,None", *[f"{i},{i}" for i in range(5)]]))
    with pytest.raises(VaekitError, match=r"holds categories$"):  # two texts: categories, perhaps
        load_dataset(write(tmp_path / "u.csv", "a,b", ["1,None", "2,-", *[f"{i},{i}" for i in range(5)]]))


def test_the_tables_benchmark_notes_say_tvae_epochs_steps_and_argmax(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    tables = importlib.import_module("tables")
    said = " ".join(tables.notes((100, 200), 1e-7, 4000, ("2.0.0", "0.32.0")))
    assert "not its default 300" in said and "1,600 at its default batch 500, against vaekit's 1,600 at 256" in said
    assert "argmax" in said and "vaekit draws synthetic categories from the softmax" in said
    stored = ROOT / "benchmarks" / "results" / "tables.json"
    (tmp_path / "t.json").write_text(stored.read_text())
    tables.rehead(str(tmp_path / "t.json"))  # the published notes are the script's
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(stored.read_text())


def test_the_report_pages_ten_drawn_rows_say_nothing_of_clipped_shares(capsys):
    def sample_table(n: int) -> dict:
        clip_note({"gain": [n, n]}, "standard")  # every value clipped: 100% of 10
        return {"gain": np.arange(n, dtype=np.float64)}

    table = TableSchema([Column("gain", "numeric")])
    run = SimpleNamespace(table=table, sample_table=sample_table, model=SimpleNamespace(needs_labels=False))
    split = SimpleNamespace(x=np.zeros((0, 1)), y=None)
    assert rows_section(run, split, "test")
    assert capsys.readouterr().err == ""
    sample_table(200)  # elsewhere it is said
    assert "gain 100.0% of its values" in capsys.readouterr().err
