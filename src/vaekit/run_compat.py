"""Run folders written by earlier vaekit versions, read as today's code reads its own: a VampPrior's pseudo-inputs
kept as raw values (before f19d00c: ``reading``, ``earlier_layout``), a user's p(x|z) recorded as 'gaussian'
(before 'own:Beta' named it), and a conditional run's classes from before classes.json (78e7efd). ``runs.Run.load``
and ``Run.classes`` use them."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution

from .config import RunConfig, maybe_own, own_likelihood
from .core.contract import VAEModule, probing
from .core.likelihoods import recorded_name
from .data import read_raw
from .data.core import encode_labels
from .data.photos import ImageOptions
from .data.tables import table_options
from .errors import VaekitError
from .models.priors import loading_names
from .training.checkpoint import header
from .training.folder import CUSTOM, load_run_model


def loaded_model(
    run: Path, weights: str, skeleton: nn.Module | None, where: torch.device
) -> tuple[RunConfig, VAEModule]:
    """``training.folder.load_run_model``'s (config, model), the model on ``where`` in eval mode, for folders of
    earlier vaekit versions too: their weights' layout (``reading``) and their model.likelihood (``own_named``)."""
    with reading(run / weights):
        cfg, model = load_run_model(run, weights, skeleton)
    model = model.to(where).eval()
    own_named(cfg, model)
    return cfg, model


def reading(weights: Path) -> AbstractContextManager:
    """The context to load the weights file ``weights`` in: its tensors' names, so a module whose earlier layout
    they hold takes them (``models.priors.loading_names``); none when the file cannot be read (the load says why)."""
    found = header(weights)
    return loading_names(found[0] if found else frozenset())


def earlier_layout(names: Collection[str]) -> bool:
    """Whether weights of these tensor ``names`` hold a VampPrior's pseudo-inputs in the layout of vaekit before
    f19d00c (``raw``), which loading converts to today's ``u``: a loaded model's state then differs from the file."""
    return any(k.rpartition(".")[2] == "raw" and k[: -len("raw")] + "u" not in names for k in names)


def own_named(cfg: RunConfig, model: VAEModule) -> None:
    """A run of networks built in Python whose p(x|z) vaekit does not know (a Beta) was recorded as 'gaussian' by
    vaekit before it named such a p(x|z) ('own:Beta'): ``cfg`` takes the name of the model's own, in memory, so the
    data is checked against its support, not a Normal's. Only a config of format 1: later ones name their own."""
    if cfg.model.net != CUSTOM or not maybe_own(cfg):
        return
    px = decoded(model)
    name = recorded_name(px) if px is not None else "gaussian"
    if own_likelihood(name):
        cfg.model.likelihood = name


def decoded(model: VAEModule) -> Distribution | None:
    """p(x|z) of ``model`` at a zero code (1, sum D_l) (label 0 for a conditional model), in eval mode and with
    the RNG left as it was; None where decode fails (what then uses the model says why)."""
    try:
        with probing(model) as device, torch.no_grad():
            z = torch.zeros(1, sum(model.latent_dims), device=device)
            y = torch.zeros(1, dtype=torch.long, device=device) if model.needs_labels else None
            return model.decode(z, y)
    except Exception:  # noqa: BLE001 - a user's decode may fail any way: the model is then used as recorded
        return None


def earlier_classes(cfg: RunConfig) -> list[str] | None:
    """The class names, label 0 first, that a conditional run of vaekit before classes.json numbered its own
    data's labels by: the source's names (a folder's subfolders, fashion-mnist's), else the labels' values sorted
    where they are names or include negative numbers; None where they are whole numbers >= 0 (kept as they were),
    and where the data cannot be read now."""
    d = cfg.data
    if not d.spec:
        return None
    try:
        raw, _ = read_raw(d.spec, d.label_column, d.data_dir, ImageOptions.of(d), table_options(cfg, d.spec))
        if raw.y is None:
            return None
        if raw.classes:
            return [str(c) for c in raw.classes]
        y = np.asarray(raw.y) if raw.y_test is None else np.concatenate([np.asarray(raw.y), np.asarray(raw.y_test)])
        _, names = encode_labels(y, raw.where)
    except (VaekitError, OSError):
        return None
    return None if not names or all(n.isdigit() for n in names) else names
