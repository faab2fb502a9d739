"""One objective for every model: the ELBO (with beta, free bits, capacity, beta-TCVAE) and the IWAE bound.

Both read only a model's ``VAEOutput`` (and, for the IWAE bound, ``encode``, ``decode`` and ``prior``).
"""

from __future__ import annotations

import math
from typing import Protocol, TypedDict, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ..errors import VaekitError
from .allocator import gathered, keep_freed_memory
from .contract import VAEModel, VAEModule, VAEOutput, check_labels, dist_name, flat, with_article
from .discrete import CodeGrid, GumbelSoftmax
from .model_inputs import check_batch, check_items, check_module, float_items, label_tensor, model_shape
from .tc import KLParts as KLParts  # beta-TCVAE's split, moved to .tc: re-exported for callers of this module
from .tc import tc_decomposition

Number = TypeVar("Number", Tensor, float)


class _Bound(TypedDict):
    """What every objective returns: the loss (scalar), rec (B,), kl (B,) and kl_layers (one (B,) per layer)."""

    loss: Tensor
    rec: Tensor
    kl: Tensor
    kl_layers: list[Tensor]


class Terms(_Bound, total=False):
    """An objective's loss with its parts (``_Bound``), and those some entries add."""

    z: list[Tensor]  # the latents, one (B, D_l) per layer
    mi: Tensor  # beta-TCVAE's KL parts, each (B,)
    tc: Tensor  # (B,) for beta-TCVAE; FactorVAE's discriminator estimate (scalar)
    dimwise_kl: Tensor
    mmd: Tensor  # scalar
    latents: Tensor  # the sum of the latents (scalar): PIWAE routes gradients by what depends on it
    encoder_loss: Tensor  # PIWAE's loss for the inference network (scalar)
    critic_loss: Tensor  # FactorVAE's discriminator loss (scalar)
    extra: Tensor  # the sum of the batch means of the model's own loss terms (out.extra; scalar), where it has any


def kl_term(qz: Distribution, pz: Distribution, z: Tensor) -> Tensor:
    """KL(q || p) per item, (B,): analytic where registered, else the one-sample estimate log q(z) - log p(z)."""
    try:
        return kl_divergence(qz, pz)
    except NotImplementedError:
        return qz.log_prob(z) - pz.log_prob(z)


def as_tensor(x: object, device: torch.device | None) -> Tensor:
    """Items x (B, *shape) as a tensor on ``device``: a numpy array (the user's) is converted, not refused."""
    return x if isinstance(x, Tensor) else torch.as_tensor(x, device=device)


def kl_dims(qz: Distribution, pz: Distribution) -> Tensor | None:
    """KL per latent dimension, (B, D), for factorised q and p with an analytic KL; None otherwise."""
    if isinstance(qz, Independent) and isinstance(pz, Independent):
        try:
            return kl_divergence(qz.base_dist, pz.base_dist).flatten(1)
        except NotImplementedError:
            pass
    return None


def kl_per_dim(qz: Distribution, pz: Distribution, z: Tensor) -> Tensor:
    """KL per latent dimension, (B, D), for factorised q and p; (B, 1) holding the total otherwise."""
    dims = kl_dims(qz, pz)
    return kl_term(qz, pz, z).unsqueeze(1) if dims is None else dims


def free_bits_penalty(out: VAEOutput, free_bits: float) -> Tensor:
    """sum_l sum_d max(free_bits, mean_batch KL_ld) (Kingma et al. 2016, eq. 15), scalar; a layer whose KL
    cannot be split by dimension (``kl_dims``) is refused in one line rather than floored as one total."""
    penalty = torch.zeros((), device=out.z[-1].device)
    for q, p in zip(out.qz, out.pz):
        dims = kl_dims(q, p)
        if dims is None:
            raise VaekitError(
                f"free bits floor the KL of each latent dimension, and the KL of {with_article(dist_name(q))} "
                f"q(z|x) and {with_article(dist_name(p))} p(z) is one total: set free_bits to 0",
                key="train.free_bits",
            )
        penalty = penalty + dims.mean(0).clamp(min=free_bits).sum()
    return penalty


