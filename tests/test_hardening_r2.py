"""Hardening, round 2: a FIFO as a TOML config, .npz bombs and .npy files past the memory free, objective weights
that make another objective, beta-TCVAE against a prior that does not factorise, what the export check feeds, and
``vaekit data``."""

from __future__ import annotations

import os
import socket
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
import vaekit.data.npz as npz
import vaekit.runs
from vaekit.cli import main
from vaekit.config import RunConfig, load_toml, load_toml_config, refuse_conflicts, set_value, validate
from vaekit.data import builtin, catalog
from vaekit.errors import VaekitError
from vaekit.export import onnx as export

FREE = 1_000_000  # bytes free in memory, as the .npy/.npz reader is told


@pytest.mark.parametrize("read", [load_toml, load_toml_config], ids=["load_toml", "load_toml_config"])
def test_a_fifo_config_is_refused_at_once(read, tmp_path):
    fifo = tmp_path / "f.toml"
    os.mkfifo(fifo)
    said: list[BaseException] = []
    reader = threading.Thread(target=lambda: said.extend(_raised(read, fifo)), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # waiting for a writer: open one and close it, so that the read ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
        pytest.fail("the config reader waited for a writer on a FIFO")
    assert len(said) == 1 and "not a plain file (a FIFO)" in str(said[0]), said


def _raised(read, path: Path) -> list[BaseException]:
    try:
        read(path)
    except VaekitError as e:
        return [e]
    return []


def _bomb(path: Path, **arrays: tuple[int, ...]) -> Path:
    """A compressed .npz of zero arrays of the given shapes (float32): a few KB for megabytes."""
    np.savez_compressed(path, **{k: np.zeros(shape, np.float32) for k, shape in arrays.items()})
    return path


@pytest.mark.parametrize(
    "name,arrays,said",
    [
        ("bomb.npz", {"x": (1000, 500)}, "member 'x' of shape (1000, 500) float32 unpacks to 2,000,000 bytes, more"),
        (
            "splits.npz",
            {"x_train": (400, 500), "x_test": (400, 500)},
            "member 'x_test' of shape (400, 500) float32 unpacks to 800,000 bytes (1,600,000 with the members before",
        ),
        ("big.npy", {"": (1000, 500)}, "the array of shape (1000, 500) float32 unpacks to 2,000,000 bytes, more"),
    ],
)
def test_numpy_files_past_the_memory_free_are_refused_from_their_headers(name, arrays, said, tmp_path, monkeypatch):
    monkeypatch.setattr(npz, "usable_memory", lambda: FREE)
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, np.zeros(arrays[""], np.float32))
    else:
        _bomb(path, **arrays)
    with pytest.raises(VaekitError, match="free in memory") as e:
        npz.read_numpy(path)
    assert said in str(e.value) and f"{FREE:,} bytes free" in str(e.value)


