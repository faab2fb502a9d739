"""Anomaly detection, round 4: the rate KL(q(z|x) || p(z)) as a score of every family, other data's labels
named by their own names (not a Fashion-MNIST run's), and a table's label column named for a run trained
without labels."""

from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, kl_divergence

from tests.conftest import OwnModel, train_argv
from tests.test_contract import CASES, make
from vaekit.cli import main
from vaekit.core import diag_normal, gaussian
from vaekit.core.contract import flat
from vaekit.data.builtin import FASHION_CLASSES, IDX_NAMES
from vaekit.evaluation.scores import anomaly_scores, scores_that_apply


@pytest.mark.parametrize("case", CASES)
def test_kl_scores_every_family_from_its_contract(case):
    """One latent level: KL(encode(x) || prior()), analytic; a hierarchy: every level's KL, as its ELBO takes it,
    so more than the top level's alone."""
    torch.manual_seed(0)
    model, x, y = make(case)
    model.eval()
    x, y = x[:6], None if y is None else y[:6]
    assert ("kl" in scores_that_apply(model, x.dim() == 4, x[:1], None if y is None else y[:1])) == (case != "vq")
    got = torch.as_tensor(anomaly_scores(model, x, "kl", samples=2, y=y)["kl"])
    with torch.no_grad():
        qz, pz = model.encode(x, y), model.prior(y if model.needs_labels else None)
        if flat(model):
            torch.testing.assert_close(got, kl_divergence(qz, pz).double())
        else:  # the top level's q is the first latent_dims[0] dims of encode's; prior() is its p
            top = model.latent_dims[0]
            q_top = gaussian(qz.base_dist.loc[:, :top], qz.base_dist.scale[:, :top])
            assert (got > kl_divergence(q_top, pz).double() + 1e-3).all()


class MixturePrior(OwnModel):
    """A user's model whose prior, a one-component mixture of N(0, I), has no analytic KL with its q."""

    needs_labels, latent_dims = False, [2]

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 4), nn.Linear(2, 4)

    def encode(self, x, y=None):
        return diag_normal(self.enc(x))

    def decode(self, z, y=None):
        return gaussian(self.dec(z), torch.ones(4))

    def prior(self, y=None):
        return MixtureSameFamily(Categorical(logits=torch.zeros(1)), gaussian(torch.zeros(1, 2), torch.ones(1, 2)))


def test_kl_without_a_closed_form_is_a_shared_draw_estimate():
    torch.manual_seed(0)
    model, x = MixturePrior().eval(), torch.randn(6, 4)
    with pytest.raises(NotImplementedError):
        kl_divergence(model.encode(x), model.prior())
    with torch.no_grad():
        exact = kl_divergence(model.encode(x), gaussian(torch.zeros(2), torch.ones(2))).double()
    many = anomaly_scores(model, x, "kl", samples=20000)["kl"]
    np.testing.assert_allclose(many, exact, rtol=0.05, atol=0.01)
    few = [anomaly_scores(model, x, "kl", samples=4, batch_size=b)["kl"] for b in (6, 2)]
    np.testing.assert_array_equal(*few)  # common random numbers: no item's score depends on its batch
    assert not np.allclose(few[0], exact)  # S draws, not the closed form


def write_idx(folder, n: int, seed: int) -> None:
    """The four IDX files of a set of n training and n test 28 x 28 images, labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    for stem in IDX_NAMES:
        if "images" in stem:
            body = struct.pack(">iiii", 2051, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), np.uint8).tobytes()
        else:
            body = struct.pack(">ii", 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes()
        (folder / stem).write_bytes(body)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A conditional run of 'fashion-mnist' (40 items of four IDX files in data.data_dir, so named by
    Fashion-MNIST's classes), and those files read as 'mnist' (no class names) or as a .npz of label numbers."""
    tmp = tmp_path_factory.mktemp("anomaly_r4")
    write_idx(tmp, 40, 0)
    flags = ("--conditional", "--data-dir", str(tmp), "--hidden", "8", "--latent-dim", "2")
    assert main(train_argv("fashion-mnist", tmp / "run", *flags)) == 0
    np.savez(tmp / "items.npz", x=np.zeros((10, 28, 28), np.uint8), y=np.arange(10))
    return tmp


