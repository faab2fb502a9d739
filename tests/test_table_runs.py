"""Table runs with labels (a conditional run's rows, its label column, its quality) and a table's notes: a label
column found by its name, a column finer than float32."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
import torch
from torch.distributions import Normal

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.core.tabular import Tabular, UnitsNormal
from vaekit.data import load_dataset
from vaekit.data.core import RawData, build_dataset
from vaekit.data.table_schema import Column, TableSchema
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
        del c["integer"], c["min"], c["max"], c["decimals"]
    (old / files.TABLE).write_text(json.dumps(saved))
    new, was = [(torch.manual_seed(0), vaekit.load_run(p).sample_table(300))[1] for p in (run, old)]
    assert new["rooms"].dtype == np.int64 and was["rooms"].dtype == np.float64
    lo, hi = ranges[1][1:]
    assert np.mean((was["price"] < lo) | (was["price"] > hi)) > 0.05  # unclipped draws stray out of range
    assert np.array_equal(new["rooms"], np.rint(np.clip(was["rooms"], *ranges[0][1:])))
    assert np.array_equal(new["price"], np.round(np.clip(was["price"], lo, hi), 2))  # to the file's 2 decimals


@pytest.mark.parametrize(("label", "counts"), [(None, {"a", "b", "c"}), ("b", {"b"}), (" c", {"c"})])
def test_a_conditional_run_samples_csv_rows_with_their_label_column(labelled_run, tmp_path, label, counts):
    out = tmp_path / "s.csv"
    assert main(["sample", str(labelled_run[0]), "--n", "7", "--out", str(out)] + ["--label", label] * bool(label)) == 0
    rows = read_csv_rows(out)
    assert rows[0] == ["rooms", "label", "price"] and len(rows) == 8
    assert {r[1] for r in rows[1:]} <= counts  # without --label: classes drawn at their training frequencies
    assert all(r[0].isdigit() for r in rows[1:])  # whole numbers, written as such
    rec = tmp_path / "rec.csv"  # reconstructed rows: bounded alike, with the items' labels
    assert main(["reconstruct", str(labelled_run[0]), "--n", "5", "--out", str(rec)]) == 0
    rows = read_csv_rows(rec)  # each row's row in the file first: the test split's
    assert rows[0] == ["index", "rooms", "label", "price"] and all(r[1].isdigit() and r[2] in "abc" for r in rows[1:])
    assert [int(r[0]) for r in rows[1:]] == load_dataset(str(labelled_run[1])).test.rows[:5].tolist()


def test_reconstructed_rows_keep_the_file_s_time_format_and_decimals(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"2024-01-{1 + i % 28:02d} {i % 24:02d}:30,{rng.uniform(1e6, 2e6):.2f}\n" for i in range(60)]
    (tmp_path / "t.csv").write_text("when,price\n" + "".join(rows))
    run = vaekit.train(tiny_config(str(tmp_path / "t.csv"), tmp_path / "run", epochs=1), pictures=False).path
    assert main(["reconstruct", str(run), "--n", "5", "--out", str(tmp_path / "rec.csv")]) == 0
    cells = read_csv_rows(tmp_path / "rec.csv")[1:]  # as sample writes them: the schema's format and decimals
    assert all(len(r[1]) == len("2024-01-01 00:30") for r in cells)  # minutes, as the file has them
    assert all(r[2] == f"{float(r[2]):.2f}".rstrip("0").rstrip(".") for r in cells)
    assert any(len(r[2].partition(".")[2]) == 2 for r in cells)  # cents, not float32's 7 digits


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


@pytest.mark.parametrize(
    ("column", "advice", "refused"),
    [
        ([f"{0.1 * i - 3:.2f}" for i in range(120)], "so naming it in data.label_column is refused", True),
        ([str(i % 60) for i in range(120)], "name it in data.label_column to take it as labels all the same", False),
    ],
)
def test_a_label_note_advises_naming_the_column_only_where_naming_it_is_taken(
    tmp_path, capsys, column, advice, refused
):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i % 7},{v}\n" for i, v in enumerate(column)))
    load_dataset(str(path))
    err = capsys.readouterr().err
    assert "not classes: modelled as a data column (" in err and f"{advice})" in err and err.count("\n") == 1
    if refused:  # refused in one line, with no note before it that calls the column labels
        with pytest.raises(VaekitError, match=r"labels must be whole numbers or names, found -2\.9 in column 'y'"):
            load_dataset(str(path), label_column="y")
        assert capsys.readouterr().err == ""
    else:
        assert load_dataset(str(path), label_column="y").num_classes == 60


def test_a_label_column_of_numbers_holds_numbers_and_numbers_the_file_again(tmp_path):
    """A CSV file's cells are text, a column of numbers numbers all the same ("01" and "1.0" are label 1): a
    conditional run names its classes by them, and reads the file's labels, or them as text in Python, by name."""
    pd = pytest.importorskip("pandas")
    path = labelled_table(tmp_path / "t.csv")
    path.write_text(path.read_text().replace(",a,", ",01,").replace(",b,", ",2.0,").replace(",c,", ",3,"))
    cfg = tiny_config(str(path), tmp_path / "run", epochs=1)
    cfg.model.family = "cvae"
    run = vaekit.train(cfg, pictures=False)
    assert run.classes == ["1", "2", "3"]
    assert main(["encode", str(run.path), "--data", str(path), "--out", str(tmp_path / "z.npz")]) == 0
    codes = np.load(tmp_path / "z.npz")
    assert codes["label"].tolist() == [i % 3 for i in range(120)]
    frame, names = pd.read_csv(path)[["rooms", "price"]], np.array(["1", "2", "3"] * 40)
    np.testing.assert_allclose(codes["loc"], run.encode(frame, names).mean.numpy(), atol=1e-5)


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


