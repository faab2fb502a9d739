"""The caller's torch state, kept: vaekit's entry points seed torch for their own draws and give the caller's
random state back when they return or raise, as a notebook user running cells in any order expects; training's
number of CPU threads (train.threads) likewise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def keeps_rng(f: Callable[P, R]) -> Callable[P, R]:
    """``f`` run inside ``torch.random.fork_rng``: the CPU's RNG state, and the current CUDA device's where the
    caller has started CUDA, are restored after it. Only a started device: reading another's state would start
    CUDA on every GPU in every torchrun worker."""

    @wraps(f)
    def kept(*args: P.args, **kwargs: P.kwargs) -> R:
        started = torch.cuda.is_available() and torch.cuda.is_initialized()
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if started else []):
            return f(*args, **kwargs)

    return kept


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads for its operations set to ``n`` inside (0: torch's default, as OMP_NUM_THREADS or the
    cores set it, left as it is), the caller's number given back after."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(before)
