"""Each process's own random stream under torchrun: rank 0 keeps the one-process stream, every other rank its own,
saved in every checkpoint (gathered from all ranks) and restored on a resume with as many processes."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from .distributed import active, rank, wire_device, world


def rng_states() -> list[Tensor] | None:
    """Every process's torch RNG state (CPU, and its GPU's under CUDA) as uint8 tensors; gathered on all ranks."""
    if not active():
        return None
    mine = [torch.get_rng_state()]
    if dist.get_backend() == "nccl":
        mine.append(torch.cuda.get_rng_state())
    wire = torch.cat(mine).to(wire_device())
    out = [torch.empty_like(wire) for _ in range(world())]
    dist.all_gather(out, wire)
    return [t.cpu() for t in out]


def seed_rank(seed: int, saved: dict[str, Tensor], position: tuple[int, int]) -> None:
    """Give ranks > 0 their own RNG stream (rank 0 keeps the one-process stream).

    Resuming with the same number of processes restores each rank's saved state, so the run continues
    exactly; with another number, ranks > 0 are seeded from (seed, rank, epoch, batch): consistent, not exact.
    """
    r = rank()
    if r == 0:
        return
    state = saved.get(f"rng.rank.{r}")
    same_world = sum(k.startswith("rng.rank.") for k in saved) == world() - 1
    if state is not None and same_world:
        n = torch.get_rng_state().numel()
        torch.set_rng_state(state[:n].clone())
        if state.numel() > n and torch.cuda.is_available():
            torch.cuda.set_rng_state(state[n:].clone())
        return
    torch.manual_seed(int(np.random.SeedSequence([seed, r, *position]).generate_state(1)[0]))


def rng_extra() -> dict[str, Tensor]:
    """Checkpoint tensors with the RNG state of every rank > 0 (a collective: call it on every rank)."""
    states = rng_states()
    return {} if states is None else {f"rng.rank.{r}": s for r, s in enumerate(states) if r > 0}
