"""Post-hoc samplers and sample quality, round 3: a sampler's codes are a seeded random draw of the training split
(a class-sorted split gave one class), a limit covering the split loads the saved sampler, a file from before is
used with a note; the refit note says its steps once; uniform noise scoring as well as the samples is a caveat;
quality.json says the figures it replaces; `vaekit sample` refuses a bad suffix before fitting, says "1 sample",
takes 1,1,1 with a sampler on a deep run and draws a table's classes at their training frequencies."""

from __future__ import annotations

import csv
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.evaluation import quality_run
from vaekit.samplers import aggregate_codes, fit_sampler, fitting, lookup, sampler_paths

from .conftest import tiny_config


@pytest.fixture(scope="module")
def sorted_run(tmp_path_factory):
    """A run on an .npz whose 80 training items are sorted by class: 40 blank items, then 40 full ones."""
    folder = tmp_path_factory.mktemp("sorted")
    x = np.concatenate([np.zeros((40, 1, 4, 4)), np.ones((40, 1, 4, 4))]).astype(np.float32)
    y = np.repeat([0, 1], 40)
    np.savez(folder / "s.npz", x_train=x, y_train=y, x_val=x[::8], y_val=y[::8], x_test=x[::4], y_test=y[::4])
    return vaekit.train(tiny_config(str(folder / "s.npz"), folder / "run", epochs=1), pictures=False).path


@pytest.fixture
def run(sorted_run, tmp_path):
    return vaekit.load_run(shutil.copytree(sorted_run, tmp_path / "run"))


def test_the_codes_are_a_seeded_random_draw_of_a_class_sorted_split(run):
    """The first 600 training items of the built-in photos are one class: a gmm drew almost no other."""
    blank, full = (aggregate_codes(run, x=torch.full((1, 1, 4, 4), v)) for v in (0.0, 1.0))
    about: dict = {}
    z = aggregate_codes(run, limit=40, about=about)
    assert about == {"split_items": 80, "draw_seed": run.config.train.seed}
    of_full = torch.isclose(z, full, atol=1e-5).all(1)
    assert 10 < int(of_full.sum()) < 30 and torch.isclose(z[~of_full], blank, atol=1e-5).all()
    assert torch.equal(z, aggregate_codes(run, limit=40))  # the same items again


def test_a_limit_covering_the_split_loads_and_a_file_from_before_is_used_with_a_note(run, capsys):
    fit_sampler(run, "gmm", components=1)  # 80 codes under the default limit of 10,000
    saved = json.loads(sampler_paths(run.path, "gmm")[1].read_text())
    assert [saved[k] for k in ("n_codes", "split_items", "limit")] == [80, 80, 10000]
    capsys.readouterr()
    for limit in (80, 200):  # every item of the split, as the saved sampler's codes
        assert fit_sampler(run, "gmm", limit=limit).limit == 10000 and "fitting" not in capsys.readouterr().err
    fit_sampler(run, "gmm", limit=50)
    assert "fitting the gmm sampler on 50 codes" in capsys.readouterr().err
    path = sampler_paths(run.path, "gmm")[1]
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("split_items", "draw_seed")}
    path.write_text(json.dumps(old))  # as written before the codes were drawn at random
    assert fit_sampler(run, "gmm").limit == 50
    err = capsys.readouterr().err
    assert "fitting" not in err and "fitted on the training split's first 50 items, not a random draw of th" in err


def test_the_refit_note_says_its_steps_once():
    flow = lookup("flow")(kind="nsf", steps=200)
    assert fitting(flow, {"seed": 0, "kind": "nsf", "steps": 200}) == ", 200 steps, with its saved settings kind=nsf"


def test_uniform_noise_scoring_as_well_as_the_samples_is_a_caveat(capsys):
    """On digits (90 a set) uniform noise had FID 10.9 and a VAE's samples 13.1, with no caveat but rank."""
    g = torch.Generator().manual_seed(0)
    flat = torch.nn.Flatten()
    noisy = vaekit.quality_benchmark(torch.full((20, 6), 0.9), torch.rand(40, 6, generator=g), flat)
    said = noisy["fid_caveat"]  # noise's FID about 0.06, the samples' 1.8; precision 1 against 0
    assert said.startswith("uniform noise scores better than the samples on FID (0.0")  # both strictly better
    assert said in capsys.readouterr()[1]
    assert ") and precision (1 against 0): at 20 items per set on these features the figures do not show" in said
    tight = 0.5 + 0.01 * torch.randn(40, 6, generator=g)
    assert "fid_caveat" not in vaekit.quality_benchmark(tight[:20] + 0.001, tight, flat)


