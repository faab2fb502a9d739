"""Run folders written before the library layout (vaekit 0.1, one per family) still load, sample and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import vaekit
from vaekit.cli import main

OLD = Path(__file__).parent / "data" / "runs-0.1"


@pytest.mark.parametrize("name", ["vae", "cvae", "ladder", "conv"])
def test_an_old_run_loads_samples_and_resumes(name, tmp_path):
    run_dir = shutil.copytree(OLD / name, tmp_path / name)
    shutil.copy(OLD / "tiny.npz", tmp_path / "tiny.npz")
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["spec"] = str(tmp_path / "tiny.npz")  # the data the run was trained on, where it is now
    (run_dir / "config.json").write_text(json.dumps(config))
    run = vaekit.load_run(run_dir)
    label = 1 if run.model.needs_labels else None
    assert run.sample(3, label=label).shape == (3, 1, 4, 4)
    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3  # header and two epochs
    assert torch.isfinite(vaekit.load_run(run_dir).sample(2, label=label)).all()
