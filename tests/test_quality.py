"""Sample quality (FID, KID, precision/recall with the data-vs-data yardstick) and the post-hoc samplers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.errors import VaekitError
from vaekit.evaluation.features import InceptionFeatures, domain_features
from vaekit.evaluation.quality import compare, gaussian_blur, precision_recall, quality_benchmark
from vaekit.evaluation.quality_run import read_quality
from vaekit.samplers import aggregate_codes, fit_sampler, load_sampler, lookup, sampler_paths
from vaekit.viz.report import quality_html

from .conftest import tiny_config

FAST = {"gmm": {"components": 3}, "flow": {"steps": 20}, "two-stage": {"epochs": 1, "hidden": 16}}
FEATURES = {"steps": 60, "width": 8, "features": 32}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    cfg = tiny_config("digits", tmp_path_factory.mktemp("runs") / "digits", epochs=1)
    return vaekit.train(cfg, pictures=False).path


def test_precision_recall_of_identical_and_of_disjoint_sets():
    f = torch.randn(200, 8)
    assert precision_recall(f, f) == (1.0, 1.0)
    assert precision_recall(f, f + 100) == (0.0, 0.0)
    same, shifted = (compare(f.double(), g.double(), kid_subsets=5) for g in (f, f + 1))
    assert abs(same["fid"]) < 1e-6 and shifted["fid"] > 7  # |shift|^2 = 8
    assert abs(same["kid"]) < 0.05 * shifted["kid"]  # the unbiased estimate of a set against itself: about 0
    assert 0.01 * shifted["kid"] < shifted["kid_std"] < shifted["kid"]  # subsets of 100 of 200: a spread, not 0


def test_precision_and_recall_do_not_move_when_every_feature_is_shifted():
    g = torch.Generator().manual_seed(0)
    real, fake = 0.1 * torch.randn(300, 32, generator=g).double(), 0.1 * torch.randn(300, 32, generator=g).double()
    fake += 0.03
    near = compare(real, fake, kid_subsets=2)
    far = compare(real + 1000, fake + 1000, kid_subsets=2)  # float32 distances: 1.0 and 1.0
    assert (far["precision"], far["recall"]) == (near["precision"], near["recall"])
    assert near["precision"] < 0.9 and near["recall"] < 0.9


def test_domain_fid_rises_with_noise_and_blur_and_the_yardstick_is_smallest(cache):
    data = load_dataset("digits")
    net, info = domain_features(data, **FEATURES)
    assert info["test_accuracy"] > 0.5
    again, _ = domain_features(data, **FEATURES)  # from the cache
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    x = data.test.x
    other = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[len(x) // 2 :]]
    noise = [
        quality_benchmark((other + s * torch.randn_like(other)).clamp(0, 1), x, net)["samples"]["fid"]
        for s in (0.0, 0.1, 0.2, 0.4)
    ]
    blurs = [quality_benchmark(gaussian_blur(other, s), x, net)["samples"]["fid"] for s in (0.5, 1.0, 2.0)]
    assert noise == sorted(noise) and blurs == sorted(blurs) and noise[0] < blurs[0], (noise, blurs)
    with pytest.raises(VaekitError, match=rf"n {len(x)}: each set takes at most half the split"):
        quality_benchmark(other, x, net, n=len(x))  # the other half is the yardstick: never silently fewer
    with pytest.raises(VaekitError, match=r"n 1: precision and recall \(k = 3\) need 6 or more"):
        quality_benchmark(other, x, net, n=1)  # not a split too small


@pytest.mark.parametrize("name", list(FAST))
def test_each_sampler_fits_saves_and_reloads_the_same_samples(digits_run, name):
    run = vaekit.load_run(digits_run)
    sampler = fit_sampler(run, name, refit=True, **FAST[name])
    assert all(p.is_file() for p in sampler_paths(digits_run, name))
    torch.manual_seed(1)
    x = run.sample(10, sampler=name)
    torch.manual_seed(1)
    z = sampler.sample(10)
    loaded = load_sampler(vaekit.load_run(digits_run), name)
    torch.manual_seed(1)
    assert x.shape == (10, 1, 8, 8) and torch.equal(loaded.sample(10), z)
    assert loaded.fitted == sampler.fitted  # gmm: its components; flow: its final NLL


def test_gmm_moves_the_codes_to_the_aggregate_posterior_and_refits_for_new_weights(digits_run, tmp_path, capsys):
    folder = shutil.copytree(digits_run, tmp_path / "run")
    run = vaekit.load_run(folder)
    codes = aggregate_codes(run)
    torch.manual_seed(0)
    z = fit_sampler(run, "gmm", components=3).sample(4000)
    eye = torch.eye(codes.shape[1])
    assert (z.T.cov() - codes.T.cov()).norm() < 0.5 * (eye - codes.T.cov()).norm()
    old = run.digest
    with torch.no_grad():
        next(run.model.parameters()).add_(0.1)
    moved = vaekit.Run(run.path, run.config, run.model)  # other weights: another digest
    assert load_sampler(moved, "gmm") is None
    fit_sampler(moved, "gmm", components=3)
    with pytest.raises(VaekitError, match="30 codes of 40 numbers cannot fit a full 40x40 covariance"):
        lookup("gmm")(components=2).fit(torch.randn(30, 40))  # a deep run: 1440 numbers, fewer codes
    capped = lookup("gmm")(components=20).fit(torch.randn(60, 4))  # at most 11 codes of 4 numbers each
    assert int((capped.weights > 0).sum()) <= 12 and "12 components, not 20" in capsys.readouterr().err
    saved = json.loads((folder / files.SAMPLER_SETTINGS.format("gmm")).read_text())
    assert saved[files.DIGEST] == moved.digest == run.digest != old and saved["settings"]["components"] == 3
    assert saved["fitted"] == {"components": 3} and capped.fitted == {"components": 12}


def test_bad_names_and_missing_or_corrupt_inception_files_are_one_line(tmp_path, digits_run):
    with pytest.raises(VaekitError, match="sampler 'nope'"):
        vaekit.load_run(digits_run).sample(4, sampler="nope")
    with pytest.raises(VaekitError, match="no such Inception weights file"):
        InceptionFeatures(tmp_path / "pt_inception.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a weights file")
    with pytest.raises(VaekitError, match="not a PyTorch weights file"):
        InceptionFeatures(tmp_path / "bad.pth")


def test_quality_of_a_user_module_is_written_with_the_digest(digits_run):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh())
    result = vaekit.quality(digits_run, features=net, n=40)
    saved = json.loads((digits_run / files.QUALITY).read_text())
    assert saved[files.DIGEST] == vaekit.load_run(digits_run).digest and saved["n"] == 40
    assert set(result["samples"]["prior"]) == {"fid", "kid", "kid_std", "precision", "recall"}
    page = "".join(quality_html(vaekit.load_run(digits_run)))  # report.html's section
    assert "data vs data (yardstick)" in page and "module features, 40 items" in page


def test_a_sampler_fitted_again_makes_its_quality_figures_stale(digits_run, tmp_path):
    folder = shutil.copytree(digits_run, tmp_path / "run")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh())
    fit_sampler(vaekit.load_run(folder), "gmm", refit=True, components=3)
    vaekit.quality(folder, features=net, sampler="gmm", n=40)
    run = vaekit.load_run(folder)
    saved = read_quality(folder / files.QUALITY, run.digest)
    assert "gmm" in saved["samples"] and saved["samplers"]["gmm"]["settings"]["components"] == 3
    assert "<td>gmm</td>" in "".join(quality_html(run))
    fit_sampler(run, "gmm", refit=True, components=2)  # other settings, the same weights
    assert "gmm" not in read_quality(folder / files.QUALITY, run.digest)["samples"]
    assert "<td>gmm</td>" not in "".join(quality_html(run))  # the report leaves the old figures out


@pytest.mark.parametrize(
    "features, settings, match",
    [
        ("domain", {"bogus": 1, "steps": 1}, r"unknown feature setting\(s\) bogus: the domain features take width"),
        ("domain", {"steps": 0}, r"steps must be a whole number >= 1, got 0"),
        ("module", {"steps": 1}, r"setting\(s\) steps are the domain network's; an nn.Module as features takes none"),
        ("file", {"width": 4}, r"setting\(s\) width are the domain network's; an Inception file as features"),
        ("module", {"target": "label"}, r"target 'label': only a table run's measures"),
        ("module", {"split": "bogus"}, r"split 'bogus': expected train, val or test"),
    ],
)
def test_quality_refuses_settings_that_cannot_take_effect(digits_run, cache, tmp_path, features, settings, match):
    net = {"module": torch.nn.Flatten(), "file": tmp_path / "pt_inception.pth", "domain": "domain"}[features]
    with pytest.raises(VaekitError, match=match):
        vaekit.quality(digits_run, features=net, n=40, write=False, **settings)


def test_the_cli_samples_with_a_sampler_and_measures_quality(digits_run, tmp_path, cache, capsys):
    cli = [sys.executable, "-m", "vaekit"]
    out = tmp_path / "s.npy"
    r = subprocess.run(
        [*cli, "sample", str(digits_run), "--sampler", "gmm", "--n", "6", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and "6 samples" in r.stdout, r.stderr
    (digits_run / "sampler-gmm.json").write_text("{")  # a damaged sampler file: refused, then fitted again
    asked = ["quality", str(digits_run), "--sampler", "gmm", "--n", "40", "--feature-steps", "20"]
    assert main(asked) == 2 and capsys.readouterr().err.rstrip().endswith("fit it again with refit (--refit)")
    code, r = main([*asked, "--refit"]), capsys.readouterr()  # in this process too: a fresh one sampled above
    assert code == 0 and "data vs data" in r.out and "| gmm |" in r.out, r.err
    assert "gmm" in json.loads((digits_run / files.QUALITY).read_text())["samples"]


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory):
    """{'conditional': a cvae run of digits, 'table': a run of a small .csv table}: runs no sampler draws for."""
    root = tmp_path_factory.mktemp("kinds")
    table = root / "t.csv"
    table.write_text("a,b\n" + "".join(f"{i % 7},{(i * 3) % 5}.5\n" for i in range(60)))
    cvae = tiny_config("digits", root / "cvae", epochs=1)
    cvae.model.family = "cvae"
    return {
        "conditional": vaekit.train(cvae, pictures=False).path,
        "table": vaekit.train(tiny_config(str(table), root / "table", epochs=1), pictures=False).path,
    }


@pytest.mark.parametrize(
    "kind, call, match",
    [
        ("conditional", {"sampler": "gmm"}, "this run is conditional"),
        ("table", {"sampler": "gmm"}, "a table run's rows come from its prior: a post-hoc sampler does not apply"),
        ("digits", {"sampler": "bogus"}, "sampler 'bogus': expected one of"),
        ("digits", {"n": 7.5}, r"n must be a whole number >= 1, got 7.5"),
        ("digits", {"n": True}, r"n must be a whole number >= 1, got True"),
        ("digits", {"seed": "a"}, r"seed must be a whole number, got 'a'"),
    ],
)
def test_quality_refuses_a_bad_call_before_any_work(digits_run, other_runs, monkeypatch, kind, call, match):
    def no_work(*args, **kwargs):
        raise AssertionError("the data were read, or a feature network trained, before the refusal")

    monkeypatch.setattr("vaekit.evaluation.quality_run.quality_data", no_work)
    with pytest.raises(VaekitError, match=match):
        vaekit.quality(other_runs.get(kind, digits_run), write=False, **call)


@pytest.mark.parametrize(
    "n, match", [(10**6, r"n 1000000: each set takes at most half the split"), (5, r"n 5: precision and recall")]
)
def test_quality_refuses_an_n_the_split_cannot_give_before_training_features(digits_run, monkeypatch, n, match):
    def no_work(*args, **kwargs):
        raise AssertionError("the feature network trained before the refusal")

    monkeypatch.setattr("vaekit.evaluation.quality_run.feature_net", no_work)
    with pytest.raises(VaekitError, match=match) as e:
        vaekit.quality(digits_run, n=n, write=False)
    assert e.value.key == "n"


def test_sample_names_a_conditional_run_given_a_sampler_and_a_label(other_runs, tmp_path, capsys):
    from vaekit.cli import main

    argv = ["sample", str(other_runs["conditional"]), "--sampler", "gmm", "--label", "3"]
    assert main([*argv, "--out", str(tmp_path / "x.npy")]) == 2
    assert "this run is conditional" in capsys.readouterr().err
    with pytest.raises(VaekitError, match="this run is conditional"):  # Python says so too, not "no label"
        vaekit.load_run(other_runs["conditional"]).sample(4, label=3, sampler="gmm")


def test_a_table_run_takes_no_feature_network_and_no_sampler(other_runs, tmp_path):
    with pytest.raises(VaekitError, match=r"x.pth': a table run's measures use no feature network"):
        vaekit.quality(other_runs["table"], features=tmp_path / "x.pth", write=False)
    with pytest.raises(VaekitError, match=r"a post-hoc sampler does not apply"):  # as quality refuses it
        vaekit.load_run(other_runs["table"]).sample(4, sampler="gmm")


@pytest.mark.parametrize(
    "layers, match",
    [
        ([torch.nn.Linear(10, 3)], r"features Sequential fail on real items of shape \(1, 8, 8\): mat1 and mat2"),
        (
            [torch.nn.Linear(64, 4), torch.nn.Hardtanh(float("nan"), float("nan"))],
            r"features Sequential of the real items are not all finite",
        ),
    ],
)
def test_features_that_fail_or_are_not_finite_are_one_line(digits_run, layers, match):
    net = torch.nn.Sequential(torch.nn.Flatten(), *layers)
    with pytest.raises(VaekitError, match=match):
        vaekit.quality(digits_run, features=net, n=40, write=False)


def test_fid_of_equal_sets_is_zero_and_too_few_items_for_the_features_are_noted(capsys):
    f = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)).double()
    assert compare(f, f)["fid"] == 0.0  # not torchmetrics' -1.8e-15
    quality_benchmark(torch.rand(40, 1, 8, 8), torch.rand(80, 1, 8, 8), torch.nn.Flatten(), n=20)
    assert "20 items per set, 64 features: the covariances are rank-deficient" in capsys.readouterr().err


def test_sample_refuses_an_n_that_does_not_fit_in_memory(digits_run, monkeypatch, capsys, tmp_path):
    from vaekit.cli import main

    monkeypatch.setattr("vaekit.samplers.machine_memory", lambda: 4 * 10**6)  # a quarter: 1 MB, 3906 digits
    assert main(["sample", str(digits_run), "--n", "5000", "--out", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "n 5000: 5000 items of 64 float32 numbers take 0.00128 GB, over a quarter" in err and "(--n)" in err
    assert not (tmp_path / "x.npy").exists()
    assert main(["sample", str(digits_run), "--n", "3000", "--out", str(tmp_path / "x.npy")]) == 0
    with pytest.raises(VaekitError, match="n 5000: 5000 items"):  # in Python too
        vaekit.load_run(digits_run).sample(5000)
    with pytest.raises(VaekitError, match="n 5000: 5000 items"):  # from a sampler as from the prior
        vaekit.load_run(digits_run).sample(5000, sampler="gmm")


def test_prior_draws_are_decoded_a_batch_at_a_time(digits_run, monkeypatch):
    run, sizes = vaekit.load_run(digits_run), []
    generate = run.model.generate
    monkeypatch.setattr("vaekit.samplers.DECODE_BATCH", 7)
    monkeypatch.setattr(run.model, "generate", lambda n, *a: sizes.append(n) or generate(n, *a))
    assert run.sample(20).shape == (20, 1, 8, 8) and sizes == [7, 7, 6]


def test_domain_features_of_unlabelled_data_name_the_other_features(tiny_images):
    with pytest.raises(
        VaekitError, match=r"this data has none \(name other features: an Inception-v3 weights file, or"
    ):
        domain_features(load_dataset(str(tiny_images)))


def test_a_conditional_run_samples_its_classes_as_often_as_the_training_split_has_them(
    other_runs, tmp_path, monkeypatch
):
    """FID compares the samples with the test split, whose classes come in the data's mix (here 80/15/5 % of
    labels 0..2): an even draw of the run's 10 classes would measure the mix, not the samples."""
    y = np.repeat([0, 1, 2], [160, 30, 10])
    np.savez(tmp_path / "imb.npz", x=np.random.default_rng(0).random((200, 8, 8), dtype=np.float32), y=y)
    run, drawn = vaekit.load_run(other_runs["conditional"]), []
    generate = run.model.generate
    monkeypatch.setattr(run.model, "generate", lambda n, t, y: drawn.append(y.cpu()) or generate(n, t, y))
    vaekit.quality(run, features=torch.nn.Flatten(), data=str(tmp_path / "imb.npz"), n=10, write=False)
    counts = torch.bincount(torch.cat(drawn), minlength=10).tolist()
    assert sum(counts) == 10 and counts[0] >= 6 and sum(counts[3:]) == 0, counts  # evenly: 1 of each class


