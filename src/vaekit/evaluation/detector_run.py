"""What ``VAEAnomalyDetector`` needs of a trained run (``run=``, ``from_run``) and of the rows it scores: the
run's model and how its items were prepared in training (binarised once and seeded, as ``vaekit anomaly``
draws them), a table run's schema, which encodes a DataFrame's rows as the run encoded its file, the parameters
it refuses (those that train a model), the rows' checks (the likelihood's support, float32's range for training)
and those of ``image_shape``, ``scales`` and ``out``, and a multi-scale detector's folder: a run per scale
(scale-<i>) and scales.json, written and read."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from .. import files
from ..core.likelihoods import check_support
from ..data.lazy import binarized_once
from ..data.table_schema import TableSchema
from ..data.user_arrays import encoded_frame, needs_schema
from ..errors import VaekitError, is_whole
from ..io import atomic_write_json, read_json
from ..models.standardized import Standardized
from ..runs import Run
from ..training.folder import is_run
from .score_checks import check_model
from .score_names import SETTINGS

BINARISED = ("dynamic", "fixed")  # data.binarize settings that draw a run's evaluated items once, seeded
SCALES = files.SCALES  # in a multi-scale detector's out: what scoring needs beside its scale-<i> runs
# the detector's parameters that only train a model (a wrapped run's is trained already), or write it
TRAINING = ("latent_dim", "hidden", "likelihood", "net", "epochs", "batch_size", "lr", "beta", "holdout", "device",
            "out", "overwrite")  # fmt: skip
SCALES_KEYS = ("factors", "image_shape", "method", "settings", "score_loc", "score_scale")


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


def loaded_detector(path: str, method: str, shaping: dict) -> dict[str, object]:
    """The fitted attributes of a detector wrapping the folder ``path``: one run (``loaded``, ``scales_`` (1,)),
    or a multi-scale detector's (scales.json and a run per scale), which adds ``scales_``, the full image shape
    and the per-scale score statistics (``score_loc_``, ``score_scale_``: (S,))."""
    folder, file = Path(path), Path(path) / SCALES
    if not file.exists():
        if not is_run(folder) and (folder / "scale-0").is_dir():
            raise ValueError(f"{file}: missing beside the scale-<i> runs (a fit that did not finish): fit again")
        return {**loaded(path, method), "scales_": (1,)}
    record = read_scales(file)
    factors, shape = tuple(record["factors"]), tuple(record["image_shape"])
    if (record["method"], record["settings"]) != (method, shaping):
        said = ", ".join(f"{k}={v!r}" for k, v in {"method": record["method"], **record["settings"]}.items())
        raise ValueError(
            f"{file}: its score statistics are of scores by {said}; this detector's method {method!r} and its "
            f"settings {shaping} differ: pass {said}"
        )
    runs = []
    for i, k in enumerate(factors):
        sub, pooled = folder / f"scale-{i}", (shape[0], shape[1] // k, shape[2] // k)
        if not is_run(sub):
            raise ValueError(f"{sub}: no run folder there, and {file} lists {len(factors)} scales")
        runs.append(loaded(str(sub), method))
        if runs[-1]["input_shape_"] != pooled:
            raise ValueError(f"{sub}: its items have shape {runs[-1]['input_shape_']}; {file} says {pooled}")
    models = [cast(list, r["models_"])[0] for r in runs]
    loc, scale = units(models[0], math.prod(shape))
    return runs[0] | {
        **dict(models_=models, scales_=factors, input_shape_=shape, loc_=loc, scale_=scale),
        **dict(score_loc_=np.array(record["score_loc"]), score_scale_=np.array(record["score_scale"])),
    }


def save_scales(out: str, factors: tuple, shape: tuple, stats: tuple, method: str, shaping: dict) -> None:
    """Write ``out``/scales.json atomically: the pooling ``factors``, the full image ``shape`` (C, H, W), the
    ``method`` and the ``shaping`` settings of the scores that ``stats``, (S,) loc and scale, standardise (floats,
    to full precision)."""
    loc, scale = ([*map(float, v)] for v in stats)
    values = [[int(k) for k in factors], [int(n) for n in shape], method, dict(shaping), loc, scale]
    atomic_write_json(Path(out) / SCALES, dict(zip(SCALES_KEYS, values)))


def read_scales(file: Path) -> dict:
    """scales.json's record, checked: a fault (unreadable, a key missing, wrong lengths) is one ValueError line."""
    try:
        record = read_json(file)
    except OSError as e:
        raise ValueError(f"{file}: cannot be read ({e.strerror or e})") from None
    except VaekitError as e:
        raise ValueError(str(e)) from None
    fault = scales_fault(record)
    if fault:
        raise ValueError(f"{file}: {fault}; it is no multi-scale detector's record as the detector writes it")
    return cast(dict, record)


