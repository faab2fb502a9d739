"""A table run's synthetic rows drawn from its prior in chunks (``Run.sample_table``, ``vaekit sample RUN --out
x.csv``): n checked within ``draw_bound`` at a table's bytes a row, each chunk of ``DECODE_BATCH`` rows drawn and
decoded under no_grad, then bounded as the schema says, and one note for columns piled on a bound of their range."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ..data.photos import note
from ..data.prepare import prepare_data
from ..data.table_values import clip_note
from ..data.tables import TableSchema, write_csv
from ..errors import VaekitError, whole
from . import DECODE_BATCH, RunLike, draw_bound

CELL_BYTES = 8  # a sampled table's rows held in memory, per cell: float64, int64, datetime64, object (measured)


class TableRunLike(RunLike, Protocol):
    """What ``table_draws`` needs of a ``vaekit.Run``."""

    @property
    def table(self) -> TableSchema | None: ...
    @property
    def classes(self) -> list[str] | None: ...
    def check_temperature(self, t: object) -> float | list[float]: ...
    def unconditional_label(self, label: object) -> None: ...
    def labels(self, y: Any, n: int) -> Tensor | None: ...
    @property
    def class_counts(self) -> list[int] | None: ...


def table_draws(run: TableRunLike, n: int, temperature: object, label: object, held: bool = True) -> Iterator[dict]:
    """``Run.sample_table``'s n rows in chunks of ``DECODE_BATCH``, each drawn and decoded under no_grad. n, the
    temperature and the label are checked first, n within ``draw_bound`` at CELL_BYTES a cell for rows ``held``
    in memory (else written as drawn: a conditional run's labels alone, CELL_BYTES a row); once the last chunk is
    drawn, one note names the columns with over 1% of their values clipped to a bound (``clip_note``)."""
    n, temperature = whole(n, "n"), run.check_temperature(temperature)
    run.unconditional_label(label)
    table = run.table
    if table is None:
        raise VaekitError("this run was not trained on a table (.csv/.tsv): it has no table.json")
    each = CELL_BYTES * (len(table.columns) + 1) if held else CELL_BYTES * run.model.needs_labels
    if each:  # rows held at once (a label column too), or a conditional run's labels, drawn before the rows
        draw_bound(n, [], each, f"rows of {len(table.columns)} columns held at once" if held else "labels")
    if label is None and run.model.needs_labels:  # (n,) at the training frequencies, else class k n // K rows
        k = run.config.model.num_classes
        label = class_draws(run, n)
        if label is None:
            label = torch.arange(k).repeat_interleave(torch.tensor([n // k + (i < n % k) for i in range(k)]))
    return _table_chunks(run, table, n, temperature, run.labels(label, n))


@torch.no_grad()
def _table_chunks(run: TableRunLike, table: TableSchema, n: int, temperature, y: Tensor | None) -> Iterator[dict]:
    clipped: dict = {}
    for i in range(0, n, DECODE_BATCH):
        part = None if y is None else y[i : i + DECODE_BATCH]
        x = run.model.generate(min(DECODE_BATCH, n - i), temperature, part).sample()  # (B, D)
        rows, name = table.bounded(table.decode(x), clipped), run.config.data.label_column or "label"
        yield rows if part is None else table.with_labels(rows, part.cpu().numpy(), run.classes, name)
    clip_note(clipped, table.coding)


def joined(chunks: Iterable[dict], n: int) -> dict:
    """Chunks of n rows {column: (B,) values} as one {column: (n,) values}, filled into arrays made once."""
    out: dict[str, np.ndarray] = {}
    start = 0
    for rows in chunks:
        for k, v in rows.items():
            out.setdefault(k, np.empty(n, v.dtype))[start : start + len(v)] = v
        start += len(v)
    return out


def write_table(run: TableRunLike, n: int, temperature: object, label: object, out: str | Path, seed: int = 0) -> Path:
    """``table_draws``'s n rows written to the CSV file ``out`` chunk by chunk, as drawn (``write_csv``: dates and
    times in their format, numbers to their decimals). A conditional run's rows without a ``label`` are of classes
    drawn at its training split's frequencies (``class_draws``, by ``seed``), as ``vaekit quality`` draws them."""
    if label is None and run.model.needs_labels:
        run.check_temperature(temperature)  # before the data are read
        n, drawn = whole(n, "n"), torch.Generator().manual_seed(seed)
        label = class_draws(run, n, drawn)
        label = trained_classes(run, n, drawn) if label is None else label
    return write_csv(table_draws(run, n, temperature, label, held=False), out, single=True, schema=run.table)


def class_draws(run: TableRunLike, n: int, generator: torch.Generator | None = None) -> Tensor | None:
    """(n,) labels of a conditional run drawn at its training split's class frequencies (``Run.class_counts``:
    a class of 5% of its items gets about 5% of the n, not 1 / K of them); None for a run without counts."""
    if (counts := run.class_counts) is None:
        return None
    draw_bound(n, [], CELL_BYTES, "labels")
    return torch.multinomial(torch.tensor(counts, dtype=torch.float64), n, replacement=True, generator=generator)


def trained_classes(run: TableRunLike, n: int, generator: torch.Generator) -> Tensor | None:
    """(n,) labels drawn with replacement from the labels of the run's training split read again (a run of vaekit
    before classes.json held counts); None, said in a note, where its data cannot be read (the rows then take
    every class in turn)."""
    draw_bound(n, [], CELL_BYTES, "labels")
    try:
        y = prepare_data(run.config, stream=True)[0].train.y
    except (VaekitError, OSError) as e:
        note(f"the run's training data cannot be read ({e}): its rows take every class in turn, not their frequencies")
        return None
    if y is None or not len(y):
        return None
    return y[torch.randint(len(y), (n,), generator=generator)]
