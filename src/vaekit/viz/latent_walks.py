"""Codes walked and decoded, the latent pictures' contents: lerp and slerp paths between two items' codes
(``interpolate``; a discrete code's points snapped to codes its decoder reads) and traversals of a continuous
code's dims (``traverse``, ``traversals``; a discrete code's are ``discrete_sweeps``'). ``figures`` draws them and
re-exports every name here."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import one_hot

from .. import logs
from ..core.contract import latent_size, mean_of
from ..core.discrete import CodePrior
from ..data import Split
from ..data.containers import is_frame
from ..data.lazy import LazyArray, drawn_once, head, head_split
from ..errors import VaekitError
from ..evaluation.active import ACTIVE_THRESHOLD
from ..evaluation.metrics import encode_means
from ..evaluation.outputs import prepared_split
from ..models.gumbel import GumbelVAE
from ..models.vq import VQVAE
from ..run_reads import reading
from ..runs import LabelsLike, Run
from .picture_rules import top_dims, vector
from .prior_frame import prior_frame

N_DIMS = 8  # the dims traversed where no number is given (n_dims None): at most those the decoder reads


def lerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Straight line between codes z0, z1 (D,) at times t (T,) -> (T, D); t = 0 and 1 give z0 and z1 exactly."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for VAEs), (T, D); falls back to lerp for parallel codes."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4 or torch.sin(omega).abs() < 1e-6:
        return lerp(z0, z1, t)
    t = t[:, None]
    a, b = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)  # (T, 1)
    return a * z0 + b * z1  # the weights are exactly 1 and 0 at the ends, so are the end points


@reading
def decode_mean(run: Run, z: Tensor, y: LabelsLike | None = None) -> Tensor:
    """Means of p(x|z) (``mean_of``) for codes z (N, D) -> (N, *shape) on the CPU, the model in eval mode."""
    return mean_of(run.model.decode(z.to(run.device), run.labels(y, len(z)))).cpu()


@reading
def interpolate(run: Run, x: Tensor, steps: int = 10, y: LabelsLike | None = None) -> dict[str, Tensor]:
    """Decode the paths between the posterior means of two items x (2, *shape): {"lerp", "slerp"} -> (steps, *shape).

    A conditional model decodes the whole path with the first item's label ``y[0]`` (``y``: as ``Run.encode``
    takes it), so the last point is the second item's code decoded as the first item's class. A discrete code's
    points in between are no code its decoder was trained on: each is decoded ``snapped`` (a VQ run's to its
    nearest codebook vectors, a gumbel run's to the one-hots of its most probable categories), and a note says so.
    """
    shape, items = getattr(x, "shape", None), tuple(run.config.model.input_shape)  # a frame's: encoded later
    if (shape is not None and not is_frame(x) and tuple(shape[1:]) != items) or len(x) != 2:  # one item (6,)
        got = f"shape {tuple(shape)}" if shape is not None else f"{len(x)} items"
        raise VaekitError(f"x must be two items (2, *shape) = {(2, *items)}, got {got}")
    if steps < 2:
        raise VaekitError(f"interpolation needs at least 2 steps, got {steps}")
    run.unconditional_label(y, "its paths", "y")
    y2 = run.labels(y, 2, "y")  # (2,) label numbers (one label: repeated), None for an unconditional run
    loc, t = mean_of(run.encode(x, y2)).cpu(), torch.linspace(0, 1, steps)  # (2, D), (steps,)
    ya = None if y2 is None else y2[:1]  # a conditional path keeps the first item's label
    if (family := discrete_family(run)) is not None:
        logs.note(f"interpolate: this {family} run's path points are {SNAPPED[family]}")
    paths = (("lerp", lerp), ("slerp", slerp))
    return {name: decode_mean(run, snapped(run, f(loc[0], loc[1], t)), ya) for name, f in paths}


SNAPPED = {  # a discrete family: how ``snapped`` decodes a point between two codes (a note's words)
    "gumbel": "decoded as one-hots, each variable at its most probable category (argmax of the interpolated class "
    "probabilities): the codes its decoder reads",
    "vq": "decoded at the nearest codebook vector of each grid position: a point between two codes is none its "
    "decoder reads",
}


def snapped(run: Run, z: Tensor) -> Tensor:
    """Codes z (T, D) on the CPU made codes the run's decoder reads: a VQ run's each D-vector of its grid (D * h *
    w, channel-major) as its nearest codebook vector (``CodePrior.indices``); a gumbel run's N variables of K
    each as the one-hot of its largest entry (argmax: the most probable category, of class probabilities); a
    continuous code's as they are."""
    family = discrete_family(run)
    inner = next((m for m in run.model.modules() if isinstance(m, VQVAE | GumbelVAE)), None)  # a wrapper's too
    if family == "vq" and isinstance(inner, VQVAE):
        grids = CodePrior(inner.codebook, inner.grid)  # code grids of the codebook: indices() the nearest codes
        return grids.vectors(grids.indices(z.to(inner.codebook.device))).to(z)
    if family == "gumbel":
        k = inner.categories if isinstance(inner, GumbelVAE) else run.config.model.categories
        return one_hot(z.unflatten(-1, (-1, k)).argmax(-1), k).flatten(-2).to(z)
    return z


@reading
def traverse(
    run: Run,
    z: Tensor | np.ndarray | list[float],
    dims: list[int] | np.ndarray | Tensor,
    values: Tensor | np.ndarray | list[float],
    y: LabelsLike | None = None,
    scale: Tensor | None = None,
) -> Tensor:
    """Set each of ``dims`` of the base code z (D,) to each of ``values`` (V,) and decode: (len(dims), V, *shape);
    with ``scale`` (D,), dim i to z[i] + scale[i] * values instead (values in sds of a prior around its mean z).

    z and values may be tensors, numpy arrays or lists; D is the run's latent size (all levels of a deep run).
    A discrete code (gumbel, vq) is refused in one line: its sweeps are ``viz.discrete_sweeps``'.
    """
    refuse_discrete(run)
    run.unconditional_label(y, "its traversals", "y")
    d = latent_size(run.model)
    z, values = vector(z, "z", d), vector(values, "values")
    scale = None if scale is None else vector(scale, "scale", d)
    idx = np.asarray(dims)
    if idx.ndim != 1 or not len(idx) or idx.dtype.kind not in "iu" or not all(0 <= i < d for i in idx):
        raise VaekitError(f"dims {dims}: expected latent dimensions in 0..{d - 1}", key="dims")
    if unread := sorted(set(idx.tolist()) - set(read := decoded_dims(run, y))):
        raise VaekitError(
            f"dims {unread}: this run's decoder reads only dims {spans(read)} (its other levels act on the items "
            f"only through those): traverse dims of {spans(read)}",
            key="dims",
        )
    codes = z.repeat(len(idx), len(values), 1)  # (R, V, D)
    for r, i in enumerate(idx.tolist()):
        codes[r, :, i] = values if scale is None else z[i] + scale[i] * values
    x = decode_mean(run, codes.flatten(0, 1), y)
    return x.view(len(idx), len(values), *x.shape[1:])


@reading
def traversals(
    run: Run,
    x: Tensor | LazyArray,
    y: Tensor | None = None,
    dims: list[int] | None = None,
    n_dims: int | None = N_DIMS,
    span: float = 3.0,
    steps: int = 9,
    item: int | None = None,
    rank_on: int | None = None,
    label: LabelsLike | None = None,
) -> tuple[Tensor, list[int], Tensor]:
    """Traversals of ``dims`` (default: the ``n_dims`` (None: ``N_DIMS``) most active, ``active_dims``, over the
    first ``rank_on`` items of x (N, *shape), all for None; ``ranked_dims`` ranks a split as ``evaluate`` scores
    it), values (V,) from -span to span: (decoded (R, V, *shape), dims, values). Around
    item ``item``'s posterior mean, each dim set to the values; without an item, over the prior (``prior_frame``:
    p(z|y) of class y[0] for a conditional run, else N(0, I)): from its mean, each dim swept over its mean +
    its sd * values, as the manifold spans its quantiles (the values in sds; N(0, I)'s: the values themselves).
    ``item`` is any index of x; y (N,) labels a conditional run, which decodes (and takes its prior) as class
    ``label`` (a number or name, as ``Run.sample`` takes it; default the base item's label, y[item or 0])."""
    refuse_discrete(run)
    if item is not None and not 0 <= item < len(x):
        raise VaekitError(f"item {item}: expected an index in 0..{len(x) - 1}", key="item")
    if dims is None:  # only the items ranked are encoded
        dims = active_dims(run, head(x, rank_on), None if y is None else y[:rank_on], n_dims)
    at = slice(item or 0, (item or 0) + 1)
    ya = None if y is None or not run.model.needs_labels else y[at]  # a data set's labels, given for any run
    yd = ya if label is None else run.labels(label, 1)  # (1,) the class decoded; None for an unconditional run
    values = torch.linspace(-span, span, steps)
    if item is not None:  # the item encoded with its own label
        return traverse(run, encode_means(run, x[at], ya)[0], dims, values, yd), dims, values
    loc, scale = prior_frame(run, yd)  # (D,) each
    return traverse(run, loc, dims, values, yd, scale), dims, values


@reading
def active_dims(
    run: Run, x: Tensor | LazyArray, y: Tensor | None = None, n_dims: int | None = N_DIMS, say: bool = False
) -> list[int]:
    """Up to ``n_dims`` (None: ``N_DIMS``, the default) of the dims the decoder reads (``decoded_dims``), those
    whose posterior means vary most over the items x (N, *shape) first (y (N,): a conditional run's labels), those
    not active (a variance of at most ACTIVE_THRESHOLD, as ``evaluate`` counts active units) left out unless none
    is; ``say``: a note where fewer are active than asked, or than the default takes (``fewer_active``)."""
    spread, among = encode_means(run, x, y).var(0), decoded_dims(run, y)  # (D,), the dims decoded
    n, asked = (N_DIMS, False) if n_dims is None else (n_dims, True)
    if say and (line := fewer_active(spread, n, among, len(x), asked)) is not None:
        logs.note(line)
    return top_dims(spread, n, among=among)


def ranked_dims(
    run: Run, s: Split, y: Tensor | None, n_dims: int | None, spec: str | None, split: str, n: int = 2000
) -> list[int]:
    """``active_dims`` of the first ``n`` items of ``s`` (``split`` of the data ``spec``, as given; y (N,) a
    conditional run's labels) as ``evaluate`` scores them (``evaluated_as``), as the report ranks them; a note
    where fewer are active than ``n_dims`` (None: the default, ``N_DIMS`` at most). A discrete code is refused
    first (``refuse_discrete``)."""
    refuse_discrete(run)
    return active_dims(run, evaluated_as(run, s, n, spec, split), None if y is None else y[:n], n_dims, True)


def fewer_active(spread: Tensor, n_dims: int, among: list[int], n: int, asked: bool = True) -> str | None:
    """The line where fewer of the dims ``among`` are active (the variance ``spread`` (D,) of their posterior
    means over n items above ACTIVE_THRESHOLD) than the ``n_dims`` asked (``asked``; else the default's ``n_dims``,
    at most ``among``'s: "4 dims by default"), saying which ``top_dims`` shows."""
    active, most = int((spread[among] > ACTIVE_THRESHOLD).sum()), min(n_dims, len(among))
    if active >= most:
        return None
    of = f" of the {len(among)} its decoder reads" if len(among) < len(spread) else ""
    shown = f"showing {'it' if active == 1 else 'them'}" if active else f"showing the {most} that vary most"
    rule = f"posterior-mean variance over {n} items > {ACTIVE_THRESHOLD}"
    said = f"{n_dims} dims asked" if asked else f"{most} dims by default"
    return f"{said}, {active or 'none'} active{of} ({rule}): {shown}"


def evaluated_as(
    run: Run, s: Split, n: int | None = None, spec: str | None = None, split: str | None = None
) -> Tensor | LazyArray:
    """The first ``n`` items of the split ``s`` as ``evaluate`` scores them: a binarised run's drawn once, as in
    training, by their rows (``drawn_once``) where ``undrawn``; split all of the data ``spec`` (None: the run's)
    as given (``split`` "all": its items keyed by their files, which ``s`` keeps not) read again so drawn."""
    if not undrawn(run, s):
        return head(s.x, n)
    if split == "all":
        return prepared_split(run, spec, "all", n)[0].x
    return drawn_once(head_split(s, n), run.config.train.seed).x


def undrawn(run: Run, s: Split) -> bool:
    """Whether ``s`` may hold a binarised run's items as given (grey: the pictures', a dynamic run's train split),
    not drawn once as ``evaluate`` draws them (drawing binary items again leaves them as they are)."""
    return run.config.data.binarize in ("dynamic", "fixed") and not s.fixed


def discrete_family(run: Run) -> str | None:
    """The family of a run whose code is discrete, "gumbel" or "vq" (by its config, or its model's class); None
    for a continuous code."""
    family = run.config.model.family
    if family in SWEEPS:
        return family
    return "gumbel" if isinstance(run.model, GumbelVAE) else "vq" if isinstance(run.model, VQVAE) else None


SWEEPS = {  # a discrete family: what its code is, and what draws its sweeps instead of traversals
    "gumbel": ("N one-hots of K categories", "category_sweeps"),
    "vq": ("a grid of codebook vectors", "code_sweeps"),
}


def refuse_discrete(run: Run) -> None:
    """One line for a discrete run: setting a coordinate of its code to -R..R gives no code its decoder reads."""
    if (family := discrete_family(run)) is not None:
        what, sweep = SWEEPS[family]
        raise VaekitError(
            f"traversals set one coordinate of a continuous code to values from -R to R; this {family} run's code "
            f"is {what}, so none of those is a code its decoder reads: vaekit.viz.discrete_sweeps.{sweep}(run, x) "
            "sweeps its codes instead (the report's sweeps picture, `vaekit report`)",
            key="model.family",  # no dims make it traversable: the family is why
        )


@reading
def decoded_dims(run: Run, y: LabelsLike | None = None) -> list[int]:
    """The dims of the code (D,) that ``decode`` reads: every dim of a flat model; of a hierarchy, the levels
    whose change moves the decoded mean (a ladder's decoder reads z_1 alone: the levels above act on the items
    only through z_1's prior and posterior). Probed: a zero code and one per level with that level set to 2,
    decoded (label y[0])."""
    sizes = list(run.model.latent_dims)
    if len(sizes) == 1:
        return list(range(sizes[0]))
    ends = np.cumsum([0, *sizes])  # level l holds dims ends[l]..ends[l + 1] - 1
    codes = torch.zeros(len(sizes) + 1, int(ends[-1]))
    for level in range(len(sizes)):
        codes[level + 1, ends[level] : ends[level + 1]] = 2.0
    one = y[:1] if isinstance(y, (Tensor, np.ndarray, list, tuple)) else y  # the first label of several
    x = decode_mean(run, codes, one).flatten(1)  # (L + 1, item size)
    moved = (x[1:] - x[:1]).abs().amax(1) > 1e-6 * (1 + x[0].abs().amax())  # (L,)
    read = [i for level in moved.nonzero().flatten().tolist() for i in range(ends[level], ends[level + 1])]
    return read or list(range(int(ends[-1])))  # none moves it (a decoder untrained or dead): all alike


def spans(dims: list[int]) -> str:
    """Sorted dims as their runs, e.g. "4..11" or "0..3, 8..11"."""
    out, start = [], 0
    for k, i in enumerate(dims):
        start = i if k == 0 or i != dims[k - 1] + 1 else start
        if k == len(dims) - 1 or dims[k + 1] != i + 1:
            out.append(f"{start}..{i}" if i > start else str(i))
    return ", ".join(out)
