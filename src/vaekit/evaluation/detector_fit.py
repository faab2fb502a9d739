"""How ``VAEAnomalyDetector`` seeds, trains and thresholds: the seed of a fit (``random_state=None``: a fresh one,
drawn once per fit and kept as ``seed_``), its training settings (errors naming its parameters), the rows that
several scales hold out (their images pooled), a table's columns standardised in float64 before the float32 cast the
trainer takes (float32 keeps ~7 digits: a column of 1.7e9 +- 100 would reach it as three values, 128 apart), and
the contamination threshold, which ``vaekit anomaly --contamination`` shares. ``VAEEncoder`` trains, and reads a
wrapped table run's rows, by the same ``training_config``, ``training_items`` (rows as items, float32's range
checked) and ``schema_rows`` (a DataFrame's rows encoded as the run encoded its file: ``table_items``)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ..config import RunConfig, set_value, validate
from ..core.contract import VAEModule
from ..core.likelihoods import check_support
from ..core.tabular import UnitsNormal
from ..data import Dataset
from ..data.lazy import LazyArray
from ..data.table_cells import check_unknown, unknown_categories
from ..data.table_schema import TableSchema
from ..data.user_arrays import encoded_frame, needs_schema, run_columns
from ..errors import SEEDS, VaekitError, is_seed
from ..models.standardized import Standardized, fixed
from ..runs import Run
from ..training import fit_config
from .outputs import prepared_split

Scorer = Callable[[Tensor | LazyArray, Tensor | None], dict[str, np.ndarray]]  # x (N, *shape), y (N,) or None

PARAMS = {  # the setting each training parameter makes: its errors name the parameter
    "model.net": "net",
    "model.likelihood": "likelihood",
    "model.latent_dim": "latent_dim",
    "model.hidden": "hidden",
    "train.epochs": "epochs",
    "train.batch_size": "batch_size",
    "train.lr": "lr",
    "train.beta": "beta",
    "train.seed": "random_state",
    "train.device": "device",
}


def check_seed(random_state: object) -> None:
    """Refuse a ``random_state`` other than None or a whole number in [0, 2**32)."""
    if random_state is not None and not is_seed(random_state):
        raise ValueError(f"random_state must be None or a whole number in [0, 2**32) (a seed), got {random_state!r}")


def seed_of(random_state: int | None) -> int:
    """The seed of one fit: ``random_state`` itself, or for None a fresh one from the system's entropy
    (``secrets``: the numpy, Python and torch RNGs are left as they were)."""
    check_seed(random_state)
    return secrets.randbelow(SEEDS) if random_state is None else int(random_state)


def run_config(out: str, settings: Mapping[str, object]) -> RunConfig:
    """The validated config of a detector's training run into ``out`` ("": in memory), of ``settings`` ({key:
    value}); a bad value is one line naming the detector's parameter ("epochs must be > 0", not "train.epochs")."""
    cfg = RunConfig(out=out)
    cfg.data.spec = ""  # the data came from Python, as vaekit.fit records it: the verbs ask for data
    try:
        for key, value in settings.items():
            set_value(cfg, key, str(value) if isinstance(value, torch.device) else value)  # as load_run takes it
        return validate(cfg)
    except VaekitError as e:
        said = str(e).removeprefix("config: ")
        setting = next((k for k in PARAMS if said.startswith(f"{k} ")), None)
        raise VaekitError(PARAMS[setting] + said.removeprefix(setting) if setting else said, key=e.key) from None


def training_config(est: Any, out: str, seed: int, n: int, standardises: bool) -> RunConfig:
    """The validated config of estimator ``est``'s training run (its net, likelihood, latent_dim, hidden, epochs,
    batch_size, lr, beta, device: the detector's or the encoder's) into ``out`` on n rows, seeded by ``seed``;
    ``standardises``: a table's columns standardised first."""
    hidden = est.hidden.tolist() if isinstance(est.hidden, np.ndarray) else est.hidden  # np.array([16]): [16]
    widths = {"model.hidden": hidden} if est.net == "mlp" else {}  # conv: its default channels
    settings = {
        "model.net": est.net,
        "model.likelihood": est.likelihood,
        "model.latent_dim": est.latent_dim,
        **widths,
        "data.standardize": "true" if standardises else "false",
        "train.epochs": est.epochs,
        "train.batch_size": min(est.batch_size, n),
        "train.lr": est.lr,
        "train.beta": est.beta,
        "train.seed": seed,
        "train.device": est.device,
        "train.progress": False,
        "train.checkpoint_minutes": 0.0,
    }
    return run_config(out, settings)  # "config: train.epochs must be > 0" as "epochs must be > 0"


