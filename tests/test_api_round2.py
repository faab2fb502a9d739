"""Round two of the Python API's edges: a trained run's model fitted again, a Series, short reprs, torch.device,
out's type, interpolate's item count, a deleted run folder, and the security page on pickles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models.standardized import Standardized

QUIET = {"pictures": False, "progress": False, "epochs": 1}
ROOT = Path(__file__).resolve().parents[1]


def table(n: int = 60, d: int = 4) -> np.ndarray:
    """(n, d) float32 columns far from unit scale (around 100, spread 50): standardised under a Gaussian."""
    return (np.random.default_rng(0).normal(size=(n, d)) * 50 + 100).astype(np.float32)


def gaussian_vae(d: int = 4) -> vaekit.VAE:
    encoder, decoder = vaekit.mlp_nets(d, 2, hidden=8)
    return vaekit.VAE(encoder, decoder, latent_dim=2, likelihood="gaussian")


def test_refit_of_a_standardized_model_is_not_wrapped_twice():
    x = table()
    first = vaekit.fit(gaussian_vae(), x, **QUIET)
    assert isinstance(first.model, Standardized)
    loc, scale = first.model.loc.clone(), first.model.scale.clone()
    again = vaekit.fit(first.model, x, **QUIET)
    assert isinstance(again.model, Standardized) and not isinstance(again.model.model, Standardized)
    assert torch.equal(again.model.loc, loc) and torch.equal(again.model.scale, scale)
    assert again.config.model.family == first.config.model.family == "vae"
    mean = float(again.reconstruct(x[:4]).mean())  # in the data's units (about 100), not standardised twice
    assert 50 < mean < 150


@pytest.mark.parametrize("series", [pd.Series(np.arange(20.0)), pd.DataFrame({"a": np.arange(20.0)})["a"]])
def test_a_series_is_refused_as_one_column(series):
    with pytest.raises(VaekitError, match=r"^data: a Series is one column; pass series.to_frame\(\)"):
        vaekit.fit(gaussian_vae(1), series, **QUIET)


def test_dataset_repr_of_a_wide_table_is_short(tmp_path):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 200)), columns=[f"c{i}" for i in range(200)])
    frame.to_csv(tmp_path / "wide.csv", index=False)
    data = vaekit.load_dataset(str(tmp_path / "wide.csv"))
    text, schema = repr(data), repr(data.table)
    assert len(text) < 400 and "\n" not in text
    assert "200 numeric" in text and "train=Split(x=" in text
    assert schema == "TableSchema(200 columns: 200 numeric, 0 categorical, missing='refuse', coding='standard')"


def test_torch_device_is_taken_as_its_name():
    run = vaekit.fit(gaussian_vae(), table(), device=torch.device("cpu"), **QUIET)
    assert run.config.train.device == "cpu"
    detector = vaekit.VAEAnomalyDetector(device=torch.device("cpu"), epochs=1, hidden=(8,), latent_dim=2)
    assert detector.fit(table()).score_samples(table(3)).shape == (3,)


def test_out_of_another_type_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaekitError, match=r"^out must be a folder path \(str or os.PathLike\) or None, got int$"):
        vaekit.fit(gaussian_vae(), table(), out=3, **QUIET)
    assert not (tmp_path / "3").exists()


def test_interpolate_of_one_item_names_the_shapes():
    run = vaekit.fit(gaussian_vae(6), table(d=6), **QUIET)
    with pytest.raises(VaekitError, match=r"^x must be two items \(2, \*shape\) = \(2, 6\), got shape \(6,\)$"):
        vaekit.interpolate(run, torch.zeros(6))
    assert vaekit.interpolate(run, torch.zeros(2, 6), steps=3)["lerp"].shape == (3, 6)


def test_report_of_a_deleted_run_folder_says_it_is_gone(tmp_path):
    run = vaekit.fit(gaussian_vae(), table(), out=tmp_path / "run", **QUIET)
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(VaekitError, match="the run folder no longer exists"):
        vaekit.write_report(run, out=tmp_path / "report.html")
    with pytest.raises(VaekitError, match="the run folder no longer exists"):
        run.writing()  # what evaluate and quality hold while they write beside the run
    assert not (tmp_path / "run").exists()  # not made again (empty, but for a lock) by the attempts


def test_security_page_names_the_detector_pickle_and_its_pickle_free_path():
    page = " ".join((ROOT / "docs" / "guides" / "security.md").read_text(encoding="utf-8").split())
    assert "loading a pickle runs code" in page
    assert "`VAEAnomalyDetector(out=...)`" in page and "`VAEAnomalyDetector.from_run(out)`" in page
    assert hasattr(vaekit.VAEAnomalyDetector, "from_run")