@pytest.mark.parametrize("size", [1e20, 1e30, 1e-20, 1e-30])
def test_a_column_of_numbers_whose_squares_float32_cannot_hold_trains_and_samples_in_its_units(tmp_path, size):
    rng = np.random.default_rng(0)  # whole numbers in float64 past int64's range: floats, not wrapped int64
    rows = "".join(f"{a:.3f},{b:.6e},{'uv'[i % 2]}\n" for i, (a, b) in enumerate(rng.normal(size=(60, 2)) * [1, size]))
    (tmp_path / "t.csv").write_text("a,huge,c\n" + rows)
    run = vaekit.load_run(vaekit.train(tiny_config(str(tmp_path / "t.csv"), tmp_path / "run", epochs=1)).path)
    x = load_dataset(str(tmp_path / "t.csv")).test.x
    out = run.model(x)
    assert torch.isfinite(out.px.log_prob(x)).all()
    rows = run.sample_table(50)
    assert rows["huge"].dtype == np.float64 and size / 10 < np.abs(rows["huge"]).max() <= 5 * size


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e-3, 1.0, 37.5, 1e15, 1e20, 1e30])
def test_the_gaussian_log_density_is_torchs_bit_for_bit_and_finite_past_its_squares(scale):
    loc = torch.tensor([[0.5 * scale, -2.0 * scale]])  # (B=1, n=2), values a standard deviation or two away
    sd = torch.tensor([[1.5 * scale, 0.25 * scale]], requires_grad=True)
    value = torch.tensor([[-1.0 * scale, 1.0 * scale]])
    got = Tabular(loc, sd, torch.zeros(1, 2), [2]).log_prob(torch.cat([value, torch.tensor([[1.0, 0.0]])], 1))
    ours = UnitsNormal(loc, sd).log_prob(value)
    z = (value.double() - loc.double()) / sd.double()
    exact = -0.5 * z**2 - sd.double().log() - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(ours.double(), exact, rtol=1e-6, atol=1e-5) and torch.isfinite(got)  # float32: 70 - 72.5
    assert got.item() == pytest.approx(ours.sum().item() - math.log(2), rel=1e-6)
    ours.sum().backward()
    assert torch.isfinite(sd.grad).all()
    if 1e-18 < scale < 1e18:  # torch's own formula, where its squares fit float32: the same numbers to the last bit
        assert torch.equal(ours, Normal(loc, sd).log_prob(value))


def other_table(tmp_path, line: int, column: int, cell: str):
    """labelled_table's first 30 rows with the cell of ``column`` on file line ``line`` (1: the header) set."""
    lines = labelled_table(tmp_path / "other.csv", n=30).read_text().split("\n")
    cells = lines[line - 1].split(",")
    lines[line - 1] = ",".join([*cells[:column], cell, *cells[column + 1 :]])
    (tmp_path / "other.csv").write_text("\n".join(lines))
    return tmp_path / "other.csv"