def elbo(
    out: VAEOutput,
    x: Tensor,
    beta: float = 1.0,
    free_bits: float = 0.0,
    capacity: float | None = None,
    gamma: float = 1000.0,
    tc_beta: float = 0.0,
    dataset_size: int = 0,
    dimwise_weight: float = 1.0,
    tc_estimator: str = "mws",
) -> Terms:
    """The negative ELBO to minimise, with its parts.

    loss = -mean(rec) + beta * KL, where KL is the batch mean, or with free bits (Kingma et al. 2016, eq. 15) sum_d
    max(free_bits, mean_batch KL_d) per layer. With a ``capacity`` C (nats) the KL term is instead gamma * |KL - C|
    (annealed capacity, Burgess et al. 2018, eq. 8). With ``tc_beta`` > 0 the KL term is beta * (MI + tc_beta * TC +
    dimwise_weight * dimension-wise KL), estimated on the batch by ``tc_estimator`` (beta-TCVAE, see tc_decomposition;
    ``dimwise_weight`` below 1 while it warms up, see dimwise_weight_at). The model's extra terms (``out.extra``, e.g.
    VQ-VAE's commitment loss) are added to the loss as batch means. Returns loss (scalar), rec (B,), kl (B,), kl_layers
    (one (B,) tensor per latent layer, top to bottom) and, where the model adds terms, extra (scalar, their sum)."""
    if not isinstance(out, VAEOutput):
        raise VaekitError(f"elbo(out, x) takes a model's output, out = model(x); got a {type(out).__name__}")
    x = as_tensor(x, out.z[-1].device)
    check_items(item_shape(out.px), x, "elbo")  # log_prob would broadcast items of another shape into nonsense
    check_batch(out.px.batch_shape, x, "elbo")  # ... and a p(x|z) of fewer items over every item
    rec = out.px.log_prob(x)  # (B,)
    extra = extra_sum(out)  # the model's own loss terms (VQ's commitment), None without any
    kl_layers = [kl_term(q, p, z) for q, p, z in zip(out.qz, out.pz, out.z)]
    kl = torch.stack(kl_layers).sum(0)  # (B,)
    parts: KLParts | dict = {}
    if tc_beta > 0:
        parts = tc_decomposition(out, dataset_size, tc_estimator)
        tc_penalty = parts["mi"] + tc_beta * parts["tc"] + dimwise_weight * parts["dimwise_kl"]  # (B,)
        loss = -rec.mean() + beta * tc_penalty.mean()
    elif capacity is not None:
        loss = capacity_objective(rec.mean(), kl.mean(), capacity, gamma)
    else:
        loss = -rec.mean() + beta * (free_bits_penalty(out, free_bits) if free_bits > 0 else kl.mean())
    terms: Terms = {"loss": loss, "rec": rec, "kl": kl, "kl_layers": kl_layers, **parts}
    if extra is not None:
        terms["loss"], terms["extra"] = loss + extra, extra
    return terms


def item_shape(px: Distribution) -> tuple[int, ...] | None:
    """The item shape p(x|z) declares: its batch dims after B, then its event dims; None without event dims."""
    if not px.event_shape or not px.batch_shape:
        return None
    return (*px.batch_shape[1:], *px.event_shape)


def extra_sum(out: VAEOutput) -> Tensor | None:
    """The sum of the batch means of the model's own loss terms (``out.extra``), scalar; None without any."""
    extra = getattr(out, "extra", None) or {}
    return sum(v.mean() for v in extra.values()) if extra else None


def capacity_objective(rec: Number, kl: Number, capacity: float, gamma: float) -> Number:
    """-rec + gamma |KL - C| from the mean reconstruction log-likelihood and mean KL (Burgess et al. 2018, eq. 8)."""
    return -rec + gamma * abs(kl - capacity)


def log_weights(out: VAEOutput, x: Tensor) -> Tensor:
    """Importance weights log p(x, z) - log q(z|x) per item, (B,)."""
    log_pz = sum(p.log_prob(z) for p, z in zip(out.pz, out.z))
    log_qz = sum(q.log_prob(z) for q, z in zip(out.qz, out.z))
    return out.px.log_prob(x) + log_pz - log_qz


