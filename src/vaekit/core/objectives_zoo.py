"""The objective axis: a registry of training objectives, each a small function of (model, x, y, settings).

``OBJECTIVES[name](model, x, y, s)`` runs the model's forward pass (under ``s.dtype`` autocast) and returns the
loss to minimise (scalar) with its parts: ``rec`` (B,), ``kl`` (B,), ``kl_layers`` (one (B,) per latent
layer) and the latents ``z`` (one (B, D_l) per layer), and where an entry needs them, ``encoder_loss`` (PIWAE's
routed gradient, see ``backward``) and ``critic_loss`` (FactorVAE's discriminator, stepped by its own
optimiser). Every entry adds the model's extra
loss terms (``VAEOutput.extra``, e.g. VQ's codebook and commitment losses): ``elbo()`` adds them for the
entries built on it, ``extra_sum`` for the importance-weighted ones. The training step and the validation loss
look the entry up by ``train.objective``; ``elbo()`` stays the one ELBO.

- ``elbo``: the ELBO with beta, free bits, annealed capacity and beta-TCVAE (``vaekit.core.objectives.elbo``);
- ``iwae``: the importance-weighted bound with K samples (Burda et al. 2016);
- ``miwae``, ``ciwae``, ``piwae``: Rainforth et al. 2018: M groups of K, a beta mix of ELBO and IWAE, and
  the encoder on MIWAE with the decoder on IWAE;
- ``mmd``: InfoVAE / WAE-MMD (Zhao et al. 2019; Tolstikhin et al. 2018): -rec + beta KL + w MMD(q(z), p(z));
- ``factor``: FactorVAE (Kim & Mnih 2018): the ELBO + gamma TC, the TC by a discriminator's density ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.checks import add_choice
from ..errors import VaekitError
from .contract import VAEModule, VAEOutput, flat
from .critic import Discriminator, permute_dims
from .discrete import GumbelSoftmax
from .objectives import Terms, elbo, extra_sum, repeat_items

Objective = Callable[[VAEModule, Tensor, "Tensor | None", "ObjectiveSettings"], Terms]
OBJECTIVES: dict[str, Objective] = {}
CRITICS: dict[str, Callable[[int], nn.Module]] = {}  # objective -> (latent size D -> its second network)


@dataclass
class ObjectiveSettings:
    """What the objectives read: train settings of the same names, with the schedules' values now."""

    beta: float = 1.0
    free_bits: float = 0.0
    capacity: float | None = None  # nats, scheduled; None: off
    gamma: float = 1000.0
    tc_beta: float = 0.0
    tc_estimator: str = "mws"  # beta-TCVAE's estimator of q(z): mws | mss (vaekit.core.tc)
    dataset_size: int = 0
    dimwise_weight: float = 1.0
    iw_samples: int = 5
    iw_groups: int = 1
    ciwae_beta: float = 0.5
    mmd_weight: float = 10.0
    mmd_kernel: str = "imq"
    factor_gamma: float = 10.0
    dtype: torch.dtype | None = None  # autocast dtype of the networks (None: float32)
    critic: nn.Module | None = None  # the objective's second network (factor's discriminator)

    @classmethod
    def of(cls, train: object, **now) -> ObjectiveSettings:
        """The fields found on ``train`` (a TrainConfig), overridden by ``now`` (scheduled values)."""
        given = {f.name: getattr(train, f.name) for f in fields(cls) if hasattr(train, f.name)}
        return cls(**(given | now))


def register_objective(name: str, critic: Callable[[int], nn.Module] | None = None) -> Callable:
    """Decorator adding an objective function under ``name`` (and the factory of its second network)."""

    def add(fn: Objective) -> Objective:
        OBJECTIVES[name] = fn
        add_choice("train.objective", name)  # a setting may name it
        if critic is not None:
            CRITICS[name] = critic
        return fn

    return add