def test_quality_json_says_the_figures_it_replaces(tmp_path, monkeypatch, capsys):
    """The prior at temperature 0.8 replaced the file's gmm figures at 1 without a word."""
    monkeypatch.setattr(quality_run, "sampler_stamp", lambda *a: {"s": 1})  # the gmm's figures are current
    folder, figures = SimpleNamespace(folder=tmp_path, digest="d"), {"fid": 1.0}
    base = {"data": "x", "split": "test", "n": 20, "seed": 0, "features": {"kind": "domain"}, files.DIGEST: "d"}
    first = base | {"temperature": 1.0, "samples": {"prior": figures, "gmm": figures}, "samplers": {"gmm": {"s": 1}}}
    quality_run.write_quality(folder, first | {"data_vs_data": figures, "fid_caveat": "prior: noisy"})
    quality_run.write_quality(folder, first | {"samples": {"gmm": figures}, "data_vs_data": figures})
    assert capsys.readouterr().err == ""  # measured alike: side by side, the prior's caveat kept with its figures
    assert json.loads((tmp_path / files.QUALITY).read_text())["fid_caveat"] == "prior: noisy"
    quality_run.write_quality(folder, first | {"samples": {"prior": figures}, "data_vs_data": figures})
    assert "fid_caveat" not in json.loads((tmp_path / files.QUALITY).read_text())  # measured again: none now
    later = base | {"temperature": 0.8, "samples": {"prior": figures}, "samplers": {}, "data_vs_data": figures}
    quality_run.write_quality(folder, later)
    err = capsys.readouterr().err
    assert (
        "its figures of prior, gmm are replaced by these, measured with other settings: temperature 1.0 (now 0." in err
    )


def test_sample_refuses_a_bad_suffix_before_fitting_and_says_one_sample(run, tmp_path, capsys):
    assert main(["sample", str(run.path), "--sampler", "gmm", "--out", str(tmp_path / "x.jpg")]) != 0
    assert "expected a .png, .npy" in capsys.readouterr().err and not sampler_paths(run.path, "gmm")[1].exists()
    assert main(["sample", str(run.path), "--n", "1", "--out", str(tmp_path / "n1.npy")]) == 0
    assert "1 sample written to" in capsys.readouterr().out


def test_a_deep_run_takes_temperatures_of_1_with_a_sampler(tmp_path):
    x = (torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    model = vaekit.DeepVAE((1, 8, 8), groups=[1, 2, 0], width=8, cell_width=4, latent_channels=1)  # codes of 33
    deep = vaekit.fit(model, x, epochs=1, batch_size=16, progress=False, pictures=False, out=tmp_path / "deep")
    fit_sampler(deep, "gmm", x=x, components=1)
    out = tmp_path / "d.npy"
    args = ["sample", str(deep.path), "--sampler", "gmm", "--n", "4", "--out", str(out)]
    assert main([*args, "--temperature", "1,1,1"]) == 0 and np.load(out).shape == (4, 1, 8, 8)
    assert main([*args, "--temperature", "1,0.5,1"]) != 0  # other temperatures: still refused


@pytest.mark.parametrize("names", [("no", "yes"), ("0", "1")], ids=["named", "numbered"])
def test_a_conditional_table_run_draws_its_classes_at_their_training_frequencies(tmp_path, names):
    """A table of 10% 'yes' gave 500 'no' and 500 'yes' in 1,000 rows; vaekit quality drew them as the data. The
    counts are kept in class_counts.json (labels named or not), so Python's sample_table draws as the CLI does; a
    folder from before them: the CLI reads its data again, Python takes every class in turn."""
    rng, yes = np.random.default_rng(0), names[1]
    lines = [f"{v:.2f},{names[i % 10 == 0]}" for i, v in enumerate(rng.uniform(0, 5, 150))]
    (tmp_path / "t.csv").write_text("size,label\n" + "\n".join(lines) + "\n")
    cfg = tiny_config(str(tmp_path / "t.csv"), tmp_path / "run", epochs=1)
    cfg.model.family = "cvae"
    path = vaekit.train(cfg, pictures=False).path
    drawn = []
    for name in ("a", "b", "c"):
        (path / files.COUNTS).unlink() if name == "c" else None  # c: as vaekit wrote the folder before counts
        assert main(["sample", str(path), "--n", "400", "--seed", "3", "--out", str(tmp_path / f"{name}.csv")]) == 0
        drawn.append([str(r["label"]) for r in csv.DictReader((tmp_path / f"{name}.csv").read_text().splitlines())])
        if name == "a":
            trained = json.loads((path / files.COUNTS).read_text())["counts"]
            assert sum(trained) == 120 and 0.05 < trained[1] / 120 < 0.15
            torch.manual_seed(0)
            assert 0.04 < [str(v) for v in vaekit.load_run(path).sample_table(400)["label"]].count(yes) / 400 < 0.2
    assert all(0.04 < d.count(yes) / 400 < 0.2 for d in drawn) and drawn[0] == drawn[1]  # about 10%, seeded
    assert [str(v) for v in vaekit.load_run(path).sample_table(400)["label"]].count(yes) == 200  # every class in turn