def scored_by(det: Any) -> tuple[str, dict]:  # Any: the detector (it imports this module)
    """(the method, its settings) that the fitted detector ``det`` scores by: those its fit scored by and set
    ``offset_`` (and several scales' statistics) by, ``method_`` and ``settings_`` (one pickled before them: its
    parameters, as it scored then). One of them changed since (``set_params``) is refused in one line: refit."""
    if getattr(det, "settings_", None) is None:
        return det.method, det._shaping()
    then = {"method": det.method_, **det.settings_}
    changed = [k for k, v in then.items() if not np.array_equal(getattr(det, k), v)]
    if changed:
        now, fitted = (", ".join(f"{k}={d[k]!r}" for k in changed) for d in (vars(det), then))
        raise ValueError(
            f"{now} set since fit, which scored by {fitted} and set offset_ by those scores: refit (fit(X)) to "
            "score by the new value, or set it back"
        )
    return det.method_, dict(det.settings_)


def schema_rows(est: Any, table: TableSchema | None, X: object, reset: bool) -> np.ndarray:
    """X validated as (n_samples, n_features) float64 for estimator ``est``; for a wrapped table run whose items
    only its schema encodes (categorical columns, dates), a DataFrame of its columns, encoded (an unseen category
    as a gap where ``est.unknown`` is "gap"; ``reset``: its columns recorded, as scikit-learn records X's). A
    wrapped table run's frame is first held to its columns as ``vaekit anomaly`` and ``Run.encode`` hold a file's
    or a frame's (``user_arrays.run_columns``): its label column left out and its columns in another order taken
    by name, each said in one note; any other column refused in one line naming it, not dropped unseen."""
    try:
        X = run_columns(X, table, "X")  # no table (a detector trained on X): scikit-learn's checks of its names
    except VaekitError as e:  # scikit-learn's error for bad X
        raise ValueError(str(e)) from None
    if table is None or not needs_schema(table):
        return validate_data(est, X, dtype=np.float64, reset=reset)
    gap = getattr(est, "unknown", "refuse") == "gap"  # an estimator without it, or pickled before it: refuse
    with unknown_categories("gap") if gap else nullcontext():
        items = table_items(table, X)
    if reset:
        est.n_features_in_, est.feature_names_in_ = len(table.columns), np.array(table_names(table), dtype=object)
    return items


def unknown_use(unknown: object, run: object) -> None:
    """Refuse an ``unknown`` that is no choice of ``table_cells.UNKNOWN``, or "gap" for a detector that trains on
    numbers (no ``run``): no category it could meet."""
    if check_unknown(unknown) != "refuse" and run is None:
        raise ValueError(f"unknown={unknown!r} takes effect on a wrapped table run (run=...) alone")


def holdout_size(n: int, scales: tuple, holdout: float) -> int:
    """How many of n training rows several ``scales`` hold out (0 for one scale): the ``holdout`` share, at least
    2 (a standard deviation of each scale's scores) and leaving at least 2 to train on; fewer than 4 rows are
    refused in one line."""
    if len(scales) == 1:
        return 0
    if n < 4:
        raise ValueError(
            f"X: scales {tuple(scales)} need at least 4 rows (2 held out for the standard deviation of each scale's "
            f"score, 2 to train on), got {n}"
        )
    return min(n - 2, max(2, round(holdout * n)))


def pool(x: Tensor, k: int) -> Tensor:
    """(N, C, H, W) images averaged over k x k blocks, (N, C, H / k, W / k); k = 1 returns x (any shape)."""
    return x if k == 1 else torch.nn.functional.avg_pool2d(x, k)


def check_contamination(c: object) -> float:
    """``c`` as the share of rows called outliers, in (0, 0.5]; anything else (scikit-learn's 'auto' too) is one
    line."""
    if isinstance(c, (bool, str)) or not isinstance(c, (int, float, np.number)) or not 0 < c <= 0.5:
        raise VaekitError(f"contamination must be in (0, 0.5], got {c!r}", key="contamination")
    return float(c)


