"""Post-hoc samplers fitted straight on codes, without a run: seeded fits, diverged fits and skipped steps, the
memory their draws take, the numbers a flow holds and a refused n."""

from __future__ import annotations

import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import vaekit
from vaekit.samplers import lookup


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
