"""Speed without changed numbers: the discretized mixture's written-out gradient against its earlier form, the
compiled step (``train.compile``) against the eager one, and the data path on the training device."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import TrainConfig
from vaekit.core import discretized
from vaekit.errors import VaekitError
from vaekit.training import capture, trainer
from vaekit.training.guard import StepGuard
from vaekit.training.step import Scheduled, StepSetup, make_optimizer, train_step

spec = importlib.util.spec_from_file_location("before", Path(__file__).parent / "data" / "discretized_reference.py")
before = importlib.util.module_from_spec(spec)
spec.loader.exec_module(before)


def mixtures(c: int, k: int, dtype: torch.dtype):
    """Parameters (8, K (C + 2), C, 5, 6) with sharp scales (some under the floor) and 8-bit items, end bins
    included."""
    torch.manual_seed(c * 10 + k)
    shape = (c, 5, 6)
    params = torch.randn(8, k * (c + 2), *shape, dtype=dtype) * 3
    params[:, 2 * k : 3 * k] -= 3
    x = torch.randint(0, 256, (8, *shape)).to(dtype) / 255
    x[0], x[1] = 0, 1
    return params, x, shape


def value_and_grad(module, params, x, shape, k):
    p = params.clone().requires_grad_()
    lp = module.DiscretizedLogisticMixture(p, shape, k).log_prob(x)
    (lp * torch.arange(1, 9, dtype=lp.dtype)).sum().backward()
    return lp.detach(), p.grad


@pytest.mark.parametrize("c,k", [(1, 5), (3, 2)])
def test_the_mixture_gives_the_numbers_it_gave_before(c, k):
    """log p within 1e-5 (relative, float32) of the implementation before; gradients equal in float64 and in
    float32 no further from float64's than before; samples bit for bit, and a grey pixel's mean (a colour
    pixel's was wrong before: tests/test_auto.py holds it to the sum over its values)."""
    params, x, shape = mixtures(c, k, torch.float64)
    (lp0, g0), (lp1, g1) = (value_and_grad(m, params, x, shape, k) for m in (before, discretized))
    torch.testing.assert_close(lp1, lp0, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(g1, g0, rtol=1e-9, atol=1e-9 * g0.abs().max().item())
    p32, x32 = params.float(), x.float()
    (lp0f, g0f), (lp1f, g1f) = (value_and_grad(m, p32, x32, shape, k) for m in (before, discretized))
    torch.testing.assert_close(lp1f, lp0f, rtol=1e-5, atol=0)
    assert (g1f.double() - g0).abs().max() <= 1.01 * (g0f.double() - g0).abs().max() + 1e-6
    draws = []
    for m in (before, discretized):
        torch.manual_seed(1)
        px = m.DiscretizedLogisticMixture(p32, shape, k)
        draws.append((px.sample(), px.mean))
    assert torch.equal(draws[0][0], draws[1][0]) and (c > 1 or torch.equal(draws[0][1], draws[1][1]))


def test_the_mixture_needs_no_gradient_work_without_gradients():
    params, x, shape = mixtures(1, 3, torch.float32)
    with torch.no_grad():
        lp = discretized.DiscretizedLogisticMixture(params, shape, 3).log_prob(x)
    torch.testing.assert_close(lp, value_and_grad(before, params, x, shape, 3)[0], rtol=1e-5, atol=0)


def test_compile_modes_are_chosen_by_device_and_length():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert capture.choose("auto", cpu, 10**6) == "off"  # measured: it does not pay on the CPU
    assert (capture.choose("auto", cuda, 10), capture.choose("auto", cuda, 10**5)) == ("off", "graph")
    assert capture.choose("compile", cpu, 1) == "compile"
    with pytest.raises(VaekitError, match=r"train.compile=graph captures CUDA graphs.*on cpu") as e:
        capture.choose("graph", cpu, 10)
    assert "\n" not in str(e.value)


def test_a_balanced_warm_up_leaves_its_epochs_out_of_the_steps_that_choose_compilation(monkeypatch):
    """NVAE's balanced KL warm-up runs eagerly, so only the epochs after it count towards AUTO_MIN_STEPS."""
    seen = []
    monkeypatch.setattr(trainer, "make_step", lambda mode, device, steps: (seen.append(steps), (train_step, False))[1])
    x = (torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    for balance in (False, True):
        model = vaekit.DeepVAE((1, 8, 8), groups=[1, 1, 0], width=8, cell_width=4, latent_channels=2)
        vaekit.fit(
            model, x, epochs=3, batch_size=16, warmup_epochs=2, kl_balance=balance, progress=False, pictures=False
        )
    assert seen[0] > 0 and seen == [seen[0], seen[0] // 3]
    assert (
        capture.compilable_steps(7, 5, True, 210) == 2 * 210 and capture.compilable_steps(7, 5, False, 210) == 7 * 210
    )
    assert capture.compilable_steps(3, 5, True, 10) == 0


@pytest.fixture
def steps():
    """Run 6 steps (beta changing every step) of a small Bernoulli MLP VAE with a step function; the losses
    and the weights after."""
    from vaekit.config import RunConfig
    from vaekit.models import build_model

    def run(step):
        cfg = RunConfig(out="")
        cfg.model.likelihood, cfg.model.hidden, cfg.model.latent_dim, cfg.model.input_shape = (
            "bernoulli",
            [16],
            2,
            [1, 4, 4],
        )
        torch.manual_seed(0)
        model, x = build_model(cfg.model), (torch.rand(24, 1, 4, 4) > 0.5).float()
        setup, losses = StepSetup(model, make_optimizer(model, 1e-2), cfg.train, StepGuard(3)), []
        for i in range(6):
            terms = step(setup, x[i % 3 * 8 : (i % 3 + 1) * 8], None, Scheduled(0.5 + i / 10), "t")
            losses.append(terms["loss"].item())
        return losses, torch.cat([p.detach().flatten() for p in model.parameters()])

    return run


def test_a_compiled_step_follows_the_eager_one_without_recompiling(steps, monkeypatch):
    """Traced by dynamo (the 'eager' backend: the same kernels), the step gives the eager step's numbers, and a
    scheduled beta that changes every step compiles nothing new."""
    monkeypatch.setattr(capture, "BACKEND", "eager")
    torch._dynamo.reset()
    eager, compiled = steps(train_step), steps(capture.CompiledStep("compile", torch.device("cpu")))
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-6)
    torch.testing.assert_close(compiled[1], eager[1], rtol=1e-5, atol=1e-6)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 4  # the loss and the check, once each


def test_the_first_step_runs_eagerly_to_fill_the_caches_dynamo_cannot_trace_cold(steps, monkeypatch):
    """kl_divergence's dispatch, traced cold, broke the deep hierarchy's graph where inductor could not rebuild
    an output; the first step runs eagerly, the other five compiled."""
    monkeypatch.setattr(capture, "BACKEND", "eager")
    torch._dynamo.reset()
    step, compiled = capture.CompiledStep("compile", torch.device("cpu")), []
    real = step.step
    monkeypatch.setattr(step, "step", lambda *a: compiled.append(len(compiled)) or real(*a))
    steps(step)
    assert compiled == [0, 1, 2, 3, 4]


def test_a_step_that_cannot_compile_runs_eagerly_after_one_line(steps, monkeypatch):
    from torch._inductor import config

    lines = []
    with config.patch({"cpp.cxx": ("no-such-c++",)}):
        step = capture.CompiledStep("compile", torch.device("cpu"), warn=lines.append)
    (losses, weights), (losses0, weights0) = steps(step), steps(train_step)
    assert losses == losses0 and torch.equal(weights, weights0)
    assert len(lines) == 1 and "C++ compiler" in lines[0]

    def broken(gm, inputs):
        raise RuntimeError("cannot lower this")

    monkeypatch.setattr(capture, "BACKEND", broken)
    torch._dynamo.reset()
    lines.clear()
    step = capture.CompiledStep("compile", torch.device("cpu"), warn=lines.append)
    assert steps(step)[0] == steps(train_step)[0]
    assert len(lines) == 1 and "BackendCompilerFailed" in lines[0] and "cannot lower this" in lines[0]


def test_a_failed_step_runs_eagerly_under_a_torch_without_inductor_error(monkeypatch):
    """torch 2.6 (the floor) has no torch._inductor.exc.InductorError: the except clause of the compiled step
    still catches a failure (not an AttributeError in its place) and the step runs eagerly."""
    import torch._inductor.exc

    monkeypatch.setattr(capture, "train_step", lambda *args: "eager")
    lines = []
    step = capture.CompiledStep("compile", torch.device("cpu"), warn=lines.append)
    lines.clear()  # a machine without a C++ compiler says so first
    monkeypatch.delattr(torch._inductor.exc, "InductorError")  # after torch.compile, whose inductor imports it

    def fails(*args):
        raise OSError("disk full")

    step.why, step.warm, step.step = None, True, fails  # compiled from its second step on
    t = TrainConfig()
    assert step(SimpleNamespace(critic=None, t=t), torch.zeros(1), None, SimpleNamespace(beta=t.beta), "e") == "eager"
    assert lines == ["train.compile: the step runs eagerly: OSError: disk full"]


def tiny_vae() -> vaekit.VAE:
    return vaekit.VAE(
        torch.nn.Flatten(), torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Unflatten(1, (1, 4, 4))), 2
    )


def test_a_compiled_run_drops_the_last_short_batch_and_graph_is_refused_on_the_cpu(capsys):
    """51 training items, batch 16: the eager run takes 4 steps an epoch (the last of 3 items), a run with
    train.compile=compile 3 (here without a C++ compiler: eagerly, after one line, with the same shapes)."""
    from torch._inductor import config

    counts = {}

    class Count(vaekit.Callback):
        def on_step_end(self, step, metrics, model):
            counts[mode] = counts.get(mode, 0) + 1

    x = (torch.rand(56, 1, 4, 4) > 0.5).float()
    for mode in ("off", "compile"):
        with config.patch({"cpp.cxx": ("no-such-c++",)}):
            vaekit.fit(
                tiny_vae(),
                x,
                epochs=2,
                batch_size=16,
                compile=mode,
                device="cpu",
                callbacks=[Count()],
                pictures=False,
                progress=False,
                val_fraction=0.1,
            )
    assert counts == {"off": 8, "compile": 6}
    assert capsys.readouterr().err.count("train.compile=compile: the step runs eagerly") == 1
    with pytest.raises(VaekitError, match="graph"):
        vaekit.fit(tiny_vae(), x, epochs=1, compile="graph", device="cpu", pictures=False, progress=False)


def test_a_balanced_warm_up_keeps_the_short_last_batch_as_without_compiling():
    """A balanced KL warm-up's steps run eagerly under train.compile: its epochs keep their short last batch, so
    they train as with compile off (it was dropped: another loss, 412.49 against 409.58 on deep-mnist)."""
    x = (torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()  # 2 batches of 16, 8 left
    losses = []
    for mode in ("off", "compile"):
        torch.manual_seed(0)
        model = vaekit.DeepVAE((1, 8, 8), groups=[1, 1, 0], width=8, cell_width=4, latent_channels=2)
        settings = dict(warmup_epochs=1, kl_balance=True, batch_size=16, progress=False, pictures=False)
        losses.append(vaekit.fit(model, x, epochs=1, compile=mode, **settings).history[0]["train_loss"])
    assert losses[0] == losses[1]
