"""Where an MLP training step's time goes: pythae's step, vaekit's, a hand-written one and the bare matmuls.

One process runs five steps on the same MLP VAE (784-400-400-20, Bernoulli likelihood, Adam lr 1e-3, batch
128) in alternated rounds and prints their milliseconds per step beside pythae's:

- pythae's step: its VAE's forward and loss, backward, and Adam (float32), as its trainer runs them (no
  DataLoader; needs pythae: ``make bench-peer-install`` puts it into .venv);
- vaekit's ``train_step`` (bf16 autocast, fused Adam), fed by ``binarize_dynamic``, eager and compiled
  (``train.compile=compile``: ``vaekit.training.capture``);
- a hand-written step with no autograd: the gradient written out by hand (checked against autograd of
  vaekit's ``elbo`` before timing), one bf16 cast of all weights, one fused Adam over one flat buffer;
- the step's 17 bf16 matrix products alone, at their shapes.

The last two bound what any step written in torch can reach on this machine: the speed target (4x pythae's
samples/s, 50% of the bf16 matmul rate) needs the whole step within the time those leave.

    make bench-floor                                    # about 1 min on 2 idle CPU cores
    .venv/bin/python benchmarks/step_floor.py --rounds 4
    .venv/bin/python benchmarks/step_floor.py --rounds 1 --steps 10 --json /tmp/floor.json   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import common
import runner
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import matmul_rate

BATCH = 128
Layers = list[tuple[Tensor, Tensor]]  # (weight, bias) of each Linear layer, first to last


def build(precision: str) -> tuple[nn.Module, object]:
    """vaekit's MLP VAE of the peer benchmark and its config; ``precision`` bf16 or fp32."""
    from vaekit.config import RunConfig, set_value
    from vaekit.models import build_model

    cfg = RunConfig(out="")
    for key, value in {
        "model.net": "mlp",
        "model.likelihood": "bernoulli",
        "model.hidden": "400,400",
        "model.latent_dim": 20,
        "train.batch_size": BATCH,
        "train.precision": precision,
    }.items():
        set_value(cfg, key, value)
    cfg.model.input_shape = [1, 28, 28]
    torch.manual_seed(0)
    return build_model(cfg.model), cfg


def linears(model: nn.Module) -> tuple[list[nn.Linear], list[nn.Linear]]:
    """The encoder's Linear layers with the q(z|x) head last, and the decoder's."""
    enc = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)] + [model.to_qz]
    return enc, [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]


def mlp_forward(h: Tensor, layers: Layers) -> list[Tensor]:
    """Inputs of every layer and the last output: Linear with ReLU between (none after the last)."""
    acts = [h]
    for i, (w, b) in enumerate(layers):
        h = torch.addmm(b, h, w.t())
        acts.append(h.relu_() if i < len(layers) - 1 else h)
    return acts


def mlp_backward(g: Tensor, acts: list[Tensor], layers: Layers, grads: Layers, need_input: bool) -> Tensor | None:
    """Weight and bias gradients into ``grads`` for output gradient ``g``; returns the input's gradient."""
    for i in reversed(range(len(layers))):
        if i < len(layers) - 1:
            g = g * (acts[i + 1] > 0)
        grads[i][0].copy_(torch.mm(g.t(), acts[i]))
        grads[i][1].copy_(g.sum(0))
        if i == 0 and not need_input:
            return None
        g = torch.mm(g, layers[i][0])
    return g


