"""Own models, round 6: a rebuild whose distributions are of another family (the same tensors: Laplace(0, 1) for
Normal(0, 1)) counts as not rebuildable, with advice a contract model can follow (``self.prior`` is its method);
``load_run(path, model=...)`` takes a class moved or renamed, with a note naming both, and refuses another layer."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Laplace, Normal

import vaekit

from .conftest import OwnModel

X = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0))


class Own(OwnModel):
    """A contract model of its own whose ``prior`` (a family's name) is kept as ``self.prior_kind``."""

    needs_labels = False

    def __init__(self, d: int = 2, prior: str = "normal"):
        super().__init__()
        self.d, self.prior_kind, self.latent_dims = d, prior, [d]
        self.enc, self.dec = nn.Sequential(nn.Flatten(), nn.Linear(16, 2 * d)), nn.Linear(d, 16)

    def encode(self, x, y=None):
        loc, s = self.enc(x).chunk(2, -1)  # (B, D) each
        return Independent(Normal(loc, nn.functional.softplus(s) + 1e-3), 1)

    def decode(self, z, y=None):
        return Independent(Normal(self.dec(z).view(-1, 1, 4, 4), 1.0), 3)

    def prior(self, y=None):
        z0 = torch.zeros(self.d, device=self.dec.weight.device)
        return Independent((Laplace if self.prior_kind == "laplace" else Normal)(z0, torch.ones_like(z0)), 1)


class Recorded(Own):
    def init_args(self) -> dict:
        return {"d": self.d, "prior": self.prior_kind}


def fit(model, out):
    return vaekit.fit(model, X, epochs=1, progress=False, pictures=False, out=out, overwrite=True)


def test_a_prior_of_another_family_is_not_rebuildable_and_the_advice_is_init_args(tmp_path, capsys):
    run = fit(Own(prior="laplace"), tmp_path / "own")
    said = capsys.readouterr().err
    assert "self.prior is a method: give Own an init_args()" in said and "keep self.prior" not in said
    saved = json.loads((run.path / "model.json").read_text())
    assert saved["spec"] is None and "init argument prior" in saved["reason"]
    with pytest.raises(vaekit.VaekitError, match="cannot be rebuilt from the run folder"):
        vaekit.load_run(run.path, trust_code=True)  # it would take Normal(0, 1): other numbers on the same weights
    again = vaekit.load_run(run.path, model=Own(prior="laplace"))
    assert isinstance(again.model.prior().base_dist, Laplace)
    kept = fit(Recorded(prior="laplace"), tmp_path / "kept")  # init_args(): rebuilt as trained, said nothing
    assert capsys.readouterr().err == ""
    assert isinstance(vaekit.load_run(kept.path, trust_code=True).model.prior().base_dist, Laplace)


def _moved(run, folder, top: str, enc: str | None = None, listed: bool = True):
    """A copy of ``run`` whose model.json names the top class ``top`` (and the encoder's first layer ``enc``)."""
    shutil.copytree(run, folder)
    saved = json.loads((folder / "model.json").read_text())
    saved["class"] = saved["model_class"] = saved["spec"]["class"] = top
    saved["modules"][0][1] = top
    if enc:
        saved["modules"] = [[n, enc if n == "enc.0" else c] for n, c in saved["modules"]]
    (folder / "model.json").write_text(
        json.dumps(saved if listed else {k: v for k, v in saved.items() if k != "modules"})
    )
    return folder


@pytest.mark.parametrize("listed", [True, False])
def test_a_class_moved_or_renamed_loads_into_the_model_given_with_a_note(tmp_path, capsys, listed):
    run = fit(Recorded(), tmp_path / "run").path
    capsys.readouterr()
    for top in ("oldpkg.models:Recorded", "oldpkg.models:OldName"):
        folder = _moved(run, tmp_path / top.replace(":", "_"), top, listed=listed)
        loaded = vaekit.load_run(folder, model=Recorded())
        assert torch.equal(loaded.encode(X[:3]).mean, vaekit.load_run(run, model=Recorded()).encode(X[:3]).mean)
        note = capsys.readouterr().err
        assert note.count("\n") == 1 and f"is a {__name__}:Recorded where it was a {top}" in note
    for top in ("vaekit.models.vae:VAE", "torch.nn.modules.container:Sequential"):  # a library's class: another model
        with pytest.raises(vaekit.VaekitError, match="the model given is not the one trained"):
            vaekit.load_run(_moved(run, tmp_path / top.replace(":", "_"), top), model=Recorded())
    other = _moved(run, tmp_path / "tanh", "oldpkg.models:Recorded", "torch.nn.modules.activation:Tanh")
    with pytest.raises(vaekit.VaekitError, match=r"submodule enc\.0 is a Flatten where the trained model's is a Tanh"):
        vaekit.load_run(other, model=Recorded())
