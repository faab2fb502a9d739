"""Evaluation (eval.json, the bounds, active units) and the pictures: shapes, end points, tables, bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.distributions import Beta, Independent, Normal

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.config import ModelConfig, RunConfig
from vaekit.data import Dataset, Split
from vaekit.data.prepare import prepare_data
from vaekit.evaluation.metrics import active_units, elbo_terms, refuse_not_finite
from vaekit.evaluation.outputs import prepared_split
from vaekit.models import build_model
from vaekit.runs import Run
from vaekit.viz.figures import displayable, interpolate, lerp, slerp, top_dims, traverse

from .conftest import OwnModel

TINY = ["--model", "mlp", "--hidden", "16", "--batch-size", "16", "--epochs", "1", "--quiet"]
QUIET = dict(progress=False, pictures=False)
TILE_H, TILE_W = 9 * 3 + 2, 11 * 3 + 2  # 9x11 items are enlarged 3x to reach 28 pixels, plus 2 of padding


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny labelled images (60, 9, 11) and a table (60, 4); runs with 3-D and 2-D latents trained on them."""
    tmp = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    x = (rng.random((60, 9, 11)) > 0.6).astype(np.float32) * rng.random((60, 9, 11)).astype(np.float32)
    np.savez(tmp / "img.npz", x=x, y=rng.integers(0, 3, 60))
    np.save(tmp / "table.npy", rng.normal(size=(60, 4)).astype(np.float32))
    specs = {
        "img3": ("img.npz", 3, []),
        "img2": ("img.npz", 2, []),
        "table": ("table.npy", 2, ["--likelihood", "gaussian"]),
    }
    for name, (data, d, extra) in specs.items():
        assert (
            main(["train", "--data", str(tmp / data), *TINY, "--latent-dim", str(d), *extra, "--out", str(tmp / name)])
            == 0
        )
    return tmp


def test_eval_json_holds_every_field_and_the_bounds_agree(runs, capsys):
    code, out, _ = cli(capsys, "evaluate", runs / "img3", "--iw-samples", 200, "--json")
    assert code == 0
    r = json.loads(out)
    assert r == json.loads((runs / "img3" / "eval.json").read_text())
    for key in (
        "split",
        "n",
        "k",
        "elbo",
        "rec",
        "kl",
        "kl_per_level",
        "kl_per_dim",
        "nll",
        "bits_per_dim",
        "active_units",
        "probe_accuracy",
        "seconds",
    ):
        assert key in r, key
    assert r["n"] == 6 and r["k"] == 200 and len(r["kl_per_dim"]) == 1 and len(r["kl_per_dim"][0]) == 3
    assert r["nll"] <= -r["elbo"] + 0.5  # the IWAE bound with K = 200 is tighter than the ELBO
    assert r["elbo"] == pytest.approx(r["rec"] - r["kl"], abs=1e-3)
    assert sum(r["kl_per_dim"][0]) == pytest.approx(r["kl"], rel=1e-3)
    assert r["bits_per_dim"] == pytest.approx(r["nll"] / (99 * math.log(2)), rel=1e-4)
    assert 0 <= r["active_units"]["total"] <= 3 and 0 <= r["probe_accuracy"] <= 1


def test_the_draws_of_a_ladder_s_upper_level_are_no_activity_of_the_lower_one():
    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(family="ladder", input_shape=[1, 4, 4], hidden=[8], latent_dims=[4, 2]))
    cfg.model.likelihood = "bernoulli"
    run = Run(None, cfg, build_model(cfg.model).eval())
    same = torch.rand(1, 1, 4, 4).expand(30, 1, 4, 4)  # one item, 30 times: no unit varies with x
    assert [m.any().item() for m in active_units(elbo_terms(run, same, None)["means"])] == [False, False]
    levels = vaekit.evaluate(run, same[:4], k=2)  # latent_dims [4, 2] names z_1 first; eval.json the top first
    assert [len(d) for d in levels["kl_per_dim"]] == [2, 4] and len(levels["active_units"]["per_level"]) == 2
    guide = " ".join((Path(__file__).parents[1] / "docs/guides/evaluation.md").read_text().split())
    assert "`per_level` (top level first" in guide and "here z_2's 2 dims, then z_1's 4" in guide
    cfg.model = ModelConfig(input_shape=[1, 4, 4], hidden=[8], latent_dim=3, likelihood="bernoulli", posterior="iaf")
    flow = Run(None, cfg, build_model(cfg.model).eval())
    assert vaekit.evaluate(flow, same[:4], k=2)["kl_per_dim"] == [None]  # one total KL: no dimension to show


