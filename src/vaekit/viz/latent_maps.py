"""Latent maps of a run: posterior means coloured by label (a scatter, a PCA projection or a strip) beside the
decoded manifold of 2-D codes over the prior's quantiles; PNG out, or (path None) a ``PIL.Image.Image``."""

from __future__ import annotations

from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..core.contract import latent_size
from ..data.labels import label_numbers, plain_labels, run_classes
from ..data.lazy import LazyArray
from ..data.torch_items import TorchSource
from ..data.user import loader_dataset
from ..errors import VaekitError
from ..evaluation.metrics import encode_means
from ..runs import LabelsLike, Run
from ..samplers import need_run
from .latent_walks import decode_mean
from .picture_rules import Named, out_path
from .plots import Columns, _figure, _picture, _save_figure, image_grid, is_image, stamped, table_columns
from .prior_frame import GRID, check_grid, quantile_grid

LEGEND_MAX = 60  # more classes than this, or labels with fractions, get a colour bar instead of a legend
MARKERS = "os^"  # beyond 20 classes, tab20's colours again with the next marker: LEGEND_MAX classes told apart


def _scatter(ax, z: np.ndarray, title: str, y: np.ndarray | None, labels: list[str] | None = None) -> None:
    """Points z (N, 2) coloured by label y (N,): a legend of up to ``LEGEND_MAX`` classes named by ``labels``
    (tab10, tab20, then tab20 with other markers), else (continuous values, many classes) a colour bar."""
    if y is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
        ax.set(title=title)
        return
    classes, continuous = np.unique(y), y.dtype.kind == "f" and not np.all(y == np.round(y))
    if continuous or len(classes) > LEGEND_MAX:
        points = ax.scatter(z[:, 0], z[:, 1], c=y, s=4, alpha=0.6, cmap="viridis")
        ax.figure.colorbar(points, ax=ax, label="label" if continuous else "label number")
        ax.set(title=title)
        return
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, k in enumerate(classes):
        name = labels[int(k)] if labels and 0 <= k < len(labels) else str(int(k) if y.dtype.kind == "f" else k)
        style = {"color": cmap(i % cmap.N), "marker": MARKERS[i // 20], "label": name}
        ax.scatter(z[y == k, 0], z[y == k, 1], s=4, alpha=0.6, **style)
    ncol = 1 + (len(classes) - 1) // 20
    ax.legend(markerscale=3, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=ncol)
    ax.set(title=title)


def _labels(run: Run, y: object, classes: list[str] | None) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels y (N,) as given -> (the values points are coloured by (N,), the names of label numbers): class
    names as the run's label numbers (a conditional run's must be its classes; otherwise names that are not the
    run's classes are numbered in sorted order); whole numbers as label numbers named by ``classes`` or the run's,
    read as the run reads labels given to it (``label_numbers``: one none of them names is refused in one line
    listing them; a run that names no classes, and is not conditional, colours by any number); fractions as they
    are (a colour bar)."""
    names = classes if classes is not None else run.classes
    if y is None:
        return None, names
    arr = plain_labels(y.reshape(-1) if isinstance(y, (Tensor, np.ndarray)) else y, "y", "y")
    ours, k = run.classes, run.config.model.num_classes if run.model.needs_labels else None
    if arr.dtype.kind not in "US":
        fractions = arr.dtype.kind == "f" and not np.all(arr == np.round(arr))  # a measurement: a colour bar
        if not (names or k) or (fractions and k is None):  # any numbers, or a measurement: as they are
            return arr, names
        try:  # label numbers of named classes (or of a conditional model's)
            return label_numbers(arr, names, k), names or run_classes(None, k)
        except VaekitError as e:
            raise VaekitError(f"y: {e}", key="y") from None
    text = np.char.strip(arr.astype(str))
    if run.model.needs_labels or (ours and set(text.tolist()) <= set(ours)):
        return label_numbers(text, ours, k), run_classes(ours, k)
    found, index = np.unique(text, return_inverse=True)
    return index.reshape(-1).astype(np.int64), [str(v) for v in found]


TorchData = torch.utils.data.Dataset | torch.utils.data.DataLoader


def _items(run: Run, x: Mapped, y: Labels, keys: tuple[str | None, str | None]) -> tuple[Tensor | LazyArray, Labels]:
    """(x (N, *shape) as the map encodes it, labels y): a torch Dataset's (or DataLoader's) items read lazily as
    ``fit`` reads them (``keys``: x_key and y_key of dict items; a loader's sampler or collate_fn refused, as
    there), with their labels where y is None; an array as a float32 tensor; a tensor or lazy items as they are."""
    if not isinstance(x, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        if keys != (None, None):
            raise VaekitError(f"x_key and y_key name the entries of a Dataset's dict items; x is a {type(x).__name__}")
        return (torch.as_tensor(x, dtype=torch.float32) if isinstance(x, np.ndarray) else x), y
    expected = tuple(run.config.model.input_shape) or None
    source = TorchSource(loader_dataset(x, "x"), "x", *keys, expected=expected)
    return LazyArray(source, np.arange(len(source))), source.labels() if y is None and source.labelled else y


@torch.no_grad()
def manifold(run: Run, grid: int = GRID, y: LabelsLike | None = None) -> Tensor:
    """Decode a 2-D latent grid over the prior's 5%..95% quantiles -> (grid * grid, *shape): a conditional run's
    p(z|y) of class ``y`` (its loc + scale * q per dim, ``prior_frame``), else N(0, I)'s.

    Rows run from high to low z[1] (top to bottom of a picture), columns from low to high z[0]. Only for runs
    whose latent size D is 2.
    """
    need_run(run, "manifold")
    run.unconditional_label(y, "its manifold", "y")
    grid, d = check_grid(grid), latent_size(run.model)
    if d != 2:
        raise VaekitError(f"the manifold decodes 2-D codes; this run's latent size is {d} (latent_map shows any size)")
    return decode_mean(run, quantile_grid(run, grid, y), y)


Mapped = Tensor | LazyArray | np.ndarray | TorchData  # items (N, *shape) a latent map encodes
Labels = Tensor | np.ndarray | None


Key = str | None  # x_key, y_key: the entries of a Dataset's dict items


@overload
def latent_map(
    run: Run,
    x: Mapped,
    y: Labels,
    path: None = None,
    grid: int = GRID,
    classes: list[str] | None = None,
    *,
    x_key: Key = None,
    y_key: Key = None,
) -> Image.Image: ...
@overload
def latent_map(
    run: Run,
    x: Mapped,
    y: Labels,
    path: Named,
    grid: int = GRID,
    classes: list[str] | None = None,
    *,
    x_key: Key = None,
    y_key: Key = None,
) -> Path: ...
def latent_map(
    run: Run,
    x: Mapped,
    y: Labels,
    path: Named | None = None,
    grid: int = GRID,
    classes: list[str] | None = None,
    *,
    x_key: Key = None,
    y_key: Key = None,
) -> Path | Image.Image:
    """Posterior means of x (N, *shape; or a torch Dataset or DataLoader, as ``fit`` takes one, dict items read
    by ``x_key`` and ``y_key``, whose labels colour its items where y is None) coloured by label y (N,)
    (tensors, numpy arrays or lists: label numbers named by ``classes`` or the run's, read as the run reads
    labels given to it, one that names none of them refused in one line listing them; class names; or
    continuous values shown by a colour bar), written as the PNG file ``path`` (a str or os.PathLike whose name
    ends in .png, in any case; returned), or, path None, returned as a ``PIL.Image.Image``, as ``save_samples``:
    a scatter and the decoded ``grid`` x ``grid`` manifold for 2-D latents, a PCA projection (scikit-learn) for
    more dims, a strip for one.
    The PNG records the digest of the run's weights, as the run's other pictures do (``Run.stale_files``).
    ``grid`` changed from its default is refused for codes not 2-D."""
    need_run(run, "latent_map")
    grid, d = check_grid(grid), latent_size(run.model)
    if grid != GRID and d != 2:  # told from the default, as the conflicts table tells a changed setting
        raise VaekitError(
            f"grid cannot take effect: the decoded manifold needs 2-D codes; this run's are {d}-D", key="grid"
        )
    out = out_path(path, "latent_map")  # a file name ending in .png, None, or one line
    x, y = _items(run, x, y, (x_key, y_key))
    if len(x) < 2:
        raise VaekitError(f"the latent map places items against each other: it needs 2 or more, got {len(x)}")
    yn, names = _labels(run, y, classes)
    if yn is not None and len(yn) != len(x):
        raise VaekitError(f"y has {len(yn)} labels for {len(x)} items: expected shape ({len(x)},)", key="y")
    yt = None if yn is None else torch.tensor(yn)  # label numbers where the run is conditional (a copy)
    loc = encode_means(run, x, yt).numpy()  # (N, D)
    if loc.shape[1] == 2:
        fig, axes = _figure(2, width=5.5, height=5)
        _scatter(axes[0], loc, "posterior means", yn, names)
        _draw_manifold(axes[1], run, x, grid, None if yt is None else yt[:1], names)
    else:
        fig, (ax,) = _figure(1, width=5.5, height=5)
        _scatter(ax, *_projection(loc), yn, names)
    with stamped(run.digest):
        return _picture(fig, out, _save_figure)


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
    y = y if run.model.needs_labels else None  # an unconditional run's labels colour the points alone
    xs, k = manifold(run, grid, y), None if y is None else int(y[0])
    of = "" if k is None else f" of class {names[k] if names and 0 <= k < len(names) else k}"
    if is_image(tuple(x.shape[1:])):
        arr = image_grid(xs, nrow=grid, pad=0)
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
        ax.set(title=f"decoded manifold{of} (prior quantiles)", xticks=[], yticks=[])
        return
    f, cols = xs.flatten(1).numpy(), table_columns(run) or Columns()  # (grid^2, features); their names
    ax.scatter(f[:, 0], f[:, 1] if f.shape[1] > 1 else np.zeros(len(f)), c=np.arange(len(f)), s=8, cmap="viridis")
    ylabel = cols.name(1) if f.shape[1] > 1 else ""
    ax.set(title=f"decoded manifold{of}: its first two columns", xlabel=cols.name(0), ylabel=ylabel)
