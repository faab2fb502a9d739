"""What ``VAEAnomalyDetector`` needs of a trained run (``run=``, ``from_run``) and of the rows it scores: the
run's model and how its items were prepared in training (binarised once and seeded, as ``vaekit anomaly``
draws them), a table run's schema, which encodes a DataFrame's rows as the run encoded its file, the rows'
checks (the likelihood's support, float32's range for training) and those of ``image_shape`` and ``out``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import Tensor

from ..core.likelihoods import check_support
from ..data.lazy import binarized_once
from ..data.table_schema import TableSchema
from ..errors import VaekitError
from ..models.standardized import Standardized
from ..runs import Run
from ..training.folder import is_run
from .score_checks import check_model

BINARISED = ("dynamic", "fixed")  # data.binarize settings that draw a run's evaluated items once, seeded


def loaded(path: str, method: str) -> dict[str, object]:
    """The fitted attributes of a detector wrapping the run in ``path`` to score by ``method``: its model in
    float64 (``models_``), item shape, units (``loc_``, ``scale_``: a standardised table's columns, else 0 and
    1), likelihood, the seed of its binarisation (None: items scored as given) and its table schema (or None)."""
    run = Run.load(path)
    if run.model.needs_labels:
        raise ValueError(f"{path}: the detector scores rows without labels; this run is conditional")
    shape = tuple(run.config.model.input_shape)
    if method == "complexity" and len(shape) != 3:
        raise ValueError(f"method complexity needs images (C, H, W); the run's items have shape {shape}")
    try:
        check_model(run.model, [method], None)
    except VaekitError as e:
        raise ValueError(str(e)) from None
    model = run.model.cpu().double().eval()
    loc, scale = units(model, math.prod(shape))
    seed = run.config.train.seed if run.config.data.binarize in BINARISED else None
    return {
        "models_": [model],
        "input_shape_": shape,
        "loc_": loc,
        "scale_": scale,
        "likelihood_": run.config.model.likelihood,
        "binarize_seed_": seed,
        "table_": run.table,
    }


def units(model: torch.nn.Module, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) loc and scale the model standardises its items' n values by (``Standardized``; a constant column has
    scale 0), else zeros and ones."""
    if isinstance(model, Standardized):
        return model.loc.double().reshape(-1).numpy().copy(), model.scale.double().reshape(-1).numpy().copy()
    return np.zeros(n), np.ones(n)


def check_image_shape(shape: tuple | list | None) -> None:
    """Refuse an ``image_shape`` other than None or (C, H, W), three whole numbers >= 1."""
    if shape is None:
        return
    three = isinstance(shape, (tuple, list)) and len(shape) == 3
    if not three or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1 for k in shape):
        raise ValueError(f"image_shape must be (C, H, W), three whole numbers >= 1, got {shape!r}")


def check_float32(X: np.ndarray) -> None:
    """Refuse training rows X (N, F) with a value beyond float32's range, in which the VAE trains (inf there,
    and NaN scores after it)."""
    big = np.abs(X).max(0) > np.finfo(np.float32).max
    if big.any():
        j = int(np.argmax(big))
        raise ValueError(
            f"X: column {j} holds values up to {np.abs(X[:, j]).max():.3g}, beyond float32's range (about 3.4e+38), "
            "in which the VAE trains: rescale it"
        )


def check_out(out: str | None, scales: int, overwrite: bool) -> None:
    """Refuse an ``out`` (with several ``scales``, one of its scale-<i> folders) that holds a run already, unless
    ``overwrite``."""
    if not out or overwrite:
        return
    for folder in [Path(out) / f"scale-{i}" for i in range(scales)] if scales > 1 else [Path(out)]:
        if is_run(folder):
            raise ValueError(f"out {folder}: already holds a run; pass overwrite=True to replace it")


def table_names(table: TableSchema) -> list[str]:
    """The feature columns of a table run, in file order."""
    return [c.name for c in table.columns]


def needs_schema(table: TableSchema | None) -> bool:
    """Whether a table run's items are no plain row of numbers: categorical columns, gap indicators, TVAE's
    modes or dates, which only its schema encodes (from a DataFrame)."""
    return table is not None and bool(table.categories or any(c.time for c in table.numeric))


def table_items(table: TableSchema, X: object) -> np.ndarray:
    """A DataFrame's rows -> the run's items (N, D) float64, encoded by the run's schema: its columns picked by
    name, numbers, categories, dates and gaps read as training read its file's cells."""
    names = table_names(table)
    if not hasattr(X, "columns") or not hasattr(X, "notna"):
        listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValueError(
            "this run's items encode categorical columns, dates or gaps: pass X as a pandas DataFrame with its "
            f"columns ({listed}), which the detector encodes as the run encoded its file"
        )
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ValueError(f"X lacks the run's column(s) {', '.join(map(repr, missing))}: the run reads {names}")
    frame = X[names]  # type: ignore[index]
    cells = frame.astype(object).where(frame.notna(), "").to_numpy().astype(str)  # gaps as empty cells
    try:
        items, keep = table.encode(cells, list(range(len(cells))), "X")
    except VaekitError as e:
        raise ValueError(str(e).replace(" on line ", " in row ")) from None
    if not keep.all():
        raise ValueError(
            f"X: row {int(np.argmin(keep))} has a missing value, and this run leaves such rows out "
            "(data.missing drop): the detector scores every row: fill it or drop it"
        )
    return items.astype(np.float64)


def prepared(x: Tensor, likelihood: str, seed: int | None) -> Tensor:
    """Rows x (N, *shape) float64 as the model takes them: checked against the likelihood's support, or, where the
    run was binarised (``seed``, the run's), checked to lie in [0, 1] and binarised once by that seed, row i
    keyed as row i of a file is by ``vaekit anomaly --split all`` (float64 0/1)."""
    if seed is None:
        check_support(likelihood, x, "X")
        return x
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise VaekitError(
            f"X: values in [{float(x.min()):.4g}, {float(x.max()):.4g}] lie outside [0, 1], which the run's "
            "binarisation (data.binarize) needs"
        )
    return cast(Tensor, binarized_once(x, seed)).double()