def scales_fault(record: object) -> str | None:
    """What is wrong with a scales.json record, or None."""
    if not isinstance(record, dict) or not set(SCALES_KEYS) <= record.keys():
        return f"it must hold {', '.join(SCALES_KEYS)}"
    factors, shape = record["factors"], record["image_shape"]
    if not isinstance(factors, list) or len(factors) < 2 or not all(is_whole(k, 1) for k in factors):
        return f"factors must be two or more whole numbers >= 1, got {factors!r}"
    if not isinstance(shape, list) or len(shape) != 3 or not all(is_whole(n, 1) for n in shape):
        return f"image_shape must be (C, H, W), three whole numbers >= 1, got {shape!r}"
    if any(shape[1] % k or shape[2] % k for k in factors):
        return f"factors {factors} must divide the image height and width {shape[1:]}"
    if not isinstance(record["method"], str):
        return f"method must be a score's name, got {record['method']!r}"
    settings = record["settings"]
    if not isinstance(settings, dict) or not all(k in SETTINGS and is_whole(v, 1) for k, v in settings.items()):
        return f"settings must map the score's settings ({', '.join(SETTINGS)}) to whole numbers >= 1, got {settings!r}"
    for key in ("score_loc", "score_scale"):
        v = record[key]
        numbers = isinstance(v, list) and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in v)
        if not numbers or len(v) != len(factors) or not np.isfinite(v).all() or (key == "score_scale" and min(v) <= 0):
            return f"{key} must be {len(factors)} finite numbers (one per factor){', > 0' * (key == 'score_scale')}"
    return None


def check_scales(scales: tuple, image_shape: tuple | None, run: str | None, holdout: float, likelihood: str) -> None:
    """Refuse pooling factors that are not distinct positive integers dividing the images' height and width,
    several with the discretized logistic (a pooled image's means lie off its 256 levels), and a ``holdout``
    outside (0, 0.5] with several. A wrapped ``run``'s folder gives its own (``check_wrapped`` compares them)."""
    if not scales or not all(is_whole(k, 1) for k in scales):  # True is no factor
        raise ValueError(f"scales must be positive integers, got {scales!r}")
    if len({int(k) for k in scales}) < len(scales):
        raise ValueError(f"scales {tuple(scales)}: a factor listed twice would be scored twice: list each once")
    if tuple(scales) == (1,) or run is not None:
        return
    if image_shape is None:
        raise ValueError("scales other than (1,) need images (image_shape) and a detector that trains")
    if likelihood == "discretized_logistic":
        raise ValueError(
            f"scales {tuple(scales)}: images pooled by averaging lie off the 256 levels that the {likelihood} "
            "likelihood models: take another likelihood, or scales (1,)"
        )
    h, w = tuple(image_shape)[-2:]
    if any(h % k or w % k for k in scales):
        raise ValueError(f"scales {tuple(scales)} must divide the image height and width ({h} x {w})")
    if not 0 < holdout <= 0.5:
        raise ValueError(f"holdout must be in (0, 0.5], got {holdout!r}")


