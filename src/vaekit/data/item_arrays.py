"""Arrays of items (N, *shape) as readers and the user hand them over: their layout ((N, D) tables, (N, C, H, W)
images), the divisor that brings images to [0, 1] (uint8: 255, uint16: 65,535, as 16-bit image files are
divided), the refusal of values that are no numbers (NaN, inf; a table's column with none named as such), and
float images that hold 8-bit pixels not divided by 255 (whole numbers 0..255), said where they are met; and items
at a finite end of a user's p(x|z)'s support where its log-density is not finite (``refuse_edge``)."""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.distributions import Distribution

from ..core.likelihoods import DIVIDE_HINT, GAUSSIAN_HINT, ROUND_HINT, SUPPORT, check_support, name_of, support
from ..errors import VaekitError
from .float32 import fits_float32
from .pixels import CHANNELS

IMAGE_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}  # an image dtype's divisor to [0, 1]
EIGHT_BIT = "values look like 8-bit pixels (0..255): pass uint8 or divide by 255"
SMALL_TOP = 16.0  # whole numbers up to it are a scale of their own (8x8 digits' 0..16), not 8-bit pixels
SMALL_NUMBERS = "values are whole numbers 0..{top:g}, not 8-bit pixels: divide by their maximum ({top:g}) for [0, 1]"
LOOKED_AT = 10_000  # items whose values ``eight_bit_values`` reads (as ``prepare.auto_settings`` reads as many)
CHUNK_BYTES = 1 << 20  # of a file's items read and cast at a time by ``float_items`` and ``check_items``


def to_layout(arr: np.ndarray, where: str) -> np.ndarray:
    """Bring an array to (N, D) or (N, C, H, W); (N, H, W) gains a channel, NHWC is permuted: a 4-D array whose
    last axis is 1 to 4 (``pixels.CHANNELS``: 2 is grey + alpha) and whose second is not (shape[1] of 1 to 4 reads
    as channels-first: kept)."""
    if arr.dtype.kind not in "biuf":
        raise VaekitError(f"{where}: dtype {arr.dtype} is not numeric")
    if arr.ndim not in (2, 3, 4):
        raise VaekitError(f"{where}: expected 2-D (N, D) table or 3/4-D image array, got shape {tuple(arr.shape)}")
    if 0 in arr.shape:
        raise VaekitError(f"{where}: array of shape {tuple(arr.shape)} holds no data")
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim == 4 and arr.shape[3] in CHANNELS and arr.shape[1] not in CHANNELS:
        return arr.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    from .images import note_once
    from .pixels import flat_images

    if arr.ndim == 2 and (said := flat_images(arr.shape, arr.dtype, where)):  # flattened images, read as a table
        note_once(said)  # it names no N: a streamed file's batches say it once
    return arr


def image_scale(x: np.ndarray) -> float:
    """The divisor that brings images ``x`` (N, C, H, W) to [0, 1]: 255 for uint8, 65,535 for uint16 (as 16-bit
    image files and PIL I;16 items are divided); 1 for other dtypes and for tables (N, D): left as they are."""
    return IMAGE_SCALES.get(x.dtype, 1.0) if x.ndim == 4 else 1.0


def check_finite(
    x: torch.Tensor | np.ndarray, where: str, rows: np.ndarray | None = None, names: Sequence[str] | None = None
) -> None:
    """Raise VaekitError naming ``where`` if ``x`` holds any NaN or infinite value; for a table (N, D) a column
    with no value at all (every cell NaN) is named (``names``: the columns'; ``empty_column``); for items (N, ...)
    the line also names the first item holding one (its number in ``rows`` (N,), its file's, when given)."""
    if isinstance(x, torch.Tensor):
        bad = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
    else:
        x = np.asarray(x)
        bad = int(x.size - np.count_nonzero(np.isfinite(x))) if x.dtype.kind in "fc" else 0
    if not bad:
        return
    empty_column(x, where, names)
    item = ""
    if x.ndim >= 2:  # the failure path alone pays for finding the item
        finite = torch.isfinite(x) if isinstance(x, torch.Tensor) else np.isfinite(x)
        i = int((~finite.reshape(len(x), -1).all(1)).nonzero()[0][0])  # numpy's (index array,), torch's (M, 1)
        item = f", the first in item {i if rows is None else int(rows[i])}"
    raise VaekitError(f"{where}: contains {bad} NaN or infinite values{item}")


