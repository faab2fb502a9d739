"""Own networks, round 3: a module whose init argument cannot be read back is said at fit and refused at load with
that cause; NaN is blamed on the encoder where it starts there; the CLI says its own way to allow a class and to
give labels; a resume or a skeleton of other networks or another likelihood says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.training.first_step import TrainingStopped

X = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
Y = np.arange(64) % 3


class Enc(nn.Module):
    """An encoder that keeps none of its init arguments (its sizes need no reading back: the rebuild agrees)."""

    def __init__(self, d: int = 16, h: int = 8):
        super().__init__()
        self.fc = nn.Linear(d, h)

    def forward(self, x):
        return torch.relu(self.fc(x.flatten(1)))


class Dec(nn.Module):
    def __init__(self, z: int = 2, d: int = 16):
        super().__init__()
        self.fc = nn.Linear(z, d)

    def forward(self, z):
        return self.fc(z).view(-1, 1, 4, 4)


class HiddenGain(Enc):
    """``gain`` kept as ``_gain``: model.json cannot record it."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self._gain = gain

    def forward(self, x):
        return super().forward(x) * self._gain


class KeptGain(HiddenGain):
    def __init__(self, gain: float = 1.0):
        super().__init__(gain)
        self.gain = gain


class NanEnc(Enc):
    """NaN from the start, or (``after``) from its ``after``-th call in training mode."""

    def __init__(self, after: int = 0):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += self.training
        return super().forward(x) * (float("nan") if self.training and self.calls > self.after else 1.0)


def fit(model, out=None, data=X, **kw):
    return vaekit.fit(model, data, epochs=1, progress=False, pictures=False, out=out, overwrite=True, **kw)


def vae(encoder, likelihood="gaussian"):
    return vaekit.VAE(encoder, Dec(), latent_dim=2, likelihood=likelihood)


def test_an_init_argument_not_kept_is_said_at_fit_and_refused_at_load(tmp_path, capsys):
    run = fit(vae(HiddenGain(gain=5.0)), tmp_path / "gain")
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "HiddenGain" in said and "argument gain" in said and "model=...)" in said
    saved = json.loads((run.path / "model.json").read_text())
    assert saved["spec"] is None and "gain" in saved["reason"]
    with pytest.raises(vaekit.VaekitError, match="HiddenGain keeps its init argument gain") as e:
        vaekit.load_run(run.path, trust_code=True)
    assert "\n" not in str(e.value)
    again = vaekit.load_run(run.path, model=vae(HiddenGain(gain=5.0)))
    assert torch.allclose(again.encode(X[:3]).mean, run.encode(X[:3]).mean)
    kept = fit(vae(KeptGain(gain=5.0)), tmp_path / "kept")  # kept as self.gain: rebuilt, and said nothing
    assert capsys.readouterr().err == ""
    assert torch.allclose(vaekit.load_run(kept.path, trust_code=True).encode(X[:3]).mean, kept.encode(X[:3]).mean)


def test_a_decoder_size_not_kept_is_named_not_a_shape_error(tmp_path, capsys):
    model = vaekit.ConditionalVAE(Enc(), Dec(z=5), latent_dim=2, num_classes=3, likelihood="gaussian")
    run = fit(model, tmp_path / "cvae", data=(X, Y))
    assert "Dec keeps its init arguments z, d under no attributes" in capsys.readouterr().err
    with pytest.raises(vaekit.VaekitError, match=r"submodule decoder \(tests.test_own_nets_r3:Dec\)") as e:
        vaekit.load_run(run.path, trust_code=True)
    assert "mat1" not in str(e.value)


def test_nan_from_the_encoder_is_blamed_on_the_encoder():
    with pytest.raises(TrainingStopped, match=r"before any update.*from the encoder") as e:
        fit(vae(NanEnc()))
    assert "decoder" not in str(e.value) and "its draws of z are not finite" in str(e.value)


