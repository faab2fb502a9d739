"""The benchmark scripts, round 2: a missing peer stops a script before any training, in one line naming the one
install target; a stop (SIGTERM, Ctrl-C) ends in one line; --help shows the small runs; the gap sentences say
above for a negative gap; deep's rehead of a result without a bits/dim table; deep's binarisation floor; deep's
one-epoch-more calls keep the warm-up warning to the run as a whole; families' smoke run trains its judges on few
images."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


class Stop(Exception):
    """Raised in place of a benchmark's first piece of work."""


def stop(*args, **kwargs):
    raise Stop


@pytest.fixture
def bench(monkeypatch):
    """Import a script of benchmarks/ as the scripts import each other; the reduced budget starts empty."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setattr(importlib.import_module("common"), "REDUCED", [])
    return importlib.import_module


# script, its arguments, the attribute its first work calls, the peer it needs
PEERS = [
    ("peer", ["--quick"], "matmul_rate", "pythae"),
    ("zoo", ["--quick"], "load_dataset", "pythae"),
    ("step_floor", ["--rounds", "1"], "check_gradient", "pythae"),
    ("tables", ["--quick"], "measure", "sdv"),
    ("anomaly", ["--quick", "--parts", "tabular"], "tabular", "pyod"),
]


@pytest.mark.parametrize(("script", "args", "first", "peer"), PEERS)
def test_a_missing_peer_stops_the_script_before_any_work(bench, monkeypatch, script, args, first, peer):
    module = bench(script)
    monkeypatch.setattr(module, first, stop)
    monkeypatch.setitem(module.RUNS, "tabular", stop) if script == "anomaly" else None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    with pytest.raises(SystemExit) as exit_:
        module.main()
    line = str(exit_.value)
    assert "\n" not in line and peer in line and "`make bench-peer-install`" in line


def test_a_script_runs_on_without_a_peer_it_is_told_to_leave_out(bench, monkeypatch):
    zoo = bench("zoo")
    monkeypatch.setattr(zoo, "load_dataset", stop)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["zoo.py", "--quick", "--only", "vaekit"])
    with pytest.raises(Stop):
        zoo.main()


def test_one_make_target_installs_the_peers_and_runs_nothing():
    def dry(target: str) -> str:
        return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    install, peer = dry("bench-peer-install"), dry("bench-peer")
    assert "pythae==" in install and "[bench]" in install and "benchmarks/" not in install
    assert "pythae==" in peer and "benchmarks/peer.py" in peer  # bench-peer as documented: installs, then runs
    for path in (ROOT / "benchmarks").glob("*.py"):  # every script names that one command
        text = path.read_text()
        assert "vaekit[bench]" not in text and ".peer-$(" not in text and "`make bench-peer`" not in text, path.name


def test_a_stop_ends_in_one_line_with_the_command_that_goes_on(bench, monkeypatch, capsys):
    runner, interrupted = bench("runner"), bench("vaekit.training.signals").Interrupted
    monkeypatch.setattr(sys, "argv", ["benchmarks/deep.py", "--quick", "--out", "runs/x"])

    def stopped() -> None:
        raise interrupted(signal.SIGTERM, "epoch 1, batch 21", "runs/x/deep")

    with pytest.raises(SystemExit) as exit_:
        runner.entry(stopped, carry_on=True)
    err = capsys.readouterr().err
    assert exit_.value.code == 143 and err.count("\n") == 1 and "Traceback" not in err
    assert "stopped by SIGTERM at epoch 1, batch 21" in err and "--quick --out runs/x --carry-on" in err
    with pytest.raises(SystemExit) as exit_:
        runner.entry(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    err = capsys.readouterr().err
    assert exit_.value.code == 130 and err.strip() == "deep.py: stopped by SIGINT"


@pytest.mark.parametrize(
    ("script", "small"), [("step_floor", "--rounds 1 --steps 10"), ("deep", "--quick --parts nll"), ("zoo", "--quick")]
)
def test_help_shows_a_small_run(bench, monkeypatch, capsys, script, small):
    module = bench(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--help"])
    with pytest.raises(SystemExit):
        (getattr(module, "parse_args", None) or module.main)()
    out = capsys.readouterr().out
    assert "examples:" in out and f"benchmarks/{script}.py {small}" in out


def test_the_benchmarks_readme_names_every_script():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    scripts = [p.name for p in (ROOT / "benchmarks").glob("*.py") if "__main__" in p.read_text()]
    assert [s for s in scripts if s not in readme] == [] and "tools/benchmark_pages.py" in readme


def test_a_negative_gap_is_said_above(bench):
    families, deep = bench("families"), bench("deep")
    nlls = {("flat", "mlp"): 377.94, ("ladder", "mlp"): 376.76, ("flat", "conv"): 406.19, ("ladder", "conv"): 387.17}
    line = families.ladder_line("conv", nlls, ["mlp", "conv"])
    assert "19.02 nats below the flat conv VAE's and 9.23 above the flat MLP VAE's" in line
    assert "1.18 nats below" in families.ladder_line("mlp", nlls, ["mlp", "conv"])
    line = deep.nll_line("x", {"deep": 90.0, "conv ladder VAE": 89.5, "flat conv VAE": 93.0})
    assert line == "x: deep is 0.50 nats above the conv ladder and 3.00 below the flat conv VAE (targets: 5 and 8)."


def test_deep_measures_the_binarisation_floor_on_the_grey_test_images(bench, tmp_path):
    x = torch.full((40, 1, 2, 3), 0.5)
    x[:, :, 0] = torch.tensor([0.0, 1.0, 0.25])  # no entropy in 0 and 1; H(0.25) = 0.5623 nats
    numpy.save(tmp_path / "x.npy", x.numpy())
    cfg = bench("vaekit.config").RunConfig()
    cfg.data.spec, cfg.data.limit = str(tmp_path / "x.npy"), 30
    floor = bench("deep").entropy_floor(cfg, 5)
    assert floor == pytest.approx(3 * math.log(2) + 0.562335, abs=1e-5)
    nlls = {"flat conv VAE": 18.0, "conv ladder VAE": 17.0, "deep": 15.0}
    line = bench("deep").floor_line("x", 5, 10.0, nlls)
    assert "10.00 nats" in line and "flat conv VAE 8.00, conv ladder VAE 7.00, deep 5.00" in line
    assert line.endswith("Deep removes 38% of the flat conv VAE's excess; 8 nats would be 100%.")


def test_deep_reheads_the_floor_line_in_after_the_nll_line(bench, tmp_path):
    published = json.loads((RESULTS / "deep.json").read_text())
    path, floors = tmp_path / "deep.json", []
    path.write_text(json.dumps({**published, "notes": [n for n in published["notes"] if "own entropy" not in n]}))
    floor = published["notes"][1].split("own entropy, ")[1].split(" nats")[0]
    bench("deep").rehead(str(path), lambda command, spec, n: floors.append((spec, n)) or float(floor))
    assert json.loads(path.read_text()) == published and floors == [("fashion-mnist", 1000)]


@pytest.mark.parametrize("name", ["deep", "deep_quality", "deep_bits_photos"])
def test_deep_reheads_a_result_without_a_bits_table(bench, tmp_path, name):
    path = tmp_path / f"{name}.json"
    shutil.copy(RESULTS / f"{name}.json", path)
    bench("deep").rehead(str(path))  # deep.json: was StopIteration
    assert json.loads(path.read_text()) == json.loads((RESULTS / f"{name}.json").read_text())


def test_deep_says_a_warmup_longer_than_the_whole_budget_once(bench, monkeypatch, tmp_path, capsys):
    deep, logs = bench("deep"), bench("vaekit.logs")
    from vaekit.config.checks import short_runs

    def train(cfg, **kwargs):
        for note in short_runs(cfg):  # as vaekit's fit says it, for the one epoch of this call
            logs.warning(note)
        return argparse.Namespace(history=[{"seconds": 1.0}])

    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("vaekit").addHandler(handler)
    monkeypatch.setattr(deep, "train", train)
    monkeypatch.setattr(deep.Run, "load", lambda path: argparse.Namespace(model=torch.nn.Linear(2, 2)))
    args = argparse.Namespace(carry_on=False, minutes=2.5 / 60, out=str(tmp_path), limit=None)
    try:
        _, info = deep.train_for("x", None, deep.FLAT, args)  # 2 epochs of 1 s in 2.5 s: a warm-up of 2 ends
    finally:
        logging.getLogger("vaekit").removeHandler(handler)
    assert info["epochs"] == 2 and said == [] and "longer than the run" not in capsys.readouterr().out
    args.minutes = 1 / 60
    logging.getLogger("vaekit").addHandler(handler)
    try:
        deep.train_for("x", None, deep.FLAT, args)  # one epoch in all: the budget's run is shorter than its warm-up
    finally:
        logging.getLogger("vaekit").removeHandler(handler)
    out = capsys.readouterr().out
    assert said == [] and out.count("x: train.warmup_epochs 2 is longer than the run (train.epochs 1)") == 1


def test_families_smoke_run_trains_its_judges_on_few_images(bench, monkeypatch):
    families, limits = bench("families"), []
    x = torch.zeros(1000, 1, 28, 28)
    monkeypatch.setattr(families, "train_run", lambda *a, **k: argparse.Namespace(sample_classes=lambda n: x))
    data = argparse.Namespace(classes=[str(c) for c in range(10)])
    monkeypatch.setattr(families, "load_dataset", lambda *a, **k: data)
    judge = lambda name, d, epochs, limit=None: limits.append(limit) or (None, torch.ones(10))  # noqa: E731
    monkeypatch.setattr(families, "classifier", judge)
    monkeypatch.setattr(families, "per_class_hits", lambda net, x, y: torch.ones(10))
    monkeypatch.setattr(families.common, "write", lambda *a, **k: None)
    monkeypatch.setattr(sys, "argv", ["families.py", "--quick", "--parts", "cvae"])
    families.main()
    assert limits == [3000, 3000]  # each judge on the first 3,000 training images (was all 60,000)


def test_anomaly_rehead_words_the_scores_as_vaekit_does_now(bench, tmp_path):
    published = json.loads((RESULTS / "anomaly_deep.json").read_text())
    old = "LLR^{>k}: the ELBO minus the bound with the lowest k latent groups from the prior (Havtorn et al. 2021)"
    notes = [n.replace(bench("vaekit.evaluation.scores").DESCRIPTIONS["llr"], old) for n in published["notes"]]
    path = tmp_path / "anomaly_deep.json"
    path.write_text(json.dumps({**published, "notes": notes}))
    bench("anomaly").rehead(str(path))  # the llr note read 'from the prior' after the score was reworded
    assert notes != published["notes"] and json.loads(path.read_text()) == published