def threshold(scores: np.ndarray, contamination: float) -> float:
    """PyOD's ``threshold_``: the (1 - contamination) quantile of anomaly scores (N,) (higher = more anomalous)
    of training rows; a row scoring above it is an outlier."""
    return float(np.percentile(scores, 100 * (1 - check_contamination(contamination))))


def training_threshold(run: Run, contamination: float, score: Scorer) -> tuple[float, int]:
    """(``threshold`` of the anomaly scores of a run's training split, the first that ``score`` gives of its items
    x (N, *shape) and labels y (N,) or None, as {name: (N,) scores}; the split's size)."""
    if not run.config.data.spec:
        raise VaekitError(
            "contamination sets its threshold on the run's training split, and this run trained on data passed in "
            "memory: threshold it in Python, VAEAnomalyDetector.from_run(RUN, contamination=...).fit(X_train)",
            key="contamination",
        )
    train, _ = prepared_split(run, None, "train")
    return threshold(next(iter(score(train.x, train.y).values())), contamination), len(train)


def standardised(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """Rows x (N, F) float64 -> (x - loc) / scale in float64, as ``Standardized.inside`` computes it in float64
    (a constant column, scale 0, only shifted)."""
    loc64, scale64 = loc.double(), scale.double()
    return (x - loc64) / torch.where(scale64 > 0, scale64, 1.0)


def trained(cfg: RunConfig, data: Dataset, overwrite: bool, units: tuple[Tensor, Tensor] | None) -> VAEModule:
    """The VAE ``cfg`` describes, trained on ``data`` by vaekit's trainer (into ``cfg.out`` when set). With
    ``units`` ((F,) loc and scale), data's rows are standardised by them already: the model trains on them as
    they are and comes back, and is saved, as ``Standardized(model, loc, scale)``, which takes rows in the
    table's units."""
    if units is None:
        return fit_config(cfg, overwrite=overwrite, data=data).model
    wrap = partial(Prestandardized, loc=units[0], scale=units[1])  # a Standardized: data.standardize leaves it
    model = cast(Prestandardized, fit_config(cfg, overwrite=overwrite, data=data, wrap=wrap).model)
    return Standardized(model.model, model.loc, model.scale)  # the same weights, taking rows in the table's units


class Prestandardized(Standardized):
    """``Standardized`` as the trainer sees it when the rows come standardised already: ``inside`` leaves them
    as they are, and p(x|z) is the inner model's on them, its log-density counting the change of units (minus
    log scale per value, a constant column answered with the scale ``fixed`` gives it) as ``Standardized`` counts
    it in the table's units, so losses read in those units. Its state (loc, scale, the inner weights) is a
    Standardized's."""

    def inside(self, x: Tensor) -> Tensor:
        """Standardised rows (B, F), as they are."""
        return x

    def outside(self, px: Distribution) -> Distribution:
        """The inner p(x'|z), event (F,), as a density of the table's units on standardised values x'."""
        base = px.base_dist if isinstance(px, Independent) else px
        if not isinstance(base, Normal):
            raise VaekitError("standardised columns need the gaussian likelihood")
        const = self.scale == 0  # a constant column: at its value, with the scale Standardized.units answers it
        loc, scale = torch.where(const, 0.0, base.loc), torch.where(const, fixed(self.loc, self.scale), base.scale)
        units = torch.where(const, 1.0, self.scale).log()
        return Independent(UnitsAt(loc, scale, units), len(self.loc.shape), validate_args=False)


class UnitsAt(UnitsNormal):
    """A Normal on standardised values whose log-density is that of the table's units: minus ``log_units``
    (log scale, broadcast to the values) per value."""

    def __init__(self, loc: Tensor, scale: Tensor, log_units: Tensor):
        super().__init__(loc, scale, validate_args=False)
        self.log_units = log_units

    def log_prob(self, value: Tensor) -> Tensor:
        """value (*batch, F) -> its elementwise log-density in the table's units, the same shape."""
        return super().log_prob(value) - self.log_units


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
    shape = tuple(int(k) for k in image_shape) if image_shape is not None else (X.shape[1],)  # np.int64s as ints
    if math.prod(shape) != X.shape[1]:
        raise ValueError(f"image_shape {shape} does not hold the {X.shape[1]} features of X")
    check_float32(X)
    x64 = torch.tensor(np.ascontiguousarray(X), dtype=torch.float64).view(-1, *shape)  # torch takes no negative strides
    check_support(likelihood, x64, "X")
    return x64


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