class HandStep:
    """The MLP VAE's negative ELBO, its gradient by hand and Adam, on flat copies of ``model``'s weights."""

    def __init__(self, model: nn.Module, lr: float, dtype: torch.dtype):
        enc, dec = linears(model)
        self.n_enc, self.dtype, self.latent = len(enc), dtype, model.latent_dim
        self.shapes = [(m.out_features, m.in_features) for m in enc + dec]
        self.flat = torch.cat([t.detach().flatten() for m in enc + dec for t in (m.weight, m.bias)])
        self.flat.grad = torch.zeros_like(self.flat)
        self.low = torch.empty_like(self.flat, dtype=dtype)
        self.opt = torch.optim.Adam([self.flat], lr=lr, fused=True)

    def views(self, buf: Tensor) -> Layers:
        """(weight, bias) views of a flat buffer, layer by layer."""
        out, at = [], 0
        for o, i in self.shapes:
            out.append((buf[at : at + o * i].view(o, i), buf[at + o * i : at + o * i + o]))
            at += o * i + o
        return out

    def gradient(self, x: Tensor, eps: Tensor, beta: float = 1.0) -> Tensor:
        """Fill ``flat.grad`` with the gradient of the batch-mean negative ELBO at (B, D) binary ``x``, (B, Z)
        noise ``eps``; returns the loss."""
        from vaekit.core.likelihoods import MIN_SCALE

        self.low.copy_(self.flat)
        w, g, n, b = self.views(self.low), self.views(self.flat.grad), self.n_enc, len(x)
        xl = x.to(self.dtype)
        enc = mlp_forward(xl, w[:n])
        e = enc[-1].float()
        loc, raw = e[:, : self.latent], e[:, self.latent :]
        scale = F.softplus(raw) + MIN_SCALE
        z = loc + scale * eps
        dec = mlp_forward(z.to(self.dtype), w[n:])
        logits = dec[-1].float()
        kl = (0.5 * (scale * scale + loc * loc) - scale.log() - 0.5).sum()
        loss = ((F.softplus(logits) - x * logits).sum() + beta * kl) / b
        dl = ((torch.sigmoid(logits) - x) / b).to(self.dtype)
        dz = mlp_backward(dl, dec, w[n:], g[n:], need_input=True).float()
        dloc = dz + loc * (beta / b)
        draw = (dz * eps + (scale - 1 / scale) * (beta / b)) * torch.sigmoid(raw)
        mlp_backward(torch.cat([dloc, draw], 1).to(self.dtype), enc, w[:n], g[:n], need_input=False)
        return loss

    def __call__(self, x: Tensor) -> Tensor:
        """One Adam step on a (B, D) binary batch."""
        loss = self.gradient(x, torch.randn(len(x), self.latent))
        self.opt.step()
        return loss


def check_gradient(model: nn.Module) -> float:
    """Largest difference between the hand-written gradient and autograd's of vaekit's ``elbo`` (float32, same
    x and noise), relative to the largest gradient entry."""
    from vaekit.core import VAEOutput, elbo

    x = (torch.rand(16, 784) < 0.3).float()
    eps = torch.randn(16, model.latent_dim)
    hand = HandStep(model, 1e-3, torch.float32)
    hand.gradient(x, eps)
    qz = model.encode(x.view(16, 1, 28, 28))
    z = qz.base_dist.loc + qz.base_dist.scale * eps
    out = VAEOutput(px=model.decode(z), qz=[qz], pz=[model.prior()], z=[z])
    model.zero_grad()
    elbo(out, x.view(16, 1, 28, 28))["loss"].backward()
    enc, dec = linears(model)
    auto = torch.cat([t.grad.flatten() for m in enc + dec for t in (m.weight, m.bias)])
    model.zero_grad(set_to_none=True)
    return float((hand.flat.grad - auto).abs().max() / auto.abs().max())


def step_matmuls(model: nn.Module, dtype: torch.dtype) -> tuple[list[tuple[Tensor, Tensor]], float]:
    """Operand pairs of one step's matrix products (forward, weight and input gradients; the input needs no
    gradient) and their FLOPs."""
    shapes = []
    for i, m in enumerate(lin for part in linears(model) for lin in part):
        shapes += [(BATCH, m.in_features, m.out_features), (m.out_features, BATCH, m.in_features)]
        shapes += [(BATCH, m.out_features, m.in_features)] if i else []
    pairs = [(torch.randn(a, k).to(dtype), torch.randn(k, c).to(dtype)) for a, k, c in shapes]
    return pairs, float(sum(2 * a * k * c for a, k, c in shapes))


def steps(images: Tensor, dtype: torch.dtype, precision: str) -> tuple[dict[str, Callable[[int], object]], float]:
    """name -> function(i) running step i, each on its own copy of the model; and the step's matmul FLOPs."""
    from vaekit.data import binarize_dynamic
    from vaekit.training.guard import StepGuard
    from vaekit.training.step import Scheduled, StepSetup, autocast_dtype, make_optimizer, train_step

    def batch(i: int) -> Tensor:
        return images[(i % 50) * BATCH : (i % 50 + 1) * BATCH]

    model, cfg = build(precision)
    auto = autocast_dtype(cfg.train.precision, torch.device("cpu"), cfg.model.likelihood)
    setup = StepSetup(model, make_optimizer(model, 1e-3), cfg.train, StepGuard(10), auto)
    hand = HandStep(build(precision)[0], 1e-3, dtype)
    pairs, flops = step_matmuls(model, dtype)
    out = {
        "vaekit train_step": lambda i: train_step(setup, binarize_dynamic(batch(i)), None, Scheduled(1.0), "bench"),
        **compiled_row(batch, precision, auto),
        "hand-written, no autograd": lambda i: hand(binarize_dynamic(batch(i)).flatten(1)),
        "the 17 matrix products alone": lambda i: [torch.mm(a, b) for a, b in pairs],
    }
    return {"pythae (float32)": pythae_step(batch)} | out, flops  # pythae: checked in main, before any work


