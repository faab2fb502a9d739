"""Held-out evaluation of a run: ELBO and its parts, IWAE NLL, bits/dim, KL per dimension, active units, a probe;
figures that are not finite refused in one line (the items evaluated are ``eval_items``')."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from .. import files
from ..config import own_likelihood
from ..core.contract import mean_of
from ..core.objectives import Terms, elbo, iwae_bound, kl_per_dim
from ..data import Dataset, Split
from ..data.lazy import LazyArray, drawn_once, head_split
from ..errors import VaekitError
from ..run_reads import reading
from ..runs import Run
from ..samplers import takes_run
from ..training import distributed
from ..training.first_step import CAUSES, non_finite_term
from ..training.rng import keeps_rng
from ..training.state import FIXED_DRAW, recorded_data
from .active import ACTIVE_THRESHOLD as ACTIVE_THRESHOLD  # where viz.figures takes it
from .active import active_codes, discrete_codes
from .active import active_units as units_of
from .codebook import codebook_figures
from .eval_files import eval_file as eval_file  # where report takes them
from .eval_files import write_eval as write_eval
from .eval_items import check_k as check_k  # where report takes it
from .eval_items import evaluated_items, iw_samples_of
from .eval_items import pick_split as pick_split  # where outputs, quality_run, the CLI and report take it

Nats = TypeVar("Nats", float, Tensor)  # a figure, or a tensor of them


def active_units(
    means: Tensor | np.ndarray | Sequence[Tensor], threshold: float = ACTIVE_THRESHOLD
) -> Tensor | list[Tensor]:
    """``vaekit.active_units``: ``active.active_units`` of posterior means (N, D), or of a list of them per level; a
    run or a model in their place is refused in one line naming the means to pass."""
    if isinstance(means, Run | torch.nn.Module):
        of = "run" if isinstance(means, Run) else "model"
        raise VaekitError(
            f"active_units takes posterior means (N, D), got {type(means).__name__}: pass {of}.encode(x).mean"
        )
    return units_of(means, threshold)


def _batches(x: Tensor | LazyArray, y: Tensor | None, size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(x_b, y_b) pairs of at most ``size`` items."""
    for i in range(0, len(x), size):
        yield x[i : i + size], None if y is None else y[i : i + size]


@torch.no_grad()
def elbo_terms(run: Run, x: Tensor | LazyArray, y: Tensor | None, batch_size: int = 500) -> dict:
    """One pass of ``elbo`` (analytic KL, one z draw for the reconstruction term) over x (N, *shape).

    Returns sums over items of rec, kl, KL per level and per dimension (lists of (D_l,)); the posterior means of
    every level, each (N, D_l), as ``encode`` gives them (top to bottom; a lower level's given the means above, so
    the draws above do not count as its activity), and a discrete code's ``codes`` (``discrete_codes``, or None);
    each item's rec and kl, (N,) each; and whether any target lies strictly between 0 and 1 (``grey``).
    """
    levels: list[float] = []
    dims: list[Tensor] = []
    means: list[list[Tensor]] = []  # per batch, per level
    codes: list[Tensor] = []  # per batch: a discrete code's (its one level)
    items: list[tuple[Tensor, Tensor]] = []  # per batch: rec (B,), kl (B,)
    grey = False
    for xb, yb in _batches(x, run.labels(y, len(x)), batch_size):
        xb = xb.to(run.device, torch.float32)
        out = run.model(xb, yb)
        t = elbo(out, xb)
        items.append((t["rec"].cpu(), t["kl"].cpu()))
        grey = grey or bool(((xb > 0) & (xb < 1)).any())
        lv = [k.sum().item() for k in t["kl_layers"]]
        dm = [kl_per_dim(q, p, z).sum(0).cpu() for q, p, z in zip(out.qz, out.pz, out.z)]  # (D_l,) each
        sizes = [z.flatten(1).shape[1] for z in out.z]
        qb = run.encode(xb, yb)
        mu = list(mean_of(qb).flatten(1).cpu().split(sizes, 1))  # (B, D_l) each
        codes.extend(discrete_codes(qb))
        levels = [a + b for a, b in zip(levels, lv)] if means else lv
        dims = [a + b for a, b in zip(dims, dm)] if means else dm
        means.append(mu)
    return {
        "sizes": sizes,  # D_l of each level
        "rec": sum(r.sum().item() for r, _ in items),  # batch by batch, as float64
        "kl": sum(k.sum().item() for _, k in items),
        "kl_per_level": levels,
        "kl_per_dim": dims,
        "means": [torch.cat(level) for level in zip(*means)],
        "codes": torch.cat(codes) if codes else None,
        "rec_items": torch.cat([r for r, _ in items]),
        "kl_items": torch.cat([k for _, k in items]),
        "grey": grey,
    }


