"""Disentanglement metrics on data with known factors: MIG, FactorVAE score, beta-VAE score, DCI and SAP.

Each is a plain function of codes (N, D) and integer factors (N, K) (checked by ``disentangle_checks``)
returning floats in [0, 1] (None where a score is undefined or 1 by construction: the docstrings say when), with the
settings of disentanglement_lib (Locatello et al. 2019) as defaults where they are cheap enough; where this
module departs from it, the docstring says so. ``scores`` samples its own batches from a factor-sampling
data set (``sample_factors(n, rng)``, ``images(factors)``, ``factor_sizes``) through an encoder.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from ..logs import note
from .disentangle_checks import PRUNE, active_dims, split_votes, standardised, varying
from .disentangle_checks import binnable as _binnable
from .disentangle_checks import check as _check
from .disentangle_checks import votes as _votes
from .information import discretize, entropies, inner_edges, mutual_info

Encoder = Callable[[Tensor], Tensor]  # (B, *shape) images -> (B, D) codes (posterior means)
LABEL_ALPHA = 1e-3  # factor_of_each_code's G-test level: a noise dim gets a factor about once in 200 (D 10, K 5)


def _unit(value: float) -> float:
    """``value`` in [0, 1], rounded to 12 decimals: a sum of probabilities' rounding (2e-16) is no score."""
    return round(float(np.clip(value, 0.0, 1.0)), 12)


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018): per factor, (top MI - second MI) / H(factor), averaged.

    Codes are discretised into ``bins`` equal-width bins; constant factors are left out.
    """
    codes, factors = _check(codes, factors, bins=bins)
    m = mutual_info(discretize(_binnable(codes), bins), factors)  # (D, K)
    h = entropies(factors)  # (K,)
    keep = h > 0
    if not keep.any():
        return 0.0
    top = np.sort(np.vstack([m, np.zeros_like(m[:1])]), axis=0)[::-1]  # (D + 1, K) descending per factor
    return _unit(np.mean((top[0, keep] - top[1, keep]) / h[keep]))


def _bin_classifier_accuracy(code_tr, f_tr, code_te, f_te, bins: int) -> float:
    """Chance-adjusted balanced accuracy of predicting f from one code dim by the majority class per bin."""
    from sklearn.metrics import balanced_accuracy_score

    edges = inner_edges(code_tr, bins)
    b_tr, b_te = np.digitize(code_tr, edges), np.digitize(code_te, edges)
    classes = np.unique(f_tr)
    counts = np.zeros((bins, len(classes)))
    np.add.at(counts, (b_tr, np.searchsorted(classes, f_tr)), 1)
    counts /= np.maximum(counts.sum(0, keepdims=True), 1)  # balanced: each class weighs the same
    pred = classes[counts.argmax(1)][b_te]
    with warnings.catch_warnings():  # a small test set lacks some predicted classes: scored as it is, unsaid
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        return max(0.0, balanced_accuracy_score(f_te, pred, adjusted=True))


def sap(
    codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray, bins: int = 100
) -> float:
    """Separated attribute predictability (Kumar et al. 2018): per factor, the gap between the two code dims
    that predict it best, averaged over the non-constant factors.

    As in disentanglement_lib each (code dim, factor) pair gets a classifier fitted on the train codes and scored
    on the test codes; unlike it, the classifier is the majority class per bin of ``bins`` equal-width bins
    (enough for a 40-valued factor; dl's LinearSVC on one input cannot carve out the middle classes of a 32-valued
    factor, so even the true factors score low), and the score is balanced accuracy adjusted for chance, so an
    unrelated code scores 0. Factors constant in the train or the test items are left out (a test of one class
    measures nothing), and code dims constant up to rounding are constant (``binnable``).
    """
    codes, factors = _check(codes, factors, (codes_test, factors_test), bins=bins)
    codes_test, factors_test = _check(codes_test, factors_test)
    codes, gaps = _binnable(codes), []
    for k in sorted(set(varying(factors)) & set(varying(factors_test))):
        acc = sorted(
            (
                _bin_classifier_accuracy(codes[:, d], factors[:, k], codes_test[:, d], factors_test[:, k], bins)
                for d in range(codes.shape[1])
            ),
            reverse=True,
        )
        gaps.append(acc[0] - (acc[1] if len(acc) > 1 else 0.0))
    return _unit(float(np.mean(gaps))) if gaps else 0.0


def _entropy_score(p: np.ndarray, base: int) -> np.ndarray:
    """1 - H(p) / log(base) per row of p (rows: importance distributions)."""
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-11)
    h = -(p * np.log(np.maximum(p, 1e-11))).sum(1)
    return 1.0 - h / np.log(base) if base > 1 else np.ones(len(p))


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    seed: int = 0,
    trees: int = 10,
) -> dict[str, float | None]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One random forest of ``trees`` bagged trees (scikit-learn, every feature tried at each split, leaves of at
    least 10 items) per factor gives the importance matrix (D, K) and the test accuracy (informativeness);
    disentanglement_lib uses gradient boosted trees, which on 113 classes cost minutes on a CPU (and score a
    partly mixed code about 0.06 higher: 0.832 against the forest's 0.768). The forests see the codes standardised
    per dim (``standardised``: they read float32), so rescaling or shifting a dim changes nothing. Disentanglement
    is None where one factor varies, completeness where D is 1: 1 by construction there.
    """
    from sklearn.ensemble import RandomForestClassifier

    codes, factors = _check(codes, factors, (codes_test, factors_test), trees=trees)
    codes_test, factors_test = _check(codes_test, factors_test)
    codes, codes_test = standardised(codes, codes_test)
    keep = varying(factors)
    importance, acc = np.zeros((codes.shape[1], len(keep))), []
    for i, k in enumerate(keep):
        forest = RandomForestClassifier(trees, max_features=None, min_samples_leaf=10, random_state=seed, n_jobs=1)
        forest.fit(codes, factors[:, k])
        importance[:, i] = np.abs(forest.feature_importances_)
        acc.append(forest.score(codes_test, factors_test[:, k]))
    total = importance.sum() or np.inf  # nothing learned (or no factor varies): 0 for both
    d = _unit((_entropy_score(importance, len(keep)) * importance.sum(1) / total).sum())  # code dims weighted
    c = _unit((_entropy_score(importance.T, codes.shape[1]) * importance.sum(0) / total).sum())  # factors weighted
    return {
        "disentanglement": None if len(keep) == 1 else d,
        "completeness": None if codes.shape[1] == 1 else c,
        "informativeness": _unit(np.mean(acc or [0.0])),
    }


