"""Reconstructions written to files beside what says which items they are: a .npz with each item's row in its file
(and file name, label), or a plain (N, D) run's .csv of columns 0..D-1 (a table run's rows: ``data.tables``); and
such a run's samples as a .csv of the same columns (``write_sample_rows``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Split
from ..data.table_values import csv_writer, write_csv
from ..io import atomic_write_bytes, atomic_write_text
from ..runs import Run
from .outputs import indexed_rows, item_rows, shown


def write_npz(
    out: str | Path,
    x_rec: torch.Tensor,
    index: np.ndarray | None = None,
    files: list[str] | None = None,
    y: torch.Tensor | None = None,
) -> Path:
    """A .npz of ``reconstructions`` (N, *shape) float32, ``index`` (N,) int64, each item's row in its file
    (default 0..N-1: every item in file order), as encode's .npz names them: ``files`` (N,) where the items have
    file names (a photo folder's), ``label`` (N,) where a conditional run reconstructed them given labels y."""
    n = len(x_rec)
    arrays: dict[str, Any] = {"reconstructions": x_rec.cpu().numpy().astype(np.float32, copy=False)}
    arrays["index"] = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, np.int64)[:n]
    if files is not None:
        arrays["files"] = np.array([shown(f) for f in files[:n]], dtype=str)  # not "file": savez's own argument
    if y is not None:
        arrays["label"] = y[:n].cpu().numpy().astype(np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(out, buf.getvalue())


def write_values_csv(out: str | Path, x_rec: torch.Tensor, index: np.ndarray | None = None) -> Path:
    """A .csv of items (N, D) of a run on a plain array: ``index`` (each item's row in its file, default 0..N-1),
    then columns 0..D-1, each value with the 9 significant digits that give its float32 back."""
    values = x_rec.flatten(1).cpu().numpy()
    rows = np.arange(len(values)) if index is None else np.asarray(index)[: len(values)]
    buf = io.StringIO()
    w = csv_writer(buf)
    w.writerow(["index", *range(values.shape[1])])
    w.writerows([int(i), *(f"{v:.9g}" for v in row)] for i, row in zip(rows, values, strict=True))
    return atomic_write_text(out, buf.getvalue())


def write_reconstructions(
    run: Run, s: Split, x_rec: torch.Tensor, y: torch.Tensor | None, out: str | Path, files: list[str] | None
) -> Path:
    """Reconstructions x_rec (N, *shape) of the first N items of split ``s`` (labels y (N,) or None) to ``out``:
    a .npz (``write_npz``; labels where the run is conditional), or a .csv of a table run's rows (an index column,
    then its columns: ``indexed_rows``) or of a plain (N, D) run's values (``write_values_csv``)."""
    if Path(out).suffix.lower() == ".npz":
        return write_npz(out, x_rec, item_rows(s), files, y if run.model.needs_labels else None)
    if run.table is not None:  # dates, decimals as read; categories at their most probable
        return write_csv(indexed_rows(run, s, x_rec, y), out, single=True, schema=run.table)
    return write_values_csv(out, x_rec, item_rows(s))


def write_sample_rows(run: Run, x: torch.Tensor, out: str | Path, y: Any = None) -> None:
    """Write samples x (N, D) of a run on an array (N, D) as a .csv: columns 0..D-1 (no index: no item of a file
    stands behind them), and a conditional run's class y (N,) of each row, by its name, in a last column."""
    rows = {str(j): column for j, column in enumerate(x.cpu().numpy().T)}
    if y is not None:
        names = run.classes or [str(c) for c in range(run.config.model.num_classes)]
        rows["label"] = np.asarray(names, dtype=object)[np.asarray(torch.as_tensor(y).cpu())]
    write_csv(rows, out, single=True)
