"""``Run.encode`` and ``Run.reconstruct`` over many items, ``ENCODE_BATCH`` at a time: a network's activations for
20,000 images need not fit in memory at once. The chunks' posteriors are joined into one distribution."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from .core.contract import VAEModule, mean_of

ENCODE_BATCH = 1000  # items encoded (and decoded) at a time
PLAIN = (int, float, bool, str, type(None), torch.Size)  # a distribution's attributes that hold no items


def chunks(n: int) -> list[slice]:
    """Slices of ``ENCODE_BATCH`` items over ``n`` (none: one empty slice, a pass as before)."""
    return [slice(i, min(i + ENCODE_BATCH, n)) for i in range(0, n, ENCODE_BATCH)] or [slice(0, 0)]


def joinable(d: Distribution) -> bool:
    """Whether ``d`` (batch (B, ...)) holds only tensors, nested distributions of this kind and plain values,
    so that ``joined`` can put chunks of it together (a flow's modules cannot be)."""
    if not d.batch_shape:
        return False
    return all(
        isinstance(v, (Tensor, *PLAIN)) or (isinstance(v, Distribution) and joinable(v)) for v in vars(d).values()
    )


def joined(parts: Sequence[Distribution]) -> Distribution:
    """One distribution of batch (sum B_i, ...) from ``parts``, posteriors of one kind (``joinable``) of batch
    (B_i, ...): each tensor of batch B_i joined along dim 0, nested distributions joined so, the rest the first's."""
    first = parts[0]
    if len(parts) == 1:
        return first
    out = copy.copy(first)
    sizes = [p.batch_shape[0] for p in parts]
    for name, value in vars(first).items():
        others = [vars(p).get(name, out) for p in parts]  # out: a lazy property the first alone has computed
        if any(v is out for v in others):
            del out.__dict__[name]  # computed again where asked
        elif isinstance(value, Distribution):
            setattr(out, name, joined(others))
        elif isinstance(value, Tensor) and value.dim() and all(len(v) == n for v, n in zip(others, sizes)):
            setattr(out, name, torch.cat(others))  # (B_i, ...) each
    out._batch_shape = torch.Size([sum(sizes), *first.batch_shape[1:]])
    return out


def encoded(model: VAEModule, x: Tensor, y: Tensor | None) -> Distribution:
    """q(z|x) of items x (N, *shape) (labels y (N,) or None), ``ENCODE_BATCH`` at a time, on the model's device;
    a posterior that cannot be joined (``joinable``: a flow's) is encoded in one pass."""
    parts = []
    for s in chunks(len(x)):
        parts.append(model.encode(x[s], None if y is None else y[s]))
        if not joinable(parts[0]) and len(x) > ENCODE_BATCH:
            return model.encode(x, y)
    return joined(parts)


def reconstructed(model: VAEModule, x: Tensor, y: Tensor | None) -> Tensor:
    """(N, *shape) means of p(x|z) on the CPU at z = the posterior mean of each item of x (N, *shape) (labels y
    (N,) or None), ``ENCODE_BATCH`` at a time (``mean_of``'s draws, where q(z|x) has no mean, per chunk)."""
    parts = []
    for s in chunks(len(x)):
        yb = None if y is None else y[s]
        parts.append(mean_of(model.decode(mean_of(model.encode(x[s], yb)), yb)).cpu())
    return torch.cat(parts)