def float_items(x: np.ndarray, rows: np.ndarray, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """Items ``rows`` (n,) of ``x`` (N, *shape), any numeric dtype, as float32 (n, *shape) divided by ``scale`` in
    place (1: nothing divided), written into ``out`` where given: cast a chunk at a time (``chunks``), so that a
    memory-mapped file is read item by item, never held whole in its own dtype nor copied twice."""
    out = np.empty((len(rows), *x.shape[1:]), np.float32) if out is None else out
    for at, part in chunks(x, rows):
        out[at] = part
    if scale != 1.0:
        np.divide(out, np.float32(scale), out=out)
    return out


def chunks(x: np.ndarray, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions in ``rows``, the items ``x[rows[positions]]``), CHUNK_BYTES of x's at a time in file order. A
    memory-mapped file's pages are handed back after each (touching a mapped item maps the page cache's large
    folio around it, ``lazy.NpySource``): no more of the file than a chunk's stays in this process's memory."""
    order = np.argsort(rows, kind="stable")  # the file read forwards
    step = max(1, CHUNK_BYTES // max(1, x.itemsize * math.prod(x.shape[1:])))
    mapped = getattr(x, "_mmap", None)
    for a in range(0, len(rows), step):
        at = order[a : a + step]
        yield at, x[rows[at]]
        if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapped.madvise(mmap.MADV_DONTNEED)


def check_items(x: np.ndarray, rows: np.ndarray, where: str, numbers: np.ndarray | None = None) -> None:
    """Refuse items ``rows`` (n,) of ``x`` (N, *shape) that hold values beyond float32's range or NaN or inf, as
    ``fits_float32`` and ``check_finite`` refuse them, reading a chunk at a time (``chunks``); a table (N, D) of a dtype
    float32 does not hold exactly (float64, int64) gets ``fits_float32``'s notes of its columns over ``rows``.
    A refusal counts and names over all of ``rows`` (each item by its number in ``numbers``, default ``rows``),
    as one check of them would: the failure path alone reads them at once."""
    if x.dtype.kind != "f" and np.can_cast(x.dtype, np.float32, "safe"):
        return  # uint8..int16: every value a finite float32
    table = x.ndim == 2 and len(rows) > 1 and not np.can_cast(x.dtype, np.float32, "safe")
    ends: list[np.ndarray] = []  # (2, D): each column's least and greatest value so far (NaN left out)
    for _, part in chunks(x, rows):
        try:
            fits_float32(part, where, notes=False)
            check_finite(part, where)
        except VaekitError:
            every = x[rows]
            fits_float32(every, where, notes=False, rows=rows if numbers is None else numbers)
            check_finite(every, where, rows if numbers is None else numbers)
            raise
        if table:
            lo, hi = np.fmin.reduce(part), np.fmax.reduce(part)  # (D,) each
            ends = [lo, hi] if not ends else [np.fmin(ends[0], lo), np.fmax(ends[1], hi)]
    if table:
        fits_float32(np.stack(ends), where, ends=True)  # its notes of the columns from their ends alone


def empty_column(x: torch.Tensor | np.ndarray, where: str, names: Sequence[str] | None = None) -> None:
    """Refuse a table ``x`` (N, D) with a column every cell of which is NaN, as a CSV's column of gaps is: by its
    index (and its name in ``names``, a frame's); other data: no check."""
    if x.ndim != 2 or not len(x) or not (x.is_floating_point() if isinstance(x, torch.Tensor) else x.dtype.kind == "f"):
        return
    nan = torch.isnan(x).all(0) if isinstance(x, torch.Tensor) else np.isnan(x).all(0)  # (D,)
    if bool(nan.any()):
        j = int(nan.nonzero()[0][0])  # numpy's (index array,), torch's (M, 1)
        name = f" ({names[j]!r})" if names is not None else ""
        raise VaekitError(
            f"{where}: column index {j}{name} has no values, every cell a gap (NaN): nothing to model; leave it out"
        )


def whole_top(x: torch.Tensor) -> float | None:
    """The largest value of items ``x`` (N, *shape) holding whole numbers in 0..255, some above 1 (read off the
    first LOOKED_AT items), else None."""
    if not len(x) or not x.is_floating_point():
        return None
    head = x[:LOOKED_AT]
    top = float(head.max())
    if not 1.0 < top <= 255.0 or float(head.min()) < 0.0 or not bool((head == head.round()).all()):
        return None
    return top


def eight_bit_values(x: torch.Tensor) -> bool:
    """Whether float images ``x`` (N, C, H, W) hold 8-bit pixels not divided by 255: whole numbers in 0..255,
    some above SMALL_TOP (``whole_top``; 0..16 is a scale of its own). Tables and signals (other ranks): False."""
    top = whole_top(x) if x.dim() == 4 else None
    return top is not None and top > SMALL_TOP


def eight_bit_refusal(e: VaekitError, x: torch.Tensor) -> VaekitError:
    """A likelihood's support refusal ``e`` of items ``x`` (N, *shape) with the advice for whole numbers: of
    images, 8-bit pixels not divided by 255 (``eight_bit_values``); of any items, numbers 0..SMALL_TOP (as 8x8
    digits' 0..16) divided by their maximum; said before its advice of the gaussian likelihood. Else ``e``."""
    top = whole_top(x)  # read once: eight_bit_values' test of images is top > SMALL_TOP
    if top is None:
        return e
    advice = SMALL_NUMBERS.format(top=top) if top <= SMALL_TOP else EIGHT_BIT if x.dim() == 4 else None
    if advice is None:
        return e
    said = str(e).replace(DIVIDE_HINT, "").replace(ROUND_HINT, "")  # said again below, of these values
    hint = f"; {advice} (real-valued data needs the gaussian likelihood)"
    said = said.replace(GAUSSIAN_HINT, hint) if GAUSSIAN_HINT in said else f"{said}; {advice}"
    return VaekitError(said, key=e.key)


def support_check(likelihood: str | Distribution, x: torch.Tensor, where: str) -> None:
    """``core.likelihoods.check_support`` of items ``x`` (N, *shape), its refusal of 8-bit pixels not divided by
    255 given that advice (``eight_bit_refusal``). A likelihood named checks a chunk of items at a time (no
    temporaries the size of them all); a refusal is said as one check of them all says it: the failure path alone
    checks them at once."""
    parts = [x]
    if isinstance(likelihood, str) and x.dim() > 1:  # a support of its own: checked CHUNK_BYTES of items at a time
        step = max(1, CHUNK_BYTES // max(1, x.element_size() * math.prod(x.shape[1:])))
        parts = [x[a : a + step] for a in range(0, len(x), step)]
    try:
        for part in parts:
            check_support(likelihood, part, where)
    except VaekitError:
        try:
            check_support(likelihood, x, where)  # the refusal counts and names over all the items
        except VaekitError as e:
            raise eight_bit_refusal(e, x) from None
        raise


def refuse_edge(px: Distribution, x: torch.Tensor, rows: np.ndarray | None, where: str) -> None:
    """Refuse items (N, *shape) at a finite end of a user's p(x|z)'s support where ``px`` (a probe's) has no
    finite log-density: torch declares a Beta's support [0, 1], its density lives on (0, 1). The first item at
    each end is tried (one log_prob each); one not finite is named by its row (``rows``, else its number)."""
    s, name = support(px), name_of(px)
    if name in SUPPORT or not len(x):  # vaekit's own likelihoods: their ends are data they model
        return
    for end in (getattr(s, "lower_bound", None), getattr(s, "upper_bound", None)):
        end = end.item() if isinstance(end, torch.Tensor) and end.numel() == 1 else end
        if not isinstance(end, (int, float)) or not math.isfinite(end):
            continue
        at = (x == end).reshape(len(x), -1).any(1).nonzero().flatten()  # (M,) the items holding the end's value
        if not len(at):
            continue
        i = int(at[0])
        try:
            with torch.no_grad():
                finite = bool(px.log_prob(x[i]).isfinite().all())  # broadcast over the probe's items
        except (RuntimeError, ValueError):  # an item this p(x|z) cannot score as given: nothing to tell
            continue
        if not finite:
            more = f" (and {len(at) - 1} more item{'s' * (len(at) > 2)})" if len(at) > 1 else ""
            raise VaekitError(
                f"{where}: item {i if rows is None else int(rows[i])} has value {end:g}{more}, at the end of the "
                f"{name} likelihood's support, where its log-density is not finite: move the data inside (a Beta's "
                "(0, 1): clamp to [eps, 1 - eps])",
                key="model.likelihood",
            )
