"""Held-out evaluation of a run: ELBO and its parts, IWAE NLL, bits/dim, KL per dimension, active units, a probe;
and the detection metrics (AUROC, AUPRC, FPR at 95% TPR) that rank anomaly scores."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import overload

import numpy as np
import torch
from torch import Tensor

from .. import files
from ..config import own_likelihood
from ..core.objectives import elbo, iwae_bound, kl_per_dim
from ..data import Dataset, Split
from ..data.lazy import LazyArray, binarized_once, drawn_once, head_split
from ..data.prepare import check_and_binarize, checked, prepare_data
from ..data.user import users_items
from ..errors import VaekitError
from ..io import atomic_write_json, run_lock
from ..runs import Run
from ..training import distributed, probe
from ..training.rng import keeps_rng
from ..training.state import FIXED_DRAW, recorded_data
from .labels import numbered_as_run

MODES = ("dynamic", "fixed", "none")  # evaluate's mode: the binarisation prepare_data returned
ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016), section 5.2: Cov_x(E_q[z_u|x]) > 0.01


def _batches(x: Tensor | LazyArray, y: Tensor | None, size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(x_b, y_b) pairs of at most ``size`` items."""
    for i in range(0, len(x), size):
        yield x[i : i + size], None if y is None else y[i : i + size]


@torch.no_grad()
def elbo_terms(run: Run, x: Tensor | LazyArray, y: Tensor | None, batch_size: int = 500) -> dict:
    """One pass of ``elbo`` (analytic KL, one z draw for the reconstruction term) over x (N, *shape).

    Returns sums over items of rec, kl, KL per level and per dimension (lists of (D_l,)), and the
    posterior means of every level, each (N, D_l), as ``encode`` gives them (top to bottom; a lower level's
    mean given the means above, so that the draws above do not count as the level's activity).
    """
    rec = kl = 0.0
    levels: list[float] = []
    dims: list[Tensor] = []
    means: list[list[Tensor]] = []  # per batch, per level
    for xb, yb in _batches(x, run.labels(y, len(x)), batch_size):
        xb = xb.to(run.device, torch.float32)
        out = run.model(xb, yb)
        t = elbo(out, xb)
        rec, kl = rec + t["rec"].sum().item(), kl + t["kl"].sum().item()
        lv = [k.sum().item() for k in t["kl_layers"]]
        dm = [kl_per_dim(q, p, z).sum(0).cpu() for q, p, z in zip(out.qz, out.pz, out.z)]  # (D_l,) each
        sizes = [z.flatten(1).shape[1] for z in out.z]
        mu = list(run.encode(xb, yb).mean.flatten(1).cpu().split(sizes, 1))  # (B, D_l) each
        if not means:
            levels, dims = lv, dm
        else:
            levels = [a + b for a, b in zip(levels, lv)]
            dims = [a + b for a, b in zip(dims, dm)]
        means.append(mu)
    return {
        "sizes": sizes,  # D_l of each level
        "rec": rec,
        "kl": kl,
        "kl_per_level": levels,
        "kl_per_dim": dims,
        "means": [torch.cat(level) for level in zip(*means)],
    }