def anomaly_error(run, data, tmp_path, capsys, *args: str) -> str:
    """The one line ``vaekit anomaly`` of run on data says, failing."""
    out = ["--score", "neg_elbo", "--out", str(tmp_path / "a.csv")]
    assert main(["anomaly", str(run), "--data", str(data), *out, *args]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


@pytest.mark.parametrize("args", [[], ["--split", "test"]])  # every row in file order, or a seeded split
def test_a_refuse_runs_verbs_say_what_can_be_done_with_a_gap(labelled_run, tmp_path, capsys, args):
    err = anomaly_error(labelled_run[0], other_table(tmp_path, 5, 0, ""), tmp_path, capsys, *args)
    assert (
        "missing value '' on line 5, column index 0 ('rooms'); this run was trained with data.missing=refuse, " in err
    )
    assert (
        "its verbs take no gaps: remove or fill them, or train a run with data.missing=mean (which fills gaps) or drop "
        "(which leaves such rows out)"
        in err
        and "set data.missing" not in err
    )
    with pytest.raises(VaekitError, match=r"line 5, column index 0 \('rooms'\); set data.missing to drop"):
        load_dataset(str(tmp_path / "other.csv"))  # in training: the setting to change


@pytest.mark.parametrize("args, label", [([], "d"), (["--split", "test"], "d"), ([], "7")])  # a number: a name too
def test_a_class_a_conditional_run_never_saw_is_named_with_its_line_and_column(
    labelled_run, tmp_path, capsys, args, label
):
    err = anomaly_error(labelled_run[0], other_table(tmp_path, 8, 1, label), tmp_path, capsys, *args)
    assert (
        f"other.csv: label '{label}' on line 8, column 'label', is none of the classes the run was trained on (a, b, c)"
        in err
    )


@pytest.mark.parametrize("strings", [str, getattr(np.dtypes, "StringDType", str)])
def test_items_are_built_in_float32_once_with_the_numbers_they_had(strings):
    n, k = 3000, 1000  # a column of 1000 categories: its one-hot slots, and little besides
    rng = np.random.default_rng(0)
    cells = np.array(
        [[f"{v:.3f}", f"c{c:04d}", g] for v, c, g in zip(rng.normal(size=n), rng.integers(0, k, n), "xy?" * n)],
        dtype=strings,
    )
    columns = [
        Column("v", "numeric"),
        Column("c", "categorical", [f"c{i:04d}" for i in range(k)]),
        Column("g", "categorical", ["x", "y"], fill="x", gaps=True),
    ]
    schema = TableSchema(columns, "mean")
    tracemalloc.start()
    x, keep = schema.encode(cells, list(range(2, n + 2)), "t.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.dtype == np.float32 and x.shape == (n, 1 + k + 2 + 2) and keep.all()
    assert peak < 1.5 * x.nbytes  # one (N, D) float32 array, not float64 parts, their concatenation and a cast
    want = np.zeros((n, 1 + k + 2 + 2))
    want[:, 0] = [float(v) for v in cells[:, 0]]
    want[np.arange(n), 1 + np.array([int(str(c)[1:]) for c in cells[:, 1]])] = 1
    gap = cells[:, 2] == "?"
    want[np.arange(n), 1 + k + np.where(gap, 0, [("x", "y").index(g) if g != "?" else 0 for g in cells[:, 2]])] = 1
    want[np.arange(n), 1 + k + 2 + gap] = 1
    assert np.array_equal(x, want.astype(np.float32))


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("10_1", "value '10_1' on line 3, column index 1 \\('v'\\), is not a number"),
        ("1e39", "value 1e\\+39 on line 3, column index 1 \\('v'\\), is not finite in float32"),
    ],
)
def test_a_numeric_cell_of_other_data_that_is_no_float32_number_is_refused_by_line_and_column(cell, said):
    schema = TableSchema([Column("c", "categorical", ["a"]), Column("v", "numeric")], trained=True)
    with pytest.raises(VaekitError, match=rf"t.csv: {said}"):
        schema.encode(np.array([["a", "1.5"], ["a", cell]]), [2, 3], "t.csv")


