"""A VQ model's codebook usage in evaluate: codes used of K and their perplexity, and a collapse said once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import ModelConfig, RunConfig
from vaekit.models import build_model
from vaekit.runs import Run
from vaekit.viz.report_tables import eval_rows


def tiny_vq_run() -> Run:
    """An untrained VQ-VAE of (1, 8, 8) items with 16 random codes, as a run without a folder."""
    torch.manual_seed(0)
    sizes = {"hidden": [16], "latent_dim": 4, "codebook_size": 16, "code_dim": 2, "pixelcnn_channels": 4}
    cfg = RunConfig(model=ModelConfig(family="vq", input_shape=[1, 8, 8], likelihood="bernoulli", **sizes))
    cfg.model.pixelcnn_layers = 1
    return Run(None, cfg, build_model(cfg.model).eval())


def hand_count(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """Distinct codes of ``model.codes(x)`` and exp(H) of their frequencies, counted with numpy."""
    with torch.no_grad():
        index = model.codes(x).numpy().ravel()
    _, counts = np.unique(index, return_counts=True)
    p = counts / counts.sum()
    return len(counts), float(np.exp(-(p * np.log(p)).sum()))


def test_evaluate_counts_the_codes_used_and_their_perplexity(capsys):
    run = tiny_vq_run()
    x = (torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    used, perplexity = hand_count(run.model, x)
    assert used > 2  # random codes: several taken
    r = vaekit.evaluate(run, x, iw_samples=2)
    assert (r["codes_used"], r["codebook_size"]) == (used, 16)
    assert r["codebook_perplexity"] == pytest.approx(perplexity, rel=1e-5)
    assert "collapsed" not in capsys.readouterr().err
    rows = {row["metric"]: row["value"] for row in eval_rows(r)}
    assert rows["codes_used"] == str(used) and rows["codebook_size"] == "16"  # the report page's table


def test_a_collapsed_codebook_is_said_once_naming_the_setting(capsys):
    run = tiny_vq_run()
    run.model.codebook[1:] = 1e4  # every encoder vector nearest to code 0
    run.model.codebook[0] = 0.0
    x = (torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    assert hand_count(run.model, x) == (1, 1.0)
    r = vaekit.evaluate(run, x, iw_samples=2)
    assert (r["codes_used"], r["codebook_perplexity"]) == (1, 1.0)
    err = [line for line in capsys.readouterr().err.splitlines() if "collapsed" in line]
    assert len(err) == 1 and "use 1 of 16 codes" in err[0] and "model.codebook_size smaller" in err[0]
    assert "--" not in err[0]  # a setting, never a CLI flag


def test_a_model_without_a_codebook_has_no_codebook_figures():
    cfg = RunConfig(model=ModelConfig(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli"))
    r = vaekit.evaluate(Run(None, cfg, build_model(cfg.model).eval()), torch.rand(6, 1, 4, 4).round(), iw_samples=2)
    assert "codes_used" not in r and "codebook_perplexity" not in r