@torch.no_grad()
def encode_means(run: Run, x: Tensor | LazyArray, y: Tensor | None = None, batch_size: int = 500) -> Tensor:
    """Posterior means E_q[z|x] of x (N, *shape) in batches -> (N, D) on the CPU."""
    parts = [
        run.encode(x[i : i + batch_size], None if y is None else y[i : i + batch_size]).mean.cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(parts)


@overload
def active_units(means: Tensor | np.ndarray, threshold: float = ...) -> Tensor: ...
@overload
def active_units(means: Sequence[Tensor], threshold: float = ...) -> list[Tensor]: ...
def active_units(
    means: Tensor | np.ndarray | Sequence[Tensor], threshold: float = ACTIVE_THRESHOLD
) -> Tensor | list[Tensor]:
    """Burda et al.'s criterion per level: a (D_l,) bool mask of dims whose posterior mean varies over x.

    ``means``: one (N, D_l) tensor of E_q[z|x] per level (a list of masks back), or a single (N, D) tensor or
    array (its one (D,) mask back); a unit is active when Var_x > ``threshold``.
    """
    if isinstance(means, (Tensor, np.ndarray)):
        return active_units([torch.as_tensor(means)], threshold)[0]
    for m in means:
        if not isinstance(m, Tensor) or m.dim() != 2:
            got = tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__
            raise VaekitError(f"active_units takes posterior means (N, D), or a list of them per level, got {got}")
    return [
        m.var(0, unbiased=True) > threshold if len(m) > 1 else torch.zeros(m.shape[1], dtype=torch.bool) for m in means
    ]


def check_k(k: int) -> None:
    """Refuse a number of importance samples K below 1."""
    if k <= 0:
        raise VaekitError(f"the number of importance samples k must be > 0, got {k}", key="iw_samples")


@torch.no_grad()
def iwae_nll(
    run: Run, x: Tensor | LazyArray, y: Tensor | None, k: int, batch_size: int = 100, chunk: int | None = None
) -> Tensor:
    """-log p(x) estimated by the K-sample IWAE bound for each item, (N,) in nats; memory stays bounded by ``chunk``."""
    check_k(k)
    parts = [
        iwae_bound(run.model, xb.to(run.device, torch.float32), k, chunk, yb).cpu()
        for xb, yb in _batches(x, run.labels(y, len(x)), batch_size)
    ]
    return -torch.cat(parts)


def bits_per_dim(nll: float, shape: tuple[int, ...]) -> float:
    """Nats per item -> bits per data dimension: nll / (prod(shape) ln 2)."""
    return nll / (math.prod(shape) * math.log(2))


@torch.no_grad()
def probe_accuracy(run: Run, train: Split, test_means: Tensor, test_y: Tensor, mode: str, limit: int = 10000) -> float:
    """Accuracy on the evaluated split of a logistic regression fitted on the train split's posterior means.

    Means are ``run.encode``'s, (N, D) (every level for a hierarchical model). Dynamic binarisation
    draws the train inputs once, seeded.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert train.y is not None  # evaluate probes only data with labels
    s = head_split(train, limit)
    x, y = (drawn_once(s, run.config.train.seed) if mode == "dynamic" else s).x, train.y[:limit]
    train_means = encode_means(run, x, y)  # (N, D)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train_means.numpy(), y.numpy())
    return float(clf.score(test_means.numpy(), test_y.numpy()))


def pick_split(data: Dataset, split: str, limit: int | None) -> Split:
    """The first ``limit`` items of a split; an empty one is refused."""
    if split not in ("train", "val", "test"):
        raise VaekitError(f"split {split!r}: expected train, val or test", key="split")
    if limit is not None and limit <= 0:
        raise VaekitError(f"limit must be > 0, got {limit}", key="limit")
    s = getattr(data, split)
    if len(s) == 0:
        raise VaekitError(f"{data.name}: the {split} split is empty")
    return head_split(s, limit)


@keeps_rng
def evaluate(
    run: Run,
    data: Dataset | object = None,
    split: str = "test",
    k: int = 1000,
    limit: int | None = None,
    seed: int = 0,
    mode: str | None = None,
) -> dict:
    """Evaluate ``run`` on a split of ``data`` (default: the run's own data, prepared as in training), or on
    the user's items (an array, tensor, (x, y) pair, torch Dataset or DataLoader, as ``fit`` takes them) as a
    whole. A vaekit Dataset (``load_dataset``'s) is prepared as the run's data is: checked, binarised as in
    training (seeded), its labels numbered by the run's class names; labels given as names are numbered so too.

    ELBO, rec and KL are means over items of one ``elbo`` pass, one z per item; the KL is analytic for Gaussian
    q(z|x) and p(z) and for categorical or VQ codes, and the one-sample estimate log q(z|x) - log p(z) for a
    mixture, vamp or flow prior, a flow posterior and a cvae's mixture p(z|y). nll is -mean IWAE bound with
    ``k`` samples (nats per item): -log p(x|y) for a conditional model, given the labels. ``mode`` (dynamic,
    fixed or none; with a vaekit Dataset only) is the binarisation ``prepare_data`` returned with ``data``, which
    is then used as it is (the probe's train inputs are drawn once under 'dynamic'). Every float is rounded to 6
    significant digits.
    """
    start = time.perf_counter()
    check_k(k)
    data, s, x, mode = _items(run, data, split, limit, mode)
    note_old_draw(run, mode)
    torch.manual_seed(seed)
    t = elbo_terms(run, x, s.y)
    nll = iwae_nll(run, x, s.y, k).mean().item()
    n = len(x)
    au = active_units(t["means"])
    probe = _probe(run, data, s, x, mode)
    return {
        "data": data.name,
        "split": split,
        "n": n,
        "k": k,
        "seed": seed,
        **_figures(t, nll, n, tuple(data.shape), au, probe),
        "elbo_passes": 1,
        "seconds": _round(time.perf_counter() - start),
        files.DIGEST: run.digest,
    }


def _probe(run: Run, data: Dataset, s: Split, x: Tensor | LazyArray, mode: str | None) -> float | None:
    """``probe_accuracy`` on the items x (N, *shape) of split ``s``; None unless both it and the train split
    have labels and the train split's first 10000 hold more than one class."""
    if s.y is not None and data.train.y is not None and len(data.train.y[:10000].unique()) > 1:
        return probe_accuracy(run, data.train, encode_means(run, x, s.y), s.y, mode or "none")
    return None


def _figures(t: dict, nll: float, n: int, shape: tuple[int, ...], au: list[Tensor], probe: float | None) -> dict:
    """``evaluate``'s figures per item, rounded: ``elbo_terms``' sums ``t`` over n items, the mean IWAE nll,
    the (D_l,) active-unit masks ``au`` and the probe's accuracy."""
    r = _round
    return {
        "elbo": r((t["rec"] - t["kl"]) / n),
        "rec": r(t["rec"] / n),
        "kl": r(t["kl"] / n),
        "kl_per_level": [r(v / n) for v in t["kl_per_level"]],
        # a level whose q or p is not factorised (a flow posterior, a vamp prior) has one total KL: null here
        "kl_per_dim": [
            [r(v / n) for v in d.tolist()] if len(d) == size else None for d, size in zip(t["kl_per_dim"], t["sizes"])
        ],
        "nll": r(nll),
        "bits_per_dim": r(bits_per_dim(nll, shape)),
        "active_units": {
            "total": int(sum(a.sum() for a in au)),
            "per_level": [int(a.sum()) for a in au],
            "threshold": ACTIVE_THRESHOLD,
        },
        "probe_accuracy": None if probe is None else r(probe),
    }


def _items(
    run: Run, data: Dataset | object, split: str, limit: int | None, mode: str | None
) -> tuple[Dataset, Split, Tensor | LazyArray, str | None]:
    """The data (the run's own, prepared as in training, when None; a vaekit Dataset, prepared so unless ``mode``
    says it was; the user's items, any container ``fit`` takes, as one test split), the split's first ``limit``
    items and those items as the model takes them (N, *shape), with the binarisation mode."""
    cfg = run.config
    _check_mode(data, mode)
    if data is None:
        data, mode = prepare_data(cfg, stream=True)
        from .outputs import note_changed_data  # outputs builds on this module

        note_changed_data(run, data)
    elif not isinstance(data, Dataset):
        if split != "test":
            raise VaekitError(f"split {split!r} names one of the run's own splits; items given are evaluated whole")
        data = users_items(data, run.model.needs_labels, tuple(cfg.model.input_shape) or None, run.classes)
    else:
        data = numbered_as_run(run, data)
    if mode is None:  # binarising binary items leaves them as they are: a Dataset prepared already stays so
        mode = cfg.data.binarize
        data = check_and_binarize(_copy(data), mode, cfg.model.likelihood, cfg.train.seed)
    s = pick_split(data, split, limit)
    # refuses a shape the model was not built for; streamed data stays streamed
    x: Tensor | LazyArray = run.check_items(s.x)
    if own_likelihood(cfg.model.likelihood) and mode == "none":  # no name tells its support: the model's p(x|z)
        px, where = probe(run.model, replace(data, train=s)), f"{data.name} ({split} split)"
        x = checked(replace(x) if isinstance(x, LazyArray) else x, px, where)
    if mode == "dynamic" and split == "train":  # the train split stays grey for the trainer: binarise once
        x = binarized_once(x, run.config.train.seed, s.rows, s.part)
    return data, s, x, mode


def note_old_draw(run: Run, mode: str | None) -> None:
    """One line on stderr where ``run`` was fixed-binarised by an earlier vaekit's draw (its checkpoint records
    no ``fixed_draw``) and items binarised ``mode`` "fixed" are evaluated: they are drawn by today's draw, not as
    the items it was trained and tested on were (evaluate, and every verb that reads items by ``prepared_split``)."""
    saved = recorded_data(run.path) if run.path is not None and mode == "fixed" else None
    if saved is not None and saved.get("fixed_draw") != FIXED_DRAW:
        distributed.warn(
            f"{run.path} was trained on items fixed-binarised by an earlier vaekit's draw: the items evaluated are "
            "drawn as today's vaekit draws them (by the seed and each item's row), not as its own were then"
        )


def _check_mode(data: Dataset | object, mode: str | None) -> None:
    """Refuse, in one line, a ``mode`` that ``prepare_data`` never returns, or one with data it cannot apply to."""
    if mode is not None and mode not in MODES:
        raise VaekitError(f"mode must be one of {', '.join(MODES)} (as prepare_data returned it), got {mode!r}")
    if mode is not None and not isinstance(data, Dataset):
        what = "the run's own data is" if data is None else "items given are"
        raise VaekitError(f"mode says how a vaekit Dataset passed was prepared: {what} prepared by data.binarize")


def _copy(data: Dataset) -> Dataset:
    """``data`` with splits of its own, for ``check_and_binarize`` to set (the caller's stay as they were)."""

    def own(s: Split) -> Split:
        return replace(s, x=replace(s.x) if isinstance(s.x, LazyArray) else s.x)  # its rows key the fixed draw

    return replace(data, train=own(data.train), val=own(data.val), test=own(data.test))


def _round(v: float) -> float:
    return float(f"{v:.6g}")


def write_eval(run: Run, result: dict) -> Path:
    """Write ``result`` to the run folder's eval.json (atomically, under the folder's lock)."""
    with run_lock(run.folder):
        return atomic_write_json(run.folder / files.EVAL, result)
