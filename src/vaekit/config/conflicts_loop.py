"""The conflicts table's rows of the training loop's own settings: the step guard's and early stopping's."""

from __future__ import annotations

from typing import Any


def loop_conflicts() -> list:
    """Rows for a gradient skip that leaves clipping nothing to act on, and early stopping's threshold given
    without early stopping (given: a resumed run's config.json may keep it, and ``--patience 0`` turns it off)."""
    return [
        (
            "train.skip_grad",
            "train.clip_grad",
            lambda c: 0 < c.train.skip_grad <= c.train.clip_grad,
            "every norm above the clip norm is skipped, so clipping never acts (VDVAE: clip 200, skip 400)",
        ),
        (
            "train.min_delta",
            "train.patience",
            lambda c: _asked(c, "train.min_delta") and not c.train.patience,
            "min_delta is the gain in validation loss that early stopping asks of a better epoch, and early stopping "
            "is off (0)",
        ),
    ]


def _asked(c: Any, key: str) -> bool:
    """Whether the user gave ``key`` (a flag, --set, a keyword, their TOML file), at any value: not a value a
    resumed run's config.json holds, which ``--patience 0`` leaves as it is."""
    return key in c.given