def test_active_units_use_the_covariance_of_the_posterior_means_and_rank_traversals():
    loc = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.05 * torch.randn(50)], 1)
    assert active_units([loc, loc[:, :1]])[0].tolist() == [True, False, False]
    assert active_units([loc, loc[:, :1]])[1].tolist() == [True]
    assert top_dims(loc.var(0), 3) == [0]  # the most active dims, inactive ones left out
    assert top_dims(torch.tensor([0.001, 0.002]), 2) == [1, 0]  # unless there is no active one


@pytest.mark.parametrize("wrap", [torch.as_tensor, np.asarray], ids=["tensor", "array"])
def test_active_units_of_one_tensor_is_its_one_mask(wrap):
    loc = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.05 * torch.randn(50)], 1)
    mask = active_units(wrap(loc.numpy()))
    assert torch.equal(mask, active_units([loc])[0]) and mask.tolist() == [True, False, False]
    with pytest.raises(vaekit.VaekitError, match=r"posterior means \(N, D\), or a list of them per level, got \(3,\)"):
        active_units([loc[0]])  # one item's means, not (N, D)


def tiny_run() -> Run:
    """An untrained VAE of binary (1, 4, 4) items, as a run without a folder."""
    cfg = RunConfig(model=ModelConfig(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli"))
    return Run(None, cfg, build_model(cfg.model).eval())


@pytest.mark.parametrize(
    "data,mode,match",
    [
        ("dataset", "bogus", r"mode must be one of dynamic, fixed, none .* got 'bogus'"),
        ("items", "none", "items given are prepared by data.binarize"),
        (None, "fixed", "the run's own data is prepared by data.binarize"),
    ],
)
def test_evaluate_refuses_a_mode_it_cannot_apply(data, mode, match):
    x = (torch.rand(6, 1, 4, 4) > 0.5).float()
    own, run = Dataset("d", Split(x, None), Split(x, None), Split(x, None), (1, 4, 4), "image", None), tiny_run()
    with pytest.raises(vaekit.VaekitError, match=match):
        vaekit.evaluate(run, {"dataset": own, "items": x}.get(data), k=2, mode=mode)
    a, b = ({k: v for k, v in vaekit.evaluate(run, own, k=2, mode=m).items() if k != "seconds"} for m in ("none", None))
    assert a == b  # binary items, used as they are


def test_lerp_and_slerp_hit_their_end_points():
    z0, z1, t = torch.randn(5), torch.randn(5), torch.linspace(0, 1, 7)
    for f in (lerp, slerp):
        z = f(z0, z1, t)
        assert z.shape == (7, 5) and torch.equal(z[0], z0) and torch.equal(z[-1], z1)
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(7))  # on the circle, unlike lerp


def test_interpolation_end_points_decode_the_two_items_posterior_means(runs):
    run = Run.load(runs / "img3")
    data, _ = prepare_data(run.config)
    x = data.test.x[[1, 4]]
    paths = interpolate(run, x, steps=6)
    ends = run.reconstruct(x)  # decoded posterior means
    for p in paths.values():
        assert p.shape == (6, 1, 9, 11)
        assert torch.allclose(p[0], ends[0], atol=1e-6) and torch.allclose(p[-1], ends[1], atol=1e-6)
    xs = traverse(run, torch.zeros(3), [2, 0], torch.linspace(-3, 3, 5))
    assert xs.shape == (2, 5, 1, 9, 11)


@pytest.mark.parametrize(
    "argv,rows,cols",
    [
        (["interpolate", "--items", "0,3", "--steps", 5], 2, 7),
        (["traverse", "--dims", "0,2", "--steps", 6], 2, 6),
        (["traverse", "--dims", 1, "--steps", 4, "--item", 1], 1, 4),
    ],
)
def test_picture_grids_have_rows_by_columns_tiles(runs, capsys, tmp_path, argv, rows, cols, monkeypatch):
    import vaekit.viz.figures as figures

    out, grids, named = tmp_path / "p.png", [], figures.named_grid  # a traversal's grid, drawn with its axes named
    monkeypatch.setattr(figures, "named_grid", lambda grid, *a: grids.append(grid.shape[1::-1]) or named(grid, *a))
    assert cli(capsys, argv[0], runs / "img3", *argv[1:], "--out", out)[0] == 0
    size = grids[0] if argv[0] == "traverse" else Image.open(out).size
    assert size == (cols * TILE_W + 2, rows * TILE_H + 2)


@pytest.mark.parametrize(
    "run,verb", [(r, v) for r in ("img2", "img3", "table") for v in ("latent-map", "interpolate", "traverse", "curves")]
)
def test_every_picture_is_drawn_for_images_and_tables(runs, capsys, tmp_path, run, verb):
    out = tmp_path / "p.png"
    assert cli(capsys, verb, runs / run, "--out", out)[0] == 0
    w, h = Image.open(out).size
    assert w > 100 and h > 25
    if verb == "latent-map":  # 2-D latents: scatter and decoded manifold side by side; else one projection
        assert (w > 1.6 * h) == (run in ("img2", "table"))


def test_a_table_s_report_says_what_its_pictures_show(runs, capsys, tmp_path):
    assert cli(capsys, "report", runs / "table", "--iw-samples", 5, "--out", tmp_path / "r.html")[0] == 0
    page = (tmp_path / "r.html").read_text()
    assert "against its reconstruction" in page and "the first two columns" in page and "each column" in page
    assert "above their reconstructions" not in page and "coloured by label" not in page  # no labels either
    assert "<td>probe_accuracy</td><td>n/a</td>" in page


def test_displayable_maps_any_channel_count_to_a_grid():
    for c, want in ((1, 1), (2, 3), (3, 3), (4, 4), (7, 3)):
        assert displayable(torch.rand(2, c, 5, 6)).shape == (2, want, 5, 6)


BAD = [
    (["evaluate", "{run}", "--iw-samples", "0"], "--iw-samples"),
    (["evaluate", "{tmp}/norun"], "norun"),
    (["evaluate", "{run}", "--data", "digits"], "shape"),
    (["evaluate", "{run}", "--limit", "-3"], "--limit"),
    (["evaluate", "{run}", "--split", "dev"], "split"),
    (["interpolate", "{run}", "--items", "0,999"], "--items"),
    (["interpolate", "{run}", "--items", "a,b"], "--items"),
    (["traverse", "{run}", "--dims", "7"], "--dims"),
    (["latent-map", "{run}", "--out", "{tmp}/m.jpg"], ".png"),
    (["curves", "{tmp}"], "metrics.csv"),
    (["report", "{run}", "--iw-samples", "-1"], "--iw-samples"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a[::2]) for a, _ in BAD])