def _majority_vote(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], d: int) -> float:
    """Accuracy on ``test`` of predicting factor k from the voted dim by the majority of the ``train`` votes."""
    counts = np.zeros((d, int(max(train[1].max(), test[1].max())) + 1))
    np.add.at(counts, train, 1)
    return float(np.mean(counts.argmax(1)[test[0]] == test[1]))


def factorvae_from_batches(
    batches: np.ndarray, ks: np.ndarray, variance: np.ndarray, n_train: int, prune: float = PRUNE
) -> float | None:
    """FactorVAE score (Kim & Mnih 2018) from code batches (n, B, D) each sharing factor ks (n,).

    Codes are divided by their global std (``variance`` (D,) over the data); each batch votes for the dim
    of least variance among the ``active_dims`` (global std at least ``prune``, an absolute threshold: the
    score depends on the code's scale, as dl's does); the first ``n_train`` votes train a majority-vote
    classifier dim -> factor, the rest give its accuracy. Chance is 1 / K; None where no dim is active.
    """
    batches = np.asarray(batches)
    if batches.ndim != 3 or batches.shape[1] < 2 or np.shape(variance) != batches.shape[2:]:
        raise VaekitError(f"FactorVAE: expected batches (n, B >= 2, D) and variance (D,), got {batches.shape}")
    _check(batches.mean(1), _votes(ks, n_train, "FactorVAE")[:, None])
    active = active_dims(variance, prune)
    if not active.any():
        return None
    local = batches.var(1, ddof=1) / np.maximum(variance, 1e-12)  # (n, D)
    votes = np.where(active, local, np.inf).argmin(1)
    return _unit(_majority_vote((votes[:n_train], ks[:n_train]), (votes[n_train:], ks[n_train:]), len(variance)))


