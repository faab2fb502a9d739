"""Per-column scores of a table run (``evaluation.column_scores``, ``vaekit anomaly --columns``): each column's
term of -E log p(x|z), summing to neg_elbo - kl, a planted anomaly found in its column, categories and gap
indicators counted with their columns, non-table runs refused."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli.columns import column_csv, refuse_columns
from vaekit.core.tabular import normal_log_prob
from vaekit.data.tables import TableSchema
from vaekit.evaluation.column_scores import NOT_A_TABLE, column_scores, slot_owners
from vaekit.evaluation.outputs import write_scores
from vaekit.evaluation.scores import anomaly_scores, noise
from vaekit.runs import Run


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A one-epoch run (missing=mean) of a CSV of 200 rows: a, b numeric, c categorical, d numeric with gaps; and
    its rows as items (200, 8): a, b, d, c's three categories, d's gap indicator (filled, gap)."""
    folder, rng = tmp_path_factory.mktemp("columns"), np.random.default_rng(0)
    rows = [["a", "b", "c", "d"]]
    for i, a in enumerate(rng.normal(10, 2, 200)):
        d = "" if i % 9 == 0 else f"{rng.normal(0, 1):.3f}"
        rows.append([f"{a:.3f}", f"{2 * a + rng.normal(0, 1):.3f}", str(rng.choice(["x", "y", "z"])), d])
    with open(folder / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    run = vaekit.train(
        data=str(folder / "t.csv"), missing="mean", latent_dim=2, hidden=[16], epochs=1, out=str(folder / "run"),
        progress=False, pictures=False,
    )  # fmt: skip
    x, _ = run.table.encode(np.array(rows[1:]), list(range(2, 202)), "t.csv")
    return run, x


def test_the_columns_terms_sum_to_the_reconstruction_term_of_neg_elbo(table):
    run, x = table
    terms = column_scores(run, x, samples=4, seed=3)
    assert list(terms) == ["a", "b", "c", "d"] and all(v.shape == (200,) for v in terms.values())
    s = anomaly_scores(run.model, x, ["neg_elbo", "kl"], samples=4, seed=3)
    np.testing.assert_allclose(sum(terms.values()), s["neg_elbo"] - s["kl"], rtol=1e-5, atol=1e-5)
    again = column_scores(run.model, x, run.table, samples=4, seed=3, batch_size=7)  # any batch: the same draws
    assert all(np.allclose(again[k], v, rtol=1e-5) for k, v in terms.items())


def test_a_planted_anomaly_makes_its_column_the_worst(table):
    run, x = table
    x = x.copy()
    x[:5, 0] += 50 * run.table.columns[0].scale  # a 50 standard deviations off in five rows
    terms = column_scores(run, x)
    worst = np.stack(list(terms.values()), 1).argmax(1)
    assert (worst[:5] == 0).all() and (terms["a"][:5] > 100).all()


def test_categories_and_gap_indicators_count_with_their_columns(table):
    run, x = table
    assert slot_owners(run.table).tolist() == [0, 1, 3, 2, 2, 2, 3, 3]  # a, b, d; c's codes; d's gap indicator
    terms = column_scores(run, x[:20], samples=1, seed=5)
    xt = torch.from_numpy(x[:20])
    qz = run.model.encode(xt)
    px = run.model.decode(qz.mean + qz.stddev * noise(1, 2, 5, xt.device))  # the one draw of z, by hand
    num = -normal_log_prob(px.loc, px.scale, xt[:, :3])  # (20, 3): a, b, d
    c, gap = (-(g * code).sum(-1) for g, code in zip(px.groups(), (xt[:, 3:6], xt[:, 6:8])))
    expected = {"a": num[:, 0], "b": num[:, 1], "c": c, "d": num[:, 2] + gap}
    assert all(np.allclose(terms[k], v.detach().numpy(), rtol=1e-5, atol=1e-6) for k, v in expected.items())


def test_a_run_without_a_table_or_a_model_without_its_schema_is_refused(table, tmp_path):
    run, x = table
    with pytest.raises(vaekit.VaekitError, match=NOT_A_TABLE.split(",")[0]):
        column_scores(Run(None, run.config, run.model), x)  # a run of arrays: no table
    with pytest.raises(vaekit.VaekitError, match=r"need its table's schema: table=run.table"):
        column_scores(run.model, x)
    with pytest.raises(vaekit.VaekitError, match=r"items of shape \(8,\) do not fit this table's 2 slots"):
        column_scores(run.model, x, TableSchema(run.table.columns[:2]))  # another table's schema
    args = argparse.Namespace(run=str(tmp_path), columns=True)  # a folder without table.json
    with pytest.raises(vaekit.VaekitError, match=r"--columns splits a table run's scores by .* no table.json"):
        refuse_columns(args)


def test_the_command_s_columns_name_each_row_s_worst_column_and_the_top_items(table, tmp_path):
    run, x = table
    x = x.copy()
    x[:7, 1] += 1e4  # b far off in seven rows: the most anomalous
    args = argparse.Namespace(columns=True, samples=None, seed=0, batch_size=64, limit=50)
    scores = anomaly_scores(run.model, x[:50], ["neg_elbo"])
    extra, line = column_csv(args, run, torch.from_numpy(x), None, scores)
    assert list(extra) == ["col:a", "col:b", "col:c", "col:d", "worst_column"]
    assert line.startswith("worst column of the 10 items of highest neg_elbo: 'b' in ")  # 7 to 10 of them
    write_scores(tmp_path / "s.csv", {**scores, **extra})
    with open(tmp_path / "s.csv") as f:
        read = list(csv.DictReader(f))
    assert [r["worst_column"] for r in read[:7]] == ["b"] * 7 and float(read[0]["col:b"]) > 1e3


def test_vaekit_anomaly_columns_writes_them_after_the_scores(table, tmp_path, capsys):
    from vaekit.cli import main

    run, _ = table
    out = tmp_path / "cols.csv"
    assert main(["anomaly", str(run.path), "--score", "neg_elbo", "--columns", "--out", str(out)]) == 0
    head = out.read_text().splitlines()[0].split(",")
    assert head[1:] == ["neg_elbo", "col:a", "col:b", "col:c", "col:d", "worst_column"]
    assert "worst column of the 10 items of highest neg_elbo: '" in capsys.readouterr().out
