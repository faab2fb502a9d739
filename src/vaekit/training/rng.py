"""The caller's torch RNG, kept: vaekit's entry points seed torch for their own draws and give the caller's
random state back when they return or raise, as a notebook user running cells in any order expects."""

from __future__ import annotations

from collections.abc import Callable
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