def refuse_not_finite(where: str, rec: Tensor, kl: Tensor, bound: Tensor | None = None, own: bool = True) -> None:
    """Refuse, in one line naming how many items and the likely cause (as training's first step does), figures
    that are not finite: log p(x|z) or KL(q(z|x) || p(z)) of the ELBO pass, rec and kl (N,), or the IWAE bound
    on log p(x) (N,), given once it is computed. ``own``: a p(x|z) of the user's own (a Beta's log-density is
    infinite at its support's ends); vaekit's overflow float32 only for values far beyond the training items'."""
    if not (rec.isfinite().all() and kl.isfinite().all()):
        terms = Terms(loss=rec.sum() - kl.sum(), rec=rec, kl=kl, kl_layers=[kl])
        raise VaekitError(f"cannot evaluate {where}: {non_finite_term(terms, edge=own)}")
    if bound is not None and not bound.isfinite().all():
        bad, nan = int((~bound.isfinite()).sum()), int(bound.isnan().sum())
        kind = "NaN" if bad == nan else "infinite" if not nan else "NaN or infinite"
        cause = CAUSES["nan" if nan else "inf" if own else "overflow"]
        raise VaekitError(
            f"cannot evaluate {where}: the IWAE bound on log p(x) is {kind} for {bad} of {len(bound)} items: {cause}"
        )


@torch.no_grad()
def encode_means(run: Run, x: Tensor | LazyArray, y: Tensor | None = None, batch_size: int = 500) -> Tensor:
    """Posterior means E_q[z|x] of x (N, *shape) in batches -> (N, D) on the CPU; labels y (N,) read by a conditional
    run alone (a data set's labels, given for any run)."""
    parts = (slice(i, i + batch_size) for i in range(0, len(x), batch_size))
    y = y if run.model.needs_labels else None
    return torch.cat([mean_of(run.encode(x[b], None if y is None else y[b])).cpu() for b in parts])


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


def bits_per_dim(nll: Nats, shape: tuple[int, ...]) -> Nats:
    """Nats per item -> bits per data dimension: nll / (prod(shape) ln 2), a float or a tensor as ``nll`` is."""
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