def factorvae_score(
    codes: np.ndarray, factors: np.ndarray, batch: int = 64, n_train: int = 10000, n_eval: int = 5000, seed: int = 0
) -> float | None:
    """FactorVAE score with batches drawn from the given items (dl: batch 64, 10,000 + 5,000 votes), the training
    and the evaluation votes each from its own half of them (``split_votes``), over the half's std; None where no
    dim is active."""
    if batch < 2:
        raise VaekitError(f"batch: must be at least 2 (a variance needs two codes), got {batch}")
    codes, factors = _check(codes, factors, n_train=n_train, n_eval=n_eval)
    idx, ks, halves = split_votes(factors, n_train, n_eval, batch, seed)
    std = codes.std(0, ddof=1)  # (D,): prunes dims; each half's votes see its codes over the half's own std, as
    # two data sets (one std of all items ties the halves: random codes scored 0.18 for chance 0.2 on 300 items)
    scale = [np.divide(std, s, out=np.ones_like(std), where=s > 0) for s in (codes[h].std(0, ddof=1) for h in halves)]
    batches = codes[idx] * np.repeat(scale, (n_train, n_eval), axis=0)[:, None]  # (n, B, D)
    return factorvae_from_batches(batches, ks, std**2, n_train)


def betavae_from_pairs(z1: np.ndarray, z2: np.ndarray, ks: np.ndarray, n_train: int, seed: int = 0) -> float:
    """beta-VAE score (Higgins et al. 2017) from paired code batches z1, z2 (n, B, D) sharing factor ks (n,).

    Logistic regression on mean |z1 - z2| (n, D) predicts k; trained on the first ``n_train`` points, the
    score is its accuracy on the rest. Chance is 1 / K. As in dl the inputs are not rescaled, so with the
    regression's fixed L2 penalty the score depends on the code's scale. Unlike dl, ``scores`` and
    ``betavae_score`` give all pairs of a batch one value of factor k (dl: each pair its own; kept, as the benchmark
    was measured so): a code whose noise depends on the factors scores lower (0.984 against 1.000 dl's way).
    """
    from sklearn.linear_model import LogisticRegression

    z1, z2 = np.asarray(z1), np.asarray(z2)
    if z1.ndim != 3 or z1.shape != z2.shape:
        raise VaekitError(f"beta-VAE: expected paired batches (n, B, D) of one shape, got {z1.shape} and {z2.shape}")
    _check(z1.mean(1) + z2.mean(1), _votes(ks, n_train, "beta-VAE")[:, None])
    x = np.abs(z1 - z2).mean(1)  # (n, D)
    if len(np.unique(ks[:n_train])) < 2:
        return _unit(np.mean(ks[n_train:] == ks[0]))
    model = LogisticRegression(max_iter=2000).fit(x[:n_train], ks[:n_train])
    return _unit(model.score(x[n_train:], ks[n_train:]))


def betavae_score(
    codes: np.ndarray, factors: np.ndarray, batch: int = 64, n_train: int = 10000, n_eval: int = 5000, seed: int = 0
) -> float:
    """beta-VAE score with pairs of distinct items drawn from the given ones (dl: batch 64, 10,000 + 5,000
    points), the training and the evaluation points each from its own half of them (``split_votes``);
    unlike dl, a batch's pairs share one value of factor k (``betavae_from_pairs``)."""
    codes, factors = _check(codes, factors, batch=batch, n_train=n_train, n_eval=n_eval)
    idx, ks, _ = split_votes(factors, n_train, n_eval, batch, seed, pairs=True)
    return betavae_from_pairs(codes[idx[:, 0]], codes[idx[:, 1]], ks, n_train, seed)