def objective(name: str) -> Objective:
    """The registered objective ``name``, else one line naming the known ones."""
    if name not in OBJECTIVES:
        raise VaekitError(f"unknown objective {name!r} (known: {', '.join(OBJECTIVES)})", key="train.objective")
    return OBJECTIVES[name]


def make_critic(name: str, latent_dim: int) -> nn.Module | None:
    """The second network objective ``name`` trains alongside the model (a fresh one), or None."""
    return CRITICS[name](latent_dim) if name in CRITICS else None


def run_model(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings, n: int = 1) -> VAEOutput:
    """The forward pass, its networks under ``s.dtype`` autocast (the distributions come back float32); x holds
    the batch n times over (``repeat_items``) and y (B,) the batch's labels once."""
    with torch.autocast(x.device.type, dtype=s.dtype or torch.float32, enabled=s.dtype is not None):
        return model(x, y if y is None or n == 1 else y.repeat(n))


def draw_plain(model: VAEModule, xr: Tensor, y: Tensor | None, s: ObjectiveSettings, n: int) -> VAEOutput:
    """A flat model's output for n draws per item from one encoder pass over the batch (xr: it n times over):
    qz and pz of the batch, z (n B, D) and p(x|z) of the n B draws, as the forward pass over xr would give."""
    x = xr[: len(xr) // n]
    with torch.autocast(x.device.type, dtype=s.dtype or torch.float32, enabled=s.dtype is not None):
        qz = model.encode(x, y)
        z = qz.rsample((n,))  # (n, B, D)
        px = model.decode(z.flatten(0, 1), None if y is None else y.repeat(n))
        pz = model.prior(y)
    return VAEOutput(px=px, qz=[qz], pz=[pz], z=[z])


def backward(terms: Terms, params: list[Tensor]) -> None:
    """Gradients of ``terms["loss"]`` into ``params``; with an ``encoder_loss`` (PIWAE) the parameters the
    latents depend on (the inference network) take that loss's gradients instead."""
    if "encoder_loss" not in terms:
        terms["loss"].backward()
        return
    reach = torch.autograd.grad(terms["latents"], params, retain_graph=True, allow_unused=True)
    enc = [p for p, g in zip(params, reach) if g is not None]
    grads = torch.autograd.grad(terms["encoder_loss"], enc, retain_graph=True, allow_unused=True)
    terms["loss"].backward()
    for p, g in zip(enc, grads):
        p.grad = torch.zeros_like(p) if g is None else g


@register_objective("elbo")
def elbo_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """The negative ELBO with its settings (beta, free bits, capacity, beta-TCVAE)."""
    out = run_model(model, x, y, s)
    terms = elbo(
        out, x, s.beta, s.free_bits, s.capacity, s.gamma, s.tc_beta, s.dataset_size, s.dimwise_weight, s.tc_estimator
    )
    return terms | {"z": out.z}


class SampleParts(TypedDict):
    """The parts of an importance-weighted objective, averaged over the draws (see ``Terms``)."""

    rec: Tensor
    kl_layers: list[Tensor]
    latents: Tensor
    z: list[Tensor]
    kl: Tensor


def log_weight_samples(
    model: VAEModule, x: Tensor, y: Tensor | None, n: int, s: ObjectiveSettings
) -> tuple[Tensor, SampleParts, VAEOutput]:
    """log w = log p(x, z) - log q(z|x) for n draws per item, (n, B), and the parts averaged over the draws.

    A model whose forward is encode, rsample, decode and prior (``plain_forward``: vaekit's flat families) is
    encoded once and decoded n times; any other runs its forward pass over the batch repeated n times."""
    xr = repeat_items(x, n)
    out = (draw_plain if getattr(model, "plain_forward", False) else run_model)(model, xr, y, s, n)
    rec = out.px.log_prob(xr).view(n, -1)  # (n, B)
    kl_layers = [(q.log_prob(z) - p.log_prob(z)).view(n, -1) for q, p, z in zip(out.qz, out.pz, out.z)]
    log_w = rec - torch.stack(kl_layers).sum(0)
    kl_means = [k.mean(0) for k in kl_layers]
    parts: SampleParts = {
        "rec": rec.mean(0),
        "kl_layers": kl_means,
        "latents": torch.stack([z.sum() for z in out.z]).sum(),  # only its reach matters (``backward``)
        "z": [z.reshape(len(xr), -1) for z in out.z],
        "kl": torch.stack(kl_means).sum(0),
    }
    return log_w, parts, out


def mean_exp(log_w: Tensor) -> Tensor:
    """log (1/K) sum_k w_k over the first dim: (K, ...) -> (...)."""
    return log_w.logsumexp(0) - math.log(log_w.shape[0])


def grouped(log_w: Tensor, m: int) -> Tensor:
    """MIWAE (B,): the mean over M groups of the K-sample bound, from log w (M K, B), samples in group order."""
    return mean_exp(log_w.view(m, -1, log_w.shape[-1]).transpose(0, 1)).mean(0)


def _bound_terms(bound: Tensor, parts: SampleParts, out: VAEOutput) -> Terms:
    """The terms of a bound (B,) to maximise: its negative mean (plus the model's extra terms, recorded as
    ``extra``) is the loss."""
    extra = extra_sum(out)
    terms: Terms = {**parts, "loss": -bound.mean() if extra is None else extra - bound.mean()}
    if extra is not None:
        terms["extra"] = extra
    return terms


@register_objective("iwae")
def iwae_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """-IWAE_K (Burda et al. 2016, eq. 8): K = ``iw_samples``; K = 1 is the (one-sample) ELBO."""
    log_w, parts, out = log_weight_samples(model, x, y, s.iw_samples, s)
    return _bound_terms(mean_exp(log_w), parts, out)


@register_objective("miwae")
def miwae_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """-MIWAE_{M,K} (Rainforth et al. 2018, eq. 6): the mean of M = ``iw_groups`` IWAE_K bounds."""
    log_w, parts, out = log_weight_samples(model, x, y, s.iw_groups * s.iw_samples, s)
    return _bound_terms(grouped(log_w, s.iw_groups), parts, out)


@register_objective("ciwae")
def ciwae_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """-CIWAE_beta (Rainforth et al. 2018, eq. 7): beta ELBO + (1 - beta) IWAE_K on the same K samples."""
    log_w, parts, out = log_weight_samples(model, x, y, s.iw_samples, s)
    return _bound_terms(s.ciwae_beta * log_w.mean(0) + (1 - s.ciwae_beta) * mean_exp(log_w), parts, out)


@register_objective("piwae")
def piwae_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """PIWAE (Rainforth et al. 2018, section 4): the decoder climbs IWAE_{MK}, the encoder MIWAE_{M,K}, from
    the same M K samples; ``loss`` is -IWAE_{MK}, ``encoder_loss`` -MIWAE (routed by ``backward``). One latent
    level only: a hierarchy's latents are drawn through its generative top-down path, which would take MIWAE's
    gradient."""
    if not flat(model):
        msg = "piwae routes MIWAE's gradient to every parameter the latents depend on, and a hierarchy's latents"
        raise VaekitError(f"{msg} depend on its top-down generative path: use iwae or miwae", key="train.objective")
    log_w, parts, out = log_weight_samples(model, x, y, s.iw_groups * s.iw_samples, s)
    terms = _bound_terms(mean_exp(log_w), parts, out)
    encoder_loss = -grouped(log_w, s.iw_groups).mean()
    return terms | {"encoder_loss": encoder_loss if "extra" not in terms else encoder_loss + terms["extra"]}


def kernel(a: Tensor, b: Tensor, name: str) -> Tensor:
    """(N, D), (M, D) -> (N, M): a sum over scales s of the IMQ C / (C + |a - b|^2) or the RBF
    exp(-|a - b|^2 / C) kernel, C = 2 D s (Tolstikhin et al. 2018, section 4: C = 2 D sigma^2 for N(0, I))."""
    d2 = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp(min=0)
    scales = 2.0 * a.shape[1] * torch.tensor([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0], device=a.device)
    c = scales.view(-1, 1, 1)
    return (c / (c + d2) if name == "imq" else torch.exp(-d2 / c)).sum(0)


def mmd(zq: Tensor, zp: Tensor, name: str = "imq") -> Tensor:
    """The unbiased estimate of MMD^2 between samples zq (N, D) and zp (N, D) (Gretton et al. 2012, eq. 3)."""
    n = zq.shape[0]
    if n < 2:
        raise VaekitError("the MMD objective needs batches of at least 2 items", key="train.batch_size")
    off = 1 - torch.eye(n, device=zq.device)
    within = ((kernel(zq, zq, name) + kernel(zp, zp, name)) * off).sum() / (n * (n - 1))
    return within - 2 * kernel(zq, zp, name).mean()


def prior_draws(pz: torch.distributions.Distribution, n: int, relaxed: bool = False) -> Tensor:
    """(n, D) draws of p(z): n from a prior with no batch dims, one per item from a prior per item (n,). With
    ``relaxed``, a categorical prior (``GumbelSoftmax``) gives Gumbel-softmax draws at its temperature, as the
    codes of a training batch are (exact one-hots otherwise, as in eval mode)."""
    shape = torch.Size() if len(pz.batch_shape) else torch.Size((n,))
    if relaxed and isinstance(pz, GumbelSoftmax):
        with torch.no_grad():
            return pz.rsample(shape)
    return pz.sample(shape)


def one_layer(out: VAEOutput, name: str) -> VAEOutput:
    """``out`` if its model has one latent layer: the ``name`` objective measures that layer's q(z) alone."""
    if len(out.z) > 1:
        raise VaekitError(
            f"the {name} objective measures q(z) of one latent layer; this model has {len(out.z)}, and the others "
            "would go unmeasured",
            key="train.objective",
        )
    return out


@register_objective("mmd")
def mmd_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """InfoVAE / WAE-MMD: -rec + beta KL + ``mmd_weight`` MMD(q(z), p(z)) on the top latent level; beta 0 is
    WAE-MMD, beta = 1 - alpha and weight = alpha + lambda - 1 InfoVAE (Zhao et al. 2019, eq. 7)."""
    out = one_layer(run_model(model, x, y, s), "mmd")
    terms = elbo(out, x, s.beta)
    z = out.z[0]
    gap = mmd(z, prior_draws(out.pz[0], len(z), relaxed=model.training).to(z), s.mmd_kernel)
    return terms | {"loss": terms["loss"] + s.mmd_weight * gap, "mmd": gap, "z": out.z}


@register_objective("factor", critic=Discriminator)
def factor_objective(model: VAEModule, x: Tensor, y: Tensor | None, s: ObjectiveSettings) -> Terms:
    """FactorVAE (Kim & Mnih 2018, eq. 2): -ELBO (with beta) + gamma TC, TC ~ mean D-logit of q(z) draws
    (the density-ratio trick); ``critic_loss`` trains D to tell z from its copy shuffled variable by variable."""
    if s.critic is None:
        raise VaekitError("the factor objective needs its discriminator (settings.critic)", key="train.objective")
    out = one_layer(run_model(model, x, y, s), "factor")
    terms = elbo(out, x, s.beta)
    z, qz = out.z[0], out.qz[0]
    tc = s.critic(z).mean()
    zd, k = z.detach(), qz.logits.shape[-1] if isinstance(qz, GumbelSoftmax) else 1  # a variable's dimensions
    real, shuffled = s.critic(zd), s.critic(permute_dims(zd, k))
    critic_loss = 0.5 * (
        F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        + F.binary_cross_entropy_with_logits(shuffled, torch.zeros_like(shuffled))
    )
    return terms | {"loss": terms["loss"] + s.factor_gamma * tc, "tc": tc, "z": out.z, "critic_loss": critic_loss}
