"""config.json's model section for a model built in Python (``vaekit.fit``): its family, as the registry names its
class, and the settings that family's model keeps, each under the config key the CLI builds it from, so the run
resumes, and trains again from its config.json (``vaekit train --config``), as the model it was."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import torch
from torch import nn

from ..config import RESUME_MAY_CHANGE, ModelConfig, own_likelihood
from ..core.contract import VAEModel
from ..core.likelihoods import LIKELIHOODS
from ..models import MODELS, build_model
from ..models.nets import ConvEncoder, MLPEncoder
from ..models.spec import module_spec, structure

CUSTOM = "custom"  # model.net of a model whose networks came from Python: model.json describes it
VAE_SETTINGS = ("prior_components", "pseudo_inputs", "pseudo_init", "flow_transforms", "flow_hidden")
# the deep family's settings: config key -> the DeepVAE attribute (its init argument) that keeps it
DEEP_SETTINGS = {
    "deep_groups": "groups",
    "deep_width": "width",
    "deep_cell_width": "cell_width",
    "deep_latent_channels": "latent_channels",
    "deep_cells": "cells",
    "deep_patch": "patch",
    "deep_head_kernel": "head_kernel",
    "deep_ar_channels": "ar_channels",
    "deep_ar_kernel": "ar_kernel",
    "deep_init": "init",
    "residual_posterior": "residual_posterior",
    "checkpoint_cells": "checkpoint_cells",
}
CVAE_SETTINGS = ("label_embedding", "learned_prior")  # the conditional VAE's, under the same names
LIKELIHOOD_SETTINGS = ("scale", "likelihood_components")
WHOLE = ("deep",)  # the families whose recorded settings build the model whole: no networks of the user's
# the family settings describe records that a resumed fit keeps (api.DESCRIBED): all but those a resume may change
ZOO_SETTINGS = tuple(
    k
    for k in (*VAE_SETTINGS, *CVAE_SETTINGS, *DEEP_SETTINGS, *LIKELIHOOD_SETTINGS)
    if f"model.{k}" not in RESUME_MAY_CHANGE
)


def describe(model: VAEModel, likelihood: str, shape: tuple[int, ...], num_classes: int | None) -> ModelConfig:
    """config.json's model section for a model built in Python: the built-in networks ``build_model`` gave it
    (``built_in``), else net 'custom' (its networks: model.json), the widths hidden and channels left empty.
    ``likelihood``: p(x|z)'s recorded name."""
    family = next((name for name, cls in MODELS.items() if type(model) is cls), CUSTOM)  # a subclass: custom
    likelihood = likelihood if likelihood in LIKELIHOODS or own_likelihood(likelihood) else "gaussian"
    levels = len(model.latent_dims) > 1 and family != "deep"  # the ladder's (or a custom model's) levels, data up
    described = ModelConfig(
        family=family,
        net=CUSTOM,
        hidden=[],
        channels=[],
        likelihood=likelihood,
        latent_dim=sum(model.latent_dims),
        input_shape=list(shape),
        num_classes=num_classes or 0,
        latent_dims=list(model.latent_dims[::-1]) if levels else [],  # deep: its groups are deep_* settings
        prior=getattr(model, "prior_name", "standard"),  # the zoo's axes, as recorded by the model
        posterior=getattr(model, "posterior_name", "gaussian"),
        **{k: getattr(model, k) for k in VAE_SETTINGS if hasattr(model, k)},  # and their settings (VAE's)
        **family_settings(model, family, likelihood),
    )
    return built_in(model, described) or described


def built_in(model: VAEModel, described: ModelConfig) -> ModelConfig | None:
    """``described`` with the built-in networks (model.net mlp or conv, and their widths) where ``build_model`` of
    it gives ``model`` again: the same class and init arguments (``models.spec``), module for module, and the same
    structure; else None (networks of the user's, or settings config.json does not record: model.json's)."""
    nets, module = {MLPEncoder: ("mlp", "hidden"), ConvEncoder: ("conv", "channels")}, cast(nn.Module, model)
    encoder = next((m for m in module.modules() if type(m) in nets), None) if described.family != CUSTOM else None
    if encoder is None:
        return None
    net, widths = nets[type(encoder)]
    default = ModelConfig()  # the other net's widths at their defaults: no setting that cannot take effect
    found = replace(described, net=net, hidden=default.hidden, channels=default.channels)
    setattr(found, widths, list(getattr(encoder, widths)))
    try:  # the twin's initialisation leaves the caller's RNG as it was
        with torch.random.fork_rng(devices=[]):
            twin = build_model(found)
        same = module_spec(twin) == module_spec(module) and structure(twin) == structure(module)
    except Exception:  # noqa: BLE001 - a model config.json cannot build, or record: its model.json describes it
        return None
    return found if same else None


def family_settings(model: VAEModel, family: str, likelihood: str) -> dict[str, Any]:
    """The settings a vaekit family's model keeps beyond the VAE's: the conditional VAE's (``CVAE_SETTINGS``), the
    deep hierarchy's (``DEEP_SETTINGS``), and the Gaussian scale or the logistic mixture's components where
    ``likelihood`` reads them (recorded for no other, which the CLI would refuse as unused). A model of the user's
    class: none."""
    found: dict[str, Any] = {k: getattr(model, k) for k in CVAE_SETTINGS} if family == "cvae" else {}
    if family == "deep":
        found = {key: getattr(model, name) for key, name in DEEP_SETTINGS.items()}
        found["deep_groups"] = list(found["deep_groups"])  # a copy, as a list
    if family != CUSTOM and likelihood == "gaussian" and hasattr(model, "scale"):
        found["scale"] = str(model.scale)  # a fixed scale given as a number: its text, as the config holds it
    if family != CUSTOM and likelihood == "discretized_logistic" and hasattr(model, "components"):
        found["likelihood_components"] = model.components
    return found
