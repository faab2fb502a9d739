"""One training step and what it needs: the optimiser, the training dtype, the guard against non-finite steps,
and the validation loss. Everything here uses a model only through the contract (``vaekit.core.contract``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import CHOICES, TrainConfig
from ..core.contract import VAEModule
from ..core.likelihoods import name_of
from ..core.objectives import Terms
from ..core.objectives_zoo import ObjectiveSettings, backward, objective
from ..data.batching import batch_count, batch_rows
from ..data.packed import Items
from ..errors import VaekitError
from . import distributed
from .first_step import refuse_first_step
from .guard import StepGuard
from .stability import balanced_kl


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it, or for cuda:N beyond this machine's GPUs, is
    one line naming ``key`` (counted: no CUDA context is made here, so torchrun's workers each take their own)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaekitError(
            "device 'cuda' was asked for, and no CUDA device is available here (device 'cpu' runs on the CPU)",
            key=key,
        )
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise VaekitError(f"{key} {name!r} cannot be used here: this machine has {n} CUDA device(s)", key=key)
    return device


def run_device(name: str, key: str = "device") -> torch.device:
    """The device ``name`` (``resolve_device``, which counts CUDA devices) if it is usable here,
    else one line naming ``key``: a kind absent here (xpu) or no device name at all."""
    try:
        device = resolve_device(name, key)
        torch.empty(0, device="cpu" if device.type == "cuda" else device)  # another kind absent here fails
    except (RuntimeError, AssertionError, NotImplementedError):
        known = ", ".join(CHOICES["train.device"])
        raise VaekitError(f"{key} {name!r} cannot be used here: expected {known} or cuda:N", key=key) from None
    return device


def labels_on(y: Tensor | None, device: torch.device) -> Tensor:
    """A split's labels (N,) on ``device``; a model that conditions on labels is refused data without them."""
    if y is None:
        raise VaekitError("this model conditions on labels, and the data has none")
    return y.to(device)


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam; the fused kernel (one launch for all parameters) where this torch build has it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices faster than float32: CUDA with bf16, a CPU with AMX tiles, or an
    AMD CPU with AVX512-BF16 (Zen 4 on), from the hardware's flags alone, so that one seeded command trains in one
    dtype on a machine however busy it is; agreed by every process under torchrun. An Intel CPU with AVX512-BF16
    and no AMX is not enough: a Xeon ran bf16 products 1.7x slower than float32 there, and the deep hierarchy's
    steps slower still, where an AMD EPYC ran them 2.5x faster (2048 x 2048, two threads) and each family's
    Bernoulli training step 1.1-1.35x faster."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flag = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)  # private, as the next one
    fast = flag() or (getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() and cpu_vendor() == "AMD")
    return distributed.all_ok(device.type == "cpu" and bool(fast))


