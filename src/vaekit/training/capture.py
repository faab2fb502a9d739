"""``train.compile``: the training step of ``vaekit.training.step.train_step`` (forward, objective, backward,
the gradient check, the optimiser step) with its graphs compiled by ``torch.compile``, or captured as CUDA graphs.

- ``off``: eager, as ever.
- ``compile``: the forward pass, the objective and their backward as one inductor graph, the gradient's norm,
  the finiteness check and the clipping as another (on the CPU inductor needs a C++ compiler); the guard reads
  the check (the step's one host sync, as in the eager step) and fused Adam takes the step.
- ``graph``: the same, with inductor's CUDA graphs (``mode="reduce-overhead"``): CUDA only.
- ``auto``: ``off`` on the CPU (measured: ``benchmarks/step_floor.py`` and ``benchmarks/likelihoods.py``
  give the compiled step's saving, which does not repay inductor's first compile within a CPU run's length);
  ``graph`` on CUDA for runs of at least ``AUTO_MIN_STEPS`` steps it can take (a balanced KL warm-up's run
  eagerly and do not count), where a small model's step is bound by kernel
  launches. Measured on an H200 (2026-12-04): the deep GPU preset's step 83 ms eager, 35 ms captured, after a
  134 s first epoch of compiling and capture (break-even near 2,700 steps for that model; smaller models compile
  sooner).

Shapes are static: a compiled step drops each epoch's last short batch (a new shape would compile again). A
step that cannot be compiled (no C++ compiler, an operation inductor cannot lower) falls back to the eager
step with one line saying why.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.contract import VAEModule
from ..core.objectives import Terms
from ..core.objectives_zoo import Objective, ObjectiveSettings, backward, objective
from ..errors import VaekitError
from . import distributed
from .step import Scheduled, StepSetup, total_norm, train_step

MODES = ("auto", "off", "graph", "compile")
AUTO_MIN_STEPS = 2000  # CUDA: runs shorter than this do not repay the capture
BACKEND = "inductor"  # torch.compile's backend; the tests trace with "eager" (dynamo alone, no C++ compile)


def choose(mode: str, device: torch.device, steps: int) -> str:
    """The mode a run of ``steps`` steps on ``device`` uses: 'off', 'compile' or 'graph' (see the module)."""
    if mode == "graph" and device.type != "cuda":
        raise VaekitError(
            f"train.compile=graph captures CUDA graphs, and this run is on {device.type}: "
            "use train.compile=compile or off",
            key="train.compile",
        )
    if mode == "auto":
        return "graph" if device.type == "cuda" and steps >= AUTO_MIN_STEPS else "off"
    return mode


def unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None."""
    if device.type == "cpu" and BACKEND == "inductor":
        from torch._inductor import config

        cxx = [c for c in (config.cpp.cxx if isinstance(config.cpp.cxx, tuple) else (config.cpp.cxx,)) if c]
        if not any(shutil.which(c) for c in cxx or ["g++"]):
            return f"inductor needs a C++ compiler on the CPU, and {' or '.join(cxx or ['g++'])} is not on the PATH"
    return None


def compiler_errors() -> tuple[type[BaseException], ...]:
    """What a step that cannot be compiled raises. Inductor's own error is torch 2.7's (2.6, the floor, wraps
    it in BackendCompilerFailed): read with getattr, so that the tuple itself never fails."""
    failed = torch._dynamo.exc.BackendCompilerFailed
    inductor = getattr(getattr(torch._inductor, "exc", None), "InductorError", failed)
    return (failed, inductor, torch._dynamo.exc.Unsupported, OSError)


def _loss(fn: Objective, model: VAEModule, xb: Tensor, yb: Tensor | None, s: ObjectiveSettings) -> Terms:
    """The objective's terms: the forward pass and the loss (inductor compiles their backward with them)."""
    return fn(model, xb, yb, s)


def _check(grads: list[Tensor], loss: Tensor, clip: float) -> tuple[Tensor, Tensor]:
    """The gradient's norm and loss + norm (non-finite when either is); the gradients clipped to ``clip`` (> 0)
    in place, which a skipped step never uses."""
    norm = total_norm(grads)
    if clip > 0:
        torch._foreach_mul_(grads, (clip / (norm + 1e-6)).clamp(max=1.0))
    return norm, loss.detach() + norm