def test_a_conditional_run_samples_a_folders_classes_by_their_names(other_runs, tmp_path, monkeypatch):
    """A folder of the run's classes 7/ and 9/ labels its items 0 and 1; the samples are of classes 7 and 9, as
    evaluate, encode and anomaly number those labels, not of classes 0 and 1."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("7", "9"):
        (tmp_path / name).mkdir()
        for i in range(80):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L").save(tmp_path / name / f"{i}.png")
    run, drawn = vaekit.load_run(other_runs["conditional"]), []
    generate = run.model.generate
    monkeypatch.setattr(run.model, "generate", lambda n, t, y: drawn.append(y.cpu()) or generate(n, t, y))
    vaekit.quality(run, features=torch.nn.Flatten(), data=str(tmp_path), n=6, write=False)
    assert set(torch.cat(drawn).tolist()) <= {7, 9}, torch.cat(drawn).tolist()


def test_quality_of_a_run_fit_in_memory_asks_for_a_data_spec_in_one_line(tmp_path):
    """Items in memory (an array, a tensor) as quality's data, or none for a run fit on items in memory: one line
    asking for a spec (they raised "truth value of an array is ambiguous"); a .npy path of the items is measured."""
    x = (np.random.default_rng(0).random((60, 1, 4, 4)) > 0.5).astype(np.float32)  # grey images: no table
    torch.manual_seed(0)
    model = vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli")
    run = vaekit.fit(model, x, epochs=1, batch_size=16, progress=False, pictures=False)
    for data in (x, torch.from_numpy(x)):
        what = type(data).__name__
        with pytest.raises(VaekitError, match=f"quality takes a data spec such as a .npy path.*not a {what}"):
            vaekit.quality(run, data=data, write=False)
    with pytest.raises(VaekitError, match="trained on data passed in memory: quality needs a data spec"):
        vaekit.quality(run, write=False)
    np.save(tmp_path / "x.npy", x)
    out = vaekit.quality(run, data=tmp_path / "x.npy", n=10, split="train", features=torch.nn.Flatten(), write=False)
    assert set(out["samples"]["prior"]) >= {"fid", "kid"}
