"""Anomaly scores of a trained model (higher = more anomalous); ``detection`` holds the metrics that rank them.

For a model with one latent level every score draws its latent noise once per call as (S, D) standard-normal
vectors shared by all items (common random numbers): an item's score does not depend on the batch it sits in,
and differences between items are not sampling noise. A hierarchy's ELBO, IWAE bound and KL come from its forward
pass, with draws seeded per call from a stream per score (``Streams``). Conditional models score items with labels y.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, cast

import numpy as np
import torch
from torch import Tensor
from torch.distributions import kl_divergence

from ..core.contract import (
    VAEModel,
    VAEModule,
    VAEOutput,
    check_labels,
    flat,
    kept_rng,
    probing,
)
from ..core.likelihoods import LIKELIHOODS, check_support, name_of
from ..core.model_inputs import label_tensor
from ..core.objectives import _draw, elbo, iwae_bound, repeat_items, takes_eps
from ..core.reading import mean_of
from ..data.core import check_finite
from ..data.item_arrays import refuse_edge
from ..data.lazy import LazyArray
from ..data.user import run_items
from ..errors import VaekitError
from ..training.rng import keeps_rng
from .detection import detection_metrics as detection_metrics  # re-exported (the metrics that rank scores)
from .regret import elbo_at as elbo_at  # re-exported, as are likelihood_regret and normal_q
from .regret import likelihood_regret as likelihood_regret
from .regret import normal_q as normal_q
from .score_checks import DESCRIPTIONS as DESCRIPTIONS  # re-exported, as are SETTINGS and settings_for
from .score_checks import SCORES as SCORES  # re-exported (the score names)
from .score_checks import SETTINGS as SETTINGS
from .score_checks import check_items, check_model, check_scores, check_seed, check_settings, model_shape
from .score_checks import check_llr_k as check_llr_k  # re-exported (the detector's check, in llr's words)
from .score_checks import scores_that_apply as scores_that_apply  # re-exported (the default scores)
from .score_checks import settings_for as settings_for


class Hierarchical(VAEModel, Protocol):
    """A model whose forward pass can take its lowest k latent levels from their priors (the ladder and deep ones)."""

    def forward_from_prior(self, x: Tensor, k: int) -> VAEOutput: ...


@keeps_rng
def llr(model: Hierarchical, x: Tensor, k: int, s: int) -> Tensor:
    """LLR^{>k} (B,) = L(x) - L^{>k}(x) (Havtorn et al. 2021), each bound averaged over ``s`` draws: L^{>k} is
    the ELBO with the lowest ``k`` latent groups (nearest the data) taken from their conditional priors, and only
    the groups above inferred from x. Low-level features explain any image well, so L alone ranks
    out-of-distribution items high; an in-distribution item's upper groups also predict its details, so L^{>k}
    stays near L, while an out-of-distribution one loses much: higher LLR, more anomalous. k runs over 1..L-1 of
    L groups (``check_llr_k``): k = 0 compares L with itself, k = L infers no group from x."""
    xr, seed, k = repeat_items(x, s), int(torch.randint(2**62, ())), check_llr_k(k, len(model.latent_dims))
    bounds = []
    for low in (k, 0):  # common random numbers: the same draws for both bounds (L^{>0} = L, the ELBO)
        with kept_rng(x.device):
            torch.manual_seed(seed)
            terms = elbo(model.forward_from_prior(xr, low), xr)
        bounds.append((terms["rec"] - terms["kl"]).view(s, x.shape[0]).mean(0))
    return bounds[1] - bounds[0]


class Streams:
    """A stream of torch's RNG per score (the CPU's, a CUDA device's), carried across batches, for its fresh draws
    (a hierarchy's): ``with streams(name):`` draws from ``name``'s, seeded by ``seed`` (seed + 1 for the IWAE
    bound, as its noise, shared by complexity): a score does not depend on the others asked for, nor their order."""

    def __init__(self, seed: int, device: torch.device):
        self.seed, self.device = seed, device
        self.states: dict[str, tuple[Tensor, Tensor | None]] = {}  # each stream's CPU and CUDA state

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        with kept_rng(self.device):  # the RNGs outside are kept
            cpu, gpu = self.states.get(name, (None, None))
            if cpu is None:  # its first batch
                torch.manual_seed(self.seed + (name == "iwae_nll"))
            else:
                torch.set_rng_state(cpu)
            if gpu is not None:
                torch.cuda.set_rng_state(gpu, self.device)
            yield
            gpu = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
            self.states[name] = (torch.get_rng_state(), gpu)


def noise(n: int, dim: int, seed: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """(n, dim) standard-normal draws from a generator seeded by ``seed``, as ``dtype`` on ``device``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64).to(device, dtype)


def forward_elbo(model: VAEModel, x: Tensor, s: int, y: Tensor | None = None) -> Tensor:
    """ELBO (B,) of x (B, *shape) averaged over ``s`` forward passes (any model; fresh draws)."""
    xr = repeat_items(x, s)
    terms = elbo(model(xr, None if y is None else y.repeat(s)), xr)
    return (terms["rec"] - terms["kl"]).view(s, x.shape[0]).mean(0)