def test_a_member_that_is_no_array_counts_by_its_size_and_small_files_still_load(tmp_path, monkeypatch):
    monkeypatch.setattr(npz, "usable_memory", lambda: FREE)
    small = _bomb(tmp_path / "small.npz", x=(10, 4))
    assert npz.read_numpy(small).x.shape == (10, 4)
    with zipfile.ZipFile(small, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", b"\0" * 2 * FREE)  # np.load would read it whole as bytes
    with pytest.raises(VaekitError, match=r"member 'notes\.txt' unpacks to 2,000,000 bytes"):
        npz.read_numpy(small)


def _settings(**given: object) -> RunConfig:
    cfg = RunConfig()
    for key, value in given.items():
        set_value(cfg, f"train.{key}", str(value))
    return refuse_conflicts(validate(cfg))


@pytest.mark.parametrize(
    "given,use",
    [
        ({"objective": "mmd", "mmd_weight": 0}, "train.objective=elbo"),
        ({"objective": "factor", "factor_gamma": 0}, "train.objective=elbo"),
        ({"objective": "ciwae", "ciwae_beta": 0}, "train.objective=iwae"),
        ({"objective": "ciwae", "ciwae_beta": 1}, "train.objective=miwae with train.iw_groups K"),
    ],
)
def test_a_weight_that_makes_another_objective_is_refused_naming_it(given, use):
    with pytest.raises(VaekitError, match="cannot both take effect") as e:
        _settings(**given)
    weight = next(k for k in given if k != "objective")
    assert str(e.value).startswith(f"config: train.{weight} and train.objective") and use in str(e.value)


@pytest.mark.parametrize(
    "given",
    [{"objective": "mmd", "beta": 0}, {"objective": "ciwae", "ciwae_beta": 0.3}, {"objective": "factor"}],
    ids=["wae-mmd", "ciwae-mix", "factor"],
)
def test_weights_that_mean_their_own_objective_stay(given):
    assert _settings(**given).train.objective == given["objective"]


@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp", "flow"])
def test_beta_tcvae_in_python_refuses_a_prior_that_does_not_factorise(prior):
    m = vaekit.build_model(input_shape=(6,), likelihood="gaussian", latent_dim=2, hidden=[8], prior=prior)
    x = torch.rand(8, 6)
    out = m(x)
    if prior == "standard":
        terms = vaekit.elbo(out, x, tc_beta=6.0, dataset_size=100)
        one_sample = out.qz[0].log_prob(out.z[0]) - out.pz[0].log_prob(out.z[0])  # (B,): what the parts split
        assert torch.allclose(terms["mi"] + terms["tc"] + terms["dimwise_kl"], one_sample, atol=1e-4)
        return
    with pytest.raises(VaekitError, match="needs a p\\(z\\) that factorises by dimension") as e:
        vaekit.elbo(out, x, tc_beta=6.0, dataset_size=100)
    assert e.value.key == "train.tc_beta" and "--" not in str(e.value)


def _fake_run(classes: int = 0) -> SimpleNamespace:
    m = vaekit.build_model(input_shape=(6,), likelihood="gaussian", latent_dim=2, hidden=[8])
    if classes:
        m.needs_labels = True  # the labels example_inputs draws
    return SimpleNamespace(model=m, config=SimpleNamespace(model=SimpleNamespace(input_shape=[6], num_classes=classes)))


@pytest.mark.parametrize(
    "part,n,said",
    [
        ("encoder", 100, "100 noise inputs x ~ U(0, 1) (not data items)"),
        ("decoder", 100, "100 codes z ~ N(0, I)"),
        ("decoder", 1, "1 and 3 codes z ~ N(0, I)"),
    ],
)
def test_the_export_check_says_what_it_feeds(part, n, said):
    run = _fake_run()
    assert export.check_inputs(run, part, n) == said
    first = export.example_inputs(run, part, 4000, seed=1)[0]  # what the check feeds, seed and all
    if part == "encoder":
        assert first.shape == (4000, 6) and first.min() >= 0 and first.max() < 1 and abs(first.mean() - 0.5) < 0.02
    else:
        assert first.shape == (4000, 2) and abs(first.mean()) < 0.05 and abs(first.std() - 1) < 0.05


def test_the_export_line_says_what_each_part_was_checked_on(monkeypatch, capsys):
    run = _fake_run(classes=3)
    done = {p: {"path": f"{p}.onnx", "bytes": 1024, "max_abs_diff": 0.0} for p in ("encoder", "decoder")}
    monkeypatch.setattr(vaekit.runs.Run, "load", staticmethod(lambda path: run))
    monkeypatch.setattr(export, "export_onnx", lambda run, out, part: done)
    monkeypatch.setattr(export, "ort_decode_ms", lambda run, path, batch: 1.0)
    assert main(["export", "somewhere"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("on 100 noise inputs x ~ U(0, 1) (not data items), labels y uniform in 0..2")
    assert lines[1].endswith("on 100 codes z ~ N(0, I), labels y uniform in 0..2") and "random" not in lines[0]


def test_vaekit_data_lists_every_built_in_set_with_its_facts(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("vaekit data connected to the network"))
    listed = {row.spec.split("[")[0]: row for row in catalog.catalog()}
    assert list(listed) == list(builtin.BUILTINS)
    for name in ("digits", "photos"):  # the facts against the sets as they load
        raw = builtin.load_builtin(name)
        n = " + ".join(f"{len(r):,} {s}" for s, r in raw.fixed.items()) if raw.fixed else f"{len(raw.x):,}"
        row = listed[name]
        assert row.items == n and row.shape.startswith("x".join(map(str, raw.x.shape[1:]))), row
        assert row.classes.startswith(f"{len(np.unique(raw.y))} ") and row.ready.startswith("yes"), row
    assert listed["dsprites"].source == "generated in code" and listed["dsprites"].ready == "yes"


@pytest.mark.parametrize(
    "where,held,ready",
    [
        ("mine", 4, "yes ({folder})"),
        ("mine", 2, "no: downloads on first use"),
        ("cache", 4, "yes (cache {folder})"),
        ("cache", 3, "no: downloads on first use (3 of 4 files cached)"),
    ],
)
def test_an_idx_set_is_ready_where_its_files_are(where, held, ready, tmp_path, monkeypatch):
    folder = tmp_path / where / ("mnist" if where == "cache" else "")
    folder.mkdir(parents=True)
    for stem in builtin.IDX_NAMES[:held]:
        (folder / (stem + (".gz" if where == "cache" else ""))).write_bytes(b"")
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of no bytes
    monkeypatch.setitem(builtin.SHA256, "mnist", {f"{stem}.gz": empty for stem in builtin.IDX_NAMES})
    monkeypatch.setenv("VAEKIT_MNIST_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(builtin.SYSTEM_DIRS, "mnist", str(tmp_path / "none"))
    assert catalog.ENTRIES["mnist"]().ready == ready.format(folder=folder)


def test_the_data_verb_prints_one_row_per_set(monkeypatch, capsys):
    rows = [catalog.BuiltinSet(f"set{i}", "1x2x2", "3", "2 (a|b)", "generated in code", "yes") for i in range(2)]
    monkeypatch.setattr(catalog, "catalog", lambda: rows)
    assert main(["data"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["| spec | item shape | items | classes | source | ready offline here |", "|" + "---|" * 6]
    assert lines[2:] == [f"| set{i} | 1x2x2 | 3 | 2 (a\\|b) | generated in code | yes |" for i in range(2)]
