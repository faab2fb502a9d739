"""``VAEAnomalyDetector``: a scikit-learn outlier detector that trains a VAE (or wraps a trained run)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ..config import RunConfig
from ..core.contract import VAEModule
from ..data import Dataset, Split
from ..errors import VaekitError, is_whole
from ..models.standardized import column_stats
from ..runs import Run
from ..training.rng import keeps_rng
from .detector_fit import (
    check_contamination,
    check_seed,
    holdout_size,
    pool,
    schema_rows,
    scored_by,
    seed_of,
    standardised,
    threshold,
    trained,
    training_config,
    training_items,
    unknown_use,
)
from .detector_run import (
    check_image_shape,
    check_out,
    check_scales,
    check_skeleton,
    check_wrapped,
    loaded_detector,
    prepared,
    save_scales,
    shared_clone,
    units,
)
from .score_checks import SCORES, SETTINGS, check_settings, settings_for
from .scores import anomaly_scores, check_llr_k

MLP_HIDDEN = (64, 64)  # the default widths of the MLP (net mlp)


class VAEAnomalyDetector(OutlierMixin, BaseEstimator):
    """Scores rows of X by a VAE: ``score_samples`` is higher for more normal rows.

    X is 2-D (n_samples, n_features): a table (its columns standardised inside the model, Gaussian likelihood by
    default) or flattened images when ``image_shape`` (C, H, W: three whole numbers) is given (values in [0, 1],
    not standardised). The VAE trains in float32 (a value beyond its range, about 3.4e38, is refused); rows are
    scored in float64, and a row whose score is not finite is refused, naming it. ``method`` is one of
    neg_elbo, iwae_nll, recon_error, likelihood_regret, kl, complexity (images only), or llr for a wrapped ``run`` of
    a hierarchical model (``vaekit.evaluation.scores.anomaly_scores`` computes them; the anomaly guide's table
    says what each is); ``samples``, ``iw_samples``, ``steps`` and ``llr_k`` (llr's lowest k latent groups from
    their priors: a whole number >= 1, at most the run's groups) reach the scores they shape, and are ignored
    by the others: a grid over ``method`` may keep them. ``unknown="gap"`` reads a wrapped table run's unseen
    category as a gap of its column, where the run models that column's gaps (default "refuse").
    ``hidden``: ``net="mlp"``'s widths (conv: refused).
    ``scales`` (images only) are average-pooling factors: one VAE per factor, each fitted to the images pooled
    by it (1, 2, 4, 7 on 28 x 28 images: 28, 14, 7 and 4 pixels a side). With several, each scale's score is
    standardised by its mean and standard deviation on a held-out ``holdout`` share of the training rows
    (which pick each model's best epoch and are not fitted), and the anomaly score is the sum. With ``out``, each
    scale's run goes to ``out``/scale-<i> and the factors and statistics to scales.json: ``from_run(out)`` reads them.
    ``run`` names a trained run folder to wrap instead of training, or is a ``Run`` (``vaekit.load_run``'s, or
    ``vaekit.fit``'s, whose model is copied, never changed); ``model`` is a skeleton for a folder whose model
    classes are the user's own, as ``load_run(path, model=...)`` takes one (a copy is loaded). ``fit`` then only
    sets the threshold, refusing a training parameter changed or ``scales`` not the folder's; clones share the
    ``run`` and ``model`` objects. Rows are prepared as ``vaekit anomaly`` prepares
    a file's (binarised once, seeded by the run, row i keyed by its place in X, where the run was binarised; a
    table run with categorical columns or dates takes a DataFrame of its columns). ``contamination`` is the
    fraction of training rows ``predict`` calls outliers (-1), as ``vaekit anomaly --contamination`` labels them.
    Training runs vaekit's trainer (a table's columns standardised in float64 first), into the run folder ``out``
    when given (in memory otherwise), which ``from_run`` and the CLI read back; a folder holding a run is refused
    unless ``overwrite`` (so ``out`` is not for searches: every fit of a GridSearchCV would write the one folder).

    The conventions are scikit-learn's (those of ``IsolationForest``), not PyOD's: ``score_samples`` and
    ``decision_function`` are higher for more normal rows (PyOD's ``decision_function`` is higher for anomalies:
    ``-score_samples(X)``), ``predict`` and ``fit_predict`` give +1 (inlier) / -1 (outlier), not 1 / 0, and
    there is no ``decision_scores_``, ``threshold_`` (``-offset_``), ``labels_`` or ``predict_proba`` (the guide's
    "Coming from PyOD" gives each one's counterpart). ``random_state`` is a seed in [0, 2**32) or None, a fresh one
    per fit (scikit-learn's None), kept in ``seed_``: one seed gives the same scores, bit for bit on the CPU.
    Fitting keeps the caller's torch, numpy and Python RNGs.
    """

    def __init__(
        self,
        method: str = "neg_elbo",
        *,
        latent_dim: int = 8,
        hidden: tuple[int, ...] = MLP_HIDDEN,
        likelihood: str = "gaussian",
        net: str = "mlp",
        image_shape: tuple[int, ...] | None = None,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 1e-3,
        beta: float = 1.0,
        samples: int = 8,
        iw_samples: int = 64,
        steps: int = 30,
        llr_k: int = 1,
        unknown: str = "refuse",
        contamination: float = 0.1,
        scales: tuple[int, ...] = (1,),
        holdout: float = 0.1,
        run: str | Run | None = None,
        model: nn.Module | None = None,
        out: str | None = None,
        overwrite: bool = False,
        random_state: int | None = 0,
        device: str = "cpu",
    ):
        self.method, self.latent_dim, self.hidden, self.likelihood = method, latent_dim, hidden, likelihood
        self.net, self.image_shape, self.epochs, self.batch_size = net, image_shape, epochs, batch_size
        self.lr, self.beta, self.samples, self.iw_samples, self.steps = lr, beta, samples, iw_samples, steps
        self.llr_k, self.unknown = llr_k, unknown
        self.contamination, self.scales, self.holdout = contamination, scales, holdout
        self.run, self.model, self.out, self.overwrite = run, model, out, overwrite
        self.random_state, self.device = random_state, device

    def __setstate__(self, state: dict) -> None:
        """A detector pickled before ``scales_`` was fitted scores by its ``scales``, as it did then."""
        if "models_" in state and "scales_" not in state:
            state = {**state, "scales_": tuple(int(k) for k in state.get("scales", (1,)))}
        super().__setstate__({"model": None, **state})  # one pickled before ``model``: none

    def __sklearn_clone__(self) -> VAEAnomalyDetector:
        """A clone sharing ``run`` and ``model`` (``detector_run.shared_clone``), its other parameters copied."""
        return shared_clone(self)

    @classmethod
    def from_run(cls, path: str | Path | Run, **params) -> VAEAnomalyDetector:
        """A detector scoring with the trained run in ``path`` (or the ``Run`` itself), or the runs of a
        multi-scale detector's ``out`` (``fit(X)`` then sets only the threshold); ``params`` that train a model are
        refused there if changed, and ``model=`` is a skeleton for a folder of the user's own model classes."""
        return cls(run=path if isinstance(path, Run) else str(path), **params)

    @keeps_rng
    def fit(self, X, y=None) -> VAEAnomalyDetector:
        """Train on X (n_samples, n_features) (or load ``run``) and set ``offset_`` from ``contamination``, of scores
        by ``method`` and its settings, kept as ``method_`` and ``settings_``: the scoring methods score by them."""
        self._check_method()
        unknown_use(self.unknown, self.run)
        check_contamination(self.contamination)  # scikit-learn's "auto" sets a threshold of its own: refused
        check_scales(tuple(self.scales), self.image_shape, self.run, self.holdout, self.likelihood)
        self.seed_ = seed_of(self.random_state)  # None: a fresh seed, drawn once for the fit and its scores
        self.method_, self.settings_ = self.method, self._shaping()  # what scores, until a refit: ``scored_by``
        if self.run is not None:
            fitted = loaded_detector(self.run, self.model, self.method, self._shaping())
            if self.method == "llr" and (groups := len(fitted["models_"][0].latent_dims)) > 1:  # type: ignore[index]
                check_llr_k(self.llr_k, groups)  # one of 1 group: the scores say llr does not apply
            check_wrapped(self, fitted)  # parameters that train a model, an image_shape or scales not the run's
            self.__dict__.update(fitted)
            X = self._rows(X, reset=True)
            if math.prod(self.input_shape_) != X.shape[1]:
                raise ValueError(f"X has {X.shape[1]} features, the run's items have shape {self.input_shape_}")
        else:
            X = validate_data(self, X, dtype=np.float64)
            self._config("", self.seed_, len(X))  # the training settings, refused before anything trains
            n_val = holdout_size(len(X), tuple(self.scales), self.holdout)  # several scales' held-out rows
            x64 = training_items(self.image_shape, X, self.likelihood)
            check_out(self.out, len(self.scales), self.overwrite)  # a fit refused before leaves out as it was
            self._train(X, n_val, x64)
        self.offset_ = -threshold(self._scale_scores(X).sum(0), self.contamination)  # score_samples: minus their sum
        return self

    def _check_method(self) -> None:
        """Refuse, before any training, a method the model cannot score with, a bad setting of its score,
        ``random_state``, ``image_shape`` or ``overwrite``, and ``hidden`` for a conv net."""
        if self.method not in SCORES:
            raise ValueError(f"method must be one of {', '.join(SCORES)}, got {self.method!r}")
        shaping = self._shaping()
        check_settings([self.method], **{**{k: s.default for k, s in SETTINGS.items()}, **shaping}, batch_size=1)
        check_seed(self.random_state)
        if self.method != "llr" and not is_whole(self.llr_k, 1):  # llr's: below the run's groups, once loaded (fit)
            raise ValueError(f"llr_k must be in 1..L-1 (below the model's L latent groups), got {self.llr_k!r}")
        check_image_shape(self.image_shape)
        check_skeleton(self.model, self.run)
        if not isinstance(self.overwrite, (bool, np.bool_)):
            raise ValueError(f"overwrite must be True or False, got {self.overwrite!r}")
        if self.net == "conv" and not np.array_equal(self.hidden, MLP_HIDDEN):  # (64, 64), [64, 64], an array
            raise ValueError(f"hidden sets the widths of net='mlp'; net='conv' has its own, got hidden={self.hidden!r}")
        if self.run is not None:
            return  # the run's model is checked once loaded
        if self.method == "llr":
            raise ValueError(
                "method llr needs a hierarchical model (family deep or ladder); the detector trains a flat VAE: "
                "wrap a trained run instead (run=...)"
            )
        if self.method == "complexity" and self.image_shape is None:
            raise ValueError(f"method complexity needs images: image_shape (C, H, W), got {self.image_shape!r}")

    def _train(self, X: np.ndarray, n_val: int, x64: torch.Tensor) -> None:
        """Fit a VAE per scale to rows X (N, F), as items x64 (N, *shape), ``n_val`` of them held out with several."""
        shape = tuple(x64.shape[1:])
        self.input_shape_, self.likelihood_, self.binarize_seed_, self.table_ = shape, self.likelihood, None, None
        self.scales_ = tuple(int(k) for k in self.scales)  # the factors scored by, as a wrapped folder gives them
        cols = column_stats(x64) if self._standardises() else None  # of the float64 rows, as fit's: (F,) loc, scale
        x, seed = (x64 if cols is None else standardised(x64, *cols)).float(), self.seed_  # the trainer's float32
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        # one scale: all rows train, and a sample of up to 1,000 of them picks the best epoch
        x_fit, x_val = (x[perm[n_val:]], x[perm[:n_val]]) if n_val else (x, x[perm[:1000]])
        self.models_ = [
            self._fit_model(pool(x_fit, k), pool(x_val, k), seed, i, cols) for i, k in enumerate(self.scales)
        ]
        self.loc_, self.scale_ = units(self.models_[0], X.shape[1])  # a table's, standardised inside the model
        if len(self.scales) > 1:
            raw = self._raw_scores(x64[perm[:n_val]])  # (S, n_val)
            std = raw.std(1)
            self.score_loc_, self.score_scale_ = raw.mean(1), np.where(std > 1e-12, std, 1.0)
            if self.out:  # written last: a fit that fails before leaves no scales.json
                stats = (self.score_loc_, self.score_scale_)
                save_scales(self.out, self.scales_, shape, stats, self.method, self._shaping())

    def _shaping(self) -> dict:
        """The settings that shape ``method``'s score (samples, iw_samples, steps, llr_k: those it reads), numpy's
        whole numbers as ints (as scales.json writes them)."""
        values = dict(samples=self.samples, iw_samples=self.iw_samples, steps=self.steps, llr_k=self.llr_k)
        return {k: int(v) if is_whole(v) else v for k, v in settings_for(self.method, **values).items()}

    def _standardises(self) -> bool:
        """Whether the VAE takes standardised columns: a table under the Gaussian likelihood."""
        return self.image_shape is None and self.likelihood == "gaussian"

    def _fit_model(self, x: torch.Tensor, x_val: torch.Tensor, seed: int, i: int, cols: tuple | None) -> VAEModule:
        """A VAE trained on x (N, *shape) by the trainer, its best epoch picked on x_val; with ``out`` its run
        folder is kept there (one per scale: scale-<i>). ``cols``: x holds a table's rows standardised by these
        (F,) loc and scale, by which the model (``Standardized``) takes rows in the table's units."""
        shape = tuple(x.shape[1:])
        out = self.out if len(self.scales) == 1 else self.out and str(Path(self.out) / f"scale-{i}")
        kind = "image" if len(shape) == 3 else "table"
        data = Dataset("X", Split(x, None), Split(x_val, None), Split(x[:0], None), shape, kind, None)
        model = trained(self._config(out or "", seed, len(x)), data, bool(self.overwrite), cols)
        return model.double().eval()

    def _config(self, out: str, seed: int, n: int) -> RunConfig:
        """The validated config of a training run into ``out`` on n rows, seeded by ``seed``."""
        return training_config(self, out, seed, n, self._standardises())

    def _rows(self, X, reset: bool) -> np.ndarray:
        """X validated as rows, or a wrapped table run's DataFrame encoded (``detector_fit.schema_rows``)."""
        return schema_rows(self, getattr(self, "table_", None), X, reset)

    def score_samples(self, X) -> np.ndarray:
        """(n_samples,) normality: minus the anomaly score, so higher = more normal."""
        check_is_fitted(self, "models_")
        return -self._scale_scores(self._rows(X, reset=False)).sum(0)

    def scale_scores(self, X) -> np.ndarray:
        """(n_samples, S) anomaly score at each of the S ``scales`` (higher = more anomalous), standardised when
        S > 1: a row's sum is minus its ``score_samples``, so any subset of the scales can be weighed apart."""
        check_is_fitted(self, "models_")
        return self._scale_scores(self._rows(X, reset=False)).T

    def _scale_scores(self, X: np.ndarray) -> np.ndarray:
        """(S, n_samples) anomaly scores of validated rows X (n_samples, n_features) per scale, scored in float64
        (standardised when S > 1); a row whose score is not finite is refused."""
        x = torch.tensor(np.ascontiguousarray(X), dtype=torch.float64).view(-1, *self.input_shape_)  # X[::-1] too
        raw = self._raw_scores(prepared(x, self.likelihood_, self.binarize_seed_))  # (S, n_samples)
        if len(self.models_) > 1:
            raw = (raw - self.score_loc_[:, None]) / self.score_scale_[:, None]
        bad = np.flatnonzero(~np.isfinite(raw).all(0))
        if len(bad):
            raise ValueError(
                f"X: {len(bad)} row(s) score as no finite number (row {bad[0]} first): their values lie too far "
                "from the training rows for the model's float64 arithmetic; drop or rescale them"
            )
        return raw

    def _raw_scores(self, x: torch.Tensor) -> np.ndarray:
        """(S, N) anomaly scores of x (N, *input_shape_) at each of the S scales, by the method and settings that
        fit scored by (``method_``, ``settings_``; one changed since is refused: ``scored_by``)."""
        seed, (m, shaping) = self.seed_, scored_by(self)
        try:
            return np.stack(
                [
                    anomaly_scores(mod, pool(x, k), [m], seed=seed, **shaping)[m]
                    for k, mod in zip(self.scales_, self.models_)
                ]
            )
        except VaekitError as e:
            raise ValueError(str(e)) from None

    def decision_function(self, X) -> np.ndarray:
        """(n_samples,) score_samples minus ``offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """(n_samples,) +1 for inliers, -1 for outliers (decision_function < 0)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
