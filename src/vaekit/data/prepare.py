"""A run's data as its config names it: loaded, checked against the likelihood's support, binarised as set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

import torch
from torch.distributions import Distribution

from ..config import RunConfig
from ..core.levels import on_levels
from ..core.likelihoods import check_support, name_of
from ..errors import VaekitError
from . import load_dataset
from .core import Dataset, Split
from .item_arrays import EIGHT_BIT, GAUSSIAN_HINT, eight_bit_values, refuse_edge, support_check
from .lazy import LazyArray, binarized_once, load_streamed
from .photos import RUN_ITEMS, ImageOptions, note
from .signals import as_model_items
from .tables import table_options

T = TypeVar("T", bound="torch.Tensor | LazyArray")  # items: a tensor or lazily read data


def auto_settings(data: Dataset, likelihood: str, binarize: str, standardize: str) -> tuple[str, str, str]:
    """The likelihood, binarisation and standardisation that 'auto' means for these data (explicit ones stay).

    From the training split's first 10,000 items: binary data -> bernoulli; 8-bit images (values k / 255),
    grey or colour -> discretized_logistic; other images in [0, 1] -> bernoulli (grey) or cbernoulli (colour;
    and 16-bit grey images, of folders (``image_mode`` set) or uint16 arrays); everything else -> gaussian, on
    standardised columns for tables. Binarisation (dynamic) happens only under the bernoulli likelihood on grey
    images that are not binary already, and never on a folder of images (photos: a folder mixing 8-bit and
    deeper images is read at 8 bits, ``photos._deep``, so the choice does not hang on which items the split
    trains on).
    """
    table = getattr(data, "table", None)
    if table is not None and table.categories:  # one-hot codes: the Tabular p(x|z)
        return categorical_settings(likelihood, binarize, standardize)
    if "auto" not in (likelihood, binarize, standardize):
        return likelihood, binarize, standardize
    n = min(len(data.train.x), 10000)  # read 1,000 at a time: lazily read photos stay at a batch's memory
    kinds = [_value_kinds(data.train.x[i : min(i + 1000, n)]) for i in range(0, n, 1000)]
    binary = binarize in ("dynamic", "fixed") or all(k[0] for k in kinds)  # binarised when asked
    unit = all(k[1] for k in kinds)
    eight_bit = unit and all(k[2] for k in kinds)
    image = data.kind == "image"
    deep = data.image_mode or getattr(data, "scale", 1.0) > 255  # a folder's photos, 16-bit arrays: not binarised
    grey = image and data.shape[0] == 1 and not deep
    if likelihood == "auto":
        likelihood = (
            "bernoulli"
            if binary
            else "discretized_logistic"
            if image and eight_bit
            else ("bernoulli" if grey else "cbernoulli")
            if image and unit
            else "gaussian"
        )
    if binarize == "auto":
        binarize = "dynamic" if likelihood == "bernoulli" and grey and not binary else "none"
    if standardize == "auto":
        standardize = "true" if likelihood == "gaussian" and data.kind == "table" else "false"
    return likelihood, binarize, standardize


def categorical_settings(likelihood: str, binarize: str, standardize: str) -> tuple[str, str, str]:
    """(likelihood, binarize, standardize) of a table with one-hot codes (categorical columns, or modes under
    data.numeric=modes): Gaussian numeric slots in ``models.Standardized`` with the Tabular p(x|z) (standardised
    numbers; TVAE's alphas are left as they are); other explicit settings are refused."""
    for key, value, want in (
        ("model.likelihood", likelihood, "gaussian"),
        ("data.binarize", binarize, "none"),
        ("data.standardize", standardize, "true"),
    ):
        if value not in ("auto", want):
            raise VaekitError(
                f"{key}={value} cannot take effect on a table with categorical columns or modes (they "
                f"are modelled by a softmax, the numeric ones under {key}={want})",
                key=key,
            )
    return "gaussian", "none", "true"


def _value_kinds(x: torch.Tensor) -> tuple[bool, bool, bool]:
    """Whether the values of x (B, *shape) are all binary, all in [0, 1], all 8-bit levels k / 255 in [0, 1]
    (``core.levels.on_levels``: to 1e-3 of a level, or float16 values within float16's rounding of one)."""
    return bool(((x == 0) | (x == 1)).all()), bool(((x >= 0) & (x <= 1)).all()), bool(on_levels(x).all())


def prepare_data(cfg: RunConfig, spec: str | None = None, stream: bool = False) -> tuple[Dataset, str]:
    """Load ``spec`` (default: the config's), check it against the likelihood; returns (data, binarize mode).

    Settings left at 'auto' (likelihood, binarisation, standardisation) are resolved in ``cfg`` itself.

    'fixed' binarises every split once; 'dynamic' leaves the training split grey (the trainer draws
    a new binarisation per batch) and binarises validation and test once, so their losses are stable.
    Drawn once, an item's values follow the run's seed and its row in the file (``draws.fixed_draw``).
    ``stream`` lets data.in_memory choose memory-mapped or lazily read splits (LazyArray), which are checked
    and binarised per batch as they are read, to the same values.
    """
    d = cfg.data
    spec = spec or d.spec
    if not spec:
        raise VaekitError("this run was trained on data passed in memory: name the data to use", key="data.spec")
    data, own = load_spec(cfg, spec, stream), same_spec(spec, d.spec)
    data = numbered_as_model(data, cfg.model.num_classes) if own else data
    if own and not data.image_mode and not getattr(d, RUN_ITEMS, False):  # not a verb's, set for another folder
        _refuse_image_settings(cfg)
    if data.image_mode and own:  # the one mode of a folder's images, in config.json
        d.mode = data.image_mode
    note_skipped(spec, data.skipped, "; a run lists them in its skipped.json")
    shape = tuple(cfg.model.input_shape)  # set once a model was built: other data must fit it
    data = as_model_items(data, shape)  # a file's signals (N, C, L) as it holds them: the scale its reading recorded
    if shape and tuple(data.shape) != shape:  # (a run trained on (H, W, 2) before 2 channels were moved reads them so)
        raise VaekitError(f"{data.name}: items have shape {tuple(data.shape)}, the run's model expects {shape}")
    cfg.model.likelihood, cfg.data.binarize, cfg.data.standardize = auto_settings(
        data, cfg.model.likelihood, cfg.data.binarize, cfg.data.standardize
    )  # written to config.json as resolved
    mode = cfg.data.binarize
    return check_and_binarize(data, mode, cfg.model.likelihood, cfg.train.seed), mode


def numbered_as_model(data: Dataset, num_classes: int) -> Dataset:
    """A run's own ``data`` with its labels numbered as its model (``num_classes``: 0 before one is built) numbers
    them: whole numbers kept as they were by vaekit before 6a4e44f (labels 1..3 of a model of 4 classes), which
    loading numbers 0..2 now, named "1".."3", are those numbers again; other labels as they are."""
    names = data.classes or []
    numbers = [int(n) for n in names] if names and all(n.isdigit() for n in names) else []
    if not numbers or len(numbers) >= num_classes or max(numbers) >= num_classes:  # today's numbering, or none
        return data
    new = torch.tensor(numbers)  # (K,): the model's label of each label 0..K-1 loading gave

    def renumbered(s: Split) -> Split:
        return replace(s, y=None if s.y is None else new[s.y])  # its rows, part and draw kept

    train, val, test = (renumbered(s) for s in (data.train, data.val, data.test))
    return replace(data, train=train, val=val, test=test, num_classes=num_classes, classes=None)


def same_spec(spec: str | None, own: str | None) -> bool:
    """Whether ``spec`` names the run's own data ``own`` (data.spec): the same text, or paths to one file or
    folder (a run stores its data's absolute path; a user names it as it lies from where they are)."""
    if not spec or not own or spec == own:
        return bool(spec) and spec == own
    path, mine = Path(spec).expanduser(), Path(own).expanduser()
    return path.exists() and mine.exists() and path.resolve() == mine.resolve()


def load_spec(cfg: RunConfig, spec: str, stream: bool) -> Dataset:
    """``spec`` with the run's data settings: streamed where ``stream`` and data.in_memory allow, else loaded
    whole (grey: binarised later, once checked against the likelihood); an image folder loaded whole is read
    from the source opened to decide, only the items of the limit's draw decoded (``load_streamed``). A run of
    ``vaekit.fit`` (data.test_fraction 0: its data in memory split into train and val alone) splits other data
    as any file is split (the default fractions)."""
    d = cfg.data
    limit = d.limit if same_spec(spec, d.spec) else None  # the run's limit is on its own data, not on another set
    test_fraction = d.test_fraction or RunConfig().data.test_fraction
    images = ImageOptions.of(d)
    data = load_streamed(
        spec,
        d.in_memory if stream else "true",
        val_fraction=d.val_fraction,
        test_fraction=test_fraction,
        seed=cfg.train.seed,
        limit=limit,
        images=images,
        label_column=d.label_column,
    )
    return data or load_dataset(
        spec,
        val_fraction=d.val_fraction,
        test_fraction=test_fraction,
        seed=cfg.train.seed,
        binarize="none",
        label_column=d.label_column,
        data_dir=d.data_dir,
        limit=limit,
        images=images,
        table=table_options(cfg, spec),
    )


def _refuse_image_settings(cfg: RunConfig) -> None:
    """The image folder settings, set for data that is no image folder: one line, as they cannot take effect."""
    default = type(cfg.data)()
    for key in ("image_size", "crop", "mode", "cache", "skip_unreadable"):
        if getattr(cfg.data, key) != getattr(default, key):
            raise VaekitError(
                f"data.{key} applies to folders of images, and {cfg.data.spec} is not one", key=f"data.{key}"
            )


def check_and_binarize(data: Dataset, mode: str, likelihood: str | Distribution, seed: int) -> Dataset:
    """Check every split against the likelihood's support and binarise it as ``mode`` says; returns ``data``.

    Lazily read splits (LazyArray) are given the check and the binarisation to apply per batch. Both draw an
    item's values once by ``draws.fixed_draw``, keyed by (``seed``, its source's part, its row in the source).
    """
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        # binarising needs probabilities in [0, 1]; binary data then lies in every likelihood's support
        where = f"{data.name} ({name} split)"
        x = supported(split.x, mode, likelihood, where)
        if isinstance(likelihood, Distribution) and isinstance(x, torch.Tensor) and not binarizing(mode, likelihood):
            refuse_edge(likelihood, x, split.rows, where)
        fixed = mode == "fixed" or (mode == "dynamic" and name != "train")
        if isinstance(x, LazyArray):  # drawn as its items are read, keyed by their rows (its index)
            x.binarize_seed, x.part = (seed if fixed else None), split.part
        elif fixed:
            x = binarized_once(x, seed, split.rows, split.part)
        if fixed:
            setattr(data, name, replace(split, x=x, fixed=True))
    return data


def binarizing(mode: str, likelihood: str | Distribution) -> bool:
    """Whether ``mode`` binarises the items of a likelihood not a Bernoulli's: checked as its draws' probabilities."""
    named = name_of(likelihood) if isinstance(likelihood, Distribution) else likelihood
    return mode != "none" and named not in ("bernoulli", "cbernoulli")


def supported(x: T, mode: str, likelihood: str | Distribution, where: str) -> T:
    """Items x (N, *shape) checked before a draw hides values outside (training's splits, the verbs' new data):
    against the likelihood's support, or binarising, as its draws' probabilities; lazily read ones per batch.
    A Bernoulli's refusal under binarisation names data.binarize beside the gaussian likelihood: the one
    without the other is refused again."""
    if binarizing(mode, likelihood):
        return binarizable(x, mode, where)
    if mode == "none":
        return checked(x, likelihood, where)
    return per_batch(x, partial(binarized_bernoulli_check, mode=mode, where=where))


def per_batch(x: T, check: Callable[[torch.Tensor], None]) -> T:
    """``x`` checked by ``check``: now for a tensor, batch by batch as they are read for lazily read data (a
    module-level function's partial, which a spawned DataLoader worker can unpickle)."""
    if isinstance(x, LazyArray):
        x.check = check
    else:
        check(cast(torch.Tensor, x))
    return x


def binarizable(x: T, mode: str, where: str) -> T:
    """``x`` checked as ``checked`` does for binarisation ``mode``, which draws values in [0, 1] as probabilities:
    data outside them is refused naming data.binarize, whatever the likelihood."""
    return per_batch(x, partial(binarizable_check, mode=mode, where=where))


def binarizable_check(batch: torch.Tensor, mode: str, where: str) -> None:
    """Refuse a ``batch`` (B, *shape) outside [0, 1], the probabilities binarisation ``mode`` draws from."""
    try:
        check_support("bernoulli", batch, where)
    except VaekitError:
        lo, hi = float(batch.min()), float(batch.max())
        raise VaekitError(
            f"{where}: values in [{lo:.4g}, {hi:.4g}] lie outside [0, 1], which binarising (data.binarize "
            f"{mode}) needs; real-valued data needs data.binarize none",
            key="data.binarize",
        ) from None


def binarized_bernoulli_check(batch: torch.Tensor, mode: str, where: str) -> None:
    """A Bernoulli likelihood's support check of a ``batch`` (B, *shape) binarised by ``mode``: its advice of the
    gaussian likelihood names data.binarize none too."""
    try:
        support_check("bernoulli", batch, where)
    except VaekitError as e:
        said = str(e).replace(GAUSSIAN_HINT, f"{GAUSSIAN_HINT} and data.binarize none, not {mode}")
        raise VaekitError(said, key=e.key) from None


def checked(x: T, likelihood: str | Distribution, where: str) -> T:
    """``x`` (N, *shape) checked against the likelihood's support: now for a tensor, batch by batch as they are
    read for lazily read data. Images of whole numbers 0..255 (8-bit pixels not divided by 255) are refused with
    that advice (``item_arrays.support_check``), or, in memory under the gaussian likelihood, said in one line
    (of training data and data checked alone, not again of a run's val and test splits)."""
    if isinstance(x, LazyArray):
        x.check = partial(support_check, likelihood, where=where)
        return x
    support_check(likelihood, cast(torch.Tensor, x), where)
    named = likelihood if isinstance(likelihood, str) else name_of(likelihood)
    alone = not where.endswith((" (val split)", " (test split)"))
    if named == "gaussian" and alone and eight_bit_values(cast(torch.Tensor, x)):
        note(f"{where}: {EIGHT_BIT}; modelled as they are, as real values")
    return x


def note_skipped(spec: str, skipped: list[dict] | None, tail: str = "") -> None:
    """One line on stderr naming the unreadable files a photo folder's reading left out (then ``tail``)."""
    if skipped:
        n = len(skipped)
        first = skipped[0]["file"]
        note(f"{spec}: skipped {n} unreadable file{'s' * (n != 1)} (data.skip_unreadable), first {first}{tail}")
