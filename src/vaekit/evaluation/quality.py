"""Sample quality: FID and KID (torchmetrics) and precision and recall (Kynkäänniemi et al. 2019) on the features
of a feature network, each with its yardstick, the data-vs-data value of two disjoint halves of the test split.

Real half A is the reference; the samples and real half B (the yardstick) are compared with it at the same size,
so the figures share their small-sample bias. Features stream through torchmetrics' ``update``/``compute``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..data.photos import note
from ..errors import VaekitError
from ..runs import Run
from ..training.rng import keeps_rng

K_NEIGHBOURS = 3  # Kynkäänniemi et al.'s k


class Passthrough(nn.Module):
    """torchmetrics' feature slot for features computed already: (B, F) -> (B, F)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, f: Tensor) -> Tensor:
        return f


@torch.no_grad()
def embed(features: nn.Module, x, batch_size: int = 500, what: str = "items") -> Tensor:
    """Features (N, F) (float64, on the CPU) of items ``x`` (N, *shape): a tensor, array or lazily read data.
    A module that fails on the items, or features that are not all finite, are one line naming ``what``."""
    device = next(features.parameters(), torch.zeros(())).device
    parts = []
    for i in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=device)
        try:
            parts.append(features(xb).reshape(len(xb), -1).double().cpu())
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            if isinstance(e, VaekitError):
                raise
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise VaekitError(
                f"features {type(features).__name__} fail on {what} of shape {tuple(xb.shape[1:])}: {why}",
                key="features",
            ) from None
    if not parts:
        raise VaekitError("sample quality needs at least one item in each set")
    f = torch.cat(parts)
    if not torch.isfinite(f).all():
        raise VaekitError(
            f"features {type(features).__name__} of the {what} are not all finite (NaN or inf): FID and KID need "
            "finite features",
            key="features",
        )
    return f


def kth_radii(f: Tensor, k: int = K_NEIGHBOURS, chunk: int = 512) -> Tensor:
    """(N,) distance of each feature vector in f (N, F) to its k-th nearest neighbour in f (itself excluded)."""
    return torch.cat(
        [torch.cdist(f[i : i + chunk], f).topk(k + 1, largest=False).values[:, k] for i in range(0, len(f), chunk)]
    )


def covered(query: Tensor, ref: Tensor, radii: Tensor, chunk: int = 512) -> Tensor:
    """(M,) bool: whether each query (M, F) lies in the k-NN ball of at least one ref (N, F) with ``radii`` (N,)."""
    return torch.cat([(torch.cdist(query[i : i + chunk], ref) <= radii).any(1) for i in range(0, len(query), chunk)])


