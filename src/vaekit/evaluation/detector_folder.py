"""A multi-scale detector's folder (``VAEAnomalyDetector``'s ``out``: scales.json beside a run per scale) answered
as ``vaekit anomaly`` and ``vaekit anomaly-eval`` answer a run: every item of a data spec in file order, checked
against the detector's image shape, scored at each scale (standardised) and summed, by the method and settings
the detector was fitted with. The scale runs were trained on data passed in memory, so the data is always
named, and there is no split of their own, nor training items to set a threshold on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .. import files
from ..config import RunConfig, load_json_config
from ..data.lazy import head_split
from ..data.prepare import checked
from ..errors import VaekitError
from ..training.folder import is_run
from .detector import VAEAnomalyDetector
from .detector_run import SCALES, read_scales
from .outputs import every_labelled, item_files, item_rows


def is_detector(path: str | Path) -> bool:
    """Whether ``path`` holds a multi-scale detector: its scales.json, or scale-<i> runs and no run of its own
    (a fit that did not finish, which loading names)."""
    folder = Path(path)
    return (folder / SCALES).is_file() or (not is_run(folder) and (folder / "scale-0").is_dir())


def record(path: str | Path) -> dict:
    """The folder's scales.json, checked (``detector_run.read_scales``); its absence beside scale-<i> runs, one line."""
    file = Path(path) / SCALES
    if not file.is_file():
        raise VaekitError(f"{file}: missing beside the scale-<i> runs (a fit that did not finish): fit again")
    try:
        return read_scales(file)
    except ValueError as e:
        raise VaekitError(str(e)) from None


class Items(NamedTuple):
    """Items to score: x (N, C, H, W) float32, their labels (N,) or None, their rows in their file (N,) or None
    (then numbered by their place in file order), the class names of labels 0..K-1 and a photo folder's files."""

    x: torch.Tensor
    y: torch.Tensor | None
    rows: np.ndarray | None
    classes: list[str] | None
    files: list[str] | None


def folder_items(path: str | Path, spec: str | None, limit: int | None = None) -> Items:
    """The first ``limit`` items of ``spec`` in file order for the multi-scale detector in ``path``: images of its
    shape, or rows of as many values (as the detector fits them), read into memory."""
    if not spec:
        raise VaekitError(
            f"{path}: a multi-scale detector's runs were trained on data passed in memory: name the data to score",
            key="data.spec",
        )
    if limit is not None and limit <= 0:
        raise VaekitError(f"limit must be > 0, got {limit}", key="limit")
    shape = tuple(record(path)["image_shape"])
    cfg = RunConfig()
    cfg.model.input_shape = list(shape)
    s, classes = every_labelled(cfg, spec)
    if tuple(s.x.shape[1:]) not in (shape, (math.prod(shape),)):  # images, or rows as the detector fits them
        raise VaekitError(
            f"{spec}: items have shape {tuple(s.x.shape[1:])}, the detector in {path} scores {shape} (or rows of "
            f"{math.prod(shape)} values)"
        )
    s = head_split(s, limit)
    rows = item_rows(s) if np.ndim(s.part) == 0 else None  # one file's rows; else numbered by place in file order
    files = item_files(cfg, spec)
    x = s.x[:].reshape(-1, *shape)
    check_range(x, spec, Path(path) / "scale-0")
    return Items(
        x, s.y, None if rows is None else np.asarray(rows), classes, None if files is None else files[: len(x)]
    )


def check_range(x: torch.Tensor, spec: str, run: Path) -> None:
    """Refuse items x (N, C, H, W) outside [0, 1], the range of the images the detector takes (a file of uint8
    rows is read as 0..255), or outside the support of the likelihood of its first scale's ``run``."""
    if len(x) and (x.min() < 0 or x.max() > 1):
        lo, hi = float(x.min()), float(x.max())
        raise VaekitError(
            f"{spec}: values in [{lo:.4g}, {hi:.4g}] lie outside [0, 1], where the detector's images lie (rows of "
            "0..255 values are read as they are: divide them by 255)"
        )
    if is_run(run):  # else loading the detector names what is missing
        checked(x, load_json_config(run / files.CONFIG).model.likelihood, spec)


def folder_scores(
    path: str | Path, xs: Sequence[torch.Tensor], seed: int, batch_size: int = 256
) -> list[dict[str, np.ndarray]]:
    """For each of the sets of items ``xs`` (each (N, C, H, W)), {"<method>_scales": the detector's anomaly score
    (-score_samples: the scales' standardised scores summed), "<method>_x<k>": each pooling factor k's}, higher =
    more anomalous, by the method and settings the detector was fitted with (``record``), loaded once, with noise
    seeded by ``seed`` (common to all items, so scoring ``batch_size`` items at a time gives the same scores)."""
    method, fitted = (record(path)[k] for k in ("method", "settings"))
    det = VAEAnomalyDetector.from_run(path, method=method, random_state=seed, **fitted)
    try:
        det.fit(xs[0].flatten(1)[:1].double().numpy())  # loads the folder (its one row's threshold is not used)
        return [set_scores(det, x.flatten(1).double().numpy(), batch_size) for x in xs]
    except ValueError as e:
        raise VaekitError(str(e)) from None


def set_scores(det: VAEAnomalyDetector, rows: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """``folder_scores``'s columns for rows (N, F) from a loaded detector, ``batch_size`` rows at a time."""
    per = np.concatenate([det.scale_scores(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)])
    k, m = det.scales_, det.method
    return {f"{m}_scales": per.sum(1), **{f"{m}_x{k[i]}": per[:, i] for i in range(len(k))}}
