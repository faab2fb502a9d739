"""What each likelihood costs a training step: images/s on the same small MLP VAE (784-256-16, batch 256) over
mnist5k, for the Bernoulli (dynamically binarised, as ``likelihood=bernoulli`` trains), the Gaussian and the
discretized logistic mixture with K = 1 and K = 5, the mixture both before (the implementation of commit fcdb30f,
kept as ``tests/data/discretized_reference.py``) and after its log-probability got a written-out gradient.

Every row runs ``vaekit.training.step.train_step`` with the precision ``train.precision=auto`` gives it (bf16
autocast for the Bernoulli where the CPU has bf16, float32 otherwise), in alternated rounds; medians. A last row
puts a one-pass stand-in in place of the K = 5 mixture's log-probability: the floor that the network's matrix
products (a 256 x 3920 output layer, 15 numbers per pixel) leave. With ``--compile`` the compiled step
(``train.compile=compile``) is timed beside the eager one.

    .venv/bin/python benchmarks/likelihoods.py              # about 2 min on 2 idle cores
    .venv/bin/python benchmarks/likelihoods.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import common
import runner
import torch

BATCH = 256
BEFORE = Path(__file__).resolve().parents[1] / "tests" / "data" / "discretized_reference.py"


def reference_module():
    """The mixture as it was before (commit fcdb30f), loaded from its copy."""
    spec = importlib.util.spec_from_file_location("discretized_before", BEFORE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def mixture(module):
    """Likelihood modules build ``module``'s mixture while inside."""
    from vaekit.core import likelihoods

    saved, likelihoods.discretized = likelihoods.discretized, module
    try:
        yield
    finally:
        likelihoods.discretized = saved


class Floor:
    """Stands in for the mixture module: the same parameters, a log-probability of one pass over them."""

    class DiscretizedLogisticMixture(torch.distributions.Distribution):
        arg_constraints: dict = {}

        def __init__(self, params, shape, components):
            self.params = params
            super().__init__(torch.Size([len(params)]), torch.Size(shape), validate_args=False)

        def log_prob(self, value):
            return -self.params.flatten(1).square().mean(1)


def stepper(likelihood: str, k: int, x: torch.Tensor, module, compile_mode: str) -> Callable[[int], None]:
    """A function running training step i of a fresh model (same seed) with ``likelihood``."""
    from vaekit.config import RunConfig
    from vaekit.data import binarize_dynamic
    from vaekit.models import build_model
    from vaekit.training.capture import CompiledStep
    from vaekit.training.guard import StepGuard
    from vaekit.training.step import Scheduled, StepSetup, autocast_dtype, make_optimizer, train_step

    cfg = RunConfig(out="")
    cfg.model.likelihood = likelihood
    if likelihood == "discretized_logistic":  # K is the mixture's alone: set on another likelihood, it is refused
        cfg.model.likelihood_components = k
    cfg.model.hidden, cfg.model.latent_dim, cfg.model.input_shape = [256], 16, list(x.shape[1:])
    cfg.train.compile = compile_mode
    torch.manual_seed(0)
    model = build_model(cfg.model)
    dtype = autocast_dtype("auto", torch.device("cpu"), likelihood)
    setup = StepSetup(model, make_optimizer(model, 1e-3), cfg.train, StepGuard(10), dtype)
    n = len(x) // BATCH
    step = train_step if compile_mode == "off" else CompiledStep(compile_mode, torch.device("cpu"), warn=print)

    def run(i: int) -> None:
        xb = x[(i % n) * BATCH : (i % n + 1) * BATCH]
        xb = binarize_dynamic(xb) if likelihood == "bernoulli" else xb
        with mixture(module):
            step(setup, xb, None, Scheduled(1.0), "bench")

    return run


def rows_of(args: argparse.Namespace) -> list[tuple[str, str, int, object, str]]:
    """(row name, likelihood, K, mixture module, compile mode) of every row."""
    from vaekit.core import discretized

    before = reference_module()
    rows = [("bernoulli", "bernoulli", 1, discretized, "off"), ("gaussian", "gaussian", 1, discretized, "off")]
    for k in (1, 5):
        rows += [
            (f"discretized_logistic K={k}, before", "discretized_logistic", k, before, "off"),
            (f"discretized_logistic K={k}, after", "discretized_logistic", k, discretized, "off"),
        ]
    rows.append(("K=5 network, one-pass stand-in for log p (the floor)", "discretized_logistic", 5, Floor, "off"))
    if args.compile:
        rows += [
            ("bernoulli, compiled step", "bernoulli", 1, discretized, "compile"),
            ("discretized_logistic K=5, compiled step", "discretized_logistic", 5, discretized, "compile"),
        ]
    return rows


def main() -> None:
    ap = runner.parser(__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="alternated rounds of --steps steps each")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 5 steps: a smoke run")
    ap.add_argument("--compile", action="store_true", help="also time the compiled step (train.compile=compile)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="process: this process's CPU time (with --threads 1, for a machine others share)",
    )
    ap.add_argument("--json", help="the result (default: benchmarks/results/likelihoods.json)")
    args = ap.parse_args()
    common.budget(ap, args, "rounds", "steps")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.rounds, args.steps = 2, 5
    from vaekit.data import load_dataset

    x = load_dataset("mnist5k").train.x
    rows = rows_of(args)
    fns = {name: stepper(lik, k, x, module, mode) for name, lik, k, module, mode in rows}
    times: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.process_time if args.clock == "process" else time.perf_counter
    for r in range(args.rounds + 1):  # round 0 warms up (and compiles)
        for name, fn in fns.items():
            start = clock()
            for i in range(args.steps):
                fn(i)
            if r:
                times[name].append((clock() - start) / args.steps)
    report(times, args)


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    """Images/s and ms per step (medians), and each row's cost against the Bernoulli's step."""
    base = statistics.median(times["bernoulli"])
    rows = [
        [
            name,
            round(BATCH / statistics.median(s)),
            round(1e3 * statistics.median(s), 2),
            f"{statistics.median(s) / base:.1f}x",
        ]
        for name, s in times.items()
    ]
    caption = (
        f"cpu, {torch.get_num_threads()} threads: MLP VAE 784-256-16 on mnist5k, batch {BATCH}, "
        f"{args.rounds} rounds of {args.steps} steps, {args.clock} time"
    )
    ratio = {r[0]: r[3] for r in rows}
    headline = (
        f"a training step under the discretized logistic (K = 5) costs "
        f"{ratio['discretized_logistic K=5, after']} the Bernoulli's (before: "
        f"{ratio['discretized_logistic K=5, before']}); its network with a one-pass loss "
        f"{ratio['K=5 network, one-pass stand-in for log p (the floor)']}"
    )
    common.write(
        "likelihoods",
        "What each likelihood costs a training step",
        headline,
        [common.table(caption, ["likelihood", "images/s", "ms/step", "step / Bernoulli's"], rows)],
        out=args.json,
    )


if __name__ == "__main__":
    runner.entry(main)
