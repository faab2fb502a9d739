"""The command line, round 4: --quiet on every verb, examples on the help pages, traverse --label and its named
rows and columns."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_config, train_run
from vaekit.cli import VERBS, build_parser, main
from vaekit.logs import LOGGER

FIRST = ("train", "sample", "evaluate", "reconstruct", "encode", "anomaly", "anomaly-eval", "report", "export")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """One-epoch runs on digits: unconditional (d) and conditional (c)."""
    root = tmp_path_factory.mktemp("r4")
    cvae = tiny_config("digits", root / "c", epochs=1)
    cvae.model.family = "cvae"
    return {"d": str(train_run(tiny_config("digits", root / "d", epochs=1))), "c": str(train_run(cvae))}


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_every_verb_takes_quiet():
    pages = build_parser().verb_parsers
    assert all(any(a.dest == "quiet" for a in pages[v]._actions) for v in VERBS)
    said = {v: next(a.help for a in pages[v]._actions if a.dest == "quiet") for v in ("train", "report")}
    assert "no line per epoch" in said["train"] and "notes, warnings and errors print" in said["train"]
    assert said["report"].startswith("no notes") and "warnings and errors print" in said["report"]


def test_quiet_silences_the_notes_not_the_errors(runs, capsys, monkeypatch):
    report = ["report", runs["d"], "--iw-samples", "2", "--limit", "20"]
    assert cli(capsys, *report)[0] == 0
    code, _, err = cli(capsys, *report)  # the second reuses eval.json, and says so
    assert code == 0 and "not recomputed" in err
    code, out, err = cli(capsys, *report, "--quiet")
    assert code == 0 and err == "" and "report written" in out and LOGGER.level == logging.INFO  # as it was
    code, _, err = cli(capsys, "report", runs["d"], "--iw-samples", "0", "--quiet")
    assert code == 2 and err.startswith("vaekit: error:")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal's line: not with --quiet
    evaluate = ["evaluate", runs["d"], "--iw-samples", "2", "--limit", "5"]
    assert "evaluating 5 items" in cli(capsys, *evaluate)[2] and cli(capsys, *evaluate, "--quiet")[2] == ""
    from vaekit.cli.verbs import quieted
    from vaekit.logs import note, warning

    with quieted(True):  # a warning is still said
        note("a note")
        warning("a warning")
    assert capsys.readouterr().err == "vaekit: warning: a warning\n"


def test_help_pages_end_with_examples_that_parse():
    parser = build_parser()
    assert "docs/index.md" in parser.format_help().splitlines()[-1]
    for name in FIRST:
        page = parser.verb_parsers[name].format_help()
        lines = page.split("examples:\n", 1)[1].splitlines()
        assert 2 <= len(lines) <= 3, name
        for line in lines:
            argv = shlex.split(line, comments=True)
            assert argv[:2] == ["vaekit", name] and parser.parse_args(argv[1:]).command == name


def test_traverse_label_picks_the_class_decoded(runs, capsys, tmp_path):
    from vaekit.runs import Run
    from vaekit.viz.figures import traversals

    run, x, y = Run.load(runs["c"]), torch.rand(4, 1, 8, 8), torch.tensor([1, 2, 3, 4])
    first = traversals(run, x, y, [0], steps=3)[0]
    assert torch.equal(first, traversals(run, x, y, [0], steps=3, label="1")[0])  # the first item's, by default
    assert not torch.equal(first, traversals(run, x, y, [0], steps=3, label=5)[0])
    at_item = traversals(run, x, y, [0], steps=3, item=2)[0]  # item 2 encoded with its label, decoded as 7
    assert not torch.equal(at_item, traversals(run, x, y, [0], steps=3, item=2, label=7)[0])
    code, out, _ = cli(capsys, "traverse", runs["c"], "--label", "3", "--n-dims", "2", "--out", tmp_path / "t.png")
    assert code == 0 and "decoded as class 3 written" in out
    code, _, err = cli(capsys, "traverse", runs["d"], "--label", "3", "--out", tmp_path / "u.png")
    assert code == 2 and "not conditional" in err


def test_traversal_rows_and_columns_are_named(monkeypatch):
    from vaekit.viz import figures

    seen = {}

    def named(grid, dims, values):
        fig = real(grid, dims, values)
        seen["rows"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        seen["columns"] = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        return fig

    real = figures.named_grid
    monkeypatch.setattr(figures, "named_grid", named)
    figures.save_traversal(torch.rand(2, 3, 1, 6, 6), [4, 1], torch.linspace(-2, 2, 3))
    assert seen == {"rows": ["z[4]", "z[1]"], "columns": ["-2", "0", "2"]}


def test_report_takes_every_item_of_a_file_not_the_run_s_own(runs, capsys, tmp_path):
    import json

    import numpy as np

    from vaekit.data import load_dataset

    np.save(tmp_path / "f.npy", load_dataset("digits").test.x[:30].numpy())  # 30 items: its seeded test split has 3
    report = ["report", runs["d"], "--data", tmp_path / "f.npy", "--iw-samples", "2", "--out", tmp_path / "r.html"]
    assert cli(capsys, *report)[0] == 0
    saved = json.loads((Path(runs["d"]) / "eval-f.npy-all.json").read_text())  # as vaekit evaluate writes it
    assert (saved["split"], saved["n"]) == ("all", 30) and "all split" in (tmp_path / "r.html").read_text()
    assert cli(capsys, *report, "--split", "test")[0] == 0 and "test split" in (tmp_path / "r.html").read_text()
