"""Dataset containers and the one path from raw arrays to seeded train/val/test tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from vaekit.config.checks import FRACTION_WHY
from vaekit.data.containers import check_split_shape
from vaekit.data.draws import TEST_PART, fixed_draw
from vaekit.data.images import note
from vaekit.data.item_arrays import check_finite as check_finite  # re-exported: importers keep importing them here
from vaekit.data.item_arrays import check_items, float_items
from vaekit.data.item_arrays import image_scale as image_scale
from vaekit.data.item_arrays import to_layout as to_layout
from vaekit.data.labels import encode_labels as encode_labels  # re-exported: importers keep importing them here
from vaekit.data.labels import label_number as label_number
from vaekit.data.labels import number_labels as number_labels
from vaekit.data.labels import shown
from vaekit.errors import VaekitError

if TYPE_CHECKING:
    from vaekit.data.lazy import LazyArray
    from vaekit.data.tables import TableSchema

BINARIZE_MODES = ("none", "fixed", "dynamic")


@dataclass
class Split:
    """One split: ``x`` (N, *shape) float32 (in memory, or read lazily), ``y`` (N,) int64 labels or None.

    ``rows`` (N,) and ``part`` say which items they are, keying fixed binarisation's draw (``draws.fixed_draw``):
    each item's row in its source (None: 0..N-1; lazily read items: their ``index``) and the source (0 the
    training file or fit's data, 1 an official test file or fit's val_data; (N,) per item where the items span
    both: every item of a set in file order). ``fixed``: x was drawn so."""

    x: torch.Tensor | LazyArray
    y: torch.Tensor | None
    rows: np.ndarray | None = None
    part: int | np.ndarray = 0
    fixed: bool = False

    def __len__(self) -> int:
        return self.x.shape[0]

    def __repr__(self) -> str:
        """Shapes and dtypes, not values: Split(x=(N, C, H, W) float32, y=(N,) int64)."""
        y = "None" if self.y is None else f"{tuple(self.y.shape)} {str(self.y.dtype).removeprefix('torch.')}"
        kind = str(self.x.dtype).removeprefix("torch.") if isinstance(self.x, torch.Tensor) else "float32, read lazily"
        x = f"{tuple(self.x.shape)} {kind}"
        return f"Split(x={x}, y={y}{', fixed' if self.fixed else ''})"


@dataclass
class Dataset:
    """Train/val/test splits of one source; ``shape`` is per item: (C, H, W) or (D,)."""

    name: str
    train: Split
    val: Split
    test: Split
    shape: tuple[int, ...]
    kind: str  # "image" or "table"
    num_classes: int | None
    classes: list[str] | None = None
    skipped: list[dict] | None = None  # unreadable files left out ({file, error}), listed in the run folder
    image_mode: str | None = None  # L or RGB: the one mode a folder's images were made
    table: TableSchema | None = None  # a CSV's: column names, kinds, categories
    scale: float = 1.0  # what its reading divided the file's values by (255, 65535: uint8, uint16 images', to [0, 1])
    builtin: bool = False  # one of vaekit's sets (load_builtin): images in their own range [0, 1]

    def __repr__(self) -> str:
        """One short line whatever the size: splits' shapes, counts of classes, skipped files and columns."""
        t = self.table
        more = [f"{len(v)} {k}" for k, v in (("classes", self.classes), ("skipped", self.skipped)) if v]
        return (
            f"Dataset({self.name!r}, {self.kind} {self.shape}, train={self.train!r}, val={self.val!r}, "
            f"test={self.test!r}{''.join(', ' + m for m in more)}{f', columns: {t.summary()}' if t else ''})"
        )


@dataclass
class RawData:
    """Arrays as a reader found them, before scaling, checks and splitting."""

    x: np.ndarray  # (N, D) table or (N, C, H, W) image, any numeric dtype
    y: np.ndarray | None  # (N,) labels of any type, or None
    where: str  # the file or data set named in errors
    scale: float = 1.0  # x is divided by this to reach its natural range
    x_test: np.ndarray | None = None  # an official test split, same layout as x
    fixed: dict[str, np.ndarray] | None = None  # a split the source fixes: train/val/test indices into x
    y_test: np.ndarray | None = None
    classes: list[str] | None = None  # names for labels 0..K-1, when known
    skipped: list[dict] | None = None  # files left out as unreadable (image folders)
    image_mode: str | None = None  # L or RGB (image folders)
    table: TableSchema | None = None  # a CSV's
    rows: np.ndarray | None = None  # (N,) each item's row in its file where not 0..N-1 (a table's kept rows)
    builtin: bool = False  # one of vaekit's sets (load_builtin), not a file of the user's


