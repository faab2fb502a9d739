"""A category a run never saw, read as a gap of its column where the run models its gaps (``unknown="gap"``): by
a trained schema, ``vaekit anomaly`` and ``anomaly-eval --unknown gap`` and the detector (within
``unknown_categories``); refused as before by default, and where the column has no gap indicator."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.cli.verbs import VERBS
from vaekit.data import images
from vaekit.data.table_cells import UNKNOWN, unknown_categories
from vaekit.data.table_schema import Column, TableSchema
from vaekit.errors import VaekitError

from .conftest import tiny_config

HEADER = "age,work,plan,ok"
NEW = ["41,Alien,a,true", "41,,a,true", "41,Gov,a,TRUE", "41,Gov,a,maybe", "41,Gov,a,"]  # rows 2..6 of new.csv


def table() -> TableSchema:
    """A trained schema of data.missing=mean: 'work' and the boolean 'ok' with gap indicators, 'plan' without."""
    columns = [
        Column("age", "numeric", fill=40.0, gaps=True),
        Column("work", "categorical", ["Gov", "Private"], fill="Private", gaps=True),
        Column("plan", "categorical", ["a", "b"], fill="a"),
        Column("ok", "categorical", ["False", "True"], fill="True", boolean=True, gaps=True),
    ]
    return TableSchema(columns, "mean", trained=True)


def cells(*rows: str) -> np.ndarray:
    return np.array([r.split(",") for r in rows])  # (N, C) str


@pytest.fixture
def said(monkeypatch, caplog):
    monkeypatch.setattr(images, "_said", set())
    caplog.set_level(logging.INFO, logger="vaekit")
    return caplog


def test_a_new_category_is_refused_by_default_saying_unknown_gap_reads_it(said):
    with pytest.raises(VaekitError, match=r"category 'Alien' on line 2.*; unknown=gap reads it as a gap") as e:
        table().encode(cells(NEW[0]), [2], "new.csv")
    assert e.value.key == "unknown"


def test_within_unknown_gap_a_new_category_is_coded_as_a_gap_and_counted(said):
    with unknown_categories("gap"):
        x, keep = table().encode(cells(*NEW), [2, 3, 4, 5, 6], "new.csv")
    assert keep.all()
    assert np.array_equal(x[0], x[1])  # 'Alien' as the empty cell: the fill and the gap slot
    assert np.array_equal(x[2], table().encode(cells("41,Gov,a,true"), [2], "n")[0][0])  # TRUE is True, no gap
    assert np.array_equal(x[3], x[4])  # 'maybe' in the boolean column: a gap there
    notes = [r.getMessage() for r in said.records if "unknown=gap" in r.getMessage()]
    assert notes == [
        "new.csv: 2 cell(s) of categories the run was not trained on read as gaps (unknown=gap) in column(s) "
        "'work' (1), 'ok' (1): coded as the run codes a gap there"
    ]
    with pytest.raises(VaekitError, match="category 'Alien'"):  # refused again once the block is left
        table().encode(cells(NEW[0]), [2], "new.csv")


def test_unknown_gap_refuses_a_new_category_where_the_column_has_no_gap_indicator():
    with unknown_categories("gap"), pytest.raises(VaekitError, match=r"'plan'\), is not.*and this one has none$"):
        table().encode(cells("41,Gov,c,true"), [2], "new.csv")
    bad = r"^unknown must be one of refuse, gap, got 'ignore'$"
    with pytest.raises(VaekitError, match=bad), unknown_categories("ignore"):
        pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch run of data.missing=mean whose 'work' had gaps, and a file of its rows, one with 'Alien' (row
    3), and the same with that cell empty."""
    folder = tmp_path_factory.mktemp("unseen")
    rows = [f"{20 + i % 30},{'' if i % 7 == 0 else ('Gov', 'Private')[i % 2]},{'ab'[i % 3 > 0]}" for i in range(60)]
    (folder / "t.csv").write_text("age,work,plan\n" + "\n".join(rows) + "\n")
    new = rows[:3] + ["33,Alien,a"] + rows[4:10]
    (folder / "new.csv").write_text("age,work,plan\n" + "\n".join(new) + "\n")
    (folder / "gap.csv").write_text("age,work,plan\n" + "\n".join(new).replace("Alien", "") + "\n")
    cfg = tiny_config(str(folder / "t.csv"), folder / "run", epochs=1)
    cfg.model.hidden, cfg.model.latent_dim, cfg.data.missing = [8], 2, "mean"
    return vaekit.train(cfg, pictures=False), folder


def scores(run, data, tmp_path, *flags: str) -> np.ndarray:
    out = tmp_path / f"{data.stem}.csv"
    argv = ["anomaly", str(run.path), "--data", str(data), "--score", "neg_elbo", "--out", str(out), *flags]
    assert main(argv) == 0
    return np.loadtxt(out, delimiter=",", skiprows=1)[:, 1]


def test_the_anomaly_verb_scores_a_new_category_as_a_gap_with_unknown_gap(run, tmp_path, capsys):
    run, folder = run
    assert main(["anomaly", str(run.path), "--data", str(folder / "new.csv"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "category 'Alien' on line 5" in capsys.readouterr().err
    got = scores(run, folder / "new.csv", tmp_path, "--unknown", "gap")
    assert "1 cell(s) of categories the run was not trained on read as gaps" in capsys.readouterr().err
    np.testing.assert_array_equal(got, scores(run, folder / "gap.csv", tmp_path))
    argv = ["anomaly-eval", str(run.path), "--in", str(folder / "t.csv"), "--ood", str(folder / "new.csv")]
    assert main([*argv, "--score", "neg_elbo", "--unknown", "gap"]) == 0


def test_the_detector_scores_a_new_category_as_a_gap_within_unknown_categories(run):
    pd = pytest.importorskip("pandas")
    run, folder = run
    det = vaekit.VAEAnomalyDetector.from_run(run.path, samples=2).fit(pd.read_csv(folder / "t.csv"))
    new, gap = (pd.read_csv(folder / f"{name}.csv") for name in ("new", "gap"))
    with pytest.raises(ValueError, match=r"^X: category 'Alien' in row 3.*unknown=gap reads it as a gap"):
        det.score_samples(new)
    with unknown_categories("gap"):
        np.testing.assert_array_equal(det.score_samples(new), det.score_samples(gap))
    gapped = vaekit.VAEAnomalyDetector.from_run(run.path, samples=2, unknown="gap").fit(pd.read_csv(folder / "t.csv"))
    np.testing.assert_array_equal(gapped.score_samples(new), det.score_samples(gap))
    assert gapped.get_params()["unknown"] == "gap"
    with pytest.raises(ValueError, match=r"unknown='gap' takes effect on a wrapped table run \(run=...\) alone"):
        vaekit.VAEAnomalyDetector(unknown="gap", epochs=1).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="unknown"):
        vaekit.VAEAnomalyDetector.from_run(run.path, unknown="skip").fit(pd.read_csv(folder / "t.csv"))


def test_the_scoring_verbs_choices_are_the_library_s():
    for name in ("anomaly", "anomaly-eval"):
        options = next(o for names, o in VERBS[name].args if names == ("--unknown",))
        assert tuple(options["choices"]) == UNKNOWN and options["default"] == "refuse"
