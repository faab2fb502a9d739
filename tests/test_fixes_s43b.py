"""Lines that name the right thing: --unknown refused where it cannot take effect (every verb that has it), a file
named as a run (disentangle, train --resume), a damaged table.json, metrics.csv or model.json named alone."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.cli.reading import refuse_unknown
from vaekit.errors import VaekitError
from vaekit.viz.curves import read_metrics

from .conftest import tiny_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-epoch table run (a categorical column with gaps, data.missing=mean), a run of Python-built networks
    on arrays (its model.json), and a plain file."""
    folder = tmp_path_factory.mktemp("s43b")
    rows = [f"{20 + i % 30},{'' if i % 7 == 0 else ('Gov', 'Private')[i % 2]}" for i in range(40)]
    (folder / "t.csv").write_text("age,work\n" + "\n".join(rows) + "\n")
    cfg = tiny_config(str(folder / "t.csv"), folder / "table", epochs=1)
    cfg.model.hidden, cfg.model.latent_dim, cfg.data.missing = [8], 2, "mean"
    table = vaekit.train(cfg, pictures=False).path
    x = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)
    model = vaekit.VAE(torch.nn.Linear(6, 4), torch.nn.Linear(2, 6), latent_dim=2)
    arrays = vaekit.fit(model, x, epochs=1, progress=False, out=folder / "arrays").path
    (afile := folder / "afile.txt").write_text("hi\n")
    return {"table": table, "arrays": arrays, "file": afile}


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize(
    "verb",
    [
        ["evaluate"],
        ["encode", "--out", "x.npy"],
        ["reconstruct", "--out", "r.npy"],
        ["anomaly", "--out", "s.csv"],
        ["anomaly-eval"],
        ["quality"],
    ],
)
def test_unknown_gap_is_refused_by_every_verb_for_a_run_not_of_a_table(runs, capsys, tmp_path, monkeypatch, verb):
    monkeypatch.chdir(tmp_path)
    assert main([verb[0], str(runs["arrays"]), *verb[1:], "--unknown", "gap"]) == 2
    assert one_line(capsys).endswith(f"{runs['arrays']} was not trained on a table (it has no table.json)")
    assert not list(tmp_path.iterdir())  # refused before anything was read or written


def test_unknown_gap_needs_a_categorical_column_and_is_refused_for_a_detector(runs, tmp_path):
    refuse_unknown(argparse.Namespace(run=str(runs["table"]), unknown="gap"))  # takes effect: no line
    refuse_unknown(argparse.Namespace(run=str(runs["arrays"]), unknown="refuse"))  # the default: never refused
    numbers = shutil.copytree(runs["table"], tmp_path / "numbers")
    schema = json.loads((numbers / "table.json").read_text())
    schema["columns"] = [c for c in schema["columns"] if c["kind"] != "categorical"]
    (numbers / "table.json").write_text(json.dumps(schema))
    with pytest.raises(VaekitError, match=r"numbers's table has no categorical column$"):
        refuse_unknown(argparse.Namespace(run=str(numbers), unknown="gap"))
    (detector := tmp_path / "det").mkdir()
    (detector / "scales.json").write_text("{}")
    with pytest.raises(VaekitError, match=r"^--unknown gap: .*det holds a multi-scale detector"):
        refuse_unknown(argparse.Namespace(run=str(detector), unknown="gap"))


def test_a_file_named_as_the_run_is_said_to_be_one(runs, capsys):
    for argv in (["disentangle", str(runs["file"])], ["train", "--resume", str(runs["file"])]):
        assert main(argv) == 2
        assert one_line(capsys) == f"vaekit: error: {runs['file']}: a file, not a run folder"


def test_a_damaged_table_json_is_named_alone(runs, tmp_path):
    run = shutil.copytree(runs["table"], tmp_path / "tj")
    (run / "table.json").write_text('{"missing": ')
    with pytest.raises(VaekitError, match=rf"^{run / 'table.json'}: not valid JSON") as e:
        vaekit.load_run(run)
    assert "config.json" not in str(e.value)


def test_a_metrics_csv_cut_short_or_edited_is_named_by_its_line(runs, tmp_path):
    text = (runs["arrays"] / "metrics.csv").read_text()
    header = text.splitlines()[0].split(",")
    (path := tmp_path / "metrics.csv").write_text(text[: len(text.splitlines()[0]) + 20])  # a row cut short
    with pytest.raises(VaekitError, match=rf"\(line 2 has \d+ fields, the header {len(header)}: a row cut short\)$"):
        read_metrics(path)
    path.write_text("epoch,train_loss\n1,2\n2,abc\n")
    with pytest.raises(VaekitError, match=r"\(line 3, column 'train_loss': 'abc' is not a number\)$"):
        read_metrics(path)


def test_a_model_json_missing_or_not_an_object_is_said_so(runs, tmp_path):
    run = shutil.copytree(runs["arrays"], tmp_path / "mj")
    (run / "model.json").write_text("[]")
    with pytest.raises(VaekitError, match=rf"^{run / 'model.json'}: malformed \(not an object of"):
        vaekit.load_run(run)
    (run / "model.json").unlink()
    with pytest.raises(VaekitError, match=rf"^{run / 'model.json'}: missing$"):
        vaekit.load_run(run)