def precision_recall(real: Tensor, fake: Tensor, k: int = K_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision (share of fake in the real manifold) and recall (share of real in the fake manifold);
    each manifold is the union of k-NN balls of its set's features (N, F) and (M, F). The distances are taken in
    float64 about the real set's mean: cdist's matrix product loses the figures of features far from 0."""
    if min(len(real), len(fake)) <= k:
        raise VaekitError(f"precision and recall with k = {k} need more than {k} items in each set")
    centre = real.double().mean(0)
    real, fake = real.double() - centre, fake.double() - centre
    precision = covered(fake, real, kth_radii(real, k)).double().mean().item()
    recall = covered(real, fake, kth_radii(fake, k)).double().mean().item()
    return precision, recall


@keeps_rng
def compare(real: Tensor, fake: Tensor, kid_subsets: int = 50, batch_size: int = 1000, seed: int = 0) -> dict:
    """FID, KID (mean and std over ``kid_subsets`` random subsets of min(1000, n / 2) items each, n the smaller
    set's size) and precision/recall of features fake (M, F) against real (N, F)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(real), len(fake))
    if n < 2:
        raise VaekitError("FID and KID need at least 2 items in each set")
    fid = FrechetInceptionDistance(Passthrough(real.shape[1]))
    with warnings.catch_warnings():  # that KID keeps every feature: ours are (N, F), computed already
        warnings.simplefilter("ignore")
        size = max(2, min(1000, n // 2))  # subsets of the whole set would all be the same: a spread of 0
        kid = KernelInceptionDistance(Passthrough(real.shape[1]), subsets=kid_subsets, subset_size=size)
    for f, is_real in ((real, True), (fake, False)):
        for i in range(0, len(f), batch_size):  # streamed: the metrics keep running sums
            fid.update(f[i : i + batch_size], real=is_real)
            kid.update(f[i : i + batch_size], real=is_real)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    precision, recall = precision_recall(real, fake)
    return {
        "fid": _round(max(0.0, float(fid.compute()))),  # rounding leaves tiny negatives (-7e-15) of equal sets
        "kid": _round(kid_mean),
        "kid_std": _round(kid_std),
        "precision": _round(precision),
        "recall": _round(recall),
    }


def halves(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two disjoint halves of range(n) (seeded permutation): the reference and the yardstick."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2 : 2 * (n // 2)]


def set_size(n: int | None, items: int) -> int:
    """The items of each set that ``quality_benchmark`` compares, ``n`` (None: half the split of ``items``), or one
    line: at most half the split (the other half is the yardstick), and enough for precision and recall's k
    nearest neighbours."""
    half = items // 2
    if n is not None and n > half:
        raise VaekitError(
            f"n {n}: each set takes at most half the split (the other half is the yardstick): {half} here", key="n"
        )
    if n is not None and n < 2 * K_NEIGHBOURS:
        raise VaekitError(f"n {n}: precision and recall (k = {K_NEIGHBOURS}) need {2 * K_NEIGHBOURS} or more", key="n")
    if (n or half) < 2 * K_NEIGHBOURS:
        raise VaekitError(f"sample quality needs a test split of at least {4 * K_NEIGHBOURS} items, got {items}")
    return n or half


@keeps_rng
def quality_benchmark(
    samples: Callable[[int], Tensor] | Tensor,
    test_x,
    features: nn.Module,
    n: int | None = None,
    seed: int = 0,
    kid_subsets: int = 50,
) -> dict:
    """FID, KID, precision and recall of ``samples`` (a tensor (M, *shape), or a callable n -> (n, *shape), e.g.
    ``run.sample``) against half A of ``test_x``, and the same figures for half B (the data-vs-data floor).

    ``n`` items per set (default: half the test split). Returns {"n", "samples": {...}, "data_vs_data": {...}},
    and "fid_caveat" (a line) where no more items than features make the covariances rank-deficient, or where
    uniform noise scores as well as or better than the samples (``noise_caveat``).
    """
    a, b = halves(len(test_x), seed)
    n = set_size(n, len(test_x))
    test_x = torch.as_tensor(np.asarray(test_x), dtype=torch.float32)
    real, other = embed(features, test_x[a[:n]], what="real items"), embed(features, test_x[b[:n]], what="real items")
    caveats = []  # said, and kept with the figures (quality.json's "fid_caveat", the report's page)
    if n <= real.shape[1]:
        caveats.append(
            f"{n} items per set, {real.shape[1]} features: the covariances are rank-deficient, FID is unreliable"
        )
        note(caveats[-1])
    if callable(samples):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            samples = samples(n)
    figures = compare(real, embed(features, samples[:n], what="samples"), kid_subsets, seed=seed)
    caveats += noise_caveat(features, real, test_x[a[:n]], figures, seed)
    return {
        "n": n,
        "samples": figures,
        "data_vs_data": compare(real, other, kid_subsets, seed=seed),
        **({"fid_caveat": "; ".join(caveats)} if caveats else {}),
    }


def noise_caveat(features: nn.Module, real: Tensor, items: Tensor, figures: dict, seed: int = 0) -> list[str]:
    """[a line] where uniform noise over the range of the real ``items`` (n, *shape), of features ``real`` (n, F),
    scores an FID no higher or a precision no lower than the samples' ``figures`` (the features at this size tell
    little from noise, as digits' at 90 items per set: noise FID 11.1 or 12.6, VAEs' 13.1 and 31.7; or the samples
    are no better than noise), else []."""
    low, high = float(items.min()), float(items.max())
    noise = low + (high - low) * torch.rand(items.shape, generator=torch.Generator().manual_seed(seed))
    got = compare(real, embed(features, noise, what="uniform noise"), kid_subsets=2, seed=seed)
    as_well = {"FID": got["fid"] <= figures["fid"], "precision": got["precision"] >= figures["precision"]}
    pairs = [(k, f"{got[k.lower()]:.3g}", f"{figures[k.lower()]:.3g}") for k, tie in as_well.items() if tie]
    if not pairs:
        return []
    better = {a != b for _, a, b in pairs}  # as the figures are shown: "(1 against 1)" is no better
    how = "better than" if better == {True} else "as well as" if better == {False} else "as well as or better than"
    line = (
        f"uniform noise scores {how} the samples on {' and '.join(f'{k} ({a} against {b})' for k, a, b in pairs)}: "
        f"at {len(items)} items per set on these features the figures do not show the samples better than noise"
    )
    note(line)
    return [line]


def sample_source(
    run: Run,
    sampler: str | None,
    y: torch.Tensor | None = None,
    keep: dict | None = None,
    temperature: float | list[float] = 1.0,
) -> Callable[[int], Tensor]:
    """n -> (n, *shape) samples of the run: from its prior at ``temperature`` (``Run.sample``'s) or ``sampler``.
    A conditional run draws each sample's class as often as in the labels ``y`` (N,) (the training split's, as
    ``table_quality`` draws its rows' labels, so the samples follow the data's class mix), or evenly without
    labels; ``keep`` gets its x and classes y (n,)."""
    if sampler is not None or not run.model.needs_labels:
        return lambda n: run.sample(n, temperature, sampler=sampler)

    def draw(n: int) -> torch.Tensor:
        if y is not None and len(y):
            labels = y[torch.randint(len(y), (n,))]  # (n,) labels, seeded by the caller
            x = run.sample(n, temperature, label=labels)
        else:
            k = run.config.model.num_classes
            x, pick = run.sample_classes(-(-n // k), temperature), torch.randperm(-(-n // k) * k)[:n]
            x, labels = x[pick], torch.arange(k).repeat_interleave(-(-n // k))[pick]
        if keep is not None:
            keep.update(x=x, y=labels)
        return x

    return draw


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Images x (B, C, H, W) blurred by a separable Gaussian of std ``sigma`` pixels (edges replicated): the
    FID sanity check's degradation."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).expand(x.shape[1], 1, -1)  # (C, 1, 2r + 1): one kernel per channel
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")
    x = torch.nn.functional.conv2d(x, k[..., None, :], groups=x.shape[1])
    return torch.nn.functional.conv2d(x, k[..., :, None], groups=x.shape[1])


def _round(v: Tensor | float) -> float:
    return float(f"{float(v):.6g}")
