"""Table runs with labels (a conditional run's rows, its label column, its quality) and a table's notes: a label
column found by its name, a column finer than float32."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.data.tables import TableOptions
from vaekit.errors import VaekitError

from .conftest import tiny_config
from .test_tables import read_csv_rows


def labelled_table(path, header="rooms,label,price", n=120):
    """rooms (whole numbers 1..7), a text label (a, b, c) and price (1.2..9, two decimals)."""
    rng = np.random.default_rng(0)
    rooms, price = rng.integers(1, 8, n), rng.uniform(1.2, 9, n).round(2)
    path.write_text(f"{header}\n" + "".join(f"{rooms[i]},{'abc'[i % 3]},{price[i]}\n" for i in range(n)))
    return path


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    path = labelled_table(tmp_path_factory.mktemp("t") / "t.csv")
    cfg = tiny_config(str(path), path.parent / "run", epochs=2)
    cfg.model.family = "cvae"
    return vaekit.train(cfg, pictures=False).path, path


def test_synthetic_rows_are_rounded_and_clipped_to_the_training_range(labelled_run, tmp_path):
    run, path = labelled_run
    train = load_dataset(str(path)).train.x.numpy()  # (N, 2 + 3): rooms, price, the label's one-hot code
    saved = json.loads((run / files.TABLE).read_text())
    ranges = [(c["integer"], c["min"], c["max"]) for c in saved["columns"]]
    assert ranges[0] == (True, train[:, 0].min(), train[:, 0].max()) and not ranges[1][0]
    assert ranges[1][1:] == pytest.approx([train[:, 1].min(), train[:, 1].max()]) and ranges[1][1] >= 1.2
    old = tmp_path / "old"  # a table.json written before the ranges were kept: rows as they were
    old.mkdir()
    for f in run.iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    for c in saved["columns"]:
        del c["integer"], c["min"], c["max"]
    (old / files.TABLE).write_text(json.dumps(saved))
    new, was = [(torch.manual_seed(0), vaekit.load_run(p).sample_table(300))[1] for p in (run, old)]
    assert new["rooms"].dtype == np.int64 and was["rooms"].dtype == np.float64
    lo, hi = ranges[1][1:]
    assert np.mean((was["price"] < lo) | (was["price"] > hi)) > 0.05  # unclipped draws stray out of range
    assert np.array_equal(new["rooms"], np.rint(np.clip(was["rooms"], *ranges[0][1:])))
    assert np.array_equal(new["price"], np.clip(was["price"], *ranges[1][1:]))


@pytest.mark.parametrize(("label", "counts"), [(None, {"a": 3, "b": 2, "c": 2}), ("b", {"b": 7}), ("2", {"c": 7})])
def test_a_conditional_run_samples_csv_rows_with_their_label_column(labelled_run, tmp_path, label, counts):
    out = tmp_path / "s.csv"
    assert main(["sample", str(labelled_run[0]), "--n", "7", "--out", str(out)] + ["--label", label] * bool(label)) == 0
    rows = read_csv_rows(out)
    assert rows[0] == ["rooms", "label", "price"] and len(rows) == 8
    assert {k: [r[1] for r in rows[1:]].count(k) for k in counts} == counts
    assert all(r[0].isdigit() for r in rows[1:])  # whole numbers, written as such
    rec = tmp_path / "rec.csv"  # reconstructed rows: bounded alike, with the items' labels
    assert main(["reconstruct", str(labelled_run[0]), "--n", "5", "--out", str(rec)]) == 0
    rows = read_csv_rows(rec)  # each row's row in the file first: the test split's
    assert rows[0] == ["index", "rooms", "label", "price"] and all(r[1].isdigit() and r[2] in "abc" for r in rows[1:])
    assert [int(r[0]) for r in rows[1:]] == load_dataset(str(labelled_run[1])).test.rows[:5].tolist()


def test_a_conditional_table_run_is_measured_with_its_label_column(labelled_run):
    q = vaekit.quality(labelled_run[0], write=False, target="rooms")  # its rows drawn as often per class as the data's
    assert q["kind"] == "table" and q["n_synthetic"] == q["n_real"] and q["split"] == "test"
    data = load_dataset(str(labelled_run[1]))
    val = vaekit.quality(labelled_run[0], write=False, target="rooms", split="val")  # TSTR tested there
    assert val["split"] == "val" and val["n_test"] == len(data.val.x) and val["tstr"] != q["tstr"]
    labelled = vaekit.quality(labelled_run[0], write=False)  # the label column is measured and predicted
    assert labelled["columns"]["label"]["kind"] == "categorical" and labelled["tstr"] != q["tstr"]
    off = vaekit.quality(labelled_run[0], write=False, target=False)  # measured, and no TSTR
    assert "tstr" not in off and off["columns"] == labelled["columns"]
    with pytest.raises(VaekitError, match="split 'train': TSTR is tested on rows it did not train on"):
        vaekit.quality(labelled_run[0], write=False, target="rooms", split="train")


@pytest.mark.parametrize(
    ("header", "label_column", "note", "features", "classes"),
    [
        ("rooms,label,price", None, True, ["rooms", "price"], ["a", "b", "c"]),
        ("rooms,label,price", "off", False, ["rooms", "label", "price"], None),
        ("rooms,off,price", "off", False, ["rooms", "price"], ["a", "b", "c"]),  # a column named off is taken
    ],
)
def test_a_label_column_is_named_in_a_note_or_kept_as_a_feature(
    tmp_path, capsys, header, label_column, note, features, classes
):
    path = labelled_table(tmp_path / "t.csv", header)
    ds = load_dataset(str(path), label_column=label_column)
    assert [c.name for c in ds.table.columns] == features and ds.classes == classes
    err = capsys.readouterr().err
    assert ("column 'label' holds the labels, not a feature (set data.label_column=off" in err) == note
    load_dataset(str(path), table=TableOptions(label_note=False))
    assert capsys.readouterr().err == ""


def test_a_column_finer_than_float32_at_its_size_is_said_in_one_line(tmp_path, capsys):
    rows = "".join(f"{1.7e12 + 1000 * i:.0f},{i % 5}\n" for i in range(40))  # epoch milliseconds, one a second
    (tmp_path / "t.csv").write_text("ts_ms,n\n" + rows)
    load_dataset(str(tmp_path / "t.csv"))
    err = capsys.readouterr().err
    assert "column 'ts_ms' varies by 39000 around 1.7e+12, below what float32 resolves" in err
    assert "'n'" not in err and err.count("\n") == 1


def test_a_conditional_run_on_a_table_without_labels_names_the_setting(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n" + "1.5,2\n2.5,3\n" * 10)
    cfg = tiny_config(str(tmp_path / "t.csv"), tmp_path / "run")
    cfg.model.family = "cvae"
    with pytest.raises(VaekitError, match=r"the data has none \(name its label column with data.label_column\)"):
        vaekit.train(cfg, pictures=False)


@pytest.mark.parametrize("encoding, note", [("utf-8-sig", None), ("cp1252", "0xfc on line 2"), ("latin-1", "0xfc")])
def test_a_file_not_in_utf8_is_read_as_a_windows_spreadsheet_saved_it_with_one_note(tmp_path, capsys, encoding, note):
    rows = [("München", "Köln")[i % 2] + ("\x81" if encoding == "latin-1" and i == 0 else "") for i in range(8)]
    (tmp_path / "t.csv").write_bytes(("x,city\n" + "".join(f"{i},{c}\n" for i, c in enumerate(rows))).encode(encoding))
    ds = load_dataset(str(tmp_path / "t.csv"))
    assert set(ds.table.columns[1].categories) == set(rows) and "\ufeff" not in ds.table.columns[0].name
    err = capsys.readouterr().err
    assert (note in err and f"read as {encoding}" in err) if note else "UTF-8" not in err


@pytest.mark.parametrize("rows, listed", [(51, []), (51, ["name"]), (50, [])])
def test_a_text_column_distinct_in_every_row_is_an_identifier_refused_unless_listed(tmp_path, rows, listed):
    (tmp_path / "t.csv").write_text("x,name\n" + "".join(f"{i % 7},row{i}\n" for i in range(rows)))
    if rows > 50 and not listed:
        with pytest.raises(VaekitError, match="column 'name' holds a different text in each of its 51 rows"):
            load_dataset(str(tmp_path / "t.csv"))
        return
    ds = load_dataset(str(tmp_path / "t.csv"), table=TableOptions(categorical=listed))
    assert len(ds.table.columns[1].categories) == rows
