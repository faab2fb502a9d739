"""Post-hoc samplers fitted straight on codes, without a run: seeded fits, diverged fits and skipped steps, the
memory their draws take, the numbers a flow holds and a refused n; and in a run folder: another limit fitted
again, a refused sampler file's line, a gmm file sized by the components fitted."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import vaekit
from vaekit.cli import main
from vaekit.samplers import fit_sampler, load_sampler, lookup, sampler_paths
from vaekit.samplers.saved import weights_sha
from vaekit.training.checkpoint import save_weights

from .conftest import tiny_config


def test_gmm_draws_hold_n_x_d_numbers_not_n_x_k_x_d_squared():
    """A draw of each component for each item, with its (K, D, D) factor broadcast, took n x K x D^2 numbers."""
    gmm = lookup("gmm")(components=5).fit(torch.randn(400, 10))
    sizes = []

    class Largest(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            sizes.extend(t.numel() for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor))
            return out

    torch.manual_seed(0)
    with Largest():
        z = gmm.sample(300)  # (300, 10)
    assert z.shape == (300, 10) and max(sizes) <= 300 * 10  # not 300 x 5 x 10 x 10
    assert (z.mean(0) - gmm.loc).abs().max() < 0.3 * gmm.scale.max()


@pytest.mark.parametrize("name, settings", [("flow", {"steps": 3}), ("two-stage", {"epochs": 1})])
def test_the_seed_fixes_the_fit_whatever_the_global_rng(name, settings):
    z = torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    draws = []
    for state in (0, 123):  # the user's RNG before fitting: the modules' first values come from the seed
        torch.manual_seed(state)
        sampler = lookup(name)(seed=4, hidden=8, **settings).fit(z)
        torch.manual_seed(5)
        draws.append(sampler.sample(4))
    assert torch.equal(draws[0], draws[1])


def test_a_diverged_two_stage_fit_is_one_line_in_its_own_settings(capsys):
    z = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    why = r"^two-stage sampler: the fit diverged \(.+\); fit it again with a lower lr \(now 50\)$"
    with pytest.raises(vaekit.VaekitError, match=why) as e:
        lookup("two-stage")(lr=50.0, epochs=3, hidden=8).fit(z)
    assert "train." not in str(e.value) and "train." not in capsys.readouterr().err  # the trainer's settings


def test_steps_a_two_stage_fit_skipped_and_survived_are_one_line_in_its_own_settings(monkeypatch, capsys):
    """Six steps in a row skipped for a non-finite gradient, then a fit that goes on: the sampler names the
    longest run (``Fitted.most_skipped``; the trainer's own warning, at 5 and naming train.*, left out), and the
    trainer's other lines pass as they are."""
    import vaekit.samplers.two_stage as two_stage
    from vaekit.training import step

    norms, calls = step.total_norm, []

    def norm(grads):  # steps 2 to 7 (after the first update) have an infinite gradient norm
        calls.append(1)
        return norms(grads) * (float("inf") if 2 <= len(calls) <= 7 else 1.0)

    def fit(*args, **kwargs):  # another line of the trainer's, mid-fit
        print("another line", file=sys.stderr)
        return train_model(*args, **kwargs)

    train_model = two_stage.train_model
    monkeypatch.setattr(step, "total_norm", norm)
    monkeypatch.setattr(two_stage, "train_model", fit)
    lookup("two-stage")(hidden=8, layers=1, epochs=1, batch_size=16).fit(torch.randn(200, 3))
    err = capsys.readouterr().err
    assert len(calls) > 7 and "another line" in err and "train." not in err and "vaekit: warning" not in err
    assert err.count("steps skipped") == 1
    assert "two-stage sampler: 6 steps skipped in a row during its fit; a lower lr may help (now 0.001)" in err


@pytest.mark.parametrize("kind", ["maf", "nsf"])
@pytest.mark.parametrize("dim", [3, 16])
def test_a_flow_counts_the_numbers_it_holds(kind, dim):
    """``numbers`` bounds a sampler's size (MAX_NUMBERS): zuko keeps a mask as large as each weight."""
    flow = lookup("flow")(kind=kind, hidden=32, transforms=2)
    made = sum(t.numel() for t in flow.build(dim).state_dict().values())
    assert abs(flow.numbers(dim) - made) <= 0.1 * made


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_a_fitted_sampler_refuses_a_bad_n(n):
    with pytest.raises(vaekit.VaekitError, match=f"n must be a whole number >= 1, got {n}"):
        lookup("gmm")(components=1).fit(torch.randn(20, 2)).sample(n)


@pytest.fixture(scope="module")
def gmm_folder(tmp_path_factory):
    """A run folder of digits (codes of 3 numbers) holding a gmm sampler of 2 components, fitted on 100 codes."""
    run = vaekit.train(tiny_config("digits", tmp_path_factory.mktemp("fit") / "run", epochs=1), pictures=False)
    fit_sampler(run, "gmm", components=2, limit=100)
    return run.path


@pytest.fixture
def run(gmm_folder, tmp_path):
    """A copy of ``gmm_folder``'s run, loaded."""
    return vaekit.load_run(shutil.copytree(gmm_folder, tmp_path / "run"))


def saved_json(run) -> dict:
    return json.loads(sampler_paths(run.path, "gmm")[1].read_text())


def test_another_limit_is_fitted_again_saved_or_not_and_a_fit_without_one_keeps_the_saved(run, capsys):
    """A limit was not compared with the saved sampler's: ``limit=50`` loaded the one fitted on 100 codes."""
    capsys.readouterr()
    assert fit_sampler(run, "gmm", limit=100).limit == 100 and "fitting" not in capsys.readouterr().err
    fit_sampler(run, "gmm", limit=50)  # its saved settings, as a fit without settings takes them
    assert "fitting the gmm sampler on 50 codes, with its saved settings components=2" in capsys.readouterr().err
    assert {k: saved_json(run)[k] for k in ("n_codes", "limit", "settings")} == {
        "n_codes": 50,
        "limit": 50,
        "settings": {"seed": 0, "components": 2},
    }
    assert fit_sampler(run, "gmm", limit=40, save=False).limit == 40 and saved_json(run)["n_codes"] == 50
    assert "on 40 codes" in capsys.readouterr().err
    assert fit_sampler(run, "gmm").limit == 50 and "fitting" not in capsys.readouterr().err  # loaded
    with torch.no_grad():
        next(run.model.parameters()).add_(0.1)  # as train --resume does: fitted again on as many codes
    fit_sampler(run, "gmm")
    assert "on 50 codes" in capsys.readouterr().err and saved_json(run)["limit"] == 50


def edit_json(run, edit) -> None:
    path = sampler_paths(run.path, "gmm")[1]
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))


