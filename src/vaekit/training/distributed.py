"""Data-parallel training under torchrun: process group, shards, reductions; no-ops in one process (per-rank RNG:
``training.rank_rng``).

``torchrun --nproc_per_node=N -m vaekit train ...`` (or ``vaekit train --nproc N``, which runs torchrun
itself) starts N processes; each trains a DistributedDataParallel copy of the model on its share of every
global batch. ``train.batch_size`` is the GLOBAL batch, cut from the epoch's permutation as one process cuts it
(``data.batching.batch_items``): each process takes ``batch_size / N`` items of it, so N processes take as many
steps as one and follow its trajectory (up to float reduction order, the per-process noise, and the padding of
an epoch's last batch where it does not split evenly).
Only rank 0 writes files. gloo on CPU, NCCL on CUDA (each process on its LOCAL_RANK's GPU).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, overload

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import logs
from ..config.conflicts_zoo import batch_level
from ..errors import VaekitError
from .launcher import Stopped as Stopped  # re-exported, with launched
from .launcher import die_with_parent
from .launcher import launched as launched

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..data.lazy import LazyArray

T = TypeVar("T")


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: the group's, or torchrun's RANK outside the group (before joining, after leaving)."""
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if launched() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """The process that writes files and prints: rank 0, or the only one."""
    return rank() == 0


def warn(message: str, own: bool = False) -> None:
    """``vaekit: warning: message`` (a warning of the logger "vaekit", ``vaekit.logs``: on stderr by default), once
    under torchrun: from rank 0 where every rank sees the same (the settings, the machine, the run folder, a step
    all ranks skip); from each rank that saw it, named, where it is that rank's ``own`` (``vaekit: warning: rank
    1: message``)."""
    if own and launched():
        logs.warning(f"rank {rank()}: {message}")
    elif is_main():
        logs.warning(message)


def check_batch(batch_size: int, n: int, train: TrainConfig | None = None) -> None:
    """Refuse, in one line, a global ``batch_size`` that ``n`` processes cannot split evenly, or whose share per
    process is a lone item where ``train``'s objective estimates something from a batch's items together."""
    if batch_size % n:
        raise VaekitError(
            f"train.batch_size {batch_size} is the global batch: it must be a multiple of the {n} processes",
            key="train.batch_size",
        )
    why = None if train is None or n == 1 else batch_level(train)  # one process: the config's conflicts table
    if why and batch_size // n < 2:
        raise VaekitError(
            f"train.batch_size {batch_size} over {n} processes is a batch of {batch_size // n} per process, and {why}, "
            f"each process on its own share: give a batch size of at least {2 * n}",
            key="train.batch_size",
        )


def init(device: torch.device, batch_size: int, train: TrainConfig | None = None) -> torch.device:
    """Join the process group when torchrun started us (or use the one already set up, by an earlier fit or by
    the user); returns this process's device.

    The global ``batch_size`` must split evenly, so that the mean of the per-process gradients is the
    gradient of the global batch's mean loss, into shares that ``train``'s objective can take (``check_batch``).
    A group vaekit sets up stays for the next fit and is destroyed at exit (``leave``); a user's is left alone.
    """
    global _owned
    if active():
        check_batch(batch_size, world(), train)
        return _local_device(device)
    if launched() or "LOCAL_RANK" in os.environ:  # a launcher's worker: SIGTERM (a checkpoint, then a stop) when
        die_with_parent()  # the launcher dies, even by SIGKILL, rather than train on orphaned
    if not launched():
        if device.type == "cuda" and device.index is not None:  # cuda:N: what the step's checks and graphs use
            torch.cuda.set_device(device)
        return device
    check_batch(batch_size, int(os.environ["WORLD_SIZE"]), train)
    cuda = device.type == "cuda"
    device = _local_device(device)
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    _owned = True
    atexit.register(leave)
    return device


_owned = False  # whether vaekit set the process group up (``init``): it destroys that one alone, at exit


def leave() -> None:
    """Destroy the process group if vaekit set it up (a user's stays theirs), at exit (atexit; the CLI's workers
    end by ``os._exit``). A fit ends with a ``barrier`` instead: a script can fit again in the same group."""
    global _owned
    if _owned and active():
        dist.destroy_process_group()
    _owned = False


def barrier() -> None:
    """Wait for every process (none to wait for in one process)."""
    if active():
        dist.barrier()


def _local_device(device: torch.device) -> torch.device:
    """Process LOCAL_RANK's GPU on CUDA (one GPU per process on each machine)."""
    if device.type != "cuda":
        return device
    local, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local >= count:
        raise VaekitError(
            f"process {local} on this machine needs GPU {local}, and it has {count}: start at most "
            f"{count} processes per machine on CUDA, or train on the CPU",
            key="train.device",
        )
    return torch.device("cuda", local)


def wrap(model: nn.Module) -> nn.Module:
    """DistributedDataParallel around ``model`` in a process group (its gradients are averaged), else ``model``."""
    if not active():
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _reduce(t: Tensor, op=None) -> Tensor:
    """All-reduce a copy of ``t`` (on the collective's device: CUDA for NCCL) and return it on t's device."""
    if not active():
        return t
    wire = t.detach().to(wire_device(), copy=True)
    dist.all_reduce(wire, op=op or dist.ReduceOp.SUM)
    return wire.to(t.device)


