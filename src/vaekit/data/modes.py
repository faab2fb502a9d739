"""TVAE's mode-specific normalisation of numeric table columns (Xu et al. 2019, CTGAN/TVAE).

Per numeric column, a variational Gaussian mixture (scikit-learn's ``BayesianGaussianMixture``: up to 10
components, a Dirichlet-process weight prior of 1e-3, seeded) is fitted on the training split's values, gaps left
out (filled under missing=mean, they would make a mode of their fill; they are coded at the heaviest mode's
centre); the modes of weight > 0.005 are kept. A column of one value there (a row or many) gets that value as
its one mode, of scale 1e-3 (the mixture's covariance floor, which it gives a constant column), without the
mixture, which needs two rows. A value v becomes its mode k, one-hot, and alpha = (v - mu_k) / (4 sigma_k),
clipped to [-0.99, 0.99], then divided by s, the standard deviation of the training values' alphas
(``alpha_scale``): the model sees alphas of unit spread, as its other inputs are (TVAE's fixed 0.1 scale does the
same), not a spread of 0.01-0.2 that a Gaussian p(x|z) starting at scale 1 would swamp. Decoding maps a code a
back through the chosen mode: v = 4 sigma_k clip(s a, -1, 1) + mu_k. A table.json written before s was kept
decodes with s = 1, as it was coded. The paper draws k from the posterior
over modes; here k is its argmax, with the posterior p(k|v) ~ w_k N(v; mu_k, sigma_k) of the kept modes (the
fitted weights, means and scales, saved in table.json), so an item's code is deterministic and other data is
coded as the training data was.

Items keep the table's layout of numbers then one-hot codes: the numeric columns' alphas first (one slot
each), then each numeric column's one-hot mode, then the categorical columns' one-hot categories.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import VaekitError

NUMERIC_CODINGS = ("standard", "modes")
COMPONENTS = 10  # at most, as in TVAE
CONCENTRATION = 1e-3  # the weight prior: few modes
MIN_WEIGHT = 0.005  # modes lighter than this are dropped
ONE_VALUE_STD = 1e-3  # a column of one value: the scale the mixture gives one, sqrt of reg_covar (1e-6)


@dataclass
class Modes:
    """The kept modes of a numeric column: their index in the fitted mixture, weight, mean and scale, and the
    spread of the training values' alphas (codes are alpha / alpha_scale)."""

    index: list[int]
    weight: list[float]
    mean: list[float]
    std: list[float]
    alpha_scale: float = 1.0  # 1: a table.json written before alphas were standardised, decoded as coded

    @classmethod
    def fit(cls, v: np.ndarray, seed: int) -> Modes:
        """The modes of values v (N,) (float64, no gaps); of one value, that value's mode (ONE_VALUE_STD)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        k = min(COMPONENTS, len(np.unique(v)))
        if k == 1:  # one value (one row or many): its one mode, without a mixture, which needs 2 rows at least
            return cls([0], [1.0], [float(v[0])], [ONE_VALUE_STD])
        gm = BayesianGaussianMixture(
            n_components=k,
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=CONCENTRATION,
            n_init=1,
            random_state=seed,
        )
        with warnings.catch_warnings():  # unconverged after 100 steps is common and harmless here (RDT hides it too)
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(v[:, None])
        keep = np.flatnonzero(gm.weights_ > MIN_WEIGHT)
        keep = keep if len(keep) else np.array([int(gm.weights_.argmax())])
        std = np.sqrt(gm.covariances_.reshape(k)[keep])
        modes = cls(keep.tolist(), gm.weights_[keep].tolist(), gm.means_[keep, 0].tolist(), std.tolist())
        spread = float(modes.encode(v)[0].std())  # (0 where every value sits on its mode: left as it is)
        modes.alpha_scale = spread if np.isfinite(spread) and spread > 0 else 1.0
        return modes

    def encode(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values v (N,) -> (alpha / alpha_scale (N,), alpha in [-0.99, 0.99]; the one-hot mode (N, K)), K = the
        kept modes."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        logp = np.log(self.weight) - np.log(std) - 0.5 * ((v[:, None] - mean) / std) ** 2  # (N, K), up to a constant
        k = logp.argmax(1)
        alpha = np.clip((v - mean[k]) / (4 * std[k]), -0.99, 0.99)
        return alpha / self.alpha_scale, np.eye(len(mean))[k]

    def decode(self, code: np.ndarray, mode: np.ndarray) -> np.ndarray:
        """Codes alpha / alpha_scale (N,) and modes (N, K) (one-hot, probabilities or logits: the largest slot) ->
        values (N,)."""
        k = mode.argmax(1)
        alpha = np.clip(code * self.alpha_scale, -1.0, 1.0)
        return 4 * np.asarray(self.std)[k] * alpha + np.asarray(self.mean)[k]


class Numeric(Protocol):
    """A numeric column of the table's schema (``data.tables.Column``)."""

    name: str
    modes: Modes | None
    fill: float | str | None


