"""Disentanglement, round 3: scores with fewer than 2 varying factors, DCI's scores of 1 by construction, the vote
scores at chance on few items, SAP's test-constant factors, dims constant up to rounding, DCI under rescaling, the
votes floor, the input checks, `vaekit disentangle --device` and its last line, and the guide."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vaekit.cli import main
from vaekit.config import RunConfig
from vaekit.errors import VaekitError
from vaekit.evaluation import disentangle as D
from vaekit.evaluation import disentangle_run
from vaekit.evaluation.disentangle_checks import split_votes
from vaekit.evaluation.information import discretize
from vaekit.runs import Run
from vaekit.viz import figures

SIZES = (3, 6, 40, 32, 32)  # the dSprites factors' sizes
DOCS = Path(__file__).parents[1] / "docs"
FUNCTIONS = ("mig", "sap", "dci", "factorvae_score", "betavae_score", "factor_of_each_code", "scores")


def known(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Factors (n, 3) and a noisy code of them with two noise dims (n, 5)."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, k, n) for k in (3, 6, 10)], 1)
    return np.hstack([f + 0.3 * rng.normal(size=f.shape), rng.normal(size=(n, 2))]), f


class Factors:
    """A factor-sampling data set whose images are its factors (B, K, 1, 1)."""

    factor_names = ("a", "b")

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.factor_sizes = sizes

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, k, n) for k in self.factor_sizes], 1)

    def images(self, f: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(f.astype(np.float32))[:, :, None, None]


@pytest.mark.parametrize("vary", [1, 0])
def test_scores_with_fewer_than_2_varying_factors_give_none_and_say_why(vary, capsys):
    torch.manual_seed(0)
    out = D.scores(lambda x: torch.randn(len(x), 3), Factors((8, 1) if vary else (1, 1)), 300, 100, (20, 10), 8)
    assert out["factorvae"] is None and out["betavae"] is None  # a noise code scored 1.0 by construction
    assert (out["dci_disentanglement"] is None) == (vary == 1) and out["mig"] < 0.1
    assert f"factors that vary: {vary}; the FactorVAE" in capsys.readouterr().err


def test_dci_gives_none_where_a_score_is_1_by_construction():
    c, f = known(600)
    one_factor, one_dim = D.dci(c, f[:, :1], c, f[:, :1]), D.dci(c[:, :1], f, c[:, :1], f)
    assert one_factor["disentanglement"] is None and 0.3 < one_factor["completeness"] < 1
    assert one_dim["completeness"] is None and one_dim["disentanglement"] == 0.0  # not 2.2e-16


def test_vote_scores_of_random_codes_on_few_items_sit_at_chance():
    fv, bv = [], []
    for s in range(8):
        rng = np.random.default_rng(s)
        f, c = np.stack([rng.integers(0, k, 300) for k in SIZES], 1), rng.normal(size=(300, 10))
        fv.append(D.factorvae_score(c, f, n_train=600, n_eval=300, seed=s))
        bv.append(D.betavae_score(c, f, n_train=600, n_eval=300, seed=s))
    assert abs(np.mean(fv) - 0.2) < 0.035 and abs(np.mean(bv) - 0.2) < 0.06  # were 0.27 and 0.36


def test_evaluation_votes_draw_from_items_no_training_vote_drew():
    f = known(300)[1]
    idx, ks, halves = split_votes(f, 200, 100, 16, seed=0, pairs=True)  # (300, 2, 16), (300,)
    assert not set(idx[:200].ravel()) & set(idx[200:].ravel()) and set(idx[:200].ravel()) <= set(halves[0])
    assert (idx[:, 0] != idx[:, 1]).all()  # a pair is two items: the same one twice differs by 0
    assert all(len(np.unique(f[i, k])) == 1 for i, k in zip(idx, ks))
    with pytest.raises(VaekitError, match="no value of factor 1 is held by 2 of the 150 items"):
        D.betavae_score(f[:, :1] + 0.0, np.c_[f[:, 0], np.arange(300)], n_train=20, n_eval=10)  # an id factor


def test_sap_leaves_out_a_factor_constant_in_the_test_items():
    (c, f), (ct, ft) = known(1500), known(500, 1)
    ft[:, 0] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's "single label" and divide-by-zero warnings
        assert D.sap(c, f, ct, ft) == D.sap(c, f[:, 1:], ct, ft[:, 1:]) > 0.8  # was 0.66: its gap counted as 0


@pytest.mark.parametrize("metric", ["mig", "sap", "labels"])
def test_a_dim_constant_up_to_rounding_is_constant(metric):
    c, f = known(600)
    score = {
        "mig": lambda z: D.mig(z, f),
        "sap": lambda z: D.sap(z, f, z, f),
        "labels": lambda z: D.factor_of_each_code(z, f, ("a", "b", "c")),
    }[metric]
    rounding = 0.3 + np.random.default_rng(1).integers(0, 40, 600) * np.spacing(0.3)  # 0.3 is 0.1 + 0.2 give or take
    assert score(np.c_[c, rounding]) == score(np.c_[c, np.full(600, 0.3)])
    assert len(np.unique(discretize(1 + np.arange(50.0)[:, None] * 2.2e-16, 1000))) == 1  # too narrow for the bins


@pytest.mark.parametrize(
    "change", [lambda z: z * 1e-50, lambda z: z + 1e8, lambda z: z * 1e39], ids=["tiny", "+1e8", "huge"]
)
def test_dci_is_unchanged_by_rescaling_or_shifting_the_codes(change):
    (c, f), (ct, ft) = known(800), known(300, 1)
    assert D.dci(change(c), f, change(ct), ft) == pytest.approx(D.dci(c, f, ct, ft), abs=1e-9)


def test_votes_below_the_floor_are_refused_saying_it(tmp_path, capsys):
    with pytest.raises(VaekitError, match=r"votes must be >= 100 \(half as many evaluate"):
        disentangle_run.evaluate_run(SimpleNamespace(), votes=99)  # refused before the run is read
    for flags, said in [(["--votes", "99"], "--votes must be >= 100"), (["--n-dims", "0"], "--n-dims must be >= 1")]:
        assert main(["disentangle", str(tmp_path), *flags]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c, f: D.factor_of_each_code(c, f, ("a",)), "names: 1 for 3 factors"),
        (lambda c, f: D.mig(c, np.array(list("abcdefghij"))[f]), "map categorical labels to integers"),
        (lambda c, f: D.mig(c, f * 1e19), "overflow int64"),
        (lambda c, f: D.mig(c, f.astype(np.uint64) + np.uint64(2**63)), "overflow int64"),
    ],
)
def test_bad_names_and_factors_are_refused_in_one_line(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's cast warning of 1e19
        with pytest.raises(VaekitError, match=match) as e:
            call(*known(100))
    assert "\n" not in str(e.value)


def test_disentangle_takes_device_and_names_its_files_as_given(tmp_path, monkeypatch, capsys):
    (tmp_path / "run").mkdir()
    asked = []
    result = {"metrics": {"mig": 0.5}, "active_dims": 1, "dims": [{"dim": 0, "factor": "a", "normalised_mi": 0.5}]}
    monkeypatch.setattr(Run, "load", lambda path, device="cpu": asked.append(device) or SimpleNamespace(
        folder=tmp_path / "run", digest="d"))  # fmt: skip
    monkeypatch.setattr(disentangle_run, "evaluate_run", lambda *a: {**result, "traversal_dims": [0],
                        "settings": {"active_std": 0.05}})  # fmt: skip
    monkeypatch.setattr(figures, "save_factor_traversals", lambda *a, **k: None)
    monkeypatch.chdir(tmp_path)
    assert main(["disentangle", "run", "--device", "cuda:0"]) == 0 and asked == ["cuda:0"]
    assert capsys.readouterr().out.splitlines()[-1] == "-> run/disentangle.json, run/disentangle-traversals.png"


def test_the_guide_names_the_factor_objective_the_functions_and_the_discretiser():
    said, api = " ".join((DOCS / "guides/disentanglement.md").read_text().split()), (DOCS / "api.md").read_text()
    assert "`--objective factor`" in said and "train.factor_gamma" in said and "information.discretize" in said
    assert all(f"`{name}(" in said and f"::: vaekit.evaluation.disentangle.{name}\n" in api for name in FUNCTIONS)
    cfg = RunConfig()
    cfg.data.spec = "digits"
    with pytest.raises(VaekitError, match="for your own codes and factors: mig, sap, dci"):
        disentangle_run.dsprites_size(SimpleNamespace(config=cfg, model=None, path="runs/x"))
