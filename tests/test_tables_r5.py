"""Tables, round 5 (reading): months read as dates, YYYYMMDD numbers noted, dates in other formats told how to be
written; a constant column scored relative to its value; 1/0 in a boolean column at verb time; a date note's origin
under mixed offsets; a frame's gaps and dates named. Tiny CSVs in tmp_path, no training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.data import load_dataset
from vaekit.data.table_cells import unknown_categories
from vaekit.data.tables import TableOptions, write_csv
from vaekit.data.user import as_items
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.models.standardized import Standardized

RNG = np.random.default_rng(0)


def table(tmp_path, name: str, header: str, cells: list[str]):
    """A CSV of a numeric column x beside the one column ``header`` of ``cells``."""
    path = tmp_path / name
    path.write_text(f"x,{header}\n" + "".join(f"{i % 7 / 10},{v}\n" for i, v in enumerate(cells)))
    return str(path)


def test_months_are_read_as_dates_and_given_back_as_months_and_seasons_stay_categories(tmp_path):
    months = [f"{2019 + i % 3}-{1 + i % 12:02d}" for i in range(60)]
    ds = load_dataset(table(tmp_path, "m.csv", "m", months))
    c = ds.table.columns[1]
    assert (c.kind, c.time) == ("numeric", "%Y-%m")
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    rows = ds.table.bounded(ds.table.decode(x - torch.tensor([0.0, 10.0])))  # 10 days before: its nearest first
    write_csv(rows, tmp_path / "s.csv", schema=ds.table)
    written = sorted({line.split(",")[1] for line in (tmp_path / "s.csv").read_text().split()[1:]})
    assert written == sorted(set(months))
    seasons = [f"{2009 + i % 3}-{10 + i % 3}" for i in range(60)]  # 2009-10, 2010-11, 2011-12
    assert load_dataset(table(tmp_path, "s.csv", "s", seasons)).table.columns[1].kind == "categorical"


def test_whole_numbers_that_are_all_yyyymmdd_dates_get_one_note_and_stay_numbers(tmp_path, capsys):
    days = np.datetime64("2021-01-01") + np.arange(60) * 3
    compact = [str(d).replace("-", "") for d in days]
    assert load_dataset(table(tmp_path, "d.csv", "d", compact)).table.columns[1].kind == "numeric"
    err = capsys.readouterr().err
    assert err.count("YYYYMMDD") == 1 and "holds whole numbers that are all YYYYMMDD dates (20210627)" in err
    load_dataset(table(tmp_path, "i.csv", "i", [str(20210101 + 37 * i) for i in range(60)]))  # 20210138: an id
    assert "YYYYMMDD" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cells", "said"),
    [
        ([f"{1 + i % 50 // 28:02d}/{1 + i % 50 % 28:02d}/2021" for i in range(80)], "format='%m/%d/%Y'"),
        ([f"{i % 50 // 24:02d}:{i % 50 % 24:02d}" for i in range(80)], "minutes since midnight"),
    ],
)
def test_too_many_texts_that_look_like_dates_are_told_the_formats_read(tmp_path, cells, said):
    """Repeated values (not one in each row): refused as too many categories, with the formats read and how."""
    with pytest.raises(
        VaekitError,
        match=r"looks like dates or times \(\d.*2021-07-06 13:45.*months, 2021-07.*" + said + ".* 50 different texts",
    ):
        load_dataset(table(tmp_path, "t.csv", "t", cells))


@pytest.fixture
def constant():
    """A Standardized model on columns x (varying), rate (0.5) and big (2,000,000), fitted on 20 rows."""
    x = np.c_[RNG.normal(size=20), np.full(20, 0.5), np.full(20, 2e6)].astype(np.float32)
    inner = build_model(ModelConfig(input_shape=[3], latent_dim=2, hidden=[8], likelihood="gaussian"))
    return Standardized.fitted(inner, x).eval()


def test_a_constant_column_is_scored_relative_to_its_value_and_old_runs_as_they_were(constant):
    z = torch.zeros(1, 2)
    with torch.no_grad():
        px = constant.decode(z)
        at = px.log_prob(torch.tensor([[0.0, 0.5, 2e6]]))
        rate = at - px.log_prob(torch.tensor([[0.0, 0.9, 2e6]]))
        big = at - px.log_prob(torch.tensor([[0.0, 0.5, 2000100.0]]))
    assert rate.item() == pytest.approx(0.5 * (0.4 / 0.01) ** 2, rel=1e-3)  # scale 0.01 * max(0.5, 1)
    assert 0 <= big.item() < 1e-3  # +0.005% of 2e6 at scale 2e4: nothing to speak of (was 5,000 nats)
    old = Standardized(constant.model, constant.loc, constant.scale.abs())  # +0.0: a run written before
    with torch.no_grad():
        assert old.decode(z).base_dist.scale[0, 1:].tolist() == [1.0, 1.0]


def test_a_boolean_column_takes_1_and_0_at_verb_time_as_training_reads_true_and_false(tmp_path):
    train = table(tmp_path, "t.csv", "b", ["true", "false", ""] * 20)
    schema = load_dataset(train, table=TableOptions(missing="mean")).table  # b: a gap indicator, so unknown=gap acts
    schema.trained = True
    want = schema.encode(np.array([["0.1", "True"], ["0.2", "false"], ["0.3", "TRUE"]]), [2, 3, 4], "new.csv")[0]
    for how in ("refuse", "gap"):
        with unknown_categories(how):
            got = schema.encode(np.array([["0.1", "1"], ["0.2", "0"], ["0.3", "1.0"]]), [2, 3, 4], "new.csv")[0]
        np.testing.assert_array_equal(got, want)


def test_the_date_note_gives_the_origin_of_times_in_mixed_offsets(tmp_path, capsys):
    cells = ["2023-01-03T00:30:00+01:00", "2023-06-01T12:00:00+02:00"] * 10  # the first: 2023-01-02T23:30Z
    c = load_dataset(table(tmp_path, "t.csv", "t", cells)).table.columns[1]
    assert c.origin == 19359.0 and "modelled as days since 2023-01-02," in capsys.readouterr().err


def test_a_frame_s_gaps_and_dates_are_named_by_column_with_how_to_pass_them():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": RNG.normal(size=6), "income": RNG.normal(size=6)})
    gappy = [
        frame.assign(income=frame.income.where(frame.index != 3)),
        frame.assign(income=pd.array([1, 2, 3, None, 5, 6], dtype="Int64")),
    ]
    for f in gappy:
        with pytest.raises(
            VaekitError, match=r"1 gap\(s\) \(NaN or NA\), the first in row 3, column 'income': .*data\.missing"
        ):
            as_items(f, "data")
    with pytest.raises(VaekitError, match=r"column 'when' holds dates \(datetime64\).*df\.to_csv"):
        as_items(frame.assign(when=pd.Timestamp("2022-01-01") + pd.to_timedelta(range(6), unit="D")), "data")


@pytest.mark.parametrize(("name", "reader"), [("t.parquet", "read_parquet"), ("t.xlsx", "read_excel")])
def test_a_table_in_another_format_is_refused_with_how_to_write_it_as_csv(tmp_path, name, reader):
    (tmp_path / name).write_bytes(b"PAR1")
    with pytest.raises(VaekitError, match=rf"\.tsv\.gz, IDX.*pandas\.{reader}\(path\)\.to_csv"):
        load_dataset(str(tmp_path / name))


def test_a_first_row_numbering_the_columns_is_a_header_as_pandas_writes_it(tmp_path):
    x = np.arange(40.0).reshape(10, 4) / 7
    (tmp_path / "t.csv").write_text("0,1,2,3\n" + "".join(",".join(map(str, r)) + "\n" for r in x))
    data = load_dataset(str(tmp_path / "t.csv"), val_fraction=0.2, test_fraction=0.2)
    assert sum(len(s.x) for s in (data.train, data.val, data.test)) == 10