class CompiledStep:
    """``train_step`` with its forward, objective, backward and gradient check compiled; the same arguments and
    result. The guard reads the check (one host sync, as the eager step); fused Adam then takes the step. Steps
    the compiled path does not cover (a critic network, NVAE's balanced warm-up) and every step after a
    compiler failure run eagerly."""

    def __init__(self, mode: str, device: torch.device, warn: Callable[[str], object] | None = None):
        self.warn = warn  # where its lines go (None: stderr, as ``distributed.warn`` says them)
        self.why = unavailable(device)
        if self.why is not None:  # the machine's: every rank finds the same
            self.say(f"train.compile={mode}: the step runs eagerly: {self.why}")
        how = "reduce-overhead" if mode == "graph" and BACKEND == "inductor" else None  # None: torch's default
        self.loss = torch.compile(_loss, dynamic=False, backend=BACKEND, mode=how)
        self.check = torch.compile(_check, dynamic=False, backend=BACKEND)
        self.warm = False  # the first step runs eagerly: see __call__

    def __call__(self, setup: StepSetup, xb: Tensor, yb: Tensor | None, now: Scheduled, where: str) -> Terms | None:
        # The first step runs eagerly: it fills the Python-side caches dynamo cannot trace cold (kl_divergence's
        # dispatch on the distributions' types), whose graph break left inductor an output it could not rebuild
        # ("view size is not compatible", the deep hierarchy's bf16 step).
        t = setup.t
        if self.why is None and self.warm and setup.critic is None and not (t.kl_balance and now.beta < t.beta):
            try:
                return self.step(setup, xb, yb, now, where)
            except compiler_errors() as e:
                self.why = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
                self.say(f"train.compile: the step runs eagerly: {self.why}", own=True)  # this rank's compiler
        self.warm = True
        return train_step(setup, xb, yb, now, where)

    def say(self, line: str, own: bool = False) -> None:
        """``line`` to ``warn``, else on stderr once under torchrun (``distributed.warn``; ``own``: this rank's)."""
        if self.warn is None:
            distributed.warn(line, own)
        else:
            self.warn(line)

    def step(self, setup: StepSetup, xb: Tensor, yb: Tensor | None, now: Scheduled, where: str) -> Terms | None:
        """The compiled step; scheduled values go in as 0-dim tensors, so a new value compiles nothing new."""
        model, opt, t = setup.model, setup.opt, setup.t
        value = lambda v: torch.tensor(float(v), device=xb.device)  # noqa: E731
        s = ObjectiveSettings.of(
            t,
            beta=value(now.beta),
            capacity=None if now.capacity is None else value(now.capacity),
            dataset_size=setup.n_data,
            dimwise_weight=value(now.dimwise),
            dtype=setup.dtype,
        )
        terms = self.loss(objective(t.objective), model, xb, yb, s)
        opt.zero_grad(set_to_none=True)
        backward(terms, list(model.parameters()))
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm, check = self.check(grads, terms["loss"], t.clip_grad)
        if not setup.guard.ok(check, where, norm, terms):
            return None
        opt.step()
        return terms


def compilable_steps(epochs: int, warmup_epochs: float, kl_balance: bool, steps_per_epoch: int) -> int:
    """The steps a compiled step would take in ``epochs`` epochs: all but a balanced KL warm-up's
    (``kl_balance``), which ``CompiledStep`` leaves to the eager step."""
    eager = warmup_epochs if kl_balance else 0.0
    return int(max(0.0, epochs - eager) * steps_per_epoch)


def make_step(mode: str, device: torch.device, steps: int) -> tuple[Callable, bool]:
    """The step function for ``train.compile=mode`` and whether its shapes must stay fixed (drop short batches;
    so too where it cannot compile here: the batches a run cuts follow its settings, not the machine)."""
    mode = choose(mode, device, steps)
    if mode == "off":
        return train_step, False
    return CompiledStep(mode, device), True


def eager_epoch(epoch: int, warmup_epochs: float, kl_balance: bool) -> bool:
    """Whether every step of epoch ``epoch`` (0-based) runs eagerly under a compiled step: a balanced KL warm-up's
    (``CompiledStep`` leaves those to the eager step), whose short last batch is then kept, as without compiling."""
    return kl_balance and epoch + 1 <= warmup_epochs
