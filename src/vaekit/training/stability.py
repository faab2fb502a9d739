"""Measures that keep deep hierarchies trainable (NVAE, VDVAE), each a training setting: an exponential moving
average of the weights (``train.ema``) and KL balancing between latent groups during the warm-up
(``train.kl_balance``). Gradient clipping and update skipping live in the step (``training.step``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    """Shadow weights w_ema <- d w_ema + (1 - d) w after every update (Polyak averaging), with the decay
    warmed up as d_n = min(decay, (1 + n) / (10 + n)) so a short run's average is not its initial weights.

    The shadow is what evaluation, the saved weights and sampling use (``swapped``); the checkpoint keeps it
    (``tensors`` / ``load``), so a resumed run goes on averaging the same way.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.shadow = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in model.parameters()], 1 - d)
        self.updates += 1

    def tensors(self) -> dict[str, Tensor]:
        """The shadow weights and the update count, for the checkpoint's extra tensors."""
        return {"ema.updates": torch.tensor(self.updates), **{f"ema.{i}": t for i, t in enumerate(self.shadow)}}

    def load(self, saved: dict[str, Tensor]) -> None:
        """Restore what ``tensors`` gave (a checkpoint without an average keeps the current weights)."""
        if "ema.updates" not in saved:
            return
        self.updates = int(saved["ema.updates"])
        for i, t in enumerate(self.shadow):
            t.copy_(saved[f"ema.{i}"])


@contextmanager
def swapped(ema: EMA | None, model: nn.Module) -> Iterator[None]:
    """``model`` holds the averaged weights inside the block and its own again after it (no-op without ``ema``)."""
    if ema is None:
        yield
        return
    params = list(model.parameters())
    with torch.no_grad():
        own = [p.detach().clone() for p in params]
        torch._foreach_copy_([p.data for p in params], ema.shadow)
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in params], own)


def balanced_kl(kl_layers: list[Tensor], z: list[Tensor], shared: Shared | None = None) -> Tensor:
    """NVAE's KL balancing (Vahdat & Kautz 2020, appendix A): sum_g c_g KL_g, batch mean, scalar.

    c_g is proportional to the group's mean KL per latent dimension (batch mean, + 0.01), normalised to a mean of
    1 over the groups and held constant in the gradient: groups that carry much information pay more, nearly
    unused ones less, which keeps groups from collapsing early in the KL warm-up. ``kl_layers`` (B,) per group,
    ``z`` the groups' latents (B, D_g) for their sizes. ``shared`` (``distributed.sum_over_ranks``) sums the
    groups' detached KL sums (G,) and the item count over every process, so that under DDP the weights are the
    global batch's, as one process would weigh it, not each process's share's.
    """
    kl = torch.stack([k.mean() for k in kl_layers])  # (G,)
    seen = kl.detach()
    if shared is not None:
        sums, n = shared(torch.stack([k.detach().sum() for k in kl_layers]), kl_layers[0].numel())  # (G,), items
        seen = sums / n
    dims = torch.tensor([t.shape[1] for t in z], dtype=kl.dtype, device=kl.device)
    c = (seen.abs() + 0.01) / dims
    c = c / c.mean()
    return (c * kl).sum()


Shared = Callable[[Tensor, int], tuple[Tensor, int]]  # (G,) sums and their item count -> those of every process