def wire_device() -> torch.device:
    """Where the collectives' tensors go: this process's GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


@overload
def part(x: Tensor) -> Tensor: ...


@overload
def part(x: LazyArray) -> LazyArray: ...


def part(x: Tensor | LazyArray) -> Tensor | LazyArray:
    """Rank r's every N-th item of a split (a tensor or a LazyArray view), for sharded validation."""
    if not active():
        return x
    every = slice(rank(), None, world())
    return x[every] if isinstance(x, Tensor) else x.subset(every)


def sum_over_ranks(sums: Tensor, seen: int) -> tuple[Tensor, int]:
    """(K,) running sums and the item count behind them, summed over all processes."""
    if not active():
        return sums, seen
    both = _reduce(torch.cat([sums.double(), torch.tensor([seen], dtype=torch.float64, device=sums.device)]))
    return both[:-1].to(sums.dtype), int(both[-1])


def mean_over_ranks(means: dict, n: int) -> dict:
    """Means of loss, rec, kl (and kl_levels) over ``n`` local items -> means over every process's items."""
    if not active():
        return means
    flat = torch.tensor([means["loss"], means["rec"], means["kl"], *means["kl_levels"], 1.0], dtype=torch.float64) * n
    loss, rec, kl, *levels, total = _reduce(flat).tolist()
    levels = [v / total for v in levels]
    return {"loss": loss / total, "rec": rec / total, "kl": kl / total, "kl_levels": levels}


def agree(signum: int | None, due: bool) -> tuple[int | None, bool]:
    """The same stop/checkpoint decision in every process: a signal or a due checkpoint in any one counts."""
    if not active():
        return signum, due
    flags = _reduce(torch.tensor([signum or 0, int(due)]), dist.ReduceOp.MAX).tolist()
    return (int(flags[0]) or None), bool(flags[1])


def all_ok(ok: bool) -> bool:
    """True when ``ok`` holds in every process (one all-reduce)."""
    return ok if not active() else bool(_reduce(torch.tensor([int(ok)]), dist.ReduceOp.MIN).item())


def from_main(value: int) -> int:
    """Rank 0's ``value`` (a count >= 0) in every process (one all-reduce)."""
    return value if not active() else int(_reduce(torch.tensor([value if is_main() else 0]), dist.ReduceOp.MAX).item())


def step_means(loss: Tensor, rec: Tensor, kl: Tensor) -> dict[str, Tensor]:
    """A step's ``loss`` (the mean over this process's share of the batch), ``rec`` and ``kl`` (B,) -> their means
    over every process's items of the global batch, 0-dim tensors on this device (one all-reduce of 4 numbers, which
    under NCCL waits for no host); in one process, this process's means."""
    if not active():
        return {"loss": loss.detach(), "rec": rec.detach().mean(), "kl": kl.detach().mean()}
    n = torch.tensor(float(len(rec)), device=rec.device)
    total = _reduce(torch.stack([loss.detach().float() * n, rec.detach().float().sum(), kl.detach().float().sum(), n]))
    return {k: v / total[3] for k, v in zip(("loss", "rec", "kl"), total[:3], strict=True)}


def on_main(fn: Callable[[], T], what: str) -> T | None:
    """Run ``fn`` on rank 0 only; if it raises there, the other ranks stop too (rather than wait forever)."""
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
            error = e
    if not all_ok(error is None):
        if error is not None:
            raise error
        raise Stopped(f"stopped: rank 0 could not {what}")
    return result


def check_same(settings: dict, data: dict) -> None:
    """Refuse, in one line on every rank, processes given other ``settings`` (flat, ``{"train.lr": 1e-3, ...}``)
    or other ``data`` (its ``state.fingerprint``) than rank 0's: DDP would hang on their different step counts
    or train on without a word to different weights. One all_gather of a few hundred bytes."""
    if not active():
        return
    mine = {"settings": settings, "data": data}
    every: list[dict] = [{} for _ in range(world())]
    dist.all_gather_object(every, mine)
    for r, other in enumerate(every[1:], 1):
        if why := _differs(every[0], other, r):
            raise (VaekitError if is_main() else Stopped)(why[0], key=why[1])


def _differs(first: dict, other: dict, r: int) -> tuple[str, str | None] | None:
    """The line (and setting) that says how rank ``r``'s ``other`` differs from rank 0's ``first``, or None."""
    a, b = first["settings"], other["settings"]
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            return (
                f"rank {r}'s {key} differs from rank 0's ({b.get(key)!r} vs {a.get(key)!r}): every process must "
                "be given the same settings",
                key,
            )
    a, b = first["data"], other["data"]
    if a == b:
        return None
    counts = [(n, m, what) for n, m, what in zip(a["items"], b["items"], ("training", "validation", "test")) if n != m]
    shown = f"{counts[0][1]} {counts[0][2]} items vs {counts[0][0]}" if counts else "other items, as many"
    return f"rank {r}'s data differs from rank 0's ({shown}): every process must read the same data", None