@pytest.mark.parametrize(
    "data,split,named",
    [([], "test", True), (["--data", "mnist"], "test", False), (["--data", "mnist"], "all", False)]
    + [(["--data", "items.npz"], "all", True)],
)
def test_labels_are_named_by_the_run_only_for_its_own_data_or_a_file_it_reads(fashion, data, split, named):
    """mnist's digit 4 is written as 4 without a name, not as "Coat"; the run's own data and a file of label
    numbers (read with its classes) keep its names."""
    out, data = fashion / "s.csv", [str(fashion / d) if d.endswith(".npz") else d for d in data]
    argv = ["anomaly", str(fashion / "run"), *data, "--split", split, "--score", "kl", "--out", str(out)]
    assert main(argv) == 0
    rows = list(csv.DictReader(out.open()))
    assert ("class_name" in rows[0]) == named and rows
    if named:
        assert all(r["class_name"] == FASHION_CLASSES[int(r["label"])] for r in rows)
    if "mnist" in data and split == "all":  # each item's own number: the labels 0..9 in turn, file by file
        assert [int(r["label"]) for r in rows] == [i % 10 for i in range(80)]


def test_eval_takes_a_builtin_set_s_own_label_numbers(fashion, capsys):
    run = str(fashion / "run")
    assert main(["anomaly-eval", run, "--data", "mnist", "--normal", "4", "--score", "kl", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_in"] == 4  # the 4s of its test file's 40 items
    assert main(["anomaly-eval", run, "--data", "mnist", "--normal", "Coat", "--score", "kl"]) != 0
    assert "--normal 'Coat': not a class of the test split of mnist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """A table run trained without labels (columns a, b), and files holding an is_fraud column besides."""
    tmp = tmp_path_factory.mktemp("anomaly_r4_table")
    rng = np.random.default_rng(0)
    (tmp / "normal.csv").write_text("a,b\n" + "".join(f"{a:.3f},{b:.3f}\n" for a, b in rng.normal(size=(40, 2))))
    assert main(train_argv(tmp / "normal.csv", tmp / "run", "--hidden", "8", "--latent-dim", "2")) == 0
    rows = [(*rng.normal(size=2) * (1 + 9 * f), f) for f in [0] * 7 + [1] * 5]
    (tmp / "last.csv").write_text("a,b,is_fraud\n" + "".join(f"{a:.3f},{b:.3f},{f}\n" for a, b, f in rows))
    (tmp / "middle.csv").write_text("a,is_fraud,b\n" + "".join(f"{a:.3f},{f},{b:.3f}\n" for a, b, f in rows))
    return tmp


@pytest.mark.parametrize("file", ["last.csv", "middle.csv"])
def test_eval_reads_the_label_column_normal_names_for_a_run_without_labels(unlabelled, file, capsys):
    argv = ["anomaly-eval", str(unlabelled / "run"), "--data", str(unlabelled / file), "--score", "recon_error"]
    assert main([*argv, "--normal", "0"]) != 0  # the column is no feature of the run: it says how to name it
    err = capsys.readouterr().err.splitlines()[-1]
    assert "(extra 'is_fraud')" in err.split("; the run's")[0] and err.endswith("name it: --label-column")
    assert main([*argv, "--normal", "0", "--label-column", "is_fraud", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["n_in"], printed["n_out"]) == (7, 5) and printed["scores"]["recon_error"]["auroc"] > 0.8
    assert main([*argv, "--normal", "0", "--label-column", "nope"]) != 0
    assert "no column named 'nope'" in capsys.readouterr().err
