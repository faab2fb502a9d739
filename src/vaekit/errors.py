"""The one error type: the CLI prints its message on one line and exits with its exit_code (2: bad input)."""

from __future__ import annotations

import math
import numbers
from typing import TypeGuard


class VaekitError(ValueError):
    """Bad input named in one line: a wrong path, a corrupt file, NaNs, a wrong shape, bad values.

    ``key`` names the setting at fault (a config key such as ``model.likelihood``) when there is one; the
    library's messages name settings, never command-line flags, and the CLI adds the flag that sets ``key``.
    """

    exit_code = 2  # bad input; a disk that refuses a write is 1 (vaekit.io.WriteError)

    def __init__(self, message: str, *, key: str | None = None):
        super().__init__(message)
        self.key = key

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: a notebook shows the one line (class and message), not the library's frames."""
        return [f"{type(self).__name__}: {self}"]


class NotFinite(VaekitError):
    """A run's samples or reconstructions hold NaN or infinite values: its model diverged."""


def whole(v: object, name: str, low: int = 1, what: str = "") -> int:
    """``v`` if it is a whole number >= ``low`` (not a bool, a float or text), else one line naming ``name``
    (after ``what``, such as "sampler setting ")."""
    if not is_whole(v, low):
        raise VaekitError(f"{what}{name} must be a whole number >= {low}, got {v!r}", key=name)
    return int(v)


def is_whole(v: object, low: int | None = None) -> TypeGuard[numbers.Integral]:
    """Whether ``v`` is a whole number (numpy's integers too; not a bool, a float or text), >= ``low`` if given."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and (low is None or int(v) >= low)


SEEDS = 2**32  # a seed is a whole number in [0, 2**32): train.seed, the detectors' random_state, disentangle's seed


def is_seed(v: object) -> bool:
    """Whether ``v`` is a seed: a whole number (numpy's integers too; not a bool) in [0, SEEDS)."""
    return is_whole(v, 0) and int(v) < SEEDS


def is_number(v: object, finite: bool = False) -> bool:
    """Whether ``v`` is a real number (numpy's too; not a bool or text), and a finite one where ``finite``."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and (not finite or math.isfinite(v))
