"""Codebook usage of a model of discrete codes (VQ-VAE): how many of its K codes the evaluated items take, and the
perplexity exp(H(p)) of the codes' frequencies, pooled over every position of the grid (1: collapsed, K: uniform)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..training import distributed

COLLAPSED = 2  # fewer codes used, or a perplexity below it: the codebook has collapsed


def codebook_size_of(model: nn.Module) -> int | None:
    """K of a model with a codebook (one whose ``codes(x)`` gives code indices and ``codebook_size`` its count),
    else None."""
    k = getattr(model, "codebook_size", None)
    return k if isinstance(k, int) and not isinstance(k, bool) and callable(getattr(model, "codes", None)) else None


def codebook_usage(index: Tensor, size: int) -> dict:
    """{"codes_used", "codebook_size", "codebook_perplexity"} of code indices ``index`` (N, *grid) in [0, size):
    distinct codes seen, K, and exp(-sum_k p_k log p_k) of their frequencies p (K,) over all N * prod(grid)."""
    counts = torch.bincount(index.flatten().long().cpu(), minlength=size).double()  # (K,)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * p.log()).sum()) if len(p) else 0.0
    return {
        "codes_used": int((counts > 0).sum()),
        "codebook_size": size,
        "codebook_perplexity": float(f"{math.exp(entropy):.6g}"),
    }


def codebook_figures(model: nn.Module, codes: Tensor | None, where: str) -> dict:
    """``codebook_usage`` of a codebook model's indices ``codes`` (N, U) over the items of ``where`` ({} for any
    other model, or for codes that are not indices), with one warning where the codebook has collapsed."""
    size = codebook_size_of(model)
    if size is None or codes is None or codes.is_floating_point() or not len(codes):
        return {}
    usage = codebook_usage(codes, size)
    used, perplexity = usage["codes_used"], usage["codebook_perplexity"]
    if used < COLLAPSED or perplexity < COLLAPSED:
        distributed.warn(
            f"{where}: the codebook has collapsed: its items use {used} of {size} codes (perplexity "
            f"{perplexity:.3g}), so the codes carry little of them (more epochs, or model.codebook_size smaller)"
        )
    return usage
