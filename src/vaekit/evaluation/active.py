"""Active units (Burda et al. 2016): which latent variables a posterior uses, from its means over the data, or
for a discrete code (Gumbel-softmax, VQ) from how its categories vary over the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from ..core.discrete import CodeGrid, GumbelSoftmax
from ..errors import VaekitError

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016), section 5.2: Cov_x(E_q[z_u|x]) > 0.01


@overload
def active_units(means: Tensor | np.ndarray, threshold: float = ...) -> Tensor: ...
@overload
def active_units(means: Sequence[Tensor], threshold: float = ...) -> list[Tensor]: ...
def active_units(
    means: Tensor | np.ndarray | Sequence[Tensor], threshold: float = ACTIVE_THRESHOLD
) -> Tensor | list[Tensor]:
    """Burda et al.'s criterion per level: a (D_l,) bool mask of dims whose posterior mean varies over x.

    ``means``: one (N, D_l) tensor of E_q[z|x] per level (a list of masks back), or a single (N, D) tensor or
    array (its one (D,) mask back); a unit is active when Var_x > ``threshold``.
    """
    if isinstance(means, (Tensor, np.ndarray)):
        return active_units([torch.as_tensor(means)], threshold)[0]
    for m in means:
        if not isinstance(m, Tensor) or m.dim() != 2:
            got = tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__
            raise VaekitError(f"active_units takes posterior means (N, D), or a list of them per level, got {got}")
    return [
        m.var(0, unbiased=True) > threshold if len(m) > 1 else torch.zeros(m.shape[1], dtype=torch.bool) for m in means
    ]


def discrete_codes(q: Distribution) -> list[Tensor]:
    """[a discrete q(z|x)'s codes] on the CPU: probabilities (B, N, K) (Gumbel-softmax), indices (B, h * w) (VQ)."""
    codes = q.probs if isinstance(q, GumbelSoftmax) else q.index.flatten(1) if isinstance(q, CodeGrid) else None
    return [] if codes is None else [codes.cpu()]


def active_codes(codes: Tensor, threshold: float = ACTIVE_THRESHOLD) -> Tensor:
    """(U,) mask of a discrete code's variables u with sum_k Var_x(q(z_u = k|x)) > ``threshold`` over N > 1 items, from
    (N, U, K) probabilities or (N, U) indices (q one-hot: N/(N-1) times u's Gini impurity 1 - sum_k f_uk^2)."""
    if codes.dim() == 3:
        return codes.var(0).sum(-1) > threshold
    n, u = codes.shape
    f = torch.zeros(u, int(codes.max()) + 1).scatter_add_(1, codes.t(), torch.ones(u, n)) / n  # (U, K)
    return (1 - f.pow(2).sum(1)) * n / (n - 1) > threshold
