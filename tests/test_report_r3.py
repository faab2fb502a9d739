"""The report's evaluation files follow the data they score; its pictures, quality section and tables say what
they show."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.evaluation.quality import quality_benchmark
from vaekit.files import DIGEST
from vaekit.viz import report
from vaekit.viz.report_pictures import eval_caption, which
from vaekit.viz.report_tables import drawn_line, metrics_rows, quality_html

from .conftest import tiny_config


def _save(path: Path, seed: int, n: int = 60) -> Path:
    """A .npz of ``n`` random 9x11 images, labelled 0..5 in blocks (sorted by class)."""
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.random((n, 9, 11), dtype=np.float32), y=np.repeat(np.arange(6), n // 6))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-epoch run of 60 labelled random 9x11 images."""
    tmp = tmp_path_factory.mktemp("r3")
    return vaekit.train(tiny_config(str(_save(tmp / "own.npz", 0)), tmp / "run", epochs=1), pictures=False).path


def _report(run: Path, *flags: str) -> None:
    assert main(["report", str(run), "--iw-samples", "5", *flags]) == 0


def test_a_data_file_rewritten_under_its_name_is_evaluated_again(run, tmp_path):
    user = _save(tmp_path / "user3.npz", 1)
    _report(run, "--data", str(user))
    first = json.loads((run / "eval-user3.npz-all.json").read_text())
    assert first["data_stamp"][0] == user.stat().st_size
    _save(user, 2)  # other items, as many
    _report(run, "--data", str(user))
    again = json.loads((run / "eval-user3.npz-all.json").read_text())
    assert again["n"] == first["n"] and again["elbo"] != first["elbo"]
    del again["data_stamp"]  # a file from before the stamp: taken as of this data (reused), not said changed
    (run / "eval-user3.npz-all.json").write_text(json.dumps({**again, "elbo": 123.0}))
    _report(run, "--data", str(user))
    assert json.loads((run / "eval-user3.npz-all.json").read_text())["elbo"] == 123.0


def test_report_says_its_own_data_changed_and_what_an_eval_json_it_replaces_held(run, capsys):
    assert main(["evaluate", str(run), "--split", "val", "--iw-samples", "7", "--seed", "3"]) == 0
    capsys.readouterr()
    _report(run)
    err = capsys.readouterr().err
    assert "replacing its figures of these weights (split val, K = 7, n = 6, seed 3)" in err
    assert "changed since training" not in err
    own = Path(json.loads((run / "config.json").read_text())["data"]["spec"])
    keep = own.read_bytes()
    try:
        _save(own, 0, 72)
        _report(run)
        err = capsys.readouterr().err
        assert "its data changed since training" in err and "of the data as it was before it changed" in err
    finally:
        own.write_bytes(keep)


def test_the_pictures_of_a_data_file_are_a_seeded_subset_of_every_item(run, tmp_path, monkeypatch):
    seen = []
    real = report.pictures
    monkeypatch.setattr(report, "pictures", lambda r, d, s, *a, **k: seen.append(s) or real(r, d, s, *a, **k))
    _report(run, "--data", str(_save(tmp_path / "sorted.npz", 3)), "--limit", "20", "--out", str(tmp_path / "r.html"))
    assert len(seen[0]) == 20 and len(seen[0].y.unique()) == 6  # not classes 0 and 1 alone (the first 20)
    assert "The pictures draw on 20 of the 60 items, picked at random (seed 0)" in (tmp_path / "r.html").read_text()


def _quality(**changes) -> dict:
    figures = {"fid": 1.0, "kid": 0.0, "kid_std": 0.01, "precision": 0.9222, "recall": 1.0}
    q = {"data": "own.npz", "split": "test", "n": 20, "seed": 0, "features": {"kind": "domain"}}
    return q | {"data_vs_data": figures, "samples": {"prior": figures}} | changes


def test_the_quality_section_names_its_draws_and_caveat_and_says_when_it_is_of_earlier_weights(run, capsys):
    loaded, path = vaekit.load_run(run), run / "quality.json"
    net = torch.nn.Flatten()  # 99 features of 20 items per set: rank-deficient covariances
    assert "FID is unreliable" in quality_benchmark(torch.rand(40, 9, 11), torch.rand(40, 9, 11), net)["fid_caveat"]
    try:
        caveat = "20 items per set, 99 features: the covariances are rank-deficient, FID is unreliable"
        path.write_text(json.dumps(_quality(temperature=0.7, fid_caveat=caveat) | {DIGEST: loaded.digest}))
        page = " ".join(quality_html(loaded))
        assert "drawn at temperature 0.70" in page and caveat in page
        assert "<td>1.00</td><td>0.0000</td><td>0.0100</td><td>0.9222</td><td>1.0000</td>" in page  # fid: 2 places
        path.write_text(json.dumps(_quality() | {DIGEST: "ab"}))
        capsys.readouterr()
        page = " ".join(quality_html(loaded))
        assert "quality.json: of earlier weights than these, left out: vaekit quality" in page
        assert "of earlier weights than these" in capsys.readouterr().err
    finally:
        path.unlink()
    sampled = {"samplers": {"gmm": {"settings": {"components": 3}, DIGEST: "ab"}}}
    assert "sampler gmm's settings: components 3" in drawn_line(_quality(**sampled))


def test_captions_say_what_holds_for_these_items_and_units(run):
    loaded = vaekit.load_run(run)
    assert main(["evaluate", str(run), "--iw-samples", "2"]) == 0
    result = json.loads((run / "eval.json").read_text())  # random floats in [0, 1], binarised as in training
    assert result["grey"] is False and "cross-entropy" not in eval_caption(loaded, result)
    assert "cross-entropy" in eval_caption(loaded, result | {"grey": True})  # a Bernoulli run's grey items
    m = SimpleNamespace(family="vae", likelihood="gaussian", input_shape=[4])
    table = SimpleNamespace(config=SimpleNamespace(model=m), model=SimpleNamespace(needs_labels=False))
    assert "bits_per_dim is a density's nll per column" in eval_caption(table, {"kl_per_dim": [[0.1]]})
    assert which([2, 0], torch.tensor([0.5, 0.0, 0.02])) == "the most active dims [2, 0]"
    assert "none varies over the data by more than 0.01" in which([0, 1], torch.zeros(3))


def test_training_metrics_are_numbers_to_fixed_places():
    row = {"epoch": "3", "train_loss": "44.0827295", "beta": "1.0", "lr": "0.001", "skipped_steps": "0", "x": "nan"}
    assert metrics_rows([row]) == [
        {"epoch": "3", "train_loss": "44.08", "beta": "1.0000", "lr": "0.001", "skipped_steps": "0", "x": "nan"}
    ]
