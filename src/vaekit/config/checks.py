"""Validation: each setting in its range, and no combination of settings that cannot all take effect."""

from __future__ import annotations

import math
from dataclasses import fields

from ..errors import VaekitError
from .schema import SECTIONS, RunConfig

CHOICES = {
    "data.binarize": ("auto", "dynamic", "fixed", "none"),
    "data.in_memory": ("auto", "true", "false"),
    "data.standardize": ("auto", "true", "false"),
    "model.net": ("mlp", "conv", "custom"),  # custom: networks given in Python (model.json)
    "model.likelihood": ("auto", "bernoulli", "cbernoulli", "gaussian", "discretized_logistic"),
    "model.ladder_posterior": ("topdown", "precision"),
    "train.lr_schedule": ("none", "cosine", "step"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("auto", "fp32", "bf16"),
}
POSITIVE = ("model.latent_dim", "model.prior_components", "model.likelihood_components", "train.epochs",
            "train.batch_size", "train.lr", "train.max_bad_steps")
NON_NEGATIVE = ("train.checkpoint_every", "train.checkpoint_minutes", "train.beta", "train.warmup_epochs",
                "train.dimwise_warmup_epochs",
                "train.free_bits", "train.clip_grad", "train.patience",
                "model.num_classes", "model.label_embedding", "train.capacity_max", "train.capacity_epochs",
                "train.gamma", "data.workers", "train.tc_beta")


def validate(cfg: RunConfig) -> RunConfig:
    """Refuse nonsense settings with one line each; returns ``cfg``."""
    def get(key: str) -> object:
        section, name = key.split(".")
        return getattr(getattr(cfg, section), name)

    for key, allowed in CHOICES.items():
        if get(key) not in allowed:
            raise VaekitError(f"config: {key} must be one of {', '.join(allowed)}, got {get(key)!r}")
    for section in SECTIONS:
        for f in fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise VaekitError(f"config: {section}.{f.name} must be a finite number, got {value!r}")
    for key in POSITIVE:
        if not get(key) > 0:
            raise VaekitError(f"config: {key} must be > 0, got {get(key)!r}")
    for key in NON_NEGATIVE:
        if not get(key) >= 0:
            raise VaekitError(f"config: {key} must be >= 0, got {get(key)!r}")
    for key in ("model.hidden", "model.channels", "model.latent_dims"):
        if any(w <= 0 for w in get(key)):
            raise VaekitError(f"config: {key} widths must be > 0, got {get(key)!r}")
    if cfg.train.tc_beta > 0 and len(cfg.model.latent_dims) > 1:
        raise VaekitError("config: train.tc_beta (beta-TCVAE) needs a single latent layer, not model.latent_dims")
    if cfg.model.net == "conv" and not cfg.model.channels:
        raise VaekitError("config: model.channels must name at least one conv block")
    for key in ("data.val_fraction", "data.test_fraction"):
        if not 0 <= get(key) < 1:
            raise VaekitError(f"config: {key} must be in [0, 1), got {get(key)!r}")
    parse_scale(cfg.model.scale)
    return cfg


def parse_scale(scale: str) -> str | float:
    """'learned' | 'shared' | 'decoded' | a positive number (a fixed Gaussian scale)."""
    if scale in ("learned", "shared", "decoded"):
        return scale
    try:
        value = float(scale)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise VaekitError(f"config: model.scale must be learned, shared, decoded or a positive number, got {scale!r}")
    return value


def _changed(cfg: RunConfig, key: str) -> bool:
    """Whether ``key`` differs from its default."""
    section, name = key.split(".")
    default = getattr(getattr(RunConfig(), section), name)
    return getattr(getattr(cfg, section), name) != default


# (setting a, setting b, when both are set so, why they cannot both take effect)
CONFLICTS = [
    ("train.tc_beta", "train.capacity_max", lambda c: c.train.tc_beta > 0 and c.train.capacity_max > 0,
     "the beta-TCVAE penalty and the capacity objective each replace the KL term"),
    ("train.capacity_max", "train.free_bits", lambda c: c.train.capacity_max > 0 and c.train.free_bits > 0,
     "the capacity objective replaces the KL term that free bits shape"),
    ("train.tc_beta", "train.free_bits", lambda c: c.train.tc_beta > 0 and c.train.free_bits > 0,
     "the beta-TCVAE penalty replaces the KL term that free bits shape"),
    ("train.capacity_max", "train.beta", lambda c: c.train.capacity_max > 0 and c.train.beta != 1,
     "the capacity objective weighs |KL - C| by train.gamma, not by beta"),
    ("train.capacity_max", "train.warmup_epochs", lambda c: c.train.capacity_max > 0 and c.train.warmup_epochs > 0,
     "the capacity objective has no KL weight to warm up (train.capacity_epochs anneals C)"),
    ("train.capacity_epochs", "train.capacity_max", lambda c: c.train.capacity_epochs > 0 and not c.train.capacity_max,
     "it anneals a capacity that is off (0)"),
    ("train.gamma", "train.capacity_max", lambda c: _changed(c, "train.gamma") and not c.train.capacity_max,
     "gamma weighs the capacity objective, which is off (0)"),
    ("train.dimwise_warmup_epochs", "train.tc_beta",
     lambda c: c.train.dimwise_warmup_epochs > 0 and not c.train.tc_beta,
     "it warms up beta-TCVAE's dimension-wise term, which is off (0)"),
    ("model.prior_components", "model.family", lambda c: c.model.prior_components > 1 and c.model.family != "cvae",
     "only the conditional VAE (cvae) learns a mixture prior"),
    ("model.prior_components", "model.learned_prior",
     lambda c: c.model.prior_components > 1 and not c.model.learned_prior, "the mixture prior is the learned prior"),
    ("model.label_embedding", "model.family", lambda c: c.model.label_embedding > 0 and c.model.family != "cvae",
     "only the conditional VAE (cvae) reads labels"),
    ("model.learned_prior", "model.family", lambda c: not c.model.learned_prior and c.model.family != "cvae",
     "only the conditional VAE (cvae) learns a prior"),
    ("model.latent_dims", "model.family", lambda c: bool(c.model.latent_dims) and c.model.family != "ladder",
     "only the ladder VAE has several latent levels"),
    ("model.ladder_posterior", "model.family",
     lambda c: _changed(c, "model.ladder_posterior") and c.model.family != "ladder",
     "it chooses the ladder VAE's inference"),
    ("model.latent_dim", "model.latent_dims", lambda c: _changed(c, "model.latent_dim") and bool(c.model.latent_dims),
     "model.latent_dims gives the ladder's sizes; model.latent_dim is then unused"),
    ("model.scale", "model.likelihood",
     lambda c: _changed(c, "model.scale") and c.model.likelihood not in ("gaussian", "auto"),
     "the scale belongs to the gaussian likelihood"),
    ("model.likelihood_components", "model.likelihood",
     lambda c: _changed(c, "model.likelihood_components")
     and c.model.likelihood not in ("discretized_logistic", "auto"),
     "the components are the discretized logistic mixture's"),
    ("data.standardize", "model.likelihood",
     lambda c: c.data.standardize == "true" and c.model.likelihood not in ("gaussian", "auto"),
     "standardised columns are modelled by the gaussian likelihood"),
    ("model.channels", "model.net", lambda c: _changed(c, "model.channels") and c.model.net == "mlp",
     "the channels are the conv networks' widths"),
    ("model.hidden", "model.net",
     lambda c: _changed(c, "model.hidden") and c.model.net == "conv" and c.model.family != "ladder",
     "the hidden widths are the MLP networks' (the conv networks use model.channels)"),
]


def refuse_conflicts(cfg: RunConfig, sections: tuple[str, ...] = ("data", "model", "train")) -> RunConfig:
    """Refuse, in one line naming both settings, settings of ``sections`` that cannot all take effect in
    training; returns ``cfg``. Checked before training only: a run folder written before a check was added
    still loads."""
    for a, b, clash, why in CONFLICTS:
        if a.split(".")[0] in sections and clash(cfg):
            raise VaekitError(f"config: {a} and {b} cannot both take effect: {why}", key=a)
    return cfg
