"""Other data's labels numbered as a run numbered its own: a conditional run's by class name or number (a class it
does not know is refused); an unconditional run's the same where it knows the class, the others after its own."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data import Dataset, Split
from ..data.core import number_labels
from ..runs import Run


def label_map(run: Run, classes: list[str] | None, where: str) -> tuple[torch.Tensor, list[str]] | None:
    """((K,) the run's label of each of the data's labels 0..K-1 (``classes``: their names), the class names of
    those labels, label 0 first), or None where they are the same (data without names, or named as the run's)."""
    if not classes or classes == run.classes:
        return None
    if run.model.needs_labels:  # the labels condition the model: a class it does not know is refused
        return torch.from_numpy(number_labels(np.asarray(classes), where, run.classes)), list(run.classes or [])
    known = run.classes
    numbers = [known.index(c) if known and c in known else None for c in classes]
    if not known:  # a run whose data named no classes numbered them 0..K-1: a number is read as itself
        numbers = [int(c) if c.isdigit() else None for c in classes]
    start = max([n for n in numbers if n is not None] + [len(known or []) - 1]) + 1
    after = iter(range(start, start + len(classes)))  # classes the run never saw: numbered after its own
    new = [n if n is not None else next(after) for n in numbers]
    names = list(known or []) + [str(i) for i in range(len(known or []), max(new) + 1)]
    for c, k in zip(classes, new):
        names[k] = c
    return torch.tensor(new, dtype=torch.int64), names


def numbered_as_run(run: Run, data: Dataset) -> Dataset:
    """``data`` with its labels numbered as the run's training numbered them (``label_map``), and named so."""
    mapped = label_map(run, data.classes, data.name)
    if mapped is None:
        return data
    new, names = mapped

    def renumbered(s: Split) -> Split:
        return replace(s, y=None if s.y is None else new[s.y])  # its rows, part and draw kept

    d = data
    return replace(d, train=renumbered(d.train), val=renumbered(d.val), test=renumbered(d.test), classes=names)