def test_bad_input_gives_one_line_and_exit_2(runs, capsys, tmp_path, argv, needle):
    code, _, err = cli(capsys, *[a.format(run=runs / "img3", tmp=tmp_path) for a in argv])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error:") and needle in lines[0], err


def test_string_labels_are_the_run_s_classes_and_name_the_labels_evaluated(tmp_path):
    rng = np.random.default_rng(0)
    x, names = rng.random((30, 1, 4, 4)).astype(np.float32), np.array(["dog", "cat", "bird"] * 10)
    cvae = vaekit.build_model(
        family="cvae", num_classes=3, input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli"
    )
    vaekit.fit(cvae, (x, names), epochs=1, out=tmp_path / "cvae", progress=False, pictures=False)
    run = vaekit.load_run(tmp_path / "cvae")
    assert run.classes == ["bird", "cat", "dog"] and run.sample(2, label="dog").shape == (2, 1, 4, 4)
    assert vaekit.fit(cvae, (x, names), epochs=1, progress=False, pictures=False).classes == run.classes  # no out
    named = vaekit.evaluate(run, (x[:6], ["dog", "cat"] * 3), k=2)
    assert named["elbo"] == vaekit.evaluate(run, (x[:6], [2, 1] * 3), k=2)["elbo"]  # numbered as training did
    own = Split(torch.from_numpy(x[:6]), torch.tensor([0, 1] * 3))  # a Dataset whose classes are dog 0, cat 1
    mine = vaekit.evaluate(run, Dataset("d", own, own, own, (1, 4, 4), "image", 2, ["dog", "cat"]), k=2)
    assert mine["elbo"] == named["elbo"]
    with pytest.raises(vaekit.VaekitError, match=r"'cow' is none of the training data's classes \(bird, cat, dog\)"):
        vaekit.evaluate(run, (x[:2], ["cow", "dog"]), k=2)