def refuse_training(est: Any, run: str) -> None:
    """Refuse, in one line, a parameter of estimator ``est`` (the detector, the encoder) that only trains a model
    (``TRAINING``, those it has) changed from its default where it wraps the trained ``run``."""
    defaults = {k: p.default for k, p in inspect.signature(type(est)).parameters.items()}
    for name in (n for n in TRAINING if n in defaults):
        if not np.array_equal(getattr(est, name), defaults[name]):  # (64, 64) and [64, 64] alike
            raise ValueError(
                f"{name}={getattr(est, name)!r} has no effect on a wrapped run (run={run!r}): its model is trained "
                "already"
            )


def check_wrapped(det: Any, fitted: dict) -> None:  # Any: the detector (it imports this module)
    """Refuse, in one line, a parameter of the detector ``det`` that only trains a model (``TRAINING``) changed
    from its default where ``det`` wraps a run (``fitted``: ``loaded_detector``'s), an ``image_shape`` other
    than the run's items' and ``scales`` other than (1,) (the default: the folder's) or the folder's own."""
    run = det.run
    refuse_training(det, run)
    if det.unknown != "refuse" and not needs_schema(fitted.get("table_")):  # no categories to read as gaps
        raise ValueError(f"unknown={det.unknown!r}: the wrapped run (run={run!r}) has no categorical columns")
    shape, factors, scales = fitted["input_shape_"], fitted["scales_"], tuple(det.scales)
    if det.image_shape is not None and tuple(det.image_shape) != shape:
        raise ValueError(f"image_shape {tuple(det.image_shape)}: the wrapped run's items (run={run!r}) are {shape}")
    if scales not in ((1,), factors):
        raise ValueError(
            f"scales {scales}: the wrapped folder (run={run!r}) gives its own, {factors}: leave scales out"
        )


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


def training_items(image_shape: tuple | None, X: np.ndarray, likelihood: str) -> torch.Tensor:
    """Rows X (N, F) as the items (N, *shape) float64 a VAE trains on (``image_shape``, else (F,)), refused in one
    line where the shape does not hold X's features or X holds values float32 or the likelihood cannot take:
    before ``out`` is touched."""
    shape = tuple(image_shape) if image_shape is not None else (X.shape[1],)
    if math.prod(shape) != X.shape[1]:
        raise ValueError(f"image_shape {shape} does not hold the {X.shape[1]} features of X")
    check_float32(X)
    x64 = torch.tensor(np.ascontiguousarray(X), dtype=torch.float64).view(-1, *shape)  # torch takes no negative strides
    check_support(likelihood, x64, "X")
    return x64


def check_out(out: str | None, scales: int, overwrite: bool) -> None:
    """Refuse an ``out`` (or, with several ``scales``, one of its scale-<i> folders) that holds a run, or a
    multi-scale detector's scales.json, unless ``overwrite``, which removes that file before training: a fit
    that fails leaves none, and a single run trained there is read as itself. With several scales, an ``out``
    that is itself a run is refused even so: its files would stay beside the scale runs."""
    if not out:
        return
    file = Path(out) / SCALES
    if overwrite and scales > 1 and is_run(Path(out)):  # its files would stay beside the scale runs
        raise ValueError(f"out {out}: holds a run, which a multi-scale detector's folder cannot replace: use another")
    if overwrite:
        file.unlink(missing_ok=True)
        return
    for folder in [Path(out)] + [Path(out) / f"scale-{i}" for i in range(scales if scales > 1 else 0)]:
        if is_run(folder):
            raise ValueError(f"out {folder}: already holds a run; pass overwrite=True to replace it")
    if file.exists():
        raise ValueError(f"out {out}: already holds a multi-scale detector ({SCALES}); pass overwrite=True")


def table_names(table: TableSchema) -> list[str]:
    """The feature columns of a table run, in file order."""
    return [c.name for c in table.columns]


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
    try:
        return encoded_frame(X[names], table, "X", "the detector scores").astype(np.float64)  # type: ignore[index]
    except VaekitError as e:  # scikit-learn's error for bad X
        raise ValueError(str(e)) from None


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