def compiled_row(batch: Callable[[int], Tensor], precision: str, auto) -> dict[str, Callable[[int], object]]:
    """vaekit's step under train.compile=compile (vaekit.training.capture) on its own copy of the model; its
    first call compiles (inductor: a minute or more on 2 cores), and round 0 is not timed."""
    from vaekit.data import binarize_dynamic
    from vaekit.training.capture import CompiledStep
    from vaekit.training.guard import StepGuard
    from vaekit.training.step import Scheduled, StepSetup, make_optimizer

    model, cfg = build(precision)
    step = CompiledStep("compile", torch.device("cpu"))
    setup = StepSetup(model, make_optimizer(model, 1e-3), cfg.train, StepGuard(10), auto)

    def fn(i: int) -> object:
        return step(setup, binarize_dynamic(batch(i)), None, Scheduled(1.0), "bench")

    return {"vaekit train_step, compiled (train.compile=compile)": fn}


def pythae_step(batch: Callable[[int], Tensor]) -> Callable[[int], None]:
    """pythae's training step on the same networks (its VAE, BCE loss, plain Adam), float32."""
    import peer_pythae
    from pythae.data.datasets import DatasetOutput

    model = peer_pythae.build(build("fp32")[0], 20)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(i: int) -> None:
        loss = model(DatasetOutput(data=torch.bernoulli(batch(i)))).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = runner.parser(__doc__)
    ap.add_argument("--rounds", type=int, default=10, help="alternated rounds of --steps steps each")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--json", help="the result (default: benchmarks/results/step_floor.json)")
    args = ap.parse_args()
    common.budget(ap, args, "rounds", "steps")
    runner.need_peers("step_floor", "pythae")
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    error = check_gradient(build("fp32")[0])
    print(
        f"hand-written gradient vs autograd of vaekit's elbo (float32): largest difference {error:.1e} "
        "of the largest entry"
    )
    if error > 1e-4:
        raise SystemExit("the hand-written gradient does not match autograd's: no timings")
    print(one_thread_rates())
    rate = matmul_rate(dtype, "cpu")
    fns, flops = steps(torch.rand(50 * BATCH, 1, 28, 28), dtype, args.precision)
    times = {name: [] for name in fns}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, fn in fns.items():
            start = time.perf_counter()
            for i in range(args.steps):
                fn(i)
            if r:
                times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    report(times, flops, rate, args)


def one_thread_rates() -> str:
    """The 2048 x 2048 matmul rate of one thread in bf16 and float32: one core's peak, whatever the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    bf16, fp32 = matmul_rate(torch.bfloat16, "cpu"), matmul_rate(torch.float32, "cpu")
    torch.set_num_threads(threads)
    return f"one thread: 2048 x 2048 matmul {bf16:.0f} GFLOP/s bf16, {fp32:.0f} GFLOP/s float32"


def report(times: dict[str, list[float]], flops: float, rate: float, args: argparse.Namespace) -> None:
    """The table (medians of the rounds, ratios to pythae's step taken round by round), printed and written."""
    ref = times.get("pythae (float32)")
    rows = []
    for name, ms in times.items():
        ratio = f"{statistics.median(a / b for a, b in zip(ref, ms)):.2f}x" if ref else "-"
        gflops = flops / statistics.median(ms) / 1e6
        rows.append([name, round(statistics.median(ms), 2), ratio, round(gflops), f"{100 * gflops / rate:.0f}%"])
    caption = (
        f"cpu, {args.threads} threads, {args.precision}: 2048 x 2048 matmul {rate:.0f} GFLOP/s; "
        f"{flops / 1e6:.0f} MFLOP of matrix products per step of {BATCH}"
    )
    step = {r[0]: r for r in rows}["vaekit train_step"]
    headline = f"vaekit's training step {step[1]} ms ({step[2]} pythae's step), {step[4]} of the matmul rate"
    common.write(
        "step_floor",
        "One training step: pythae's, vaekit's, a hand-written one, the matrix products",
        headline,
        [common.table(caption, ["step", "ms/step", "pythae's step / this", "GFLOP/s", "% of matmul rate"], rows)],
        out=args.json,
    )


if __name__ == "__main__":
    runner.entry(main)
