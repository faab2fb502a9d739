"""What ``fit_config`` takes from a config before training: the data and its binarisation, with the settings
left to them settled (likelihood, standardisation, input shape, ladder sizes, the number of classes), and the
built-in networks the config names, allocated where the memory can hold them."""

from __future__ import annotations

import re

from ..config import RunConfig
from ..config.conflicts import deep_latent_size
from ..core.contract import VAEModule
from ..data import Dataset
from ..data.core import check_trained
from ..data.lazy import available_memory
from ..data.prepare import auto_settings, prepare_data
from ..errors import VaekitError
from ..models import build_model, family_needs_labels
from ..models.ladder import new_levels
from .sizes import meta_size


def settled(cfg: RunConfig, data: Dataset | None, mode: str, resume: bool) -> tuple[Dataset, str]:
    """The data and its binarisation, with what ``cfg`` (edited in place) takes from them settled."""
    if data is None:
        data, mode = prepare_data(cfg, stream=True)  # resolves the settings left at 'auto' in cfg
    else:  # prepared by the caller, binarised as ``mode`` says: 'auto' means the same here
        cfg.model.likelihood, _, cfg.data.standardize = auto_settings(
            data, cfg.model.likelihood, mode, cfg.data.standardize
        )
        cfg.data.binarize = mode
    cfg.model.input_shape = list(data.shape)
    if not resume:  # a ladder's levels: a hierarchy, as models shows (a resumed run's config is as it was trained)
        new_levels(cfg.model)
    size = deep_latent_size(cfg.model) if cfg.model.family == "deep" and not resume else None
    if size is not None:  # what the hierarchy is, not the flat networks' defaults
        cfg.model.latent_dim, cfg.model.hidden, cfg.model.channels = size, [], []
    conditional = family_needs_labels(cfg.model)  # its class's, a property's read on an instance
    if conditional:
        k = labelled(data)
        if cfg.model.num_classes and cfg.model.num_classes != k and not resume:
            raise VaekitError(
                f"model.num_classes {cfg.model.num_classes}: the data has {k} classes (it is set from the data; "
                "leave it unset)",
                key="model.num_classes",
            )
        cfg.model.num_classes = k
    if not resume:  # the data's classes: a conditional model's would include one it never trains on
        check_trained(data, conditional)
    return data, mode


def allocated(cfg: RunConfig) -> VAEModule:
    """The built-in networks ``cfg.model`` names; sizes the memory cannot hold (their state, found on the meta
    device, beyond the memory available, or an allocation that fails) are one line, not a traceback or the
    kernel's out-of-memory kill."""
    need = meta_size(lambda: build_model(cfg.model))
    if need is not None and need > available_memory():
        raise VaekitError(
            f"cannot allocate the model: {need / 1e9:,.1f} GB asked, {available_memory() / 1e9:,.1f} GB available "
            "(model sizes: model.latent_dim, model.hidden, model.channels)"
        )
    try:
        return build_model(cfg.model)
    except (RuntimeError, MemoryError) as e:
        asked = re.search(r"allocate (\d+) bytes", str(e))
        if not isinstance(e, MemoryError) and "alloc" not in str(e).lower():
            raise
        size = f": {int(asked.group(1)) / 1e9:,.0f} GB asked" if asked else ""
        raise VaekitError(
            f"cannot allocate the model{size} (model sizes: model.latent_dim, model.hidden, model.channels)"
        ) from None


def labelled(data: Dataset) -> int:
    """The number of classes of a labelled data set, for conditional models; a set without labels is refused."""
    if not data.num_classes:
        hint = " (name its label column with data.label_column)" if data.table is not None else ""
        raise VaekitError(f"{data.name}: this model conditions on labels, and the data has none{hint}")
    return data.num_classes