def check_options(val_fraction: float, test_fraction: float, seed: int, binarize: str, limit: int | None) -> None:
    """Refuse bad split, seed, binarize and limit options before any file is read."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise VaekitError(f"{name} must be in (0, 1), got {f}: {FRACTION_WHY}")
    if val_fraction + test_fraction >= 1.0:
        raise VaekitError(f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise VaekitError(f"seed must be a non-negative integer, got {seed!r}")
    if binarize not in BINARIZE_MODES:
        raise VaekitError(f"binarize must be one of {', '.join(BINARIZE_MODES)}, got {binarize!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise VaekitError(f"limit must be a positive integer, got {limit!r}")


def _count(n: int, fraction: float) -> int:
    return max(1, round(n * fraction))


def _items(n: int, what: str = "item") -> str:
    """``n`` ``what``s, in the singular for 1: "1 item", "2 items"."""
    return f"{n} {what}{'s' * (n != 1)}"


def _split_indices(
    raw: RawData, n: int, n_test: int, val_fraction: float, test_fraction: float, seed: int, limit: int | None
) -> dict[str, np.ndarray]:
    """Seeded indices for each split: into x for train/val, into x_test (or x) for test."""
    rng = np.random.default_rng(seed)
    if raw.fixed is not None:  # a seeded draw of ``limit`` rows of each split, in file order
        return {
            name: rows if limit is None else np.sort(rng.permutation(rows)[:limit]) for name, rows in raw.fixed.items()
        }
    idx = rng.permutation(n)[:limit]  # shuffle first so a limit keeps classes mixed
    if raw.x_test is not None:
        test = np.arange(n_test)
        if limit is not None and limit < n_test:
            test = np.sort(rng.permutation(n_test)[:limit])
        n_val = _count(len(idx), val_fraction)
        if len(idx) - n_val < 1:
            raise VaekitError(f"{raw.where}: {_items(len(idx), 'training item')}, need at least 2 to carve out val")
        return {"train": idx[n_val:], "val": idx[:n_val], "test": test}
    if len(idx) < 3:
        raise VaekitError(f"{raw.where}: {_items(len(idx))}, need at least 3 to split into train/val/test")
    t, v = _count(len(idx), test_fraction), _count(len(idx), val_fraction)
    if len(idx) - t - v < 1:
        raise VaekitError(f"{raw.where}: {len(idx)} items leave no training data after val and test")
    return {"train": idx[t + v :], "val": idx[t : t + v], "test": idx[:t]}


def _binarize(splits: dict[str, Split], mode: str, seed: int, where: str) -> None:
    """Check [0, 1] for "fixed"/"dynamic"; for "fixed" draw x ~ Bernoulli(x) once, per item (``fixed_draw``)."""
    if mode == "none":
        return
    xs = [cast(torch.Tensor, s.x) for s in splits.values()]  # build_dataset's splits are in memory
    lo = min(float(x.min()) for x in xs)
    hi = max(float(x.max()) for x in xs)
    if lo < 0.0 or hi > 1.0:
        raise VaekitError(f"{where}: binarize={mode!r} needs values in [0, 1], data range is [{lo:g}, {hi:g}]")
    if mode == "fixed":
        for s in splits.values():
            s.x, s.fixed = fixed_draw(cast(torch.Tensor, s.x), cast(np.ndarray, s.rows), seed, s.part), True


def build_dataset(
    name: str, raw: RawData, *, val_fraction: float, test_fraction: float, seed: int, binarize: str, limit: int | None
) -> Dataset:
    """Scale, check, shuffle, limit and split ``raw`` into a Dataset of float32 tensors."""
    check_options(val_fraction, test_fraction, seed, binarize, limit)
    if raw.x_test is not None:
        check_split_shape(raw.where, raw.x, raw.x_test)
    x, x_test = raw.x, raw.x if raw.x_test is None else raw.x_test  # raw rows (memory-mapped: read as taken)
    y, y_test, classes = _labels(raw)
    idx = _split_indices(raw, len(x), len(x_test), val_fraction, test_fraction, seed, limit)
    own = ["train", "val"] + (["test"] if raw.x_test is None else [])
    check_items(x, np.unique(np.concatenate([idx[k] for k in own])), raw.where)  # the items taken alone
    if raw.x_test is not None:
        check_items(x_test, np.unique(idx["test"]), raw.where)
    test_part = TEST_PART if raw.x_test is not None else 0  # test rows count in x_test, else in x
    sources = {"train": (x, y, 0), "val": (x, y, 0), "test": (x_test, y_test, test_part)}
    splits = {}
    for key, (xs, ys, part) in sources.items():  # each item with its row in x (or x_test)
        i, labels = idx[key], None if ys is None else torch.from_numpy(ys[idx[key]])
        rows = i if raw.rows is None or part else raw.rows[i]  # its row in its file
        xf = float_items(xs, i, raw.scale)  # (n, *shape) from the raw rows alone, a chunk at a time
        splits[key] = Split(torch.from_numpy(xf), labels, rows, part)
    _binarize(splits, binarize, seed, raw.where)
    num_classes = None
    if y is not None:
        assert y_test is not None  # _labels gives test labels whenever it gives train labels
        num_classes = len(classes) if classes else int(max(y.max(), y_test.max())) + 1
    return Dataset(
        name,
        splits["train"],
        splits["val"],
        splits["test"],
        tuple(x.shape[1:]),
        "table" if x.ndim == 2 else "image",
        num_classes,
        classes,
        raw.skipped,
        raw.image_mode,
        raw.table,
        raw.scale,
        raw.builtin,
    )


def class_counts(data: Dataset, k: int | None = None) -> list[int] | None:
    """The training split's items of each class 0..K-1 (K = ``k``, a model's classes, or ``data.num_classes``),
    or None without labels."""
    y, k = data.train.y, k or data.num_classes
    if not k or y is None:
        return None
    return torch.bincount(y.long().cpu(), minlength=k)[:k].tolist()  # (K,) training items per class


def untrained_classes(data: Dataset) -> list[int]:
    """The label numbers 0..K-1 (K = ``data.num_classes``) with no item in the training split: a class only in
    the val or test split (an official test file's own class), or in none of them (left out by a limit)."""
    return [i for i, k in enumerate(class_counts(data) or []) if not k]


def check_trained(data: Dataset, conditional: bool, more: str = "more data, a larger data.limit") -> None:
    """Refuse, for a ``conditional`` model, data whose classes (labels 0..K-1) include one with no training item:
    the model would have the class and learn nothing of it (its samples noise); for other models say so in one
    note. Both name the classes and the fix: training items for them (``more``: how to give them, as the caller
    takes data: a config's data.limit, or more items given to fit)."""
    missing = untrained_classes(data)
    if not missing:
        return
    names = [data.classes[i] if data.classes else str(i) for i in missing]
    many = len(names) > 1
    what = f"class{'es' * many} {shown(names)} ha{'ve' if many else 's'} no item in the training split"
    if conditional:
        raise VaekitError(
            f"{data.name}: {what}, so a conditional model would learn nothing of {'them' if many else 'it'} (its "
            f"samples noise): give the training split items of every class ({more}), or leave such items out of "
            "the data",
            key="data.limit" if "data.limit" in more else None,
        )
    note(f"{data.name}: {what} ({more} would give {'them' if many else 'it'} some)")


def _labels(raw: RawData) -> tuple[np.ndarray | None, np.ndarray | None, list[str] | None]:
    """Encode train and test labels together so they share one numbering."""
    if raw.y is None:
        return None, None, raw.classes
    pairs = [(raw.x, raw.y)] + ([] if raw.x_test is None else [(raw.x_test, raw.y_test)])
    for xs, ys in pairs:
        if ys is not None and len(ys) != len(xs):
            raise VaekitError(f"{raw.where}: {len(ys)} labels for {len(xs)} items")
    if raw.y_test is None and raw.x_test is not None:
        raise VaekitError(f"{raw.where}: has train labels but no test labels")
    n, given = len(raw.y), [raw.y] if raw.y_test is None else [raw.y, raw.y_test]
    try:
        both, names = encode_labels(np.concatenate([np.asarray(y) for y in given]), raw.where)
    except VaekitError as e:  # a table's label column: say which, and how to keep it as a feature
        if raw.table is None or raw.table.label is None:
            raise
        raise VaekitError(
            f"{e} in column {raw.table.label!r}; set data.label_column=off to keep it as a feature (or name the "
            "column of classes with data.label_column)",
            key="data.label_column",
        ) from None
    if raw.table is not None and names:  # a conditional run's table: a class it knows, by name or number
        raw.table.check_classes(names, both, raw.where)
    y = both[:n]
    return y, y if raw.x_test is None else both[n:], _check_names(both, raw.classes, raw.where) or names


def _check_names(y: np.ndarray, classes: list[str] | None, where: str) -> list[str] | None:
    if classes is not None and y.max() >= len(classes):
        raise VaekitError(f"{where}: label {y.max()} has no name among the {len(classes)} classes")
    return classes