def fitted_codes(
    coding: str, columns: Sequence[Numeric], x: np.ndarray, train: np.ndarray, seed: int, gaps: np.ndarray | None = None
) -> np.ndarray:
    """Items x (N, n + rest) with the numbers of ``columns`` first -> as ``coding`` codes them: standard (as they
    are) or modes (mode codes, the modes fitted on the rows ``train`` and kept in ``columns``). ``gaps`` (N, n):
    the cells that were gaps (filled under missing=mean), left out of the fit: a fill is no value of the column."""
    if coding not in NUMERIC_CODINGS:
        raise VaekitError(
            f"data.numeric must be one of {', '.join(NUMERIC_CODINGS)}, got {coding!r}", key="data.numeric"
        )
    if coding == "standard":
        return x
    x, n = x.copy(), len(columns)
    gaps = np.zeros((len(x), n), bool) if gaps is None else gaps
    fit_modes(columns, np.where(gaps, np.nan, x[:, :n])[train].astype(np.float64), seed)
    for j, c in enumerate(columns):  # a gap at its column's heaviest mode's centre (alpha 0), not at a clip
        if gaps[:, j].any():
            c.fill = heaviest(_modes(c))
            x[gaps[:, j], j] = c.fill
    return to_modes(x, columns).astype(np.float32)


def heaviest(modes: Modes) -> float:
    """The mean of the heaviest of ``modes``: the value a gap is coded at under missing=mean (the column's mean
    may lie between two modes, where its alpha would sit at the clip of one: an outlier of its code)."""
    return float(modes.mean[int(np.argmax(modes.weight))])


def fit_modes(columns: Sequence[Numeric], numbers: np.ndarray, seed: int) -> None:
    """Each numeric column's modes, from its training values ``numbers`` (N, n) (NaN: a gap, left out)."""
    for j, c in enumerate(columns):
        v = numbers[:, j]
        v = v[~np.isnan(v)]
        if not len(v):
            raise VaekitError(f"column {c.name!r} has no value in the training split to fit its modes on")
        c.modes = Modes.fit(v, seed)


def to_modes(x: np.ndarray, columns: Sequence[Numeric]) -> np.ndarray:
    """Items with numbers (N, n + rest) -> mode codes (N, n + sum K + rest): alphas, one-hot modes, the rest."""
    n = len(columns)
    if not n:
        return x
    codes = [_modes(c).encode(x[:, j]) for j, c in enumerate(columns)]
    return np.concatenate([np.stack([a for a, _ in codes], 1).reshape(len(x), n), *[h for _, h in codes], x[:, n:]], 1)


def from_modes(x: np.ndarray, columns: Sequence[Numeric]) -> np.ndarray:
    """Mode codes (N, n + sum K + rest) -> items with numbers in the table's units (N, n + rest)."""
    n, start, values = len(columns), len(columns), []
    if not n:
        return x
    for j, c in enumerate(columns):
        k = len(_modes(c).mean)
        values.append(_modes(c).decode(x[:, j], x[:, start : start + k]))
        start += k
    return np.concatenate([np.stack(values, 1).reshape(len(x), n), x[:, start:]], 1)


def mode_counts(columns: Sequence[Numeric]) -> list[int]:
    """K of each numeric column: the length of its one-hot mode."""
    return [len(_modes(c).mean) for c in columns]


def _modes(c: Numeric) -> Modes:
    if c.modes is None:
        raise VaekitError(f"column {c.name!r} has no fitted modes (table.json was written without them)")
    return c.modes
