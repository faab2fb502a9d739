"""Post-hoc samplers: fitted from inside ``torch.no_grad`` (as ``Run.sample(n, sampler=...)`` fits them) they still
train; their settings, seeds, draws and saved files; what they refuse in one line."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import vaekit
from vaekit import files
from vaekit.samplers import fit_sampler, load_sampler, lookup, sampler_paths
from vaekit.training.checkpoint import BITS, BLOCK, bit_sums, tensor_digest, word_sums

from .conftest import tiny_config


@pytest.mark.parametrize("name, settings", [("flow", {"steps": 5}), ("two-stage", {"epochs": 1, "hidden": 16})])
def test_fit_under_no_grad(tmp_path, name, settings):
    run = vaekit.train(tiny_config("digits", tmp_path / "run", epochs=1), pictures=False)
    with torch.no_grad():
        sampler = fit_sampler(run, name, save=False, **settings)
    assert sampler.sample(5).shape == (5, 3)


def test_a_run_on_data_in_memory_samples_from_a_sampler_fitted_on_given_codes():
    x = torch.rand(40, 1, 4, 4)
    model = vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli")
    run = vaekit.fit(model, x, epochs=1, pictures=False, progress=False)  # no folder, no data spec
    with pytest.raises(vaekit.VaekitError, match=r"fit its sampler on their codes first"):
        run.sample(3, sampler="gmm")
    fit_sampler(run, "gmm", x=x, components=2)
    assert run.sample(3, sampler="gmm").shape == (3, 1, 4, 4)  # the sampler fitted on x, kept on the run


@pytest.mark.parametrize("terminal", [True, False])
def test_a_flow_sampler_says_its_steps_and_shows_a_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch, terminal):
    run = vaekit.train(tiny_config("digits", tmp_path / "run", epochs=1), pictures=False)
    monkeypatch.setattr("vaekit.samplers.base.interactive", lambda: terminal)
    capsys.readouterr()
    fit_sampler(run, "flow", save=False, steps=7)
    err = capsys.readouterr().err
    assert "codes, 7 steps" in err
    assert ("/7 [" in err) == terminal  # tqdm's bar, left off a log file


@pytest.fixture(scope="module")
def memory_run():
    """A run without a folder, of 20 random vectors (4,)."""
    model = vaekit.build_model(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian")
    return vaekit.fit(model, torch.rand(20, 4), epochs=1, pictures=False, progress=False)


@pytest.mark.parametrize(
    "name, settings, match",
    [
        ("flow", {"steps": 0}, "steps must be a whole number >= 1, got 0"),
        ("flow", {"steps": -1}, "steps must be a whole number >= 1, got -1"),
        ("flow", {"lr": -1}, "lr must be a finite number > 0, got -1"),
        ("flow", {"seed": "a"}, "seed must be a whole number >= 0, got 'a'"),
        ("two-stage", {"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
        ("two-stage", {"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
        ("gmm", {"components": 2.7}, "components must be a whole number >= 1, got 2.7"),
        ("gmm", {"components": "abc"}, "components must be a whole number >= 1, got 'abc'"),
        ("gmm", {"seed": 2**40}, "seed must be at most 4294967295, got 1099511627776"),
    ],
)
def test_bad_sampler_settings_are_one_line_before_any_work(memory_run, monkeypatch, name, settings, match):
    def no_work(*args, **kwargs):
        raise AssertionError("codes were encoded before the settings were checked")

    monkeypatch.setattr("vaekit.samplers.aggregate_codes", no_work)
    with pytest.raises(vaekit.VaekitError, match=f"sampler setting {match}"):
        fit_sampler(memory_run, name, **settings)


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
    """A run folder of digits (codes of 3 numbers) holding a gmm sampler of 2 components."""
    run = vaekit.train(tiny_config("digits", tmp_path_factory.mktemp("gmm") / "run", epochs=1), pictures=False)
    fit_sampler(run, "gmm", components=2)
    return run.path


def copied(folder, tmp_path):
    return vaekit.load_run(shutil.copytree(folder, tmp_path / "run"))


def test_weights_trained_in_memory_make_the_digest_and_the_samplers_stale(gmm_run, memory_run, tmp_path):
    run = copied(gmm_run, tmp_path)
    before = run.digest
    with torch.no_grad():
        next(run.model.parameters()).add_(0.1)  # as an optimiser step does, in place
    assert run.digest != before and run.digest == vaekit.Run(None, run.config, run.model).digest
    assert load_sampler(run, "gmm") is None  # fitted on the codes of the weights before
    fit_sampler(memory_run, "gmm", x=torch.rand(20, 4), components=1)
    with torch.no_grad():
        next(memory_run.model.parameters()).add_(0.1)
    with pytest.raises(vaekit.VaekitError, match="fit its sampler on their codes first"):
        memory_run.sample(3, sampler="gmm")  # not the sampler kept for the weights before


def test_a_fused_optimiser_step_or_an_edit_through_data_makes_another_digest(memory_run):
    """A fused Adam step and an edit through ``.data`` move no tensor's ``_version``: the digest kept for it."""
    run = vaekit.Run(
        None, memory_run.config, vaekit.build_model(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian")
    )
    before = run.digest
    opt = torch.optim.Adam(run.model.parameters(), lr=0.1, fused=True)
    x = torch.rand(16, 4)
    (-run.model(x).px.log_prob(x).mean()).backward()
    opt.step()
    after = run.digest
    assert after != before and after == tensor_digest({k: v.detach() for k, v in run.model.state_dict().items()})
    next(run.model.parameters()).data.view(-1)[0] += 1e-3  # one number
    assert run.digest not in (before, after)


def test_two_rows_swapped_through_data_make_another_digest(memory_run):
    """A swap moves no ``_version`` and leaves each tensor's plain sum of bits as it was: its position counts."""
    run = vaekit.Run(
        None, memory_run.config, vaekit.build_model(input_shape=[4], hidden=[8], latent_dim=2, likelihood="gaussian")
    )
    before = run.digest
    weight = run.model.get_parameter("encoder.net.0.weight")  # (8, 4), its rows unlike
    weight.data[[0, 1]] = weight.data[[1, 0]]
    assert run.digest != before
    assert run.digest == tensor_digest({k: v.detach() for k, v in run.model.state_dict().items()})


@pytest.mark.parametrize("n", [37, BLOCK, 2 * BLOCK + 5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.bool])
def test_bit_sums_are_the_row_and_column_sums_of_the_words_on_both_paths(dtype, n):
    """numpy's path (a CPU's) and torch's (another device's) give the sums of the docstring, over whole rows of
    ``BLOCK`` words and a short last one; a swap in a column or in a row moves them."""
    x = (torch.randn(n, generator=torch.Generator().manual_seed(0)) * 1e3).to(dtype)
    words, width = x.view(BITS.get(x.element_size(), torch.int64)), 8 * x.element_size()
    b = [int(v) for v in words]
    rows = [sum(b[q * BLOCK : (q + 1) * BLOCK]) % 2**width for q in range(len(b) // BLOCK + 1)]
    columns = [sum(b[r::BLOCK]) % 2**width for r in range(BLOCK)]
    weighted = [sum((k + 1) * v for k, v in enumerate(sums)) % 2**64 for sums in (rows, columns)]
    assert bit_sums([x]) == ((sum(rows) % 2**width, *weighted),) and word_sums(words) == bit_sums([x])[0]
    if dtype != torch.bool:
        for i, j in ((3, BLOCK + 3), (3, 7))[n <= BLOCK + 3 :]:  # a column's, a row's
            swapped = x.clone()
            swapped[[i, j]] = x[[j, i]]
            assert bit_sums([swapped]) != bit_sums([x]) and bit_sums([swapped])[0][0] == bit_sums([x])[0][0]


@pytest.mark.parametrize("family", ["vq", "gumbel"])
def test_discrete_runs_are_refused_a_sampler_in_one_line(family):
    model = vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=2, likelihood="bernoulli", family=family)
    run = vaekit.fit(model, torch.rand(20, 1, 4, 4).round(), epochs=1, pictures=False, progress=False)
    why = {"vq": r"codebook vectors.*vaekit.fit_prior", "gumbel": r"one-hots, which a sampler's draws"}[family]
    with pytest.raises(vaekit.VaekitError, match=f"a {family} run's codes are {why}"):
        run.sample(2, sampler="gmm")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("latent_dim", 4, r"latent_dim 4 is not this run's code size, 3"),
        ("latent_dim", "3", r"latent_dim '3' is not this run's code size, 3"),
        ("latent_dim", 3.7, r"latent_dim 3.7 is not this run's code size, 3"),
        ("latent_dim", 10**9, r"latent_dim 1000000000 is not this run's code size, 3"),
        ("components", 10**12, r"components=1000000000000 for codes of 3 numbers make .* numbers, over"),
        ("fitted", {"components": "2"}, r"fitted .* is not numbers by name"),
    ],
)
def test_a_crafted_sampler_json_is_one_line_before_any_allocation(gmm_run, tmp_path, field, value, match):
    run = copied(gmm_run, tmp_path)
    path = sampler_paths(run.path, "gmm")[1]
    saved = json.loads(path.read_text())
    (saved["settings"] if field == "components" else saved)[field] = value
    path.write_text(json.dumps(saved))
    with pytest.raises(vaekit.VaekitError, match=f"sampler-gmm.json: .*{match}"):
        load_sampler(run, "gmm")