def test_a_loss_that_turns_nan_names_its_term_not_the_learning_rate(capsys):
    with pytest.raises(TrainingStopped, match="every step of it was skipped") as e:
        vaekit.fit(vae(NanEnc(after=2)), X, epochs=2, batch_size=8, progress=False, pictures=False)
    line = str(e.value)
    assert "the loss itself is not finite" in line and "from the encoder" in line and "train.lr" not in line
    assert "train.lr" not in capsys.readouterr().err  # nor the warning of the skips in a row


def test_the_cli_says_its_own_ways(tmp_path, capsys):
    run = fit(vae(Enc()), tmp_path / "own")
    data = tmp_path / "x.npy"
    np.save(data, X.numpy())
    assert main(["evaluate", str(run.path), "--data", str(data)]) == 2
    line = capsys.readouterr().err
    assert "register_module(Enc)" in line and "PYTHONPATH" in line and line.strip().endswith("(--trust-code)")
    saved = json.loads((run.path / "model.json").read_text())
    saved["spec"]["args"]["encoder"]["module"]["class"] = "os:system"
    (run.path / "model.json").write_text(json.dumps(saved))
    assert main(["evaluate", str(run.path), "--data", str(data)]) == 2
    line = capsys.readouterr().err
    assert "os:system, which is a function, not an nn.Module class" in line and "register_module" not in line
    nets = nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), nn.Sequential(nn.Linear(5, 16), nn.Unflatten(1, (1, 4, 4)))
    cvae = fit(vaekit.ConditionalVAE(*nets, latent_dim=2, num_classes=3), tmp_path / "cvae", data=(X, Y))
    assert main(["evaluate", str(cvae.path), "--data", str(data)]) == 2
    line = capsys.readouterr().err
    assert "a file that holds them" in line and "label=K" not in line


def test_other_networks_or_likelihood_are_named(tmp_path):
    run = fit(vae(Enc()), tmp_path / "run")
    other = vaekit.VAE(nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), Dec(), latent_dim=2, likelihood="gaussian")
    with pytest.raises(vaekit.VaekitError, match="encoder is a Sequential where the trained model's is a Enc"):
        vaekit.fit(other, X, epochs=2, progress=False, pictures=False, out=run.path, resume=True)
    with pytest.raises(vaekit.VaekitError, match="the run's likelihood is gaussian, the model given has bernoulli"):
        vaekit.load_run(run.path, model=vae(Enc(), likelihood="bernoulli"))


def test_the_readme_quick_start_runs_twice():
    block = re.search(r"```python\n(.*?)```", (Path(__file__).parents[1] / "README.md").read_text(), re.S)
    assert block is not None and re.search(r"vaekit\.fit\([^\n]*out=[^\n]*overwrite=True", block.group(1))


def test_a_resume_with_networks_of_other_sizes_names_that_cause_first(tmp_path):
    x = torch.rand(40, 6)
    nets = [torch.nn.Sequential(torch.nn.Linear(6, h), torch.nn.ReLU(), torch.nn.Linear(h, 4)) for h in (8, 16)]
    decs = [torch.nn.Sequential(torch.nn.Linear(2, h), torch.nn.ReLU(), torch.nn.Linear(h, 6)) for h in (8, 16)]
    fit = dict(epochs=1, batch_size=20, progress=False, pictures=False, out=tmp_path / "r")
    vaekit.fit(vaekit.VAE(nets[0], decs[0], latent_dim=2, likelihood="gaussian"), x, **fit)
    with pytest.raises(vaekit.VaekitError, match="the model given in Python may have other layers or sizes"):
        vaekit.fit(vaekit.VAE(nets[1], decs[1], latent_dim=2, likelihood="gaussian"), x, resume=True, **fit)


def test_a_decoder_that_gives_fewer_p_x_z_than_codes_is_refused():
    """One that collapsed batches above 2 to one item passed the two-item dry run and trained by broadcasting."""

    class Collapsing(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 6)

        def forward(self, z):
            out = self.net(z)
            return out[:1] if len(z) > 2 else out

    model = vaekit.VAE(nn.Linear(6, 4), Collapsing(), latent_dim=2, likelihood="gaussian")
    x = torch.rand(8, 6)
    with pytest.raises(vaekit.VaekitError, match=r"p\(x\|z\) has batch shape \(1,\) for 8 items"):
        vaekit.elbo(model(x), x)
