"""What ``VAEAnomalyDetector`` and ``VAEEncoder`` need of a trained run (``run=``, ``from_run``: a folder, loaded
into a copy of a ``model=`` skeleton where given, or a ``Run``, its model copied; clones share both) and of the
rows they score: the run's model and how its items were prepared in training (binarised once and seeded, as
``vaekit anomaly`` draws them), its table schema, the parameters it refuses (those that train a model), the rows'
checks (the likelihood's support) and those of ``image_shape``, ``scales`` and ``out``, and a multi-scale
detector's folder: a run per scale (scale-<i>) and scales.json, written and read."""

from __future__ import annotations

import copy
import inspect
import math
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor, nn

from .. import files
from ..core.contract import VAEModule
from ..core.likelihoods import check_support
from ..data.lazy import binarized_once
from ..data.user_arrays import needs_schema
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
SHARED = ("run", "model")  # the estimators' parameters that clones share (``shared_clone``)
SCALES_KEYS = ("factors", "image_shape", "method", "settings", "score_loc", "score_scale")


def wrapped(run: object, skeleton: nn.Module | None) -> tuple[Run, VAEModule]:
    """(the run an estimator wraps, its model as the estimator scores with it: float64, on the CPU, in eval mode).
    ``run`` is a run folder's path, loaded into a copy of ``skeleton`` where given (a model of the run's
    architecture, for classes the folder cannot rebuild: the estimator's parameter is left as it was), or a loaded
    ``Run``, whose model is copied (the caller's Run keeps its device, dtype and mode)."""
    if isinstance(run, Run):
        if skeleton is not None:
            raise ValueError("model= takes a run folder's model; the Run given holds its own: leave model out")
        return run, copy.deepcopy(run.model).cpu().double().eval()
    if not isinstance(run, (str, os.PathLike)):
        raise ValueError(f"run must be a run folder's path or a vaekit Run, got a {type(run).__name__}")
    found = Run.load(Path(run), model=None if skeleton is None else copy.deepcopy(skeleton))
    return found, found.model.cpu().double().eval()


def shared_clone(est: Any) -> Any:
    """``sklearn.base.clone(est)`` (its ``__sklearn_clone__``) sharing ``run`` and ``model`` with ``est``, not
    deep-copying them: a Run's weights, which fit copies before it casts them, and a skeleton, which it loads a
    copy of (the default deep copy would copy a Run's model for every clone a search makes)."""
    bare = object.__new__(type(est))
    bare.__dict__.update({**est.__dict__, **dict.fromkeys(SHARED)})
    new = BaseEstimator.__sklearn_clone__(bare)
    new.__dict__.update({k: getattr(est, k, None) for k in SHARED})
    return new


def run_label(run: object) -> str:
    """A wrapped ``run`` as messages name it: its folder, or the Run given when it has none."""
    return "the Run given" if isinstance(run, Run) and run.path is None else str(getattr(run, "path", run))


def check_skeleton(model: object, run: object) -> None:
    """Refuse a skeleton ``model`` where there is no ``run`` to load into it (the estimator trains its own)."""
    if model is not None and run is None:
        raise ValueError("model= takes a trained run's model (run=...); without a run the estimator builds its own")


def loaded(path: str | Run, skeleton: nn.Module | None, method: str) -> dict[str, object]:
    """The fitted attributes of a detector wrapping the run ``path`` (a folder or a ``Run``: ``wrapped``) to score
    by ``method``: its model in float64 (``models_``), item shape, units (``loc_``, ``scale_``: a standardised
    table's columns, else 0 and 1), likelihood, the seed of its binarisation (None: items scored as given) and
    its table schema (or None)."""
    run, model = wrapped(path, skeleton)
    if model.needs_labels:
        raise ValueError(f"{run_label(path)}: the detector scores rows without labels; this run is conditional")
    shape = tuple(run.config.model.input_shape)
    if method == "complexity" and len(shape) != 3:
        raise ValueError(f"method complexity needs images (C, H, W); the run's items have shape {shape}")
    try:
        check_model(model, [method], None)
    except VaekitError as e:
        raise ValueError(str(e)) from None
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


def loaded_detector(path: str | Run, skeleton: nn.Module | None, method: str, shaping: dict) -> dict[str, object]:
    """The fitted attributes of a detector wrapping ``path``: one run (a ``Run`` or its folder: ``loaded``,
    ``scales_`` (1,)), or a multi-scale detector's folder (scales.json and a run per scale, of vaekit's networks:
    no ``skeleton``), which adds ``scales_``, the full image shape and the per-scale score statistics
    (``score_loc_``, ``score_scale_``: (S,))."""
    folder = Path(path) if isinstance(path, (str, os.PathLike)) else None
    if folder is None or not (file := folder / SCALES).exists():
        if folder is not None and not is_run(folder) and (folder / "scale-0").is_dir():
            raise ValueError(f"{file}: missing beside the scale-<i> runs (a fit that did not finish): fit again")
        return {**loaded(path, skeleton, method), "scales_": (1,)}
    if skeleton is not None:
        raise ValueError(f"{folder}: a multi-scale detector's runs are of vaekit's own networks: leave model out")
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
        runs.append(loaded(str(sub), None, method))
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


def check_scales(scales: tuple, image_shape: tuple | None, run: object, holdout: float, likelihood: str) -> None:
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


def refuse_training(est: Any, run: object) -> None:
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
    """Refuse an ``image_shape`` other than None or (C, H, W), three whole numbers >= 1 (a tuple, a list, an array)."""
    if shape is None:
        return
    three = isinstance(shape, (tuple, list)) or (isinstance(shape, np.ndarray) and shape.ndim == 1)
    if not three or len(shape) != 3 or not all(is_whole(k, 1) for k in shape):
        raise ValueError(f"image_shape must be (C, H, W), three whole numbers >= 1, got {shape!r}")


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
