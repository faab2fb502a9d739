"""The discrete families' pictures in place of -3..3 traversals: category sweeps of a categorical VAE (valid
one-hots), code sweeps of a VQ-VAE (codebook rows), their ranking, the report's captions, and traverse refusing
such runs in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig, RunConfig
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.runs import Run
from vaekit.viz.discrete_sweeps import category_sweeps, code_sweeps, counts, data_codes, most_varying
from vaekit.viz.figures import decode_mean

VQ = {"codebook_size": 8, "code_dim": 4, "pixelcnn_channels": 8, "pixelcnn_layers": 2}


def digits(n: int = 100) -> torch.Tensor:
    """The first n test items of the built-in digits, binarised: (n, 1, 8, 8)."""
    return (vaekit.load_dataset("digits").test.x[:n] > 0.5).float()


def built(family: str, **model) -> Run:
    """A run of an untrained model of ``family`` on 8x8 digits, its folder none."""
    cfg = RunConfig(model=ModelConfig(family=family, input_shape=[1, 8, 8], likelihood="bernoulli", hidden=[16]))
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return Run(None, cfg, build_model(cfg.model).eval())


def test_variables_rank_by_their_summed_category_variance_not_by_one_coordinate():
    cycle = torch.eye(4)  # variable 0 takes each of 4 categories: per-coordinate variance 0.25, summed 1.0
    halves = torch.eye(4)[[0, 1, 0, 1]]  # variable 1 two categories: per-coordinate 0.33, summed 0.67
    still = torch.eye(4)[[2, 2, 2, 2]]  # variable 2 never changes
    probs = torch.stack([halves, cycle, still], 1)  # (N 4, U 3, K 4)
    assert probs.var(0).flatten().argmax() // 4 == 0  # the top single coordinate is variable 0's (halves)
    assert most_varying(probs, 3) == ([1, 0], 2)  # summed: cycle first; the still variable is left out
    index = torch.tensor([[5, 1, 0], [6, 1, 0], [7, 1, 2], [5, 1, 2]])  # (N 4, P 3): 3 codes, one code, two codes
    assert most_varying(index, 3) == ([0, 2], 2)
    assert most_varying(index[:, 1:2], 3) == ([0], 0)  # none varies: the first still shown


@pytest.mark.parametrize("k", [3, 12])
def test_category_sweeps_decode_one_hots_of_each_category_of_the_varying_variables(k):
    run = built("gumbel", latent_dim=4, categories=k)
    head = run.model.to_logits
    with torch.no_grad():
        head.weight.mul_(30)  # near one-hot categories that vary with x
        for u in (0, 2):  # variables 0 and 2: one fixed category whatever x
            head.weight[u * k : (u + 1) * k] = 0
            head.bias[u * k : (u + 1) * k] = torch.arange(k, dtype=torch.float32) * 5
    x = digits()
    s = category_sweeps(run, x, n_vars=4)
    assert sorted(s.rows) == [1, 3] and s.active == 2
    c = min(k, 10)
    z = s.z.view(len(s.rows), c, 4, k)  # (R, C, U, K)
    assert set(z.unique().tolist()) == {0.0, 1.0} and torch.equal(z.sum(-1), torch.ones(len(s.rows), c, 4))
    base = data_codes(run, x)[0].argmax(-1)  # item 0's most probable categories (U,)
    use = data_codes(run, x).mean(0)  # (U, K)
    for r, u in enumerate(s.rows):
        assert torch.equal(z[r, :, u].argmax(-1), s.picks[r])  # column c sets category picks[r, c]
        assert s.picks[r].tolist() == (list(range(k)) if k <= 10 else use[u].argsort(descending=True)[:10].tolist())
        others = [v for v in range(4) if v != u]
        assert torch.equal(z[r][:, others].argmax(-1), base[others].expand(c, 3))
    assert torch.allclose(s.x.flatten(0, 1), decode_mean(run, s.z.flatten(0, 1)))


def test_code_sweeps_decode_codebook_rows_most_used_first_at_the_varying_positions():
    run = built("vq", latent_dim=4, **VQ)  # a 1 x 4 grid of 4-dim codes of 8
    book, linear = run.model.codebook, run.model.encoder[1]  # its output (D * P,) is (D, 1, P) channel-major
    with torch.no_grad():
        linear.weight.mul_(5)
        for p in (0, 2):  # positions 0 and 2 take one code whatever x
            linear.weight[p::4] = 0
    x = digits()
    s = code_sweeps(run, x, n_positions=4)
    assert s.rows and set(s.rows) <= {1, 3} and s.grid == (1, 4)
    vectors = s.z.view(len(s.rows), -1, 4, 4).transpose(-1, -2)  # (R, C, P, D)
    assert (vectors.reshape(-1, 1, 4) == book).all(-1).any(1).all()  # every vector a codebook row
    index = data_codes(run, x)  # (N, P)
    used = counts(index, len(book))
    for r, p in enumerate(s.rows):
        assert torch.equal(vectors[r, :, p], book[s.picks[r]])
        others = [q for q in range(4) if q != p]
        assert torch.equal(vectors[r][:, others], book[index[0, others]].expand(len(s.picks[r]), 3, 4))
        n = used[p, s.picks[r]]
        assert (n[:-1] >= n[1:]).all() and n[0] == used[p].max()  # ranked by use at that position


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One-epoch gumbel (MLP) and vq (conv, a 3 x 3 grid) runs of 60 9x11 images, each with its report."""
    tmp = tmp_path_factory.mktemp("sweeps")
    np.save(tmp / "img.npy", (np.random.default_rng(0).random((60, 9, 11)) > 0.6).astype(np.float32))
    train = {"train.epochs": 1, "train.batch_size": 16, "train.progress": False}
    models = {
        "gumbel": {"model.hidden": [16], "model.latent_dim": 4, "model.categories": 3},
        "vq": {"model.net": "conv", "model.channels": [4, 8], "train.prior_epochs": 1}
        | {f"model.{k}": v for k, v in VQ.items()},
    }
    out = {}
    for family, settings in models.items():
        run = vaekit.train(data=str(tmp / "img.npy"), model=family, out=str(tmp / family), pictures=False, **train,
                           **settings)  # fmt: skip
        assert main(["report", str(run.path), "--iw-samples", "2"]) == 0
        out[family] = run.path
    return out


@pytest.mark.parametrize("family, title", [("gumbel", "Category sweeps"), ("vq", "Code sweeps")])
def test_the_report_draws_sweeps_of_a_discrete_code_not_traversals(runs, family, title):
    page = (runs[family] / "report.html").read_text()
    assert title in page and "item 0&#x27;s code" in page
    assert "-3 to 3" not in page and "Traversals" not in page
    assert family == "gumbel" or "of the 3 x 3 code grid" in page


@pytest.mark.parametrize("family, sweep", [("gumbel", "category_sweeps"), ("vq", "code_sweeps")])
def test_traverse_refuses_a_discrete_code_in_one_line_naming_its_sweeps(runs, family, sweep, capsys):
    assert main(["traverse", str(runs[family])]) == 2
    err = capsys.readouterr().err.strip()
    assert sweep in err and "\n" not in err and not (runs[family] / "traversals.png").exists()
    assert "(--dims)" not in err  # no dims would do
    run = vaekit.load_run(runs[family])
    with pytest.raises(VaekitError, match=sweep):
        vaekit.traverse(run, torch.zeros(run.model.latent_dims[0]), [0], [-3.0, 3.0])
