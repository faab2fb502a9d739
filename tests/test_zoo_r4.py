"""The zoo, round 4: what does not compose is said (free bits of a gumbel, a rising temperature, the objectives a
family refuses), the default anomaly scores a model leaves out are named, export leaves out a part it cannot
write, and the decoder is checked on codes from the model's own prior."""

from __future__ import annotations

from importlib.util import find_spec
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.cli.ship import refused_objectives
from vaekit.config import RunConfig, refuse_conflicts
from vaekit.config.checks import short_runs
from vaekit.errors import VaekitError
from vaekit.export import onnx as export

from .conftest import train_argv

ONNX = pytest.mark.skipif(find_spec("onnxruntime") is None or find_spec("onnx") is None, reason="needs onnx")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One-epoch runs on 60 random labelled 6x6 images: an iaf posterior, a gumbel, a cvae (3 classes)."""
    tmp = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 6, 6)).astype(np.float32), y=rng.integers(0, 3, 60))
    for name, flags in {
        "iaf": ["--posterior", "iaf"],
        "gumbel": ["--model", "gumbel"],
        "cvae": ["--model", "cvae"],
    }.items():
        argv = train_argv(tmp / "img.npz", tmp / name, *flags, "--hidden", "16", "--latent-dim", "2")
        assert main([*argv, "--batch-size", "16"]) == 0
    return tmp


def test_free_bits_of_a_gumbel_are_refused_in_its_own_words():
    cfg = RunConfig()
    cfg.model.family, cfg.train.free_bits = "gumbel", 1.0
    with pytest.raises(VaekitError, match="categorical VAE's KL \\(family gumbel\\) is one total") as e:
        refuse_conflicts(cfg)
    assert "Gaussian posterior" not in str(e.value)


@pytest.mark.parametrize("end,said", [(2.0, True), (0.5, False)])
def test_a_rising_gumbel_temperature_is_said(end, said):
    cfg = RunConfig()
    cfg.model.family, cfg.train.gumbel_tau_end = "gumbel", end
    assert any("temperature rises" in n for n in short_runs(cfg)) == said


def test_models_ends_with_the_objectives_each_family_refuses():
    line = refused_objectives()
    assert "vq: every one but elbo" in line and "gumbel: iwae, miwae, ciwae, piwae;" in line
    assert "ladder: piwae, mmd, factor" in line and "vae:" not in line


@pytest.mark.parametrize(
    "name,argv,said",
    [
        ("iaf", ["--iw-samples", "2"], "likelihood_regret left out: q(z|x) is a flow posterior (it refits a Gaussian"),
        ("gumbel", ["--iw-samples", "2"], "likelihood_regret left out: q(z|x) is categorical"),
        ("iaf", ["--score", "neg_elbo"], None),  # scores named: nothing left out
        ("cvae", ["--iw-samples", "2"], None),  # a Gaussian q(z|x): every default score
    ],
)
def test_default_anomaly_scores_name_what_the_model_leaves_out(zoo, name, argv, said, capsys):
    out = zoo / f"{name}-{argv[0]}.csv"
    assert main(["anomaly", str(zoo / name), "--split", "test", *argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (said in err) if said else "left out" not in err
    assert ("likelihood_regret" in out.read_text().splitlines()[0]) == (name == "cvae")


def test_anomaly_eval_says_it_once(zoo, capsys):
    argv = ["anomaly-eval", str(zoo / "iaf"), "--data", str(zoo / "img.npz"), "--normal", "0,1", "--iw-samples", "2"]
    assert main(argv) == 0
    assert capsys.readouterr().err.count("likelihood_regret left out") == 1


@ONNX
def test_export_of_a_flow_posterior_writes_the_decoder_and_says_why(zoo, capsys):
    out = zoo / "onnx"
    assert main(["export", str(zoo / "iaf"), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "encoder.onnx not written: the encoder's q(z|x) is a flow posterior (model.posterior iaf)" in said
    assert (out / "decoder.onnx").is_file() and not (out / "encoder.onnx").exists()
    for part in ("both", "encoder"):
        assert main(["export", str(zoo / "iaf"), "--out", str(zoo / part), "--part", part]) == 2
        err = capsys.readouterr().err
        assert f"--part {part}: the encoder's q(z|x) is a flow posterior" in err and "--part decoder" in err
        assert not (zoo / part).exists()


@ONNX
def test_a_gumbel_decoder_is_checked_on_one_hot_codes_of_its_prior(zoo, capsys):
    run = vaekit.load_run(zoo / "gumbel")
    z = export.example_inputs(run, "decoder", 50, seed=1)[0]  # what the check feeds
    assert set(z.unique().tolist()) == {0.0, 1.0} and torch.equal(z.view(50, 2, -1).sum(-1), torch.ones(50, 2))
    assert main(["export", str(zoo / "gumbel"), "--out", str(zoo / "g"), "--part", "decoder"]) == 0
    assert "on 100 codes from the model's prior" in capsys.readouterr().out


@pytest.mark.parametrize(
    "settings,prior",
    [({"prior": "mixture", "latent_dim": 2}, True), ({"family": "ladder", "latent_dims": [3, 2]}, True), ({}, False)],
)
def test_decoder_probes_come_from_a_prior_other_than_n01(settings, prior):
    m = vaekit.build_model(input_shape=(6,), likelihood="gaussian", hidden=[8], **settings)
    run = SimpleNamespace(model=m, config=SimpleNamespace(model=SimpleNamespace(input_shape=[6], num_classes=0)))
    said = export.check_inputs(run, "decoder")
    assert said == ("100 codes from the model's prior" if prior else "100 codes z ~ N(0, I)")
    z = export.example_inputs(run, "decoder", 8, seed=3)[0]
    torch.manual_seed(0)  # the draws are the seed's, whatever the global RNG holds
    assert z.shape == (8, sum(m.latent_dims)) and torch.equal(z, export.example_inputs(run, "decoder", 8, seed=3)[0])
    want = torch.randn(8, sum(m.latent_dims), generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, want) != prior  # N(0, I) probes are as before


def test_a_class_grid_says_what_n_made_of_it(zoo, capsys):
    assert main(["sample", str(zoo / "cvae"), "--n", "7", "--out", str(zoo / "s.npy")]) == 0
    assert "6 samples written to" in (out := capsys.readouterr().out) and "(2 per class of 3: --n 7 // 3)" in out