def test_a_diverged_flow_is_refused_and_a_sound_one_records_its_final_nll(gmm_run, tmp_path):
    z = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(vaekit.VaekitError, match=r"flow sampler: the fit diverged .*lr 10.0, steps 50"):
        lookup("flow")(lr=10.0, steps=50, hidden=8, transforms=1).fit(z)
    run = copied(gmm_run, tmp_path)
    flow = fit_sampler(run, "flow", steps=20, hidden=8, transforms=1)
    saved = json.loads(sampler_paths(run.path, "flow")[1].read_text())
    assert 0 < saved["fitted"]["nll"] == flow.fitted["nll"] < 10  # mean -log q(u) of 3 standardised numbers


SMALL = {"flow": {"steps": 5, "hidden": 8, "transforms": 1}, "two-stage": {"epochs": 1, "hidden": 16}}


@pytest.mark.parametrize("name", list(SMALL))
def test_loading_a_sampler_leaves_the_global_rng_so_seeded_draws_repeat(gmm_run, tmp_path, name):
    """Building a flow or two-stage sampler to load draws its modules' first values: not from the user's RNG."""
    run = copied(gmm_run, tmp_path)
    fit_sampler(run, name, **SMALL[name])
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert load_sampler(run, name) is not None and torch.equal(torch.get_rng_state(), state)
    path = sampler_paths(run.path, name)[1]
    path.write_text(json.dumps({**json.loads(path.read_text()), files.DIGEST: "0" * 64}))  # stale: fitted again
    draws = []
    for _ in range(2):  # fitted in the call (its saved settings), then loaded
        torch.manual_seed(0)
        draws.append(vaekit.load_run(run.path).sample(4, sampler=name))
    assert json.loads(path.read_text())[files.DIGEST] == run.digest and torch.equal(draws[0], draws[1])


