"""``VAEEncoder``: a scikit-learn transformer that trains a VAE (or wraps a trained run) and gives each row of X its
posterior mean, the counterpart of ``VAEAnomalyDetector`` for embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ..core.contract import VAEModule
from ..core.reading import mean_of
from ..data import Dataset, Split
from ..data.table_schema import TableSchema
from ..errors import VaekitError
from ..models.standardized import column_stats
from ..run_chunks import encoded
from ..runs import Run
from ..training.rng import keeps_rng
from .detector import MLP_HIDDEN
from .detector_fit import schema_rows, seed_of, standardised, trained, training_config, training_items
from .detector_run import check_image_shape, check_skeleton, prepared, refuse_training, run_label, shared_clone, wrapped


class VAEEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embeds rows of X as the posterior means E[z|x] of a VAE: ``transform`` gives (n_samples, latent) float64.

    X is 2-D (n_samples, n_features): a table (its columns standardised inside the model under the Gaussian
    likelihood, so no ``StandardScaler`` is needed before it) or flattened images when ``image_shape`` (C, H, W)
    is given (values in the likelihood's support: [0, 1] for bernoulli). Training runs vaekit's trainer in memory
    with the parameters ``VAEAnomalyDetector`` takes (``hidden``: ``net="mlp"``'s widths), seeded by
    ``random_state`` (None: a fresh seed per fit, kept in ``seed_``); the caller's RNGs are kept.
    ``run`` (or ``from_run(path)``) wraps a trained run folder instead, or a ``Run`` (``vaekit.load_run``'s or
    ``vaekit.fit``'s: its model is copied, never changed): ``fit`` loads it, refusing a training parameter changed
    from its default; ``model`` is a skeleton for a folder whose model classes are the user's own, as
    ``load_run(path, model=...)`` takes one (a copy is loaded). Clones share the ``run`` and ``model`` objects. A
    table run with categorical columns or dates takes a DataFrame of its columns. Rows are encoded on the CPU in
    float64, ``run_chunks.ENCODE_BATCH`` at a time, as given (a run trained on binarised images is not binarised
    here: ``Run.encode`` reads them so too). Output features are named as scikit-learn names them: vaeencoder0,
    vaeencoder1, ...
    """

    def __init__(
        self,
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
        run: str | Run | None = None,
        model: nn.Module | None = None,
        random_state: int | None = 0,
        device: str = "cpu",
    ):
        self.latent_dim, self.hidden, self.likelihood, self.net = latent_dim, hidden, likelihood, net
        self.image_shape, self.epochs, self.batch_size, self.lr, self.beta = image_shape, epochs, batch_size, lr, beta
        self.run, self.model, self.random_state, self.device = run, model, random_state, device

    def __setstate__(self, state: dict) -> None:
        """An encoder pickled before ``model`` takes none."""
        super().__setstate__({"model": None, **state})

    def __sklearn_clone__(self) -> VAEEncoder:
        """A clone sharing ``run`` and ``model`` (``detector_run.shared_clone``), its other parameters copied."""
        return shared_clone(self)

    @classmethod
    def from_run(cls, path: str | Path | Run, **params) -> VAEEncoder:
        """An encoder embedding by the trained run in ``path`` (or the ``Run`` itself; ``fit`` loads it); ``params``
        that train a model are refused there if changed, and ``model=`` is a skeleton for a folder of the user's
        own model classes."""
        return cls(run=path if isinstance(path, Run) else str(path), **params)

    @keeps_rng
    def fit(self, X, y=None) -> VAEEncoder:
        """Train a VAE on X (n_samples, n_features), or load ``run``; ``y`` is ignored."""
        check_image_shape(self.image_shape)
        check_skeleton(self.model, self.run)
        self.seed_ = seed_of(self.random_state)
        if self.run is not None:
            self._load(self.run)
            X = self._rows(X, reset=True)
        else:
            X = validate_data(self, X, dtype=np.float64)
            x64 = training_items(self.image_shape, X, self.likelihood)  # (N, *shape), refused in one line
            self.input_shape_, self.likelihood_ = tuple(x64.shape[1:]), self.likelihood
            self.table_: TableSchema | None = None  # a wrapped run's schema
            self.model_ = self._train(x64)
        if int(np.prod(self.input_shape_)) != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the run's items have shape {self.input_shape_}")
        self.latent_dim_ = self._means(X[:1]).shape[1]  # the width of E[z|x], as the model gives it
        return self

    def _load(self, path: str | Run) -> None:
        """Set the fitted state from the run ``path`` (a folder or a Run: ``detector_run.wrapped``), refusing a
        changed training parameter, an ``image_shape`` other than the run's items' and a conditional run (it needs
        labels to encode)."""
        refuse_training(self, path)
        run, model = wrapped(path, self.model)
        if model.needs_labels:
            raise ValueError(f"{run_label(path)}: the encoder embeds rows without labels; this run is conditional")
        self.input_shape_, self.table_ = tuple(run.config.model.input_shape), run.table
        self.likelihood_ = run.config.model.likelihood
        if self.image_shape is not None and tuple(self.image_shape) != self.input_shape_:
            raise ValueError(f"image_shape {tuple(self.image_shape)}: the wrapped run's items are {self.input_shape_}")
        self.model_ = model

    def _train(self, x64: torch.Tensor) -> VAEModule:
        """A VAE trained on items x64 (N, *shape) float64, a table's columns standardised first (as the detector
        trains), its best epoch picked on up to 1,000 of them; float64, on the CPU."""
        standardises = self.image_shape is None and self.likelihood == "gaussian"
        cols = column_stats(x64) if standardises else None  # (F,) loc, scale of the float64 rows
        x = (x64 if cols is None else standardised(x64, *cols)).float()  # the trainer's float32
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed_))
        shape = tuple(x.shape[1:])
        kind = "image" if len(shape) == 3 else "table"
        data = Dataset("X", Split(x, None), Split(x[perm[:1000]], None), Split(x[:0], None), shape, kind, None)
        cfg = training_config(self, "", self.seed_, len(x), standardises)
        return trained(cfg, data, False, cols).cpu().double().eval()

    def _rows(self, X, reset: bool) -> np.ndarray:
        """X validated as rows, or a wrapped table run's DataFrame encoded (``detector_fit.schema_rows``)."""
        return schema_rows(self, self.table_, X, reset)

    def _means(self, X: np.ndarray) -> np.ndarray:
        """(N, D) float64 posterior means of validated rows X (N, F), checked against the likelihood's support
        and encoded in batches."""
        x = torch.tensor(np.ascontiguousarray(X), dtype=torch.float64).view(-1, *self.input_shape_)
        try:
            with torch.no_grad():
                z = mean_of(encoded(self.model_, prepared(x, self.likelihood_, None), None))
        except VaekitError as e:  # scikit-learn's error for bad X
            raise ValueError(str(e)) from None
        return z.reshape(len(x), -1).numpy()  # float64: the model is in float64

    def transform(self, X) -> np.ndarray:
        """(n_samples, latent_dim_) float64 posterior means of the rows of X."""
        check_is_fitted(self, "model_")
        return self._means(self._rows(X, reset=False))

    @property
    def _n_features_out(self) -> int:
        """The embedding's width, which ``get_feature_names_out`` names vaeencoder0..."""
        return self.latent_dim_
