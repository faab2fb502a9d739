"""beta-TCVAE's split of the KL (Chen et al. 2018) into index-code MI, total correlation and dimension-wise KL.

The split needs log q(z) of the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) over a data set of N, which a
batch of B estimates from its items' q(z|x_j) in one of two ways (``train.tc_estimator``):

- ``mws``, minibatch-weighted sampling (eq. 4 of the paper): log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N B);
- ``mss``, minibatch stratified sampling (the paper's appendix): q(z_i) ~ sum_j w_ij q(z_i|x_j), the weights of
  ``mss_log_weights``; each row of weights sums to 1, so the estimate is a weighted mean, not a sum over N B.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypedDict

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ..errors import VaekitError
from .contract import VAEOutput, dist_name, with_article


class KLParts(TypedDict):
    """The KL split of beta-TCVAE, each (B,): index-code MI, total correlation, dimension-wise KL."""

    mi: Tensor
    tc: Tensor
    dimwise_kl: Tensor


def mss_log_weights(
    b: int, dataset_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """(B, B) log importance weights of minibatch stratified sampling (Chen et al. 2018, appendix; the intent of
    their code's ``log_importance_weight_matrix``, whose strides of B fill columns 0 and 1 instead): row i weighs
    q(z_i|x_j), z_i drawn from q(z|x_i), by 1/N for j = i, by (N - M) / (N M) for the item after i (j = i + 1,
    cyclically: row B - 1 takes item 0), by 1/M for the M - 1 others; M = B - 1 and N = max(dataset_size, B).
    Each row sums to 1: the data set is cut into M strata of N/M items; x_i stands for itself (1/N), the item
    after i for the N/M - 1 others of x_i's stratum, and each of the M - 1 others for a stratum of its own."""
    if b < 2:
        raise VaekitError(f"tc_estimator mss needs batches of at least 2 items, got {b}", key="train.batch_size")
    n, m = max(dataset_size, b), b - 1
    own = torch.eye(b, dtype=torch.bool, device=device)  # (B, B)
    after = own.roll(1, dims=1)  # (B, B): True at (i, i + 1 mod B)
    log_w = torch.full((b, b), -math.log(m), device=device, dtype=dtype)  # dense fills: no host sync (CUDA graphs)
    return log_w.masked_fill(own, -math.log(n)).masked_fill(after, math.log((n - m) / (n * m)))


def _mws(pairs: Tensor, dataset_size: int) -> tuple[Tensor, Tensor]:
    """Minibatch-weighted sampling: log q(z_i) and log prod_d q(z_id), each (B,), from pairs (B, B, D)."""
    b = pairs.shape[0]
    log_nb = math.log(max(dataset_size, b) * b)
    return pairs.sum(2).logsumexp(1) - log_nb, (pairs.logsumexp(1) - log_nb).sum(1)


def _mss(pairs: Tensor, dataset_size: int) -> tuple[Tensor, Tensor]:
    """Minibatch stratified sampling: log q(z_i) and log prod_d q(z_id), each (B,), from pairs (B, B, D)."""
    log_w = mss_log_weights(pairs.shape[0], dataset_size, pairs.device, pairs.dtype)  # (B, B)
    return (pairs.sum(2) + log_w).logsumexp(1), (pairs + log_w.unsqueeze(2)).logsumexp(1).sum(1)


# train.tc_estimator -> (pairs log q(z_id|x_jd) (B, B, D), N) -> log q(z) (B,), log prod_d q(z_d) (B,)
TC_ESTIMATORS: dict[str, Callable[[Tensor, int], tuple[Tensor, Tensor]]] = {"mws": _mws, "mss": _mss}


def tc_decomposition(out: VAEOutput, dataset_size: int, estimator: str = "mws") -> KLParts:
    """The KL split into index-code MI, total correlation and dimension-wise KL, each (B,) (Chen et al. 2018).

    log q(z) and log prod_d q(z_d) come from the batch by ``estimator`` (``TC_ESTIMATORS``: mws or mss) for B
    batch items from a data set of N = ``dataset_size``. The three parts sum to the one-sample KL estimate
    log q(z|x) - log p(z). Needs one latent layer with a factorised Normal q(z|x).
    """
    if estimator not in TC_ESTIMATORS:
        known = ", ".join(TC_ESTIMATORS)
        raise VaekitError(f"tc_estimator must be one of {known}, got {estimator!r}", key="train.tc_estimator")
    if len(out.qz) != 1 or not isinstance(out.qz[0], Independent) or not isinstance(out.qz[0].base_dist, Normal):
        raise VaekitError("tc_beta (beta-TCVAE) needs one latent layer with a factorised Normal q(z|x)")
    qz, pz, z = out.qz[0], out.pz[0], out.z[0]
    check_factorised(pz)
    pairs = qz.base_dist.log_prob(z.unsqueeze(1))  # (B, B, D): log q(z_i,d | x_j,d)
    log_qz, log_prod = TC_ESTIMATORS[estimator](pairs, dataset_size)
    log_qzx, log_pz = qz.log_prob(z), pz.log_prob(z)
    return {"mi": log_qzx - log_qz, "tc": log_qz - log_prod, "dimwise_kl": log_prod - log_pz}


def check_factorised(pz: Distribution) -> None:
    """Refuse, in one line, a p(z) (event (D,)) that does not factorise by dimension: beta-TCVAE's dimension-wise
    KL, sum_d KL(q(z_d) || p(z_d)), is then no such sum (a mixture's, a VampPrior's or a flow's log p(z) is one
    total), and its warm-up would weigh down the one term that fits the learned p(z)."""
    if isinstance(pz, Independent) and pz.base_dist.event_shape == ():  # log p(z) = sum_d log p(z_d)
        return
    raise VaekitError(
        "tc_beta (beta-TCVAE) splits off the dimension-wise KL sum_d KL(q(z_d) || p(z_d)), which needs a p(z) that "
        f"factorises by dimension (the standard prior); this model's p(z) is {with_article(dist_name(pz))}, whose "
        "log-density is one total: leave tc_beta at 0 or use the standard prior",
        key="train.tc_beta",
    )