def test_a_dataset_passed_is_prepared_as_the_cli_prepares_its_file(runs, capsys):
    assert cli(capsys, "evaluate", runs / "img3", "--data", runs / "img.npz", "--iw-samples", 5, "--json")[0] == 0
    want = json.loads((runs / "img3" / "eval.json").read_text())
    data = vaekit.load_dataset(str(runs / "img.npz"))  # grey, as the run's data was before its binarisation
    grey = data.test.x.clone()
    got = vaekit.evaluate(Run.load(runs / "img3"), data, k=5)
    same = ("seconds", "data_stamp")  # the file's fingerprint: of a file's data alone, not of items passed
    assert {k: v for k, v in got.items() if k not in same} == {k: v for k, v in want.items() if k not in same}
    assert torch.equal(data.test.x, grey)  # the caller's Dataset is left as it was


def test_evaluate_scores_every_item_of_other_data_and_keeps_the_run_s_eval_json(runs, capsys, tmp_path):
    x = np.random.default_rng(1).random((3, 9, 11)).astype(np.float32)  # grey: binarised as in training
    np.save(tmp_path / "new data.npy", x)
    run = runs / "img2"
    assert cli(capsys, "evaluate", run, "--iw-samples", 5)[0] == 0
    own = (run / "eval.json").read_text()
    for argv in ([], ["--split", "all"]):
        code, out, _ = cli(capsys, "evaluate", run, "--data", tmp_path / "new data.npy", "--iw-samples", 5, *argv)
        path = run / "eval-new_data.npy-all.json"
        assert code == 0 and out.startswith("new data.npy (all split): n 3 ") and out.strip().endswith(str(path))
        assert (run / "eval.json").read_text() == own
    r, py = json.loads(path.read_text()), vaekit.evaluate(Run.load(run), x[:, None], k=5)
    assert (r["data"], r["split"], r["n"]) == ("new data.npy", "all", 3)
    assert r["elbo"] == pytest.approx(py["elbo"], rel=1e-5) and r["nll"] == pytest.approx(py["nll"], rel=1e-5)
    kept = path.read_text()
    path.write_text(json.dumps(r | {files.DIGEST: "0" * 16}))  # as if computed with other weights
    assert path.name in Run.load(run).stale_files()
    path.write_text(kept)


def test_one_item_has_no_active_units_and_no_probe(runs, capsys):
    code, out, _ = cli(capsys, "evaluate", runs / "img2", "--limit", 1, "--iw-samples", 2)
    r = json.loads((runs / "img2" / "eval.json").read_text())
    assert code == 0 and r["n"] == 1 and r["active_units"]["total"] is None and r["probe_accuracy"] is None
    assert "active units n/a (one item)  probe n/a (one item)" in out


@pytest.mark.parametrize("split", ["test", "all"])
def test_encode_reads_a_binarised_run_s_items_grey_as_the_python_api_does(runs, capsys, tmp_path, split):
    run = Run.load(runs / "img3")
    assert run.config.data.binarize == "dynamic"
    assert cli(capsys, "encode", runs / "img3", "--split", split, "--out", tmp_path / "c.npz")[0] == 0
    test = prepared_split(run, None, "test", binarized=False)[0]  # grey: the binarisation's probabilities
    loc = np.load(tmp_path / "c.npz")["loc"]
    loc = loc if split == "test" else loc[test.rows]  # every item in file order
    assert np.allclose(loc, run.encode(test.x).mean.detach().numpy(), atol=1e-5)
    assert not set(test.x.unique().tolist()) <= {0.0, 1.0}  # grey, not drawn


@pytest.mark.parametrize(
    "wrap",
    [
        lambda x, y: torch.utils.data.TensorDataset(x),
        lambda x, y: torch.utils.data.TensorDataset(x, y),
        lambda x, y: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=4),
    ],
    ids=["dataset", "labelled", "loader"],
)
def test_torch_datasets_and_loaders_evaluate_as_their_tensor(runs, wrap):
    run = Run.load(runs / "img3")
    x = prepare_data(run.config)[0].test.x.clone()  # (6, 1, 9, 11), binary
    got = vaekit.evaluate(run, wrap(x, torch.arange(len(x)) % 3), k=3)
    assert {k: v for k, v in got.items() if k != "seconds"} == {
        k: v for k, v in vaekit.evaluate(run, x, k=3).items() if k != "seconds"
    }


