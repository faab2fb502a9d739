"""Other data's labels numbered as a conditional run numbered its own: by class name, or by number."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data import Dataset, Split
from ..data.core import number_labels
from ..runs import Run


def label_map(run: Run, classes: list[str] | None, where: str) -> torch.Tensor | None:
    """(K,) the run's label of each of the data's labels 0..K-1 (``classes``: their names), or None where they are
    the same (an unconditional run, data without names, or named as the run's)."""
    if not run.model.needs_labels or not classes or classes == run.classes:
        return None
    return torch.from_numpy(number_labels(np.asarray(classes), where, run.classes))


def numbered_as_run(run: Run, data: Dataset) -> Dataset:
    """``data`` with its labels numbered as the run's training numbered them: a label's class name (``data.classes``)
    is looked up in the run's (classes.json), or read as its number; a name the run does not know is refused."""
    new = label_map(run, data.classes, data.name)
    if new is None:
        return data

    def renumbered(s: Split) -> Split:
        return Split(s.x, None if s.y is None else new[s.y])

    d = data
    return replace(d, train=renumbered(d.train), val=renumbered(d.val), test=renumbered(d.test), classes=run.classes)