def iwae_nll(model: VAEModel, x: Tensor, eps: Tensor, chunk: int | None = None, y: Tensor | None = None) -> Tensor:
    """-log p(x) (B,) by the K-sample IWAE bound: the k-th draw of every item made from eps_k, eps (K, D) shared,
    for one latent level whose q(z|x) draws from noise (``objectives.takes_eps``); fresh draws (K = len(eps)) for
    a hierarchy or a q(z|x) of a user's that draws otherwise."""
    if flat(model) and takes_eps(model.encode(x[:1], None if y is None else y[:1])):
        return -iwae_bound(model, x, chunk=chunk, y=y, eps=eps)
    return -iwae_bound(model, x, len(eps), chunk, y)


def recon_error(model: VAEModel, x: Tensor, y: Tensor | None = None) -> Tensor:
    """Squared error (B,) between x and the mean of p(x|z) at z = the posterior mean; for a table modelled on
    standardised columns (``models.Standardized``), in those units, so that no column swamps the others."""
    x_rec = mean_of(model.decode(mean_of(model.encode(x, y)), y))
    units = getattr(model, "inside", lambda v: v)
    return (units(x) - units(x_rec)).pow(2).flatten(1).sum(1)


def rate(model: VAEModel, x: Tensor, eps: Tensor, y: Tensor | None = None) -> Tensor:
    """The rate KL(q(z|x) || p(z)) (B,) of x (B, *shape) in nats, summed over latent dims: for one latent level,
    q from ``encode`` and p from ``prior`` (a conditional model's p(z|y)), analytic where ``kl_divergence`` knows
    the pair, else log q(z) - log p(z) averaged over the z made from eps (S, D), shared by every item (fresh
    draws for a q(z|x) that draws otherwise). A hierarchy's as its ELBO takes it: each level's KL given the
    levels drawn above it, summed, averaged over S = len(eps) forward passes (fresh, seeded draws)."""
    s = len(eps)
    if not flat(model):  # encode gives every level's q, prior only the top level's p: the levels' KLs come from forward
        xr = repeat_items(x, s)
        return elbo(model(xr, None if y is None else y.repeat(s)), xr)["kl"].view(s, x.shape[0]).mean(0)
    qz, pz = model.encode(x, y), model.prior(y if model.needs_labels else None)
    try:
        return kl_divergence(qz, pz)
    except NotImplementedError:  # a mixture, VampPrior or flow prior, a flow posterior: Monte Carlo
        z = _draw(qz, s, eps if takes_eps(qz) else None, 0)  # (S, B, D)
        return (qz.log_prob(z) - pz.log_prob(z)).mean(0)


def compressed_bits(x: Tensor) -> Tensor:
    """L(x) (B,): bits of the PNG (1 or 3 channels) or zlib stream of each 8-bit quantised image (B, C, H, W)."""
    if x.dim() != 4:
        raise VaekitError("the complexity score needs images (C, H, W); this data is a table")
    from PIL import Image

    q = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (B, C, H, W)
    sizes = []
    for item in q:
        if item.shape[0] in (1, 3):
            buf = io.BytesIO()
            Image.fromarray(item[0] if item.shape[0] == 1 else item.transpose(1, 2, 0)).save(buf, format="PNG")
            sizes.append(len(buf.getvalue()))
        else:
            sizes.append(len(zlib.compress(item.tobytes(), 9)))
    return torch.tensor(sizes, dtype=torch.float32) * 8


@torch.no_grad()
def batch_scores(
    model: VAEModel,
    x: Tensor,
    names: list[str],
    eps: Tensor,
    iw_eps: Tensor,
    steps: int,
    y: Tensor | None = None,
    llr_k: int = 1,
    streams: Streams | None = None,
) -> dict[str, Tensor]:
    """The named scores (B,) of one batch x (B, *shape), each from its stream (``streams``: seed 0's by default);
    the IWAE NLL is computed once for two scores, from iwae_nll's stream."""
    out, stream, nll = {}, streams or Streams(0, x.device), None
    if {"iwae_nll", "complexity"} & set(names):
        with stream("iwae_nll"):
            nll = iwae_nll(model, x, iw_eps, y=y)
    for name in names:
        with stream(name):
            out[name] = one_score(model, x, name, eps, nll, steps, y, llr_k)
    return {k: v.cpu() for k, v in out.items()}