def repeat_items(x: Tensor, n: int) -> Tensor:
    """(B, *shape) -> (n * B, *shape): the batch n times over, sample-major (row s * B + i is item i)."""
    return x.unsqueeze(0).expand(n, *x.shape).reshape(n * x.shape[0], *x.shape[1:])


@torch.no_grad()
def iwae_bound(
    model: VAEModel,
    x: Tensor,
    k: int = 1000,
    chunk: int | None = None,
    y: Tensor | None = None,
    eps: Tensor | None = None,
) -> Tensor:
    """The importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x) (Burda et al. 2016), (B,).

    K = 1 is the ELBO; the bound rises with K towards log p(x). Work runs in chunks of at most ``chunk`` decoded rows
    (default: ``default_chunk``), each taking the same memory for any K (only the (K, B) log weights grow with K,
    ``allocator.gathered``); no autocast (float32, or the model's dtype), summed by logsumexp. A bound of +inf (p(x|z)
    unbounded at an item: a Beta's at 0 or 1) is refused, as evaluate does. Models with one latent layer encode x once
    and decode each chunk's samples in one batch; deeper models run their whole forward pass per sample. ``eps`` (K, D)
    standard-normal noise, for one-layer models, fixes the noise: every item's k-th draw is made from eps_k (common
    random numbers; K is then len(eps)): z_k = loc + scale * eps_k for a Gaussian q(z|x), carried through the flow for a
    flow posterior, Gumbel-max one-hots for categorical latents (``_draw``); a q(z|x) drawn otherwise is refused in one
    line."""
    keep_freed_memory()  # chunks reuse freed pages instead of faulting in fresh ones (vaekit.core.allocator)
    check_module(model, "iwae_bound")  # a Run: one line naming run.model, not an AttributeError
    x = float_items(x, next(cast(nn.Module, model).parameters(), None))
    check_items(model_shape(model), x, "iwae_bound")  # as anomaly_scores: other shapes would broadcast or fail
    y = label_tensor(y, len(x), x.device) if y is not None and model.needs_labels else y  # (B,) int64, converted once
    check_labels(cast(VAEModule, model), x, y)
    per = max(1, (chunk or default_chunk(x.device)) // len(x))  # samples per chunk
    one_level = flat(model)
    if eps is not None and not one_level:
        raise VaekitError("iwae_bound: shared noise eps needs a model with one latent layer")
    if eps is None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise VaekitError(f"iwae_bound: k must be a positive integer (importance samples), got {k!r}", key="k")
    k = k if eps is None else len(eps)
    with torch.autocast(x.device.type, enabled=False):
        if not one_level:
            parts = (_forward_weights(model, x, y, min(per, k - start)) for start in range(0, k, per))
        else:
            qz, pz = model.encode(x, y), model.prior(y)
            check_eps(eps, qz)
            k = 1 if isinstance(qz, CodeGrid) else k  # a one-point q (VQ-VAE): every sample has the same weight
            parts = (_flat_weights(model, x, y, qz, pz, _draw(qz, min(per, k - s), eps, s)) for s in range(0, k, per))
        bound = gathered(parts, k).logsumexp(0) - math.log(k)  # (B,) from the (K, B) log weights
    if (top := torch.isposinf(bound)).any():  # p(x|z) unbounded at an item: at an end of its support, no bound
        i, hint = int(top.nonzero()[0]), "move the data inside (a Beta's (0, 1): clamp to [eps, 1 - eps])"
        raise VaekitError(f"iwae_bound: item {i} has log p(x|z) = +inf, at an end of the likelihood's support: {hint}")
    return bound


def default_chunk(device: torch.device) -> int:
    """Decoded rows per chunk of the IWAE estimator: 2048 on a CPU, as fast there as 16384 (within 5% for an MLP VAE on
    a 2-core EPYC, freed memory kept by vaekit.allocator) at half the peak memory; 16384 on an accelerator, which wants
    large batches."""
    return 2048 if device.type == "cpu" else 16384


class NoiseDrawn(Protocol):
    """A q(z|x) that draws from given standard-normal noise (a flow posterior: ``FlowPosterior.rsample_from``)."""

    def rsample_from(self, eps: Tensor) -> Tensor: ...  # eps (n, D) -> z (n, B, D)


def check_eps(eps: Tensor | None, qz: Distribution) -> None:
    """Refuse shared noise eps that q(z|x) cannot draw from (``_draw``), or that is not (K, D), K >= 1, with D
    q(z|x)'s size."""
    if eps is None:
        return
    reads = not isinstance(qz, CodeGrid)  # a one-point q (VQ-VAE) draws no noise at all
    if not takes_eps(qz):
        raise VaekitError(
            f"iwae_bound: shared noise eps needs a q(z|x) drawn from standard-normal noise (a Gaussian or flow "
            f"posterior, or categorical latents); this model's is {with_article(dist_name(qz))}: leave eps out",
            key="eps",
        )
    d = qz.event_shape[-1] if reads else None
    if eps.dim() != 2 or len(eps) < 1 or (d is not None and eps.shape[1] != d):
        raise VaekitError(
            f"iwae_bound: eps must be (K, D) noise, K >= 1 and D = {d or 'the latent size'}, "
            f"got shape {tuple(eps.shape)}",
            key="eps",
        )


def takes_eps(qz: Distribution) -> bool:
    """Whether q(z|x) draws from given standard-normal noise (``_draw``), or draws nothing (a one-point q)."""
    return isinstance(qz, CodeGrid) or _normal(qz) or isinstance(qz, GumbelSoftmax) or hasattr(qz, "rsample_from")


def _normal(qz: Distribution) -> bool:
    """Whether q(z|x) is a factorised Normal, drawn as loc + scale * eps."""
    return isinstance(qz, Independent) and isinstance(qz.base_dist, Normal)


def _draw(qz: Distribution, n: int, eps: Tensor | None, start: int) -> Tensor:
    """(n, B, D) samples of q(z|x): fresh draws, or the k-th of every item made from eps_k, k in start..start + n
    (``check_eps``): loc + scale * eps_k for a factorised Gaussian, that carried through the flow for a flow
    posterior, Gumbel-max one-hots for categoricals (``gumbel_max``). A one-point q has nothing to draw."""
    if eps is None or isinstance(qz, CodeGrid):
        return qz.sample((n,))
    e = eps[start : start + n]  # (n, D)
    if isinstance(qz, GumbelSoftmax):
        return gumbel_max(qz, e)
    if _normal(qz):
        return qz.mean + qz.stddev * e.unsqueeze(1)
    return cast(NoiseDrawn, qz).rsample_from(e)


def gumbel_max(qz: GumbelSoftmax, eps: Tensor) -> Tensor:
    """(n, B, N K) exact one-hot draws of the N categoricals from noise eps (n, N K): Gumbel noise
    g = -log(-log u) with u = Phi(eps) uniform, z = one_hot(argmax(logits + g)) per variable (Gumbel-max)."""
    g = -(-torch.special.log_ndtr(eps.double())).log()  # (n, N K), finite for |eps| < 38
    logits = qz.logits  # (B, N, K), normalised
    g = g.view(len(eps), *[1] * (logits.dim() - 2), *logits.shape[-2:])  # (n, 1, N, K)
    index = (logits.double() + g).argmax(-1)  # (n, B, N)
    return F.one_hot(index, logits.shape[-1]).to(logits.dtype).flatten(-2)


def _flat_weights(
    model: VAEModel, x: Tensor, y: Tensor | None, qz: Distribution, pz: Distribution, z: Tensor
) -> Tensor:
    """(n, B) log weights of a one-layer model for samples z (n, B, D) of q(z|x)."""
    n = z.shape[0]
    px = model.decode(z.flatten(0, 1), None if y is None else y.repeat(n))
    return px.log_prob(repeat_items(x, n)).view(n, -1) + pz.log_prob(z) - qz.log_prob(z)


def _forward_weights(model: VAEModel, x: Tensor, y: Tensor | None, n: int) -> Tensor:
    """(n, B) log weights from n full forward passes over the repeated batch (any model)."""
    xr = repeat_items(x, n)
    return log_weights(model(xr, None if y is None else y.repeat(n)), xr).view(n, -1)
