"""Other data's labels numbered as a run numbered its own: a conditional run's by class name or number (a class it
does not know is refused); an unconditional run's the same where it knows the class, the others after its own.
Named as the data names them (``names_of``): a built-in set other than the run's keeps its own names, or none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data import Dataset, Split
from ..data.builtin import builtin_name
from ..data.core import number_labels
from ..data.prepare import same_spec
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


def names_of(run: Run, spec: str | None, classes: list[str] | None) -> list[str] | None:
    """The class names of the labels of ``spec`` (None: the run's own data) numbered as ``label_map`` numbers them,
    its labels 0..K-1 named ``classes`` (its own names, or their numbers as text where a conditional run reads
    them by its names, ``eval_items.file_names``): the run's names for its own data and for a file (read with the
    run's classes); a built-in set other than the run's keeps its own, so where the run's would rename one of
    its labels (a Fashion-MNIST run's "Coat" for mnist5k's digit 4) its labels are numbers without names (None)."""
    mapped = label_map(run, classes, spec or "")
    if mapped is None or classes is None:
        return classes
    new, names = mapped
    if spec is None or builtin_name(spec) is None or same_spec(spec, run.config.data.spec):
        return names
    return names if all(names[int(k)] == c for k, c in zip(new, classes)) else None
