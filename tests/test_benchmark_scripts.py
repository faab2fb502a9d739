"""The benchmark scripts' command lines and what they write, checked without running a benchmark: the folders they
delete, their argument checks, the result's provenance (reduced budget, load), where figures and progress go, and
the pages rendered from small made-up results."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tools import benchmark_pages as pages

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """Import a script of benchmarks/ as the scripts import each other; the run's reduced budget starts empty."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setattr(importlib.import_module("common"), "REDUCED", [])
    return importlib.import_module


def argv(monkeypatch, script: str, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])


class Stop(Exception):
    """Raised in place of a benchmark's first piece of work."""


def stop(*args, **kwargs):
    raise Stop


def test_photo_folder_keeps_what_its_dir_holds(bench, monkeypatch, tmp_path):
    pf = bench("photo_folder")
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(pf, "make_folder", stop)
    argv(monkeypatch, "photo_folder", "--n", "3", "--dir", str(tmp_path))
    for _ in range(2):  # the second run empties the folder the first made, and only it
        with pytest.raises(Stop):
            pf.main()
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / pf.OWN / pf.MARK).is_file()


def test_photo_folder_leaves_a_folder_of_its_name_it_did_not_make(bench, tmp_path):
    pf = bench("photo_folder")
    notes = tmp_path / pf.OWN / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    with pytest.raises(SystemExit, match="not a folder this benchmark made"):
        pf.own_folder(tmp_path)
    assert notes.read_text() == "mine"


def test_photo_folder_checks_n_before_any_file(bench, monkeypatch, tmp_path):
    argv(monkeypatch, "photo_folder", "--n", "2", "--dir", str(tmp_path / "d"))
    with pytest.raises(SystemExit) as done:
        bench("photo_folder").parse_args()
    assert done.value.code == 2 and not (tmp_path / "d").exists()


def test_every_likelihood_row_builds_and_steps(bench):
    lk = bench("likelihoods")
    x = torch.rand(lk.BATCH, 1, 28, 28)
    for _, likelihood, k, module, mode in lk.rows_of(argparse.Namespace(compile=False)):
        lk.stepper(likelihood, k, x, module, mode)(0)


@pytest.mark.parametrize(
    "script, args",
    [
        ("deep", ["--parts", "nl"]),
        ("families", ["--parts", "ladders"]),
        ("bits", ["--sets", "nosuchset"]),
        ("anomaly", ["--parts", "oneclas"]),
        ("peer", ["--nets", "foo"]),
        ("peer", ["--rounds", "0"]),
    ],
)
def test_a_mistyped_choice_is_the_parsers_error(bench, monkeypatch, capsys, script, args):
    module = bench(script)
    monkeypatch.setattr(module, "matmul_rate", stop, raising=False)  # peer's probe: the check comes first
    argv(monkeypatch, script, *args)
    with pytest.raises(SystemExit) as done:
        (getattr(module, "parse_args", None) or module.main)()
    assert done.value.code == 2 and f"{args[0]}" in capsys.readouterr().err