@cache
def cpu_vendor() -> str:
    """'AMD', 'Intel' or '' (another, or unknown): /proc/cpuinfo's vendor_id, where the system has one."""
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    except OSError:
        return ""
    return {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(vendor, "")


def autocast_dtype(precision: str, device: torch.device, px: Distribution | str) -> torch.dtype | None:
    """The dtype the networks run in during training steps: bf16 or None (float32).

    'auto' picks bf16 where the hardware runs it faster (``fast_bf16``) and the likelihood p(x|z) (a
    distribution, or its registry name) is Bernoulli-type: bf16 logits lose nothing a Bernoulli can tell apart; a
    Gaussian's mean, or a discretized logistic's (bins 2/255 wide), can need more than bf16's 8 bits.
    Distributions, losses and every evaluation (validation loss, NLL) stay float32.
    """
    if precision == "auto":
        name = px if isinstance(px, str) else name_of(px)
        precision = "bf16" if name in ("bernoulli", "cbernoulli") and fast_bf16(device) else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


@torch.no_grad()
def evaluate_loss(
    model: VAEModule,
    x: Items,
    y: Tensor | None,
    beta: float,
    batch_size: int = 1000,
    settings: ObjectiveSettings | None = None,
    name: str = "elbo",
) -> dict[str, float]:
    """Mean objective, reconstruction and KL over ``x`` (N, *shape) with labels ``y`` (N,) or None, in batches.

    The objective is the registered ``name`` with ``settings`` (default: the plain ELBO with ``beta``)."""
    model.eval()
    s, fn = settings or ObjectiveSettings(beta=beta), objective(name)
    sums = torch.zeros(3 + len(model.latent_dims), device=x.device)
    n = batch_count(len(x), batch_size)  # no batch of one: the MMD objective needs pairs
    for b in range(n):
        rows = batch_rows(b, n, batch_size)
        xb = x[rows]
        terms = fn(model, xb, None if y is None else y[rows], s)
        sums += batch_sums(terms, len(xb))
    loss, rec, kl, *levels = (sums / max(1, len(x))).tolist()
    return {"loss": loss, "rec": rec, "kl": kl, "kl_levels": levels}


def batch_sums(terms: Terms, n: int) -> Tensor:
    """(3 + L,) batch sums of loss, rec, KL and the KL of each latent level (top to bottom), detached."""
    return torch.stack(
        [
            terms["loss"].detach() * n,
            terms["rec"].detach().sum(),
            terms["kl"].detach().sum(),
            *(k.detach().sum() for k in terms["kl_layers"]),
        ]
    )


@dataclass(frozen=True)
class Scheduled:
    """The objective's scheduled values at one step: the KL weight ``beta``, the annealed capacity (nats; the
    objective of Burgess et al. 2018) or None, and the beta-TCVAE dimension-wise weight ``dimwise``."""

    beta: float
    capacity: float | None = None
    dimwise: float = 1.0


@dataclass(frozen=True)
class StepSetup:
    """What every training step of a run shares: the ``model`` it trains (DDP-wrapped under torchrun) and its
    ``opt``, the settings ``t``, the ``guard``, the dtype the networks run in (bf16 under autocast, or None:
    float32), the training set's size ``n_data`` (the beta-TCVAE term's minibatch-weighted sampling) and
    ``critic``, FactorVAE's discriminator and its optimiser, or None."""

    model: VAEModule
    opt: torch.optim.Optimizer
    t: TrainConfig
    guard: StepGuard
    dtype: torch.dtype | None = None
    n_data: int = 0
    critic: tuple[nn.Module, torch.optim.Optimizer] | None = None

    def __post_init__(self) -> None:
        self.guard.opt = self.opt  # the guard tells skips before any update (not train.lr's doing) from later ones


def train_step(setup: StepSetup, xb: Tensor, yb: Tensor | None, now: Scheduled, where: str) -> Terms | None:
    """One optimiser step on a batch (B, *shape) with labels (B,) or None; None when the guard skipped it.

    ``setup.t`` gives the objective's fixed settings (free bits, gamma, tc_beta) and gradient clipping; ``now``
    their scheduled values at this step. ``setup.dtype`` (bf16) runs the networks under autocast; the model
    hands back float32 distributions, so the ELBO is float32. The objective is ``t.objective``'s registry entry;
    ``setup.critic`` takes its step after the model's. ``where`` names the step in the guard's messages.

    Every step checks the loss and the gradient's norm (one fused norm over all gradients) with one host sync
    for both, whatever ``t.clip_grad`` says: a step where either is not finite, or whose norm exceeds
    ``t.skip_grad`` (> 0), is skipped; the kept step's gradients are clipped to ``t.clip_grad`` (> 0).
    """
    model, opt, t, beta, critic = setup.model, setup.opt, setup.t, now.beta, setup.critic
    s = ObjectiveSettings.of(
        t,
        beta=beta,
        capacity=now.capacity,
        dataset_size=setup.n_data,
        dimwise_weight=now.dimwise,
        dtype=setup.dtype,
        critic=None if critic is None else critic[0],
    )
    terms = objective(t.objective)(model, xb, yb, s)
    if t.kl_balance and beta < t.beta and len(terms["z"]) > 1:  # NVAE: balanced KL terms during the warm-up
        shared = distributed.sum_over_ranks if distributed.active() else None  # the global batch's weights
        balanced = balanced_kl(terms["kl_layers"], terms["z"], shared)
        terms["loss"] = terms["loss"] + beta * (balanced - terms["kl"].mean())
    opt.zero_grad(set_to_none=True)
    backward(terms, list(model.parameters()))
    params = [p for p in model.parameters() if p.grad is not None]
    norm = total_norm([p.grad for p in params if p.grad is not None])  # all of them: the filter tells mypy
    if not setup.guard.ok(terms["loss"].detach() + norm, where, norm, terms):  # NaN or inf in either: not finite
        if not opt.state:  # no update applied yet (Adam's state starts at the first): not the learning rate's doing
            refuse_first_step(terms, where, s)
        return None
    if t.clip_grad > 0:
        nn.utils.clip_grads_with_norm_(params, t.clip_grad, norm, foreach=True)
    opt.step()
    if critic is not None:  # the discriminator learns from z detached: the model's step above is unaffected
        critic[1].zero_grad(set_to_none=True)
        terms["critic_loss"].backward()
        critic[1].step()
    return terms


def total_norm(grads: list[Tensor]) -> Tensor:
    """The 2-norm of all gradients together, 0-dim, without a host sync: torch's fused per-tensor norms on an
    accelerator (one launch), BLAS dot products on a CPU (twice as fast there as torch's per-tensor norms: 0.07
    against 0.15 ms for the 974k gradients of the peer benchmark's MLP VAE)."""
    if grads and grads[0].device.type == "cpu":
        return torch.stack([torch.dot(g.reshape(-1), g.reshape(-1)) for g in grads]).sum().sqrt()
    return nn.utils.get_total_norm(grads)  # foreach where the device has it