@torch.no_grad()
def encode_factors(encode: Encoder, data, factors: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """Render factors (..., K) with ``data.images`` and encode them: codes (..., D) as float64."""
    flat = factors.reshape(-1, factors.shape[-1])
    codes = np.concatenate(
        [encode(data.images(flat[i : i + chunk])).cpu().double().numpy() for i in range(0, len(flat), chunk)]
    )
    return codes.reshape(*factors.shape[:-1], -1)


def _fixed_factors(data, n: int, batch: int, rng: np.random.Generator, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, copies, batch, K) sampled factors where all items of row i share factor ks[i]'s value; ks (n,)."""
    sizes = np.array(data.factor_sizes)
    ks = rng.choice(np.flatnonzero(sizes > 1), n)
    f = data.sample_factors(n * copies * batch, rng).reshape(n, copies, batch, len(sizes))
    f[np.arange(n), :, :, ks] = f[np.arange(n), :1, :1, ks]
    return f, ks


def scores(
    encode: Encoder,
    data,
    n: int = 10000,
    n_test: int = 5000,
    votes: tuple[int, int] = (1000, 500),
    batch: int = 64,
    seed: int = 0,
) -> dict[str, float | None]:
    """Every metric for an encoder on a factor-sampling data set, sampling its own batches.

    MIG on ``n`` sampled items; SAP and DCI train on them and test on ``n_test`` more; the FactorVAE and
    beta-VAE scores render their own fixed-factor batches of ``batch`` items, ``votes`` = (train, eval)
    votes / points each (dl: 10,000 + 5,000; fewer here so that a CPU finishes in a minute). ``active_dims``
    counts the dims the FactorVAE score votes among (std >= PRUNE); with none, ``factorvae`` is None. Where fewer
    than 2 of ``data.factor_sizes`` exceed 1, ``factorvae`` and ``betavae`` are None, said in a note (every vote
    would name the one factor: a score of 1 by construction), as DCI disentanglement is where one factor varies.
    """
    if min(n, n_test, batch - 1, *votes) < 1:
        raise VaekitError(f"n {n}, n_test {n_test}, votes {votes} must be at least 1 and batch {batch} at least 2")
    rng = np.random.default_rng(seed)
    f_all = data.sample_factors(n + n_test, rng)
    z_all = encode_factors(encode, data, f_all)
    (z, z_te), (f, f_te) = np.split(z_all, [n]), np.split(f_all, [n])
    out: dict[str, float | None] = {"mig": mig(z, f), "sap": sap(z, f, z_te, f_te)}
    out.update({f"dci_{k}": v for k, v in dci(z, f, z_te, f_te, seed).items()})
    out.update(factorvae=None, active_dims=int(active_dims(z.var(0, ddof=1)).sum()), betavae=None)
    if (vary := int((np.array(data.factor_sizes) > 1).sum())) < 2:
        note(f"factors that vary: {vary}; the FactorVAE and beta-VAE scores need 2 (every vote would name one): None")
        return out
    fv, ks = _fixed_factors(data, sum(votes), batch, rng, 1)
    out["factorvae"] = factorvae_from_batches(encode_factors(encode, data, fv)[:, 0], ks, z.var(0, ddof=1), votes[0])
    bv, ks = _fixed_factors(data, sum(votes), batch, rng, 2)
    zb = encode_factors(encode, data, bv)
    out["betavae"] = betavae_from_pairs(zb[:, 0], zb[:, 1], ks, votes[0], seed)
    return out


def factor_of_each_code(
    codes: np.ndarray, factors: np.ndarray, names: tuple[str, ...], bins: int = 20, alpha: float = LABEL_ALPHA
) -> list[tuple[str | None, float]]:
    """Per code dim, the factor of largest normalised MI, MI / H(factor), and the dim's largest: (D,) pairs (not
    the factor of most MI in nats: normalising favours factors of few values). Only factors a G-test finds it
    depends on count (2 N MI beyond the chi2 (occupied bins - 1)(values - 1) tail ``alpha``; the plug-in MI of
    independent values is about that chi2 / 2N); a dim with none (constant, noise) gets None."""
    codes, factors = _check(codes, factors, bins=bins)
    if len(names) != factors.shape[1]:
        raise VaekitError(f"names: {len(names)} for {factors.shape[1]} factors, expected one name per factor")
    q = discretize(_binnable(codes), bins)  # (N, D)
    m, h = mutual_info(q, factors), entropies(factors)  # (D, K), (K,)
    norm = m / np.maximum(h, 1e-12)
    df = np.outer([len(np.unique(c)) - 1 for c in q.T], [len(np.unique(f)) - 1 for f in factors.T])  # (D, K)
    tail = torch.special.gammaincc(torch.as_tensor(np.maximum(df, 1) / 2.0), torch.as_tensor(len(q) * m))  # chi2 sf
    dependent = (df > 0) & (tail.numpy() < alpha)
    best = np.where(dependent, norm, -1.0).argmax(1)  # (D,)
    return [(names[k] if dependent[d, k] else None, float(norm[d].max())) for d, k in enumerate(best)]