@takes_run
@keeps_rng
@reading
def evaluate(
    run: Run,
    data: Dataset | object = None,
    split: str = "test",
    iw_samples: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    mode: str | None = None,
    *,
    where: str | None = None,
    k: int | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
) -> dict:
    """Evaluate ``run`` on a split of ``data`` (default: the run's own data, prepared as in training), or on
    the user's items (an array, tensor, (x, y) pair, torch Dataset or DataLoader, as ``fit`` takes them, a dict
    item's entries ``x_key`` and ``y_key``; a DataLoader's sampler or collate_fn refused, as by ``fit``) as a
    whole, recorded as split "all" (no probe: no train split to fit it on). A vaekit Dataset (``load_dataset``'s)
    is prepared as the run's data is: checked, binarised as in training (seeded), its labels numbered by the
    run's class names; labels given as names are numbered so too.

    ELBO, rec and KL are means over items of one ``elbo`` pass, one z per item; the KL is analytic for Gaussian
    q(z|x) and p(z) and for categorical or VQ codes, and the one-sample estimate log q(z|x) - log p(z) for a
    mixture, vamp or flow prior, a flow posterior and a cvae's mixture p(z|y). nll is -mean IWAE bound with
    ``iw_samples`` K samples (default 1000; ``k``, its older name, is taken too, not both; recorded as "k"; nats
    per item): -log p(x|y) for a conditional model, given the labels. ``mode`` (dynamic,
    fixed or none; with a vaekit Dataset only) is the binarisation ``prepare_data`` returned with ``data``, which
    is then used as it is (the probe's train inputs are drawn once under 'dynamic'). Every float is rounded to 6
    significant digits; bits/dim divide by ``item_dims``. Figures that are not finite are refused in one line
    naming the items as ``where`` does (default "DATA (SPLIT split)"). A model with a codebook (VQ) adds
    ``codebook_figures``: codes used of codebook_size and their perplexity, and a warning where it has collapsed.
    """
    start = time.perf_counter()
    k, given = iw_samples_of(iw_samples, k), data is not None and not isinstance(data, Dataset)
    data, s, x, mode = evaluated_items(run, data, split, limit, mode, (x_key, y_key))
    note_old_draw(run, mode)
    torch.manual_seed(seed)
    where = where or f"{data.name} ({split} split)"
    t, nll = _bounds(run, where, x, s.y, k)
    n = len(x)
    au = None if n < 2 else units_of(t["means"]) if t["codes"] is None else [active_codes(t["codes"])]
    probe = _probe(run, data, s, x, mode) if n > 1 else None
    return {
        "data": data.name,
        "split": "all" if given else split,  # the user's items: every one, scored whole
        "n": n,
        "k": k,
        "seed": seed,
        **_figures(t, nll, n, item_dims(run, data), au, probe),
        **codebook_figures(run.model, t["codes"], where),  # a VQ model's codes used of K and their perplexity
        "grey": t["grey"],  # some item not 0 or 1: a Bernoulli p(x|z)'s nll is a cross-entropy (the report says)
        "elbo_passes": 1,
        "seconds": _round(time.perf_counter() - start),
        files.DIGEST: run.digest,
    }


def _bounds(run: Run, where: str, x: Tensor | LazyArray, y: Tensor | None, k: int) -> tuple[dict, float]:
    """``elbo_terms`` and the mean K-sample IWAE nll of the items x (N, *shape) of ``where``, each refused in one
    line where not finite; a note where a Bernoulli p(x|z) scores grey targets (a cross-entropy, not an NLL)."""
    t, own = elbo_terms(run, x, y), own_likelihood(run.config.model.likelihood)
    refuse_not_finite(where, t["rec_items"], t["kl_items"], own=own)
    if t["grey"] and run.config.model.likelihood == "bernoulli":
        distributed.warn(
            f"{where}: the Bernoulli p(x|z) scores grey (not binary) items by cross-entropy: nll and bits_per_dim "
            "are no negative log-likelihood of these items"
        )
    bound = -iwae_nll(run, x, y, k)  # (N,)
    refuse_not_finite(where, t["rec_items"], t["kl_items"], bound, own)
    return t, -bound.mean().item()


def item_dims(run: Run, data: Dataset) -> int:
    """D of bits/dim: a table run's columns (a column's one-hot code, mode code or gap indicator is one value of it,
    as one column of the file), else the values of an item, prod(shape)."""
    table = run.table
    return len(table.columns) if table is not None else math.prod(data.shape)


def _probe(run: Run, data: Dataset, s: Split, x: Tensor | LazyArray, mode: str | None) -> float | None:
    """``probe_accuracy`` on the items x (N, *shape) of split ``s``; None unless both it and the train split
    have labels and the train split's first 10000 hold more than one class."""
    if s.y is not None and data.train.y is not None and len(data.train.y[:10000].unique()) > 1:
        return probe_accuracy(run, data.train, encode_means(run, x, s.y), s.y, mode or "none")
    return None


def _figures(t: dict, nll: float, n: int, dims: int, au: list[Tensor] | None, probe: float | None) -> dict:
    """``evaluate``'s figures per item, rounded: ``elbo_terms``' sums ``t`` over n items, the mean IWAE nll (and
    bits per each of the item's ``dims`` values), the (U_l,) active-unit masks ``au`` (None: one item), the probe's."""
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
        "bits_per_dim": r(bits_per_dim(nll, (dims,))),
        "active_units": {
            "total": None if au is None else int(sum(a.sum() for a in au)),
            "per_level": None if au is None else [int(a.sum()) for a in au],
            "threshold": ACTIVE_THRESHOLD,
        },
        "probe_accuracy": None if probe is None else r(probe),
    }


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


def _round(v: float) -> float:
    return float(f"{v:.6g}")
