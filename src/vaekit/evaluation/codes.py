"""Posterior codes written to files: q(z|x)'s loc and scale of every item as .npy, .npz or .csv."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from ..core.contract import dist_name, with_article
from ..core.reading import mean_of, stddev_of
from ..data.lazy import LazyArray
from ..errors import VaekitError
from ..io import atomic_write, csv_cell
from ..runs import Run
from .outputs import shown

CODE_SUFFIXES = (".npy", ".npz", ".csv")


def write_codes(
    run: Run,
    x: torch.Tensor | LazyArray,
    out: str | Path,
    batch_size: int = 1000,
    files: list[str] | None = None,
    index: np.ndarray | None = None,
    y: torch.Tensor | None = None,
    classes: list[str] | None = None,
) -> int:
    """q(z|x)'s loc and scale of every item of x (N, *shape) into ``out`` by its suffix: .npy (N, 2D: loc then
    scale), .npz (loc, scale) or .csv (loc_i, scale_i columns), in batches; returns D. ``index`` (N,), each
    item's row in its file (a split's), and ``files`` (N,), the items' file names, become a .csv's first
    columns (``index``, ``file``) and a .npz's ``index`` and ``files`` arrays. Labels y (N,) (a conditional run
    encodes each item with its own, q(z|x, y)) are written as a .csv's ``label`` column and a .npz's ``label``
    array, and where ``classes`` names them (label 0 first), a .csv's ``class_name`` column and a .npz's
    ``classes``: a .csv's columns in the order of anomaly scores' (``write_scores``): index, label, loc_i, scale_i,
    class_name, file."""
    out = Path(out)
    if out.suffix.lower() not in CODE_SUFFIXES:
        raise VaekitError(f"{out}: expected a .npy, .npz or .csv file name", key="out")
    if batch_size <= 0:
        raise VaekitError(f"batch_size must be > 0, got {batch_size}", key="batch_size")
    run.check_items(x)
    given = code_labels(run, y, len(x))  # a conditional run's, on its device; None for another run
    y = given if given is not None or y is None or len(y) != len(x) else y  # another run's labels are written
    d = sum(run.model.latent_dims)

    def rows() -> Iterator[np.ndarray]:  # (B, 2D) per batch: loc then scale
        for i in range(0, len(x), batch_size):
            qz = run.encode(x[i : i + batch_size], None if given is None else given[i : i + batch_size])
            r = torch.cat([t.flatten(1) for t in loc_scale(qz)], 1).cpu().numpy()
            if not (finite := np.isfinite(r).all(1)).all():  # float32 overflows for items far beyond training's
                first = i + int(np.argmin(finite))
                raise VaekitError(f"item {first} has no finite code: its values lie too far from the training items")
            yield r

    ids = {"index": None if index is None else [str(int(i)) for i in index], "file": files}
    ids["label"] = None if y is None else [str(int(v)) for v in y.tolist()]
    ids["class_name"] = None if y is None or not classes else [classes[v] for v in y.tolist()]
    ids["classes"] = None if ids["class_name"] is None or not classes else list(classes)  # the .npz's alone
    atomic_write(out, lambda tmp: WRITERS[out.suffix.lower()](tmp, rows(), len(x), d, ids))
    return d


def loc_scale(qz: Distribution) -> tuple[Tensor, Tensor]:
    """q(z|x)'s loc and scale, each (B, *event): ``mean_of`` and ``stddev_of`` (seeded draws where q has no closed
    form: a user's own distribution). A q that has neither and cannot be sampled is refused."""
    try:
        loc = mean_of(qz)
        return loc, stddev_of(qz, loc)
    except NotImplementedError:  # sample() too: torch's bare error, no line to show
        raise VaekitError(
            f"encode: q(z|x) is {with_article(dist_name(qz))} with no mean or stddev and no sample(): "
            "give its distribution a mean and stddev, or a sample method"
        ) from None


def code_labels(run: Run, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """The labels (N,) that a conditional run's q(z|x, y) takes, each in its classes 0..K-1; None for another
    run. Data without labels, or labels not one per item, are refused in one line."""
    if not run.model.needs_labels:
        return None
    if y is None:
        raise VaekitError(
            "encode: this run is conditional: its codes q(z|x, y) need each item's label, and this data has none"
        )
    if len(y) != n:
        raise VaekitError(f"encode: {len(y)} labels for {n} items: a conditional run's codes need one label per item")
    return run.labels(y, n)


def _write_npy(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int, ids: dict[str, list[str] | None]) -> None:
    """The header, then each batch appended: written, not mapped, so the codes never sit in this process."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (n, 2 * d)}
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for r in rows:
            f.write(np.ascontiguousarray(r, dtype=np.float32).tobytes())


def _write_npz(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int, ids: dict[str, list[str] | None]) -> None:
    a = np.concatenate(list(rows)) if n else np.zeros((0, 2 * d), np.float32)
    arrays: dict[str, Any] = {"loc": a[:, :d], "scale": a[:, d:]}  # Any: savez types its keywords loosely
    if ids["index"] is not None:
        arrays["index"] = np.array(ids["index"], dtype=np.int64)
    if ids["file"] is not None:
        arrays["files"] = np.array(ids["file"], dtype=str)  # not "file": savez's own argument
    if ids.get("label") is not None:
        arrays["label"] = np.array(ids["label"], dtype=np.int64)
    if ids.get("classes") is not None:  # the names of labels 0..K-1, as the run's classes.json lists them
        arrays["classes"] = np.array(ids["classes"], dtype=str)
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _write_csv(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int, ids: dict[str, list[str] | None]) -> None:
    """index and label, loc_i and scale_i, then class_name and file columns, as anomaly scores' .csv orders them
    (a name a spreadsheet would run as a formula written as text: ``io.csv_cell``)."""
    order = ("index", "label", "class_name", "file")
    given = {k: [csv_cell(shown(v)) for v in c] for k in order if (c := ids.get(k)) is not None}
    first = [k for k in given if k in ("index", "label")]  # before the codes; class_name and file after them
    cells = zip(*given.values()) if given else iter(lambda: (), None)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        codes = [*(f"loc_{i}" for i in range(d)), *(f"scale_{i}" for i in range(d))]
        w.writerow([*first, *codes, *list(given)[len(first) :]])
        for r in rows:
            for row in r:
                cell = next(cells)
                w.writerow([*cell[: len(first)], *(f"{v:.9g}" for v in row), *cell[len(first) :]])


WRITERS = {".npy": _write_npy, ".npz": _write_npz, ".csv": _write_csv}
