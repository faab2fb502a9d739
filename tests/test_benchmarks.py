"""The benchmark scripts' helpers: their loaders, the headlines they compute from stored rows (the published JSON
holds what they give), the notes that stand beside those figures, and how results are written."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture
def bench(monkeypatch):
    """Import a script of benchmarks/ as the scripts import each other (benchmarks/ on the path)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module


def stored(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_the_anomaly_loaders_take_every_item(bench):
    models = bench("anomaly_models")
    data = models.fashion(None)
    assert (len(data.train), len(data.test), len(data.val)) == (60000, 10000, 0)
    assert data.train.y.bincount().tolist() == [6000] * 10  # every training image, each with its label
    digits = models.every_item("mnist5k")
    assert digits.shape == (5000, 1, 28, 28) and len(torch.unique(digits.flatten(1), dim=0)) > 4900


def test_no_benchmark_asks_for_a_split_of_zero():
    calls = [
        f"{p.name}: {m.group(0)}"
        for p in (ROOT / "benchmarks").glob("*.py")
        for m in re.finditer(r"(val|test)_fraction\s*=\s*0(\.0+)?(?![\d.])", p.read_text())
    ]
    assert calls == []


@pytest.mark.parametrize("name", ["peer", "peer_cuda", "peer_cpu_fp32"])
def test_the_peer_headline_names_each_precision_of_each_pair(bench, name):
    peer = bench("peer")
    result = stored(name)
    rows = peer.stored_rows(result)
    line = peer.headline(rows)
    assert line == result["headline"]  # the page shows what the script computes from its own rows
    v, same = rows["mlp", "vaekit"], rows["mlp", "pythae"]
    assert f"test NLL {v['nll']:.2f} vs pythae's {same['nll']:.2f} nats" in line  # dynamic, not pythae-fixed
    assert f"vaekit ({v['precision']})" in line and "(pythae-fixed, fp32)" in line
    assert f"same dynamic binarisation ({v['precision']} vs {same['precision']})" in line


def test_the_peer_headline_on_the_cpu_compares_the_dynamic_row():
    assert "242.97 vs pythae's 242.70" in stored("peer")["headline"]


def test_the_anomaly_headline_names_the_default_score_and_the_best_peer(bench):
    anomaly = bench("anomaly")
    rows = next(t["rows"] for t in stored("anomaly")["tables"] if t["caption"].startswith("Breast cancer"))
    phrase = anomaly.tabular_phrase(rows)
    assert phrase == "breast cancer AUROC 0.951 (vaekit VAEAnomalyDetector, default score neg_elbo) vs 0.964 " + (
        "(best PyOD: PyOD VAE (defaults))"
    )
    assert phrase in stored("anomaly")["headline"]
    assert anomaly.tabular_phrase([r for r in rows if not r[0].startswith("PyOD")]).endswith("score neg_elbo)")


ONECLASS = ["class", "neg_elbo", "complexity", "neg_elbo, scales 1,2"]
OOD = ["score", "AUROC (bernoulli)", "FPR@95%TPR (bernoulli)", "AUROC (gaussian)", "FPR@95%TPR (gaussian)"]


@pytest.mark.parametrize(
    ("mean", "net", "likelihood", "phrase"),
    [
        ([0.9, 0.5, 0.95], "mlp", "gaussian", "AUROC 0.900 (default score neg_elbo, one gaussian VAE) [best of 3 "
         "scores on the test set: 0.950 (neg_elbo, scales 1,2)]"),
        ([0.9, 0.5, 0.85], "mlp", "gaussian", "AUROC 0.900 (default score neg_elbo, one gaussian VAE)"),
        ([0.9, 0.5, 0.95], "mlp", "bernoulli", "AUROC: default score (neg_elbo, one gaussian VAE) not run [best of 3"),
        ([0.9, 0.5, 0.85], "conv", "gaussian", "not run [best of 3 scores on the test set: 0.900 (neg_elbo)]"),
    ],
)  # fmt: skip
def test_the_one_class_headline_is_the_default_score_with_the_best_labelled(bench, mean, net, likelihood, phrase):
    rows = [["0 T-shirt/top", 0.8, 0.4, 0.99], ["mean", *mean]]  # the mean row, not the best class, counts
    line = bench("anomaly").oneclass_phrase(ONECLASS, rows, net, likelihood)
    assert (
        line.startswith("one-class Fashion-MNIST mean AUROC") and phrase in line and line.endswith("]" * ("[" in line))
    )


@pytest.mark.parametrize(
    ("rows", "net", "phrase"),
    [
        ([["neg_elbo", 0.38, 0.999, 0.984, 0.07], ["complexity", 0.99, 0.02, 0.997, 0.01]], "mlp",
         "AUROC 0.984 (default score neg_elbo, gaussian) [best of 4 score-likelihood pairs on the test set: 0.997 "
         "(complexity, gaussian)]"),
        ([["neg_elbo", 0.38, 0.999, 0.984, 0.07], ["complexity", 0.9, 0.02, 0.95, 0.01]], "mlp",
         "AUROC 0.984 (default score neg_elbo, gaussian)"),  # an FPR of 0.999 is no AUROC
        ([["neg_elbo", 0.38, 0.999, 0.984, 0.07]], "conv", "AUROC: default score (neg_elbo, gaussian) not run [best "
         "of 2 score-likelihood pairs on the test set: 0.984 (neg_elbo, gaussian)]"),
    ],
)  # fmt: skip
def test_the_ood_headline_is_the_default_score_and_likelihood_with_the_best_labelled(bench, rows, net, phrase):
    assert bench("anomaly").ood_phrase(OOD, rows, net) == f"Fashion-MNIST vs MNIST {phrase}"


def test_the_ood_headline_without_the_default_likelihood_says_so(bench):
    line = bench("anomaly").ood_phrase(OOD[:3], [["neg_elbo", 0.38, 0.9], ["recon_error", 0.987, 0.05]], "mlp")
    assert line == "Fashion-MNIST vs MNIST AUROC: default score (neg_elbo, gaussian) not run [best of 2 " + (
        "score-likelihood pairs on the test set: 0.987 (recon_error, bernoulli)]"
    )


@pytest.mark.parametrize(
    ("name", "default", "best"),
    [
        ("anomaly", "mean AUROC 0.904 (default score neg_elbo", "0.913 (neg_elbo, scales 1,2)]"),
        ("anomaly", "MNIST AUROC 0.984 (default score neg_elbo, gaussian)", "0.997 (complexity, gaussian)]"),
        ("anomaly_deep", "mean AUROC 0.919 (default score neg_elbo", "0.931 (neg_elbo, scales 1,2,4,7)]"),
    ],
)
def test_the_anomaly_pages_headline_the_default_score_not_the_best_on_the_test_set(name, default, best):
    line = stored(name)["headline"]
    assert default in line and f"on the test set: {best}" in line


def test_the_pooling_factors_are_picked_on_validation_not_on_the_test_set(bench):
    scales = bench("anomaly_scales")
    normal = np.arange(100) < 50
    val = [[(np.stack([~normal * 1.0, normal * 1.0]), normal)]]  # factor 1 ranks these right, factor 2 inverts
    test = [[(np.stack([normal * 1.0, ~normal * 1.0]), normal)]]  # and the other way round here
    found = scales.ranked(val, test, (1, 2))
    assert [r["scales"] for r in found][:1] == [[1]] and found[0]["test"].item() == 0.0
    rows = stored("anomaly_scales")["tables"][0]["rows"]
    assert scales.headline(rows) == stored("anomaly_scales")["headline"] and rows[0][1] == max(r[1] for r in rows)


def test_the_anomaly_page_says_how_to_reproduce_it():
    assert any("--deep ''" in n for n in stored("anomaly")["notes"])


def test_a_rehead_recomputes_the_headline_from_the_stored_rows(bench, tmp_path):
    for script, name in (
        ("anomaly", "anomaly"),
        ("anomaly", "anomaly_deep"),
        ("deep", "deep_bits"),
        ("families", "families"),
    ):
        path = tmp_path / f"{name}.json"
        shutil.copy(RESULTS / f"{name}.json", path)
        bench(script).rehead(str(path))
        assert json.loads(path.read_text()) == stored(name), name  # the published JSON is what it gives


def test_deep_bits_says_when_deep_trained_longer(bench):
    deep = bench("deep")
    found = {("x", "deep"): (2.9, 77.2), ("x", "flat conv VAE"): (3.2, 19.8)}
    assert "deep trained 3.9x as long" in deep.bits_line("x", found, {})
    found["x", "deep"] = (2.9, 20.0)
    assert "as long" not in deep.bits_line("x", found, {})
    assert "3.9x as long" in stored("deep_bits")["headline"]


def test_families_headline_says_worse_and_the_parameter_counts(bench):
    phrase = bench("families").ladder_phrase(
        next(t["rows"] for t in stored("families")["tables"] if t["caption"].startswith("Flat vs ladder"))
    )
    assert "MLP ladder 0.55 nats worse" in phrase and "(1.68M vs 356k)" in phrase


@pytest.mark.parametrize(("adversarial", "keys"), [(True, {"autoencoder", "discriminator"}), (False, {""})])
def test_pythae_trainers_get_the_learning_rate_they_read(bench, adversarial, keys):
    rates = bench("zoo_rows").learning_rates(adversarial)
    assert rates == {f"{k}_learning_rate".lstrip("_"): 1e-3 for k in keys}


def test_the_zoo_factorvae_row_is_rerun_at_the_rate_of_the_others(bench):
    result, factor = stored("zoo"), ("pythae", "FactorVAE gamma=10")
    rows = [r for r in result["tables"][0]["rows"] if r[0] != "data"]
    assert not any("not like-for-like" in n for n in result["notes"])
    rerun = [n for n in result["notes"] if n.startswith("Rerun alone")]
    assert (
        len(rerun) == 1
        and "pythae FactorVAE gamma=10 (the first run trained it at pythae's default lr 1e-4" in (rerun[0])
    )
    assert "on 2026-12-05, AMD EPYC" in rerun[0] and "--only pythae --rows factor" in rerun[0]
    assert "measured in another process under another load" in rerun[0]
    met = bench("zoo").targets(rows, frozenset({factor}))
    assert result["notes"][: len(met)] == met  # the targets are what the script computes from the rows
    assert next(m for m in met if m.startswith("samples/s factor")).endswith("under another load)")
    assert result["headline"].startswith("27 rows; 28 of 28 targets met (1 speed target of rerun rows not compared)")


def test_a_zoo_rerun_puts_its_rows_in_place_of_the_stored_ones(bench):
    stored_rows = [["vaekit", "prior", "standard", 1], ["pythae", "model", "VAE", 2], ["data", "floor", "x", 0]]
    new = [["pythae", "model", "VAE", 3], ["pythae", "model", "IWAE K=5", 4]]
    assert bench("zoo").merged(stored_rows, new) == [stored_rows[0], new[0], new[1]]


def test_a_zoo_rerun_leaves_its_speed_targets_uncompared(bench):
    zoo = bench("zoo")
    rows = [["vaekit", "prior", "standard", 270.0, 25.0, 0.5, 0.01, 900.0], ["pythae", "model", "VAE", 270.1, 28.0,
            0.5, 0.03, 1000.0]]  # fmt: skip
    assert "samples/s standard 900.0 vs pythae VAE 1000.0 (at least): NOT met" in zoo.targets(rows)
    apart = zoo.targets(rows, frozenset({("pythae", "VAE")}))
    assert "samples/s standard 900.0 vs pythae VAE 1000.0 (at least): not compared" in apart[2]
    assert apart[:2] == zoo.targets(rows)[:2]  # NLL and FID still compared


def test_zoo_rows_reruns_only_the_rows_it_names(bench, monkeypatch):
    import argparse

    zoo, ran = bench("zoo"), []
    monkeypatch.setattr(zoo, "save", lambda ctx: None)
    ctx = {"args": argparse.Namespace(rows=["factor"]), "rows": []}
    for label in ("FactorVAE gamma=10", "VAE", "factor gamma=10"):
        zoo.row(ctx, "lib", "axis", label, lambda label=label: ran.append(label) or [0] * 6)
    assert ran == ["FactorVAE gamma=10", "factor gamma=10"] and len(ctx["rows"]) == 2


def test_memory_columns_say_mib():
    for p in [*RESULTS.glob("*.json"), *(ROOT / "benchmarks").glob("*.py")]:
        assert "(MB)" not in p.read_text(), p.name


def test_the_cpu_fp32_note_matches_its_table():
    result = stored("peer_cpu_fp32")
    rates = {(r[0], r[1]): r[4] for r in result["tables"][1]["rows"]}
    mlp = rates["mlp", "vaekit"] / rates["mlp", "pythae-fixed"]
    assert f"MLP at {mlp:.2f}x pythae-fixed" in result["notes"][-1] and "once per process" not in result["notes"][-1]


def test_a_result_is_written_atomically(bench, monkeypatch, tmp_path):
    common = bench("common")
    written = []
    monkeypatch.setattr(common, "atomic_write_text", lambda path, text: written.append(path))
    monkeypatch.setattr(sys, "argv", ["bench.py"])
    common.write("x", "X", "a headline", [{"caption": "", "columns": ["a"], "rows": [[1]]}], out=tmp_path / "x.json")
    assert written == [tmp_path / "x.json"] and not (tmp_path / "x.json").exists()


def test_tables_stops_before_training_without_sdv(bench, monkeypatch):
    tables = bench("tables")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as stop:
        tables.check_peers()
    assert "\n" not in str(stop.value) and "make bench-peer" in str(stop.value)


def test_tables_notes_are_what_the_script_writes(bench, monkeypatch):
    tables, notes = bench("tables"), stored("tables")["notes"]
    versions = {
        "sdv": re.search(r"SDV (\S+) TVAE", notes[1])[1],
        "sdmetrics": re.search(r"sdmetrics (\S+) on", notes[2])[1],
    }
    monkeypatch.setattr(tables, "_version", versions.get)
    epochs = (int(re.match(r"vaekit: (\d+)", notes[0])[1]), int(re.search(r"TVAE: (\d+)", notes[1])[1]))
    assert tables.notes(epochs, float(notes[2].rsplit(" ", 1)[1])) == notes


@pytest.mark.parametrize("index", [0, 1])  # the headline table and the per-column one
def test_the_tables_result_holds_vaekit_standard_and_modes(bench, index):
    tables = bench("tables")
    names = [row[0] for row in stored("tables")["tables"][index]["rows"]]
    assert names[:4] == [tables.VAEKIT, tables.VAEKIT_MODES, "SDV TVAE", "SDV Gaussian copula"]
    assert tables.NUMERIC == {tables.VAEKIT: "standard", tables.VAEKIT_MODES: "modes"}


def test_the_tables_headline_gives_both_vaekit_rows(bench):
    tables = bench("tables")

    def quality(shapes: float, accuracy: float) -> dict:
        return {"column_shapes": shapes, "tstr": {"synthetic": {"accuracy": accuracy}, "real": {"accuracy": 0.85}}}

    results = {tables.VAEKIT: (9.0, quality(0.88, 0.84)), tables.VAEKIT_MODES: (12.0, quality(0.93, 0.845))}
    line = tables.headline(5000, {**results, "SDV TVAE": (15.0, quality(0.82, 0.83))})
    assert "column shapes 0.880 (vaekit), 0.930 (vaekit, numeric=modes) vs 0.820 (TVAE)" in line
    assert "TSTR accuracy 0.840, 0.845 vs 0.830 (train on real 0.850)" in line


def test_bits_says_which_scale_each_gaussian_column_is_on(bench):
    bits = bench("bits")
    assert stored("bits")["notes"] == [bits.LITERATURE_NOTE, bits.GAUSSIAN_NOTE]
    assert "on [0, 1]" in bits.GAUSSIAN_NOTE and "0..255" in bits.GAUSSIAN_NOTE


def test_the_pages_tool_help_writes_nothing(monkeypatch, tmp_path, capsys):
    from tools import benchmark_pages

    monkeypatch.setattr(benchmark_pages, "PAGES", tmp_path / "pages")
    monkeypatch.setattr(sys, "argv", ["benchmark_pages.py", "--help"])
    assert benchmark_pages.main() == 0 and not (tmp_path / "pages").exists()
    assert "--check" in capsys.readouterr().out


def test_the_scale_page_says_its_two_process_row_predates_the_batch_split():
    assert any("predates commit d4748a5" in n for n in stored("scale")["notes"])
