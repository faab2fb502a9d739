"""Latent maps of a run: posterior means coloured by label (a scatter, a PCA projection or a strip) beside the
decoded manifold of 2-D codes over the prior's quantiles; PNG out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.contract import latent_size
from ..data.lazy import LazyArray
from ..errors import VaekitError
from ..evaluation.metrics import encode_means
from ..runs import Run
from .figures import decode_mean
from .plots import _figure, _save_figure, image_grid, is_image, stamped
from .prior_frame import GRID, check_grid, quantile_grid


def _scatter(ax, z: np.ndarray, title: str, y: np.ndarray | None, labels: list[str] | None = None) -> None:
    """Points z (N, 2) coloured by label y (N,)."""
    if y is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        for k in np.unique(y):
            name = labels[k] if labels and 0 <= k < len(labels) else str(k)
            ax.scatter(z[y == k, 0], z[y == k, 1], s=4, alpha=0.6, label=name)
        ax.legend(markerscale=3, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set(title=title)


@torch.no_grad()
def manifold(run: Run, grid: int = GRID, y: Tensor | None = None) -> Tensor:
    """Decode a 2-D latent grid over the prior's 5%..95% quantiles -> (grid * grid, *shape): a conditional run's
    p(z|y) of class ``y`` (its loc + scale * q per dim, ``prior_frame``), else N(0, I)'s.

    Rows run from high to low z[1] (top to bottom of a picture), columns from low to high z[0]. Only for runs
    whose latent size D is 2.
    """
    grid, d = check_grid(grid), latent_size(run.model)
    if d != 2:
        raise VaekitError(f"the manifold decodes 2-D codes; this run's latent size is {d} (latent_map shows any size)")
    return decode_mean(run, quantile_grid(run, grid, y), y)


def latent_map(
    run: Run,
    x: Tensor | LazyArray | np.ndarray,
    y: Tensor | np.ndarray | None,
    path: str | Path,
    grid: int = GRID,
    classes: list[str] | None = None,
) -> Path:
    """Posterior means of x (N, *shape) coloured by label y (N,) (tensors or numpy arrays), written as the PNG
    ``path``: a scatter and the decoded ``grid`` x ``grid`` manifold for 2-D latents, a PCA projection
    (scikit-learn) for more dims, a strip for one. The PNG records the digest of the run's weights, as the run's
    other pictures do (``Run.stale_files``). ``grid`` changed from its default is refused for codes not 2-D."""
    grid, d = check_grid(grid), latent_size(run.model)
    if grid != GRID and d != 2:  # told from the default, as the conflicts table tells a changed setting
        raise VaekitError(
            f"grid cannot take effect: the decoded manifold needs 2-D codes; this run's are {d}-D", key="grid"
        )
    if Path(path).suffix.lower() != ".png":
        raise VaekitError(f"{path}: expected a .png file name", key="out")
    if len(x) < 2:
        raise VaekitError(f"the latent map places items against each other: it needs 2 or more, got {len(x)}")
    x = torch.as_tensor(x, dtype=torch.float32) if isinstance(x, np.ndarray) else x
    y = None if y is None else torch.as_tensor(y).cpu().reshape(-1)
    if y is not None and len(y) != len(x):
        raise VaekitError(f"y has {len(y)} labels for {len(x)} items: expected shape ({len(x)},)", key="y")
    loc = encode_means(run, x, y).numpy()  # (N, D)
    yn, d = None if y is None else y.numpy(), loc.shape[1]
    if d == 2:
        fig, axes = _figure(2, width=5.5, height=5)
        _scatter(axes[0], loc, "posterior means", yn, classes)
        _draw_manifold(axes[1], run, x, grid, None if y is None else y[:1], classes)
    else:
        fig, (ax,) = _figure(1, width=5.5, height=5)
        _scatter(ax, *_projection(loc), yn, classes)
    with stamped(run.digest):
        return _save_figure(fig, path)


def _projection(loc: np.ndarray) -> tuple[np.ndarray, str]:
    """Posterior means (N, D) of D != 2 as points (N, 2) and their title: a jittered strip for D = 1, else PCA."""
    d = loc.shape[1]
    if d == 1:
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(loc))
        return np.stack([loc[:, 0], jitter], 1), "posterior means (z, jittered)"
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=0).fit(loc)  # its randomised solver (large codes) seeded: the same map each time
    title = f"posterior means, PCA of {d} dims ({pca.explained_variance_ratio_.sum():.0%} variance)"
    return pca.transform(loc), title


def _draw_manifold(ax, run: Run, x: Tensor | LazyArray, grid: int, y: Tensor | None, names: list[str] | None) -> None:
    """The decoded manifold as one image grid (images) or its first two features coloured by z (tables); a
    conditional run's of the first item's class y (1,), over its p(z|y), the class named in the title."""
    xs, k = manifold(run, grid, y), None if y is None or not run.model.needs_labels else int(y[0])
    of = "" if k is None else f" of class {names[k] if names and 0 <= k < len(names) else k}"
    if is_image(tuple(x.shape[1:])):
        arr = image_grid(xs, nrow=grid, pad=0)
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
        ax.set(title=f"decoded manifold{of} (prior quantiles)", xticks=[], yticks=[])
        return
    f = xs.flatten(1).numpy()  # (grid^2, features)
    ax.scatter(f[:, 0], f[:, 1] if f.shape[1] > 1 else np.zeros(len(f)), c=np.arange(len(f)), s=8, cmap="viridis")
    ax.set(title=f"decoded manifold{of}: features 0, 1", xlabel="feature 0", ylabel="feature 1")