def test_float32_items_are_split_without_a_copy_of_them_all():
    x = np.random.default_rng(0).random((4000, 500), dtype=np.float32)
    raw = RawData(x, None, "t.csv")
    tracemalloc.start()
    ds = build_dataset("t", raw, val_fraction=0.1, test_fraction=0.1, seed=0, binarize="none", limit=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.6 * x.nbytes  # the splits, and no float32 copy of x before them
    assert torch.equal(ds.train.x, torch.from_numpy(x[ds.train.rows]))


def spy_generate(run, monkeypatch) -> list:
    """The (rows, labels, gradients on) of each call to ``run.model.generate``, recorded as it is called."""
    calls, generate = [], run.model.generate
    monkeypatch.setattr(
        run.model,
        "generate",
        lambda n, t, y=None: (calls.append((n, len(y), torch.is_grad_enabled())), generate(n, t, y))[1],
    )
    return calls


def test_table_rows_are_drawn_a_chunk_at_a_time_without_gradients_within_a_bound(labelled_run, tmp_path, monkeypatch):
    from vaekit import samplers
    from vaekit.samplers import table_draws

    run = vaekit.load_run(labelled_run[0])
    calls = spy_generate(run, monkeypatch)
    monkeypatch.setattr(table_draws, "DECODE_BATCH", 5)
    rows = run.sample_table(12)
    assert calls == [(5, 5, False), (5, 5, False), (2, 2, False)]
    assert [len(v) for v in rows.values()] == [12] * 3 and set(rows["label"]) <= {"a", "b", "c"}
    monkeypatch.setattr(samplers, "machine_memory", lambda: 4 * 2400)  # a quarter: 100 rows of 2 columns and labels
    assert len(run.sample_table(100)["rooms"]) == 100
    with pytest.raises(VaekitError, match=r"^n 101: 101 rows of 2 columns held at once take 2.42e-06 GB, over a"):
        run.sample_table(101)
    out = tmp_path / "s.csv"  # written chunk by chunk as drawn: only the labels (8 bytes a row) held at once
    assert (
        main(["sample", str(labelled_run[0]), "--n", "300", "--out", str(out)]) == 0 and len(read_csv_rows(out)) == 301
    )


def test_columns_piled_on_a_bound_of_their_range_are_named_in_one_line(labelled_run, monkeypatch, capsys):
    from vaekit.samplers import table_draws

    run = vaekit.load_run(labelled_run[0])
    monkeypatch.setattr(table_draws, "DECODE_BATCH", 10)
    run.sample_table(40, temperature=6.0)  # draws far out: many clipped, said once after the last of four chunks
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "values drawn beyond a column's training range were set to its bound: rooms " in err
    assert "price" in err and "data.numeric=modes" in err
    c = Column("n", "numeric", integer=True, decimals=0, min=0.0, max=10.0, gaps=True)
    clipped: dict = {}  # beyond a bound by more than rounding moves a value: -0.4 rounds to 0 as it is
    rows = TableSchema([c]).bounded({"n": np.array([-0.4, -0.6, 11.0, 5.0, np.nan])}, clipped)
    assert clipped == {"n": [2, 4]} and rows["n"][:4].tolist() == [0, 0, 10, 5]


@pytest.mark.parametrize(
    ("ids", "said"),
    [
        ([100001 + i for i in range(60)], "(100001..100060)"),
        ([5 + 7 * i for i in range(60)], "(5..418)"),  # a run with gaps
        ([100001 + i for i in range(50)], None),  # 50 rows: as few as a text identifier may have
        ([1000 * i for i in range(60)], None),  # spread far apart: amounts, not a run
        ([i + 0.5 for i in range(60)], None),  # not whole numbers
    ],
)
def test_a_whole_number_different_in_every_row_is_said_to_be_an_identifier(tmp_path, capsys, ids, said):
    (tmp_path / "t.csv").write_text("id,x\n" + "".join(f"{v},{i % 7}\n" for i, v in enumerate(ids)))
    assert load_dataset(str(tmp_path / "t.csv")).table.columns[0].kind == "numeric"  # modelled all the same
    err = capsys.readouterr().err
    line = f"column 'id' holds a different whole number in each of its {len(ids)} rows {said}: an identifier"
    assert (line in err and err.count("\n") == 1) if said else err == ""


def test_a_bad_target_or_out_is_refused_before_any_row_is_drawn(labelled_run, tmp_path, monkeypatch, capsys):
    from vaekit.evaluation.quality_run import quality_data
    from vaekit.evaluation.table_quality import table_run_quality

    run = vaekit.load_run(labelled_run[0])
    calls = spy_generate(run, monkeypatch)
    with pytest.raises(VaekitError, match=r"^TSTR target 'nope' is not a column \(rooms, price, label\)$"):
        table_run_quality(run, quality_data(run), write=False, target="nope")
    assert calls == []
    assert main(["sample", str(labelled_run[0]), "--n", "3", "--out", str(tmp_path / "s.tsv")]) != 0
    assert "s.tsv: expected a .png, .npy or (a table run's rows) .csv file name" in capsys.readouterr().err


def test_a_modes_run_reads_its_own_data_as_it_trained_on_it(tmp_path, capsys):
    rng = np.random.default_rng(0)  # numbers of many digits, two modes, and gaps: float32 rounds each of them
    a = np.r_[rng.normal(-50, 3, 40), rng.normal(80, 7, 40)]
    rows = "".join(f"{'' if i % 9 == 0 else f'{v:.9f}'},{'xy'[i % 2]}\n" for i, v in enumerate(a))
    (tmp_path / "t.csv").write_text("a,c\n" + rows)
    cfg = tiny_config(str(tmp_path / "t.csv"), tmp_path / "run", epochs=1)
    cfg.data.numeric, cfg.data.missing = "modes", "mean"
    vaekit.train(cfg, pictures=False)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), "--iw-samples", "2"]) == 0
    assert "changed since training" not in capsys.readouterr().err  # its codes as training made them
