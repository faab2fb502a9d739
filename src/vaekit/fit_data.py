"""What ``vaekit.fit`` makes of the user's data and model: the data as a Dataset of the items the model takes, the
model's dtype checked, p(x|z) settled against the data (a family's 'auto' likelihood chosen, a table's columns
standardised, binarisation checked and done) and config.json's model section, which describes the model the
user built (inside the Standardized wrapper, where there is one: its family, not 'custom')."""

from __future__ import annotations

import torch

from .config import RunConfig
from .core.contract import VAEModule, with_article
from .core.likelihoods import name_of, recorded_name
from .data import Dataset, all_labelled
from .data.containers import input_shape_of
from .data.photos import ImageOptions, note
from .data.prepare import auto_settings, check_and_binarize
from .data.tables import table_options
from .data.user import from_user
from .errors import VaekitError
from .models.standardized import Standardized
from .training import probe
from .training.describe import describe


def user_data(model: VAEModule, data: object, val_data: object, **options) -> Dataset:
    """The user's data as a Dataset, its items of the shape the model takes. A model that declares no
    ``input_shape`` tells it by its p(x|z) (``input_shape_of``): items of another shape are then refused as
    what its decode gives, not as a fault of the data."""
    expected = input_shape_of(model)
    options["num_classes"] = getattr(model, "num_classes", None)  # a conditional model's class numbers, kept
    try:
        return from_user(data, val_data, labels=model.needs_labels, expected=expected, **options)
    except VaekitError:
        if expected is None or hasattr(model, "input_shape"):
            raise
        try:  # the data alone: when it is good, its items' shape and decode's event shape differ
            items = from_user(data, val_data, labels=model.needs_labels, **options).shape
        except VaekitError:
            items = None
        if items is None or tuple(items) == tuple(expected):
            raise
        raise VaekitError(
            f"{type(model).__name__}.decode's p(x|z) has event shape {tuple(expected)} while the items are "
            f"{tuple(items)}: the contract wants p(x|z) with the items' shape as event shape"
        ) from None


def refuse_val_fraction(data: object, val_data: object) -> None:
    """Refuse, in one line, a val_fraction given where it cannot take effect: beside ``val_data``, or with a vaekit
    Dataset (``load_dataset``'s) whose own val split validates (``own_splits``)."""
    if val_data is not None:
        raise VaekitError(
            "val_data and val_fraction cannot both take effect: val_data is the validation set", key="val_fraction"
        )
    if isinstance(data, Dataset) and len(data.val):
        raise VaekitError(
            f"val_fraction cannot take effect: the Dataset {data.name!r} brings its own val split, which validates; "
            "pass its train split, (ds.train.x, ds.train.y), to split a val_fraction of it off",
            key="val_fraction",
        )


def check_dtype(model: VAEModule) -> None:
    """fit feeds float32 items: a model whose floating parameters are of another dtype is refused in one line."""
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.is_floating_point()})
    if dtypes and dtypes != ["float32"]:
        raise VaekitError(
            f"{type(model).__name__}'s parameters are {', '.join(dtypes)}, and fit's items are float32: convert the "
            "model with model.float()"
        )


def fit_likelihood(model: VAEModule, dataset: Dataset, cfg: RunConfig, seed: int) -> tuple[VAEModule, str]:
    """Settle p(x|z) against the data: a family's 'auto' likelihood chosen, columns standardised, binarisation
    checked and done; ``cfg``'s data and model sections say what was chosen (the model section describes the
    model given, its family recorded through the Standardized wrapper). Returns the model and the mode."""
    binarize, standardize = cfg.data.binarize, cfg.data.standardize
    if getattr(model, "likelihood_name", None) == "auto":  # a vaekit family not built yet: chosen from the data
        # nn.Module.__setattr__ takes any value; torch's stub allows a Tensor or Module only
        model.likelihood_name = auto_settings(dataset, "auto", binarize, standardize)[0]  # type: ignore[assignment]
    torch.manual_seed(seed)
    check_dtype(model)
    px = probe(model, dataset)
    name = name_of(px)  # a distribution vaekit does not know ('Beta') is left as the user built it
    _, mode, standard = auto_settings(dataset, name, binarize, standardize)
    cfg.data.binarize, cfg.data.standardize = mode, standard
    if standard == "true" and name != "gaussian":
        raise VaekitError(
            f"standardize='true' standardises the columns for a Normal p(x|z); {type(model).__name__}.decode gives "
            f"{with_article(name)}: leave standardize at 'auto' or 'false'",
            key="data.standardize",
        )
    # the model sees standardised columns and answers in the data's units; a trained run's model (a Standardized
    # already) is not wrapped twice: its loc and scale stay, those its inner model learnt on (as training/fit.py)
    if standard == "true" and not isinstance(model, Standardized):
        if standardize != "true":  # 'auto' chose it: said; asked for, it goes without saying
            note(
                "each feature of the data is standardised (a Gaussian p(x|z) on data that is not images): run.model "
                "wraps the model passed to fit and works in the data's units; the model passed works on standardised "
                "features (standardize='false' trains it as it is)"
            )
        model = Standardized.fitted(model, dataset.train.x)
        px = probe(model, dataset)
    check_and_binarize(dataset, mode, px, seed)
    k = getattr(model, "num_classes", dataset.num_classes) if model.needs_labels else 0  # a model reading labels
    inner = model.model if isinstance(model, Standardized) else model  # the family of the model built, not 'custom'
    cfg.model = describe(inner, recorded_name(px), dataset.shape, k)  # 'own:Beta': a p(x|z) vaekit does not know
    return model, mode


def fit_split(cfg: RunConfig) -> tuple[Dataset, str]:
    """(the data, its binarisation) of a run ``vaekit.fit`` trained on data in memory (data.test_fraction 0: no
    test split), resumed on the file data.spec that holds those items: every item in file order, split as fit
    split them (a seeded data.val_fraction validates, ``from_user``), checked and binarised as the run records."""
    d, shape, k = cfg.data, tuple(cfg.model.input_shape), cfg.model.num_classes  # k: a conditional model's classes
    s, _ = all_labelled(d.spec, d.label_column, d.data_dir, ImageOptions.of(d), table_options(cfg, d.spec), shape)
    items = s.x if s.y is None else (s.x, s.y)
    data = from_user(
        items, val_fraction=d.val_fraction, seed=cfg.train.seed, labels=k > 0, expected=shape or None, num_classes=k
    )
    return check_and_binarize(data, d.binarize, cfg.model.likelihood, cfg.train.seed), d.binarize
