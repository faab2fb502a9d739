"""Tables, round 4: a file with the run's columns in another order read by name, as a frame is; the detector
holding a wrapped table run's frame to its columns as the verbs do (extra columns refused, the label column left
out, another order taken by name); an image run's quality of other data in a file of its own; --unknown on encode
and reconstruct. Tiny tables and images; runs of one epoch."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.cli.verbs import VERBS
from vaekit.data import images
from vaekit.data.readers import read_csv
from vaekit.data.tables import TableOptions, TableSchema
from vaekit.errors import VaekitError

from .conftest import tiny_config

pd = pytest.importorskip("pandas")
HEADER = ["age", "work", "hours", "target"]


def rows(n: int = 40) -> list[list[str]]:
    """age (whole), work (3 categories, a gap every 7th row), hours (one decimal), target (the label column)."""
    work = ["" if i % 7 == 3 else ("Gov", "Private", "Self")[i % 3] for i in range(n)]
    return [[str(20 + i % 30), work[i], f"{35 + i % 9 / 2:.1f}", ("no", "yes")[i % 2]] for i in range(n)]


def write(path, header: list[str], cells: list[list[str]]):
    """``cells`` (in HEADER's order) written with the columns ``header`` names, in its order."""
    order = [HEADER.index(h) for h in header]
    path.write_text("\n".join(",".join(r[j] for j in order) for r in [HEADER, *cells]) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run of data.missing=mean on the table (label column 'target', not conditional), one of its numbers alone."""
    folder = tmp_path_factory.mktemp("r4")
    mixed = tiny_config(str(write(folder / "t.csv", HEADER, rows())), folder / "mixed", epochs=1)
    mixed.model.hidden, mixed.model.latent_dim, mixed.data.missing = [8], 2, "mean"
    plain = tiny_config(str(write(folder / "n.csv", ["age", "hours", "target"], rows())), folder / "plain", epochs=1)
    plain.model.hidden, plain.model.latent_dim = [8], 2
    return {"mixed": vaekit.train(mixed, pictures=False), "plain": vaekit.train(plain, pictures=False)}, folder


@pytest.fixture
def said(monkeypatch, caplog):
    monkeypatch.setattr(images, "_said", set())  # notes said once per process: said afresh here
    caplog.set_level(logging.INFO, logger="vaekit")
    return lambda part: [r.getMessage() for r in caplog.records if part in r.getMessage()]


def read_as_run(run, path):
    """``path``'s items as the run's verbs read other data: by its saved schema."""
    schema = TableSchema.load(run.path / files.TABLE)
    return read_csv(path, table=TableOptions(run.config.data.missing, schema=schema, label_note=False, verb=True))


@pytest.mark.parametrize("header", [["hours", "target", "age", "work"], ["work", "age", "hours"]])
def test_a_file_with_the_run_s_columns_in_another_order_is_read_by_name(runs, tmp_path, said, header):
    run, folder = runs[0]["mixed"], runs[1]
    own = read_as_run(run, folder / "t.csv")
    moved = read_as_run(run, write(tmp_path / "m.csv", header, rows()))
    assert np.array_equal(moved.x, own.x) and np.array_equal(moved.rows, own.rows)
    note = "the run's columns in another order: taken by name, in the run's order"
    assert said("another order") == [f"{tmp_path / 'm.csv'}: {note}"]
    bad = rows()
    bad[2][2] = "many"  # hours: the file's column index of it is named, not the run's
    with pytest.raises(VaekitError, match=rf"column index {header.index('hours')} \('hours'\)"):
        read_as_run(run, write(tmp_path / "b.csv", header, bad))
    with pytest.raises(VaekitError, match=r"the columns differ from the run's \(missing 'hours'\)"):
        read_as_run(run, write(tmp_path / "l.csv", [h for h in header if h != "hours"], rows()))


def frames(folder, name: str):
    """The run's table as a frame without its label column, and as given with it."""
    full = pd.read_csv(folder / ("t.csv" if name == "mixed" else "n.csv"))
    return full.drop(columns="target"), full


@pytest.mark.parametrize("name", ["mixed", "plain"])
def test_the_detector_holds_a_wrapped_table_run_s_frame_to_its_columns_as_the_verbs(runs, said, name):
    run, (x, full) = runs[0][name], frames(runs[1], name)
    det = vaekit.VAEAnomalyDetector.from_run(run.path, samples=2).fit(x)
    for extra in ("text", 1.5):  # the CLI and run.encode refuse such a column: so does the detector, naming it
        with pytest.raises(ValueError, match=r"^X: the columns differ from the run's \(extra 'notes'\)"):
            det.score_samples(x.assign(notes=extra))
    scores = det.score_samples(x)
    np.testing.assert_array_equal(det.score_samples(full), scores)  # the label column left out, said
    np.testing.assert_array_equal(det.score_samples(x[x.columns[::-1]]), scores)  # by name, said
    moved = vaekit.VAEAnomalyDetector.from_run(run.path, samples=2).fit(full[full.columns[::-1]])
    assert moved.offset_ == det.offset_ and list(moved.feature_names_in_) == list(x.columns)
    assert len(said("is the run's label column")) == 1 and len(said("another order")) == 1


def test_an_image_run_s_quality_of_other_data_goes_to_a_file_of_its_own(tmp_path, monkeypatch, capsys):
    flat = lambda features, data, **settings: (torch.nn.Flatten(), {"kind": "module", "class": "Flatten"})  # noqa: E731
    monkeypatch.setattr("vaekit.evaluation.quality_run.feature_net", flat)  # no domain network to train
    rng = np.random.default_rng(0)
    for name in ("own", "other"):
        np.savez(tmp_path / f"{name}.npz", x=rng.random((120, 4, 4), dtype=np.float32), y=np.arange(120) % 3)
    cfg = tiny_config(str(tmp_path / "own.npz"), tmp_path / "run", epochs=1)
    cfg.model.hidden, cfg.model.latent_dim = [8], 2
    folder = vaekit.train(cfg, pictures=False).path
    asked = ["quality", str(folder), "--n", "6"]
    assert main(asked) == 0
    mine = (folder / files.QUALITY).read_text()
    for call in ([*asked, "--data", str(tmp_path / "other.npz")], None):  # the CLI, then Python: the same file
        assert main(call) == 0 if call else vaekit.quality(folder, data=str(tmp_path / "other.npz"), n=6)
        written = folder / "quality-other.npz-test.json"
        assert (folder / files.QUALITY).read_text() == mine  # the run's own figures kept
        assert json.loads(written.read_text())["path"] == str(tmp_path / "other.npz")
    assert f"-> {written}" in capsys.readouterr().out


@pytest.mark.parametrize("verb", ["encode", "reconstruct"])
def test_encode_and_reconstruct_read_an_unseen_category_as_a_gap_with_unknown_gap(runs, tmp_path, capsys, verb):
    run, cells = runs[0]["mixed"], rows(10)
    cells[4][1] = "Army"
    new, gap = write(tmp_path / "new.csv", HEADER, cells), tmp_path / "gap.csv"
    gap.write_text(new.read_text().replace("Army", ""))
    out = [verb, str(run.path), "--data", str(new), "--split", "all", "--out", str(tmp_path / "new-out.csv")]
    assert main(out) == 2
    err = capsys.readouterr().err
    assert "category 'Army' on line 6" in err and err.rstrip().endswith("(--unknown)")
    assert main([*out, "--unknown", "gap"]) == 0
    assert "1 cell(s) of categories the run was not trained on read as gaps" in capsys.readouterr().err
    assert main([*out[:3], str(gap), *out[4:7], str(tmp_path / "gap-out.csv")]) == 0
    assert (tmp_path / "new-out.csv").read_text() == (tmp_path / "gap-out.csv").read_text()
    options = [dict(next(o for names, o in VERBS[v].args if names == ("--unknown",))) for v in (verb, "anomaly")]
    assert options[0] == options[1] and options[0]["default"] == "refuse"