def one_score(
    model: VAEModel, x: Tensor, name: str, eps: Tensor, nll: Tensor | None, steps: int, y: Tensor | None, llr_k: int
) -> Tensor:
    """The score ``name`` (B,) of x (B, *shape), ``nll`` its IWAE NLL where computed (iwae_nll, complexity)."""
    if name == "neg_elbo" and flat(model):
        qz = model.encode(x, y)  # discrete latents: fresh draws
        return -elbo_at(model, x, qz.mean, qz.stddev, eps, y) if normal_q(qz) else -forward_elbo(model, x, len(eps), y)
    if name == "neg_elbo":
        return -forward_elbo(model, x, len(eps), y)
    if name == "recon_error":
        return recon_error(model, x, y)
    if name == "likelihood_regret":
        return likelihood_regret(model, x, eps, steps, y=y)
    if name == "llr":
        return llr(cast(Hierarchical, model), x, llr_k, len(eps))  # check_model: it has forward_from_prior
    if name == "kl":
        return rate(model, x, eps, y)
    assert nll is not None  # computed for iwae_nll and complexity
    return nll if name == "iwae_nll" else nll.cpu() / math.log(2) - compressed_bits(x).to(nll.dtype)


def _batches(x: Tensor | LazyArray, y: Tensor | None, size: int, p: Tensor) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(x_b, y_b) pairs of at most ``size`` items on the device of ``p``, x_b (B, *shape) in its dtype."""
    for i in range(0, len(x), size):
        yield x[i : i + size].to(p.device, p.dtype), None if y is None else y[i : i + size].to(p.device)


def scored_items(model: VAEModule, x: object, y: Tensor | None = None) -> Tensor | LazyArray:
    """Items x (N, *shape) read as a run's methods read them (``data.user.run_items``: uint8 images divided by
    255, frames and lists read, NaN or values beyond float32 refused; a float64 model's float64 items as given),
    refused in one line where the model cannot take them with labels y (N,): not of its shape, or, as ``evaluate``
    says, outside the support of its p(x|z) (as its first item's shows; items read from files: as they are read),
    or, as ``fit`` says (``data.item_arrays.refuse_edge``), at an end of a user's p(x|z)'s support where its
    log-density is not finite (a Beta's 0 or 1)."""
    if isinstance(x, LazyArray):  # read from files, checked there
        items: Tensor | LazyArray = x
    else:
        wide = next(model.parameters()).dtype == torch.float64 and str(getattr(x, "dtype", "")).endswith("float64")
        items = torch.as_tensor(x) if wide else run_items(x, model_shape(model) or (), None)
        check_finite(items, "data items")
    check_items(model, items)
    check_labels(model, items, y)
    if isinstance(items, Tensor) and len(items):  # no score of data p(x|z) gives no density means anything
        p, y1 = next(model.parameters()), None if y is None or not model.needs_labels else y[:1]
        with probing(model):
            px = model(items[:1].to(p.device, p.dtype), None if y1 is None else y1.to(p.device)).px
        check_support(px, items, "data items")
        if name_of(px) not in LIKELIHOODS:  # a user's p(x|z) (a Beta): items at an end of its support, as fit refuses
            refuse_edge(px, items.to(p.device, p.dtype), None, "data items")
    return items


def anomaly_scores(
    model: VAEModule,
    x: Tensor | LazyArray | np.ndarray,
    names: str | Sequence[str],
    samples: int = 8,
    iw_samples: int = 64,
    steps: int = 30,
    seed: int = 0,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
    y: Tensor | np.ndarray | int | None = None,
    llr_k: int = 1,
) -> dict[str, np.ndarray]:
    """Scores (N,) per name for x (N, *shape) (labels y (N,) for a conditional model), higher = more anomalous,
    in batches of ``batch_size``; x is read as a run's methods read items (``scored_items``: uint8 images divided
    by 255), y (label numbers 0..K-1) one label for all or one per item (a list, an array, a tensor), ``names``
    one name or several.

    ``samples`` S noise draws for the ELBO (and the regret's ELBO), ``iw_samples`` K for the IWAE NLL,
    ``steps`` Adam steps of the regret, ``llr_k`` lowest latent groups from their priors for ``llr``; the noise
    comes from ``seed``. A setting changed from its default for none of ``names`` is refused (``SETTINGS``;
    ``settings_for`` picks those that apply).
    """
    names = check_scores(names)
    labels = None if y is None else label_tensor(y, len(x))  # (N,) int64: one label, a list, an array, a tensor
    check_model(model, names, labels)
    items = scored_items(model, x, labels)
    check_settings(names, samples, iw_samples, steps, batch_size, llr_k)
    seed = check_seed(seed)
    p = next(model.parameters())  # a float64 model scores in float64 (batch-size invariant to ~1e-15)
    d = model.latent_dims[0]
    eps, iw_eps = noise(samples, d, seed, p.device, p.dtype), noise(iw_samples, d, seed + 1, p.device, p.dtype)
    parts: dict[str, list[Tensor]] = {n: [] for n in names}
    streams = Streams(seed, p.device)  # each score's fresh draws (a hierarchy's): its own, seeded
    with probing(model):  # the caller's model and RNGs are left as they were
        for xb, yb in _batches(items, labels if model.needs_labels else None, batch_size, p):
            for k, v in batch_scores(model, xb, names, eps, iw_eps, steps, yb, llr_k, streams).items():
                parts[k].append(v)
            if on_batch is not None:
                on_batch(len(xb))
    return {k: torch.cat(v).numpy().astype(np.float64) if v else np.zeros(0) for k, v in parts.items()}