def test_the_writer_refuses_a_result_without_rows(bench, tmp_path):
    common = bench("common")
    with pytest.raises(SystemExit, match="no table has a row"):
        common.write("x", "X", "h", [common.table("c", ["a"], [])], out=tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_a_result_records_its_reduced_budget_and_the_load(bench, monkeypatch, tmp_path):
    common = bench("common")
    p = argparse.ArgumentParser()
    for flag, default in (("--rounds", 10), ("--steps", 100), ("--limit", None), ("--epochs", None)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args(["--rounds", "2", "--steps", "200", "--limit", "50", "--epochs", "12", "--seeds", "3,4,5"])
    common.budget(p, args, "rounds", "steps", "limit", "epochs", "seeds", epochs=10)
    argv(monkeypatch, "x")
    r = json.loads(common.write("x", "X", "h", [common.table("c", ["a"], [[1]])], out=tmp_path / "x.json").read_text())
    assert r["reduced"] == ["--rounds 2 (default 10)", "--limit 50 (default None)"]
    assert len(r["load"]["start"]) == len(r["load"]["end"]) == 3


@pytest.mark.parametrize(
    "script, args, reduced",
    [
        ("deep", ["--minutes", "1", "--limit", "100"], ["--minutes 1.0 (default 20.0)", "--limit 100 (default None)"]),
        ("deep", ["--minutes", "40"], []),
        ("deep_gpu", ["--epochs", "2"], ["--epochs 2 (default 30)"]),
        ("bits", ["--k", "5"], ["--k 5 (default 100)"]),
    ],
)
def test_a_script_records_the_budget_it_was_given(bench, monkeypatch, script, args, reduced):
    argv(monkeypatch, script, *args)
    bench(script).parse_args()
    assert reduced == bench("common").REDUCED


def test_the_deep_figures_go_beside_the_json(bench, monkeypatch, tmp_path):
    for script in ("deep", "deep_gpu"):
        argv(monkeypatch, script, "--json", str(tmp_path / "r.json"))
        assert bench(script).parse_args().figure == tmp_path / "r-samples.png"
        argv(monkeypatch, script, "--quick")
        assert bench(script).parse_args().figure.parent == ROOT / "runs" / "quick"
    common, docs = bench("common"), ROOT / "docs" / "img" / "benchmarks" / "deep-samples.png"
    assert common.figure_name(docs) == "deep-samples.png"  # the pages show it
    assert common.figure_name(tmp_path / "r-samples.png") == str(tmp_path / "r-samples.png")  # they do not


def test_zoo_writes_its_progress_beside_the_result(bench, monkeypatch, tmp_path):
    zoo, out = bench("zoo"), tmp_path / "zoo.json"
    monkeypatch.setattr(zoo.zr, "run_notes", lambda ctx: [])
    args = argparse.Namespace(epochs=1, batch=2, hidden=[4], latent=2, k=1, fid_n=1, out=str(out), rows=None)
    row = ["vaekit", "prior", "standard", 1.0, 2.0, 0.5, 0.5, 10.0, ""]
    ctx = {"args": args, "rows": [row], "n_train": 1, "x_nll": [0], "load": [0.0], "out": out}
    zoo.save(ctx)
    partial = tmp_path / "zoo.json.partial"
    assert not out.exists() and "partial result" in json.loads(partial.read_text())["headline"]
    ctx["done"] = True
    zoo.save(ctx)
    assert not partial.exists() and "partial" not in json.loads(out.read_text())["headline"]


@pytest.mark.parametrize(
    "script", ["bits", "deep", "deep_gpu", "fid_sanity", "tables", "zoo", "anomaly_scales", "explore_load", "scale"]
)
def test_help_gives_the_whole_first_paragraph(bench, monkeypatch, capsys, script):
    module = bench(script)
    argv(monkeypatch, script, "--help")
    with pytest.raises(SystemExit):
        (getattr(module, "parse_args", None) or module.main)()
    squeezed = "".join(capsys.readouterr().out.split())  # argparse wraps the text
    assert "".join(module.__doc__.split("\n\n")[0].split()) in squeezed


def test_the_peer_worker_s_help_says_what_it_runs():
    worker = [sys.executable, str(ROOT / "benchmarks" / "peer_worker.py")]
    shown = subprocess.run([*worker, "--help"], capture_output=True, text=True, cwd=ROOT / "benchmarks")
    assert shown.returncode == 0 and shown.stdout.startswith("One training of benchmarks/peer.py")  # a traceback
    bare = subprocess.run(worker, capture_output=True, text=True, cwd=ROOT / "benchmarks")
    assert bare.returncode == 1 and bare.stderr.startswith("peer_worker.py: expected one argument, a JSON job")


def test_the_peer_headline_names_the_precisions(bench):
    rows = {
        ("mlp", "vaekit"): {"precision": "bf16", "rate": 300.0, "nll": 90.0},
        ("mlp", "pythae"): {"precision": "fp32", "rate": 100.0, "nll": 91.0},
    }
    line = bench("peer").headline(rows)
    assert "like-for-like" not in line and "3.00x pythae's with the same dynamic binarisation (bf16 vs fp32)" in line


def result(**extra) -> dict:
    """A made-up result as common.write writes it, without the fields written since (load, reduced)."""
    machine = {"cpu": "CPU", "threads": 2, "gpu": None, "torch": "2", "python": "3"}
    table = {"caption": "c", "columns": ["a"], "rows": [[1]]}
    command = "python benchmarks/likelihoods.py --rounds 2"
    made = dict(name="likelihoods", headline="h", tables=[table], notes=[], command=command, machine=machine)
    return {**made, "commit": "abc", "date": "2026-01-01", **extra}


def test_a_reduced_budget_is_labelled_like_a_smoke_run():
    r = result(reduced=["--rounds 2 (default 5)"])
    assert '!!! note "A reduced budget"' in pages.page(r, "T") and "--rounds 2 (default 5)" in pages.page(r, "T")
    assert "2026-01-01, CPU, a reduced budget (--rounds 2) |" in pages.headline_table({"likelihoods": r}, "")
    for full in (result(reduced=[]), result()):
        assert "reduced" not in pages.page(full, "T") + pages.headline_table({"likelihoods": full}, "")


def test_the_machine_line_shows_the_load():
    r = result(load={"start": [1.5, 1.0, 0.5], "end": [3.25, 2.0, 1.0]})
    assert "Measured on CPU, 2 threads (load 1.50 at the start, 3.25 at the end: 1-minute averages)," in pages.page(
        r, "T"
    )
    assert "Measured on CPU, 2 threads, torch 2" in pages.page(result(), "T")  # a result without it, as before
    m = {**result()["machine"], "bf16_auto": True}
    assert "2 threads, precision auto: bf16 for Bernoulli-type likelihoods, torch" in pages.page(result(machine=m), "T")


def test_the_pages_tool_previews_other_folders(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "likelihoods.json").write_text(json.dumps(result(headline="a scratch run")))
    folders = ["--results", str(tmp_path / "res"), "--pages", str(tmp_path / "pages")]
    assert pages.main(folders) == 0 and pages.main(["--check", *folders]) == 0
    assert "a scratch run" in (tmp_path / "pages" / "likelihoods.md").read_text()
    assert "a scratch run" in (tmp_path / "pages" / "index.md").read_text()


def test_the_ood_table_asks_llr_only_for_k_below_each_models_groups(bench, monkeypatch):
    """LLR^{>k} with k the number of groups takes every group from the prior: refused (check_llr_k), and the deep
    benchmark's OOD part asked it of every model."""
    parts, asked = bench("deep_parts"), []
    x = torch.zeros(4, 1, 2, 2)
    monkeypatch.setattr(parts, "test_split", lambda run, n: (x, None))
    monkeypatch.setattr(parts, "load_dataset", lambda *a, **k: argparse.Namespace(test=argparse.Namespace(x=x)))

    def scores(model, x, names, **kwargs):
        asked.append((len(model.latent_dims), kwargs.get("llr_k")))
        return {names[0]: torch.arange(len(x), dtype=torch.float).numpy()}

    monkeypatch.setattr(parts, "anomaly_scores", scores)
    runs = {
        n: argparse.Namespace(model=argparse.Namespace(latent_dims=[1] * g))
        for n, g in [("conv ladder VAE", 2), ("deep", 4)]
    }
    tables: list = []
    parts.ood_part(runs, argparse.Namespace(n_test=4, k_ood=2, s_ood=1), tables)
    assert sorted({(g, k) for g, k in asked if k}) == [(2, 1), (4, 1), (4, 2), (4, 3)]
    assert [r[1] for r in tables[0]["rows"]] == ["IWAE NLL", "LLR^>1", "IWAE NLL", "LLR^>1", "LLR^>2", "LLR^>3"]