@pytest.mark.parametrize(
    "conditional, run_classes, classes, numbers, names",
    [
        (False, ["barbera", "barolo", "grignolino"], ["barolo", "grignolino"], [1, 2], None),  # a subset
        (False, ["a", "b"], ["b", "z", "y"], [1, 2, 3], ["a", "b", "z", "y"]),  # new classes after the run's
        (False, None, ["5", "7"], [5, 7], ["0", "1", "2", "3", "4", "5", "6", "7"]),  # numbers read as themselves
        (False, None, ["-1", "x"], [0, 1], None),  # none the run could know: the data's own numbering
        (True, ["-1", "5", "7"], ["5", "7"], [1, 2], ["-1", "5", "7"]),
    ],
)
def test_other_data_s_labels_numbered_as_the_run_numbered_its_own(conditional, run_classes, classes, numbers, names):
    from types import SimpleNamespace

    from vaekit.evaluation.labels import label_map

    run = SimpleNamespace(model=SimpleNamespace(needs_labels=conditional), classes=run_classes)
    new, named = label_map(run, classes, "other.csv")
    assert new.tolist() == numbers and named == (names or run_classes or classes)


class _BetaVAE(OwnModel):
    """Items (6,) in [0, 1]: Normal q(z|x), N(0, I) prior, a Beta p(x|z) of the user's own."""

    needs_labels, latent_dims = False, [2]

    def __init__(self):
        super().__init__()
        self.enc, self.dec = torch.nn.Linear(6, 4), torch.nn.Linear(2, 12)

    def encode(self, x, y=None):
        loc, raw = self.enc(x).chunk(2, -1)
        return Independent(Normal(loc, F.softplus(raw) + 1e-3), 1)

    def decode(self, z, y=None):
        a, b = (F.softplus(self.dec(z)) + 0.05).chunk(2, -1)
        return Independent(Beta(a, b, validate_args=False), 1)

    def prior(self, y=None):
        return Independent(Normal(torch.zeros(2), torch.ones(2)), 1)


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_items_whose_log_p_x_given_z_is_not_finite_are_refused_in_one_line_not_scored_nan(edge):
    x = torch.rand(40, 6) * 0.98 + 0.01
    run = vaekit.fit(_BetaVAE(), x, epochs=1, **QUIET)
    assert math.isfinite(vaekit.evaluate(run, x[:10], k=2)["nll"])
    x[3, 0] = edge  # a Beta's log-density at exactly 0 or 1: training stops there, so does evaluate
    with pytest.raises(vaekit.VaekitError) as e:
        vaekit.evaluate(run, x[:10], k=2)
    line = str(e.value)
    assert line.startswith("cannot evaluate data (test split): rec = log p(x|z) is ") and "\n" not in line
    assert " for 1 of 10 items: " in line and "data at the edge of" in line  # training's words for the cause


@pytest.mark.parametrize(
    "bound, line",
    [
        (torch.tensor([-1.0, float("nan"), float("nan")]), "the IWAE bound on log p(x) is NaN for 2 of 3 items: NaN"),
        (torch.tensor([-1.0, -2.0, -math.inf]), "the IWAE bound on log p(x) is infinite for 1 of 3 items: data at"),
    ],
)
def test_a_bound_that_is_not_finite_is_refused_once_the_elbo_pass_was_finite(bound, line):
    finite = torch.zeros(3)
    refuse_not_finite("d (test split)", finite, finite)  # the ELBO pass alone: nothing to say
    with pytest.raises(vaekit.VaekitError, match=r"^cannot evaluate d \(test split\): " + re.escape(line)):
        refuse_not_finite("d (test split)", finite, finite, bound)


def test_a_table_s_bits_per_dim_count_its_columns_not_its_one_hot_slots(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = ["a,b,colour"] + [
        f"{rng.normal():.3f},{rng.integers(0, 10)},{rng.choice(['red', 'green', 'blue'])}" for _ in range(60)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    run = vaekit.train(data=str(tmp_path / "t.csv"), hidden=[8], latent_dim=2, epochs=1, out=tmp_path / "run", **QUIET)
    assert run.config.model.input_shape == [5]  # a, b and colour's one-hot code of 3
    code, out, _ = cli(capsys, "evaluate", tmp_path / "run", "--iw-samples", 3, "--json")
    r = json.loads(out)
    assert code == 0 and r["bits_per_dim"] == pytest.approx(r["nll"] / (3 * math.log(2)), rel=1e-4)  # D = 3 columns


@pytest.mark.parametrize("grey, noted", [(True, True), (False, False)])
def test_a_bernoulli_run_on_grey_targets_says_its_nll_is_a_cross_entropy(capsys, grey, noted):
    run = tiny_run()
    run.config.data.binarize = "none"  # grey items stay grey
    x = torch.rand(6, 1, 4, 4) if grey else (torch.rand(6, 1, 4, 4) > 0.5).float()
    vaekit.evaluate(run, x, k=2)
    err = capsys.readouterr().err
    assert ("scores grey (not binary) items by cross-entropy" in err) == noted and len(err.splitlines()) == noted