EDITS = {  # a sampler file made other than vaekit wrote it, and the line it is refused in
    "not JSON": (
        lambda run: sampler_paths(run.path, "gmm")[1].write_text("{"),
        r"sampler-gmm.json: this sampler file is not valid JSON \(.+\)",
    ),
    "components edited": (  # a file from before ``sizes``: its buffers sized by the setting
        lambda run: edit_json(run, lambda s: s.pop("sizes") and s["settings"].update(components=3)),
        r"sampler-gmm.safetensors: covariances has shape \(2, 3, 3\), the sampler expects \(3, 3, 3\)",
    ),
    "sizes past the setting": (
        lambda run: edit_json(run, lambda s: s.update(sizes={"components": 9})),
        r"sampler-gmm.json: settings that do not build a gmm sampler \(.*are not 1 to 2 components\)",
    ),
    "latent_dim": (
        lambda run: edit_json(run, lambda s: s.update(latent_dim=4)),
        r"latent_dim 4 is not this run's code size, 3",
    ),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_refused_sampler_file_names_the_sampler_and_how_to_fit_it_again(run, capsys, edit):
    """Refused without a word of fitting it again (or said of "the model"); the CLI adds the flag of its key."""
    make, why = EDITS[edit]
    make(run)
    with pytest.raises(vaekit.VaekitError, match=f"{why}; fit it again with refit$") as e:
        load_sampler(run, "gmm")
    assert e.value.key == "refit" and "model" not in str(e.value)
    assert main(["sample", str(run.path), "--sampler", "gmm", "--n", "2", "--out", str(run.path / "s.npy")]) == 2
    assert capsys.readouterr().err.rstrip().endswith("; fit it again with refit (--refit)")
    assert fit_sampler(run, "gmm", refit=True).sample(2).shape == (2, 3)
    assert load_sampler(run, "gmm") is not None


def test_a_gmm_file_holds_the_components_fitted_not_asked_and_an_older_one_still_loads(run):
    """A million components asked of 100 codes fit 25, and the file held the million (mostly zeros)."""
    sampler = lookup("gmm")(components=10**6).fit(torch.randn(100, 3))
    assert sampler.weights.shape == (25,) and sampler.covariances.shape == (25, 3, 3)
    fit_sampler(run, "gmm", components=10**6, limit=40)  # 10 components fit 40 codes of 3 numbers
    weights, _ = sampler_paths(run.path, "gmm")
    assert saved_json(run)["sizes"] == {"components": 10} and weights.stat().st_size < 2000
    loaded = load_sampler(run, "gmm")
    assert loaded.means.shape == (10, 3) and loaded.fitted == {"components": 10} and loaded.sample(3).shape == (3, 3)
    old = lookup("gmm")(components=4).build(3)  # as vaekit wrote it before: sized by the setting, weight 0 past k
    with torch.no_grad():
        old.weights.copy_(torch.tensor([0.5, 0.5, 0.0, 0.0]))
        old.means[:2] = torch.tensor([[-1.0, 0, 0], [1, 0, 0]])
    save_weights(old, weights)
    edit_json(run, lambda s: [s.pop(k) for k in ("sizes", "limit")] and s["settings"].update(components=4))
    edit_json(run, lambda s: s.update(weights_sha256=weights_sha(weights)))
    loaded = load_sampler(run, "gmm")
    assert loaded.k == 4 and loaded.limit is None and loaded.sample(5).shape == (5, 3)
