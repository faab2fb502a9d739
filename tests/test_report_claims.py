"""report.html's claims from eval.json: shown only with their types and known keys; and what the page shows of
where the run lies (its folder's name, never an absolute path)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.viz.report import eval_rows, saved_eval

from .conftest import tiny_config

HOSTILE = '"><script>alert(6)</script>'


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-epoch run of 60 random 9x11 images (no labels: no probe), with its report written (K = 5)."""
    tmp = tmp_path_factory.mktemp("claims")
    np.save(tmp / "tiny.npy", np.random.default_rng(0).random((60, 9, 11), dtype=np.float32))
    path = vaekit.train(tiny_config(str(tmp / "tiny.npy"), tmp / "run", epochs=1), pictures=False).path
    assert main(["report", str(path), "--iw-samples", "5"]) == 0
    return path


def _eval(**changes) -> dict:
    """An eval.json as ``evaluate`` writes it, with ``changes``."""
    au = {"total": 2, "per_level": [2], "threshold": 0.01}
    base = {"data": "tiny.npy", "split": "test", "n": 6, "k": 5, "seed": 0, "elbo": -7.0, "rec": -6.5, "kl": 0.5}
    base |= {"kl_per_level": [0.5], "kl_per_dim": [[0.2, 0.3]], "nll": 6.8, "bits_per_dim": 0.1, "active_units": au}
    return base | {"probe_accuracy": 0.5, "elbo_passes": 1, "seconds": 1.5, "vaekit_weights_sha256": "ab"} | changes


@pytest.mark.parametrize("probe", [None, 0, 1, 0.4333])
def test_saved_eval_keeps_a_probe_accuracy_that_is_null_or_a_fraction(tmp_path, probe):
    (tmp_path / "eval.json").write_text(json.dumps(_eval(probe_accuracy=probe)))
    assert saved_eval(tmp_path / "eval.json")["probe_accuracy"] == probe


@pytest.mark.parametrize(
    "changes",
    [
        {"probe_accuracy": HOSTILE},
        {"probe_accuracy": "0.5"},
        {"probe_accuracy": 1.5},
        {"probe_accuracy": -0.1},
        {"probe_accuracy": True},
        {"probe_accuracy": [0.5]},
        {"active_units": "<b>2</b>"},
        {"active_units": {"total": "<b>2</b>", "per_level": [2], "threshold": 0.01}},
        {"active_units": {"total": 2, "per_level": ["2"], "threshold": 0.01}},
        {"active_units": {"total": 2, "per_level": [2], "threshold": "0.01"}},
        {"seconds": HOSTILE},
        {"elbo_passes": 1.5},
    ],
)
def test_saved_eval_computes_again_where_a_shown_figure_has_another_type(tmp_path, changes):
    (tmp_path / "eval.json").write_text(json.dumps(_eval(**changes)))
    assert saved_eval(tmp_path / "eval.json") == {}


def test_eval_rows_show_known_keys_only():
    au = {"total": None, "per_level": None, "threshold": 0.01, "<svg onload=alert(1)>": "x"}
    rows = eval_rows(_eval(active_units=au, **{"<script>alert('key')</script>": "<img src=x onerror=alert(2)>"}))
    assert "alert" not in json.dumps(rows)
    assert rows[0] == {"metric": "data", "value": "tiny.npy"} and len(rows) == 16


def test_every_figure_evaluate_writes_is_a_known_row(run):
    result = json.loads((run / "eval.json").read_text())
    not_figures = {"kl_per_dim", "grey", "data_stamp"}  # a picture, the caption's caveat, the data's fingerprint
    assert {r["metric"] for r in eval_rows(result)} == set(result) - not_figures
    assert saved_eval(run / "eval.json") == result  # as evaluate writes it: reused


def test_report_computes_again_an_eval_json_of_a_hostile_probe_accuracy(run):
    path = run / "eval.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "probe_accuracy": HOSTILE}))
    assert main(["report", str(run), "--iw-samples", "5"]) == 0
    assert "alert" not in (run / "report.html").read_text()
    assert json.loads(path.read_text())["probe_accuracy"] is None  # written again: no labels, no probe


def test_report_reuses_an_eval_json_with_extra_keys_but_shows_only_known_ones(run):
    path = run / "eval.json"
    saved = json.loads(path.read_text())
    saved["active_units"]["<svg onload=alert(1)>"] = "</table><script>alert(5)</script>"
    saved["<script>alert('key')</script>"] = "<img src=x onerror=alert('val')>"
    path.write_text(json.dumps(saved))
    assert main(["report", str(run), "--iw-samples", "5"]) == 0
    assert json.loads(path.read_text()) == saved  # its figures have their types: reused, not computed again
    assert "alert" not in (run / "report.html").read_text()


def test_report_names_the_run_folder_without_its_absolute_path(run):
    page = (run / "report.html").read_text()
    for where in {str(run), str(run.resolve())}:  # the data spec is shown as given (here an absolute path)
        assert where not in page, where
    assert "<p>run folder run</p>" in page and '"out": "run"' in html.unescape(page)
    assert re.search(r"<h2>Training metrics</h2>\s*<div class='wide'><table>", page)  # scrolls, not cut off