def test_a_run_keeps_its_loaded_sampler_until_its_weights_or_the_sampler_file_change(gmm_run, tmp_path, monkeypatch):
    run = copied(gmm_run, tmp_path)
    reads = []
    read = vaekit.training.checkpoint.read_tensors
    monkeypatch.setattr("vaekit.training.checkpoint.read_tensors", lambda p: reads.append(p) or read(p))
    for _ in range(3):
        run.sample(2, sampler="gmm")
    assert len(reads) == 1  # read, SHA-checked and its codes' size encoded once
    fit_sampler(vaekit.load_run(run.path), "gmm", refit=True, components=1)  # another weights file, same weights
    seen = len(reads)
    run.sample(2, sampler="gmm")
    assert len(reads) == seen + 1 and run.__dict__["_samplers"]["gmm"][1].settings["components"] == 1
    with torch.no_grad():
        next(run.model.parameters()).add_(0.1)
    run.sample(2, sampler="gmm")  # fitted again for these weights, with the saved settings
    assert json.loads(sampler_paths(run.path, "gmm")[1].read_text())[files.DIGEST] == run.digest


@pytest.mark.parametrize("limit", [0, -5, 2.5])
def test_a_bad_limit_is_one_line_before_any_codes(memory_run, monkeypatch, limit):
    monkeypatch.setattr("vaekit.samplers.aggregate_codes", lambda *a: pytest.fail("codes were encoded"))
    with pytest.raises(vaekit.VaekitError, match=f"limit must be a whole number >= 1, got {limit}"):
        fit_sampler(memory_run, "gmm", limit=limit)


def test_a_refit_for_new_weights_keeps_the_saved_settings_and_the_pair_stays_one(gmm_run, tmp_path, capsys):
    run = copied(gmm_run, tmp_path)
    path = sampler_paths(run.path, "gmm")[1]
    assert load_sampler(run, "gmm").fitted == {"components": 2}  # the JSON's, as fitting made it
    with torch.no_grad():
        next(run.model.parameters()).add_(0.1)  # as train --resume does
    capsys.readouterr()
    assert fit_sampler(run, "gmm").settings["components"] == 2  # not the default 20
    assert "with its saved settings components=2" in capsys.readouterr().err
    first = path.read_text()
    fit_sampler(run, "gmm", x=torch.rand(30, 1, 8, 8), components=3)  # weights written, then the JSON
    assert json.loads(path.read_text())["codes"] == "x"
    path.write_text(first)  # as if the write stopped between the two files: the JSON names other weights
    assert load_sampler(run, "gmm") is None
