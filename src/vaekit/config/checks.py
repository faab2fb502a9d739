"""Validation: each setting in its range (the pairs that cannot both take effect: conflicts.py)."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import fields

from ..errors import VaekitError, is_seed
from .registered import REGISTERS, refuse_unregistered
from .schema import SECTIONS, RunConfig

MIN_FIXED_SCALE = 1e-15  # a fixed Gaussian scale: float32 holds its square (1e-20's is subnormal, 1e-30's 0)
FRACTION_WHY = "each split keeps at least one item (val picks the best epoch, test is what evaluate scores)"

CHOICES: dict[str, tuple[str, ...]] = {
    "data.binarize": ("auto", "dynamic", "fixed", "none"),
    "data.in_memory": ("auto", "true", "false"),
    "data.standardize": ("auto", "true", "false"),
    "data.missing": ("refuse", "drop", "mean"),
    "data.numeric": ("standard", "modes"),
    "data.crop": ("center", "none"),
    "data.mode": ("auto", "L", "RGB"),
    "model.net": ("mlp", "conv", "custom"),  # custom: networks given in Python (model.json)
    "model.likelihood": ("auto", "bernoulli", "cbernoulli", "gaussian", "discretized_logistic"),
    "model.ladder_posterior": ("topdown", "precision"),
    "model.deep_init": ("scaled", "zero"),
    "train.lr_schedule": ("none", "cosine", "step"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.compile": ("auto", "off", "graph", "compile"),
}
POSITIVE: tuple[str, ...] = (
    "model.latent_dim",
    "model.likelihood_components",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "train.max_bad_steps",
    "model.deep_width",
    "model.deep_cell_width",
    "model.deep_latent_channels",
    "model.deep_patch",
    "model.deep_head_kernel",
    "model.deep_ar_kernel",
)
NON_NEGATIVE: tuple[str, ...] = (
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.beta",
    "train.warmup_epochs",
    "train.dimwise_warmup_epochs",
    "train.free_bits",
    "train.clip_grad",
    "train.patience",
    "train.min_delta",
    "train.threads",
    "model.num_classes",
    "model.label_embedding",
    "train.capacity_max",
    "train.capacity_epochs",
    "train.gamma",
    "data.workers",
    "train.tc_beta",
    "train.skip_grad",
    "model.deep_cells",
    "model.deep_ar_channels",
)

POSITIVE += ("model.codebook_size", "model.code_dim", "model.pixelcnn_channels", "model.pixelcnn_layers")  # vq
POSITIVE += ("model.categories", "train.gumbel_tau", "train.gumbel_tau_end")  # gumbel
NON_NEGATIVE += ("model.commitment", "train.prior_epochs")  # vq
DISCRETE = ("vq", "gumbel")  # the families with discrete latents (no Gaussian q(z|x))

# the zoo's axes (vaekit.models.priors, vaekit.models.posteriors, vaekit.core.objectives_zoo): built-in names
CHOICES.update(
    {
        "model.prior": ("standard", "mixture", "vamp", "flow"),
        "model.posterior": ("gaussian", "iaf", "nsf"),
        "train.objective": ("elbo", "iwae", "miwae", "ciwae", "piwae", "mmd", "factor"),
        "train.mmd_kernel": ("imq", "rbf"),
        "train.tc_estimator": ("mws", "mss"),  # beta-TCVAE's estimators of q(z) (vaekit.core.tc.TC_ESTIMATORS)
        "model.pseudo_init": ("data", "noise"),
    }
)
POSITIVE += ("model.pseudo_inputs", "model.flow_transforms", "train.iw_samples", "train.iw_groups")
NON_NEGATIVE += ("model.prior_components", "train.mmd_weight", "train.factor_gamma")  # components 0: the default
IMPORTANCE = ("iwae", "miwae", "ciwae", "piwae")  # the importance-weighted objectives
# model.likelihood of a model built in Python whose p(x|z) is a distribution vaekit does not know: this marker and
# its class name ("own:Beta"); its support is the model's own (evaluation asks the model, not a name)
OWN_LIKELIHOOD = "own:"


def own_likelihood(name: str) -> bool:
    """Whether ``name`` (a model.likelihood) is a p(x|z) of the user's own: the marker, then a class name."""
    return name.startswith(OWN_LIKELIHOOD) and name[len(OWN_LIKELIHOOD) :].isidentifier()


def maybe_own(cfg: RunConfig) -> bool:
    """Whether ``cfg``'s 'gaussian' may stand for a p(x|z) of the user's own: a config of format 1, written before
    vaekit named one ('own:Beta'), recorded any p(x|z) it did not know as 'gaussian'."""
    return cfg.stored.format == 1 and cfg.model.likelihood == "gaussian"


def add_choice(key: str, name: str) -> None:
    """Allow ``name`` for the setting ``key``: a registry's new entry (register_prior, register_objective...)."""
    if name not in CHOICES[key]:
        CHOICES[key] = (*CHOICES[key], name)


def validate(cfg: RunConfig) -> RunConfig:
    """Refuse nonsense settings with one line each; returns ``cfg``."""
    _check_ranges(cfg)
    _check_lists(cfg)
    _check_bounds(cfg)
    parse_scale(cfg.model.scale)
    return cfg


def _get(cfg: RunConfig, key: str) -> typing.Any:
    """The setting ``key`` ("section.name") of any type: numbers are compared, lists iterated."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def is_device(name: str) -> bool:
    """Whether train.device takes ``name``: one of its choices (auto, cpu, cuda) or one GPU by number, cuda:N."""
    return name in CHOICES["train.device"] or re.fullmatch(r"cuda:\d+", name) is not None


def _check_ranges(cfg: RunConfig) -> None:
    """The named choices, finite floats, then the positive and the non-negative settings."""
    for key, allowed in CHOICES.items():
        if _get(cfg, key) in allowed or (key == "model.likelihood" and _check_own_likelihood(cfg)):
            continue
        if key in REGISTERS:  # a registry's entry (register_prior...): said with how to make it known
            refuse_unregistered(key, _get(cfg, key), allowed, cfg.stored.loaded)
            continue
        if key == "train.device" and is_device(str(cfg.train.device)):
            continue  # one GPU by its number (checked against this machine's when a run starts)
        more = " or cuda:N" if key == "train.device" else ""
        raise VaekitError(f"config: {key} must be one of {', '.join(allowed)}{more}, got {_get(cfg, key)!r}", key=key)
    for section in SECTIONS:
        for f in fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                key = f"{section}.{f.name}"
                raise VaekitError(f"config: {key} must be a finite number, got {value!r}", key=key)
    for key in POSITIVE:
        if not _get(cfg, key) > 0:
            raise VaekitError(f"config: {key} must be > 0, got {_get(cfg, key)!r}", key=key)
    for key in NON_NEGATIVE:
        if not _get(cfg, key) >= 0:
            raise VaekitError(f"config: {key} must be >= 0, got {_get(cfg, key)!r}", key=key)
    if cfg.data.limit is not None and not cfg.data.limit > 0:  # before any file is read
        _refuse(cfg, "data.limit", "> 0 (none: every item)")
    seed = cfg.train.seed
    if not is_seed(seed):
        raise VaekitError(f"config: train.seed must be a whole number in [0, 2**32), got {seed!r}", key="train.seed")


def _check_own_likelihood(cfg: RunConfig) -> bool:
    """Whether model.likelihood names a p(x|z) of the user's own ("own:Beta"); refused in one line unless the
    networks came from Python (model.net custom): vaekit's networks build only the likelihoods it knows."""
    name = cfg.model.likelihood
    if not own_likelihood(name):
        return False
    if cfg.model.net != "custom":
        raise VaekitError(
            f"config: model.likelihood {name} is the p(x|z) of a model built in Python (model.net custom); model.net "
            f"{cfg.model.net} builds one of {', '.join(CHOICES['model.likelihood'])}",
            key="model.likelihood",
        )
    return True


def _check_lists(cfg: RunConfig) -> None:
    """Widths and sizes given as lists, then the deep model's groups per resolution."""
    for key in ("model.hidden", "model.channels", "model.latent_dims", "data.image_size"):
        if any(w <= 0 for w in _get(cfg, key)):
            raise VaekitError(f"config: {key} widths must be > 0, got {_get(cfg, key)!r}", key=key)
    if any(g < 0 for g in cfg.model.deep_groups) or not sum(cfg.model.deep_groups) or len(cfg.model.deep_groups) < 2:
        raise VaekitError(
            f"config: model.deep_groups lists groups per resolution (>= 2 entries, >= 0, one > 0), "
            f"got {cfg.model.deep_groups!r}",
            key="model.deep_groups",
        )


def _check_bounds(cfg: RunConfig) -> None:
    """Settings with their own bounds or shapes, each in one line; the split fractions last."""
    t, m = cfg.train, cfg.model
    if not 0 <= t.ema < 1:
        _refuse(cfg, "train.ema", "in [0, 1) (0: off; e.g. 0.999)")
    if 0 < t.skip_ratio <= 1 or t.skip_ratio < 0:  # at 1, half the steps exceed the median
        _refuse(cfg, "train.skip_ratio", "0 (off) or > 1 (e.g. 10)")
    if len(cfg.data.image_size) > 2:
        _refuse(cfg, "data.image_size", "one size or H,W")
    if not 0 <= m.codebook_decay < 1:
        _refuse(cfg, "model.codebook_decay", "in [0, 1)")
    if m.categories < 2:  # one category: every code the same one-hot, carrying nothing
        _refuse(cfg, "model.categories", ">= 2")
    if m.net == "conv" and not m.channels:
        raise VaekitError("config: model.channels must name at least one conv block", key="model.channels")
    _check_flow(cfg)
    if not 0 <= t.ciwae_beta <= 1:
        _refuse(cfg, "train.ciwae_beta", "in [0, 1]")
    for key in ("data.val_fraction", "data.test_fraction"):
        fits = key == "data.test_fraction" and key not in cfg.given and _get(cfg, key) == 0  # vaekit.fit's: no test
        if not 0 < _get(cfg, key) < 1 and not fits:
            _refuse(cfg, key, "in (0, 1)", f": {FRACTION_WHY}")
    if (val := cfg.data.val_fraction) + (test := cfg.data.test_fraction) >= 1:  # named: the one set, else val
        key = "data.test_fraction" if changed(cfg, "data.test_fraction") else "data.val_fraction"
        text = f"data.val_fraction + data.test_fraction must be below 1 (the rest trains), got {val:g} + {test:g}"
        raise VaekitError(f"config: {text}", key=key)


def _refuse(cfg: RunConfig, key: str, rule: str, why: str = "") -> typing.NoReturn:
    """One line: the setting ``key`` must be ``rule``, its value said (then ``why``); the key named for the CLI."""
    raise VaekitError(f"config: {key} must be {rule}, got {_get(cfg, key)!r}{why}", key=key)


# a flow's steps and widths: far above any real flow (a few steps, widths of a few hundred), far below the sizes that
# fill the memory (1,000,000 steps: 170 GB; each step's network is widths^2 numbers)
MAX_FLOW_TRANSFORMS, MAX_FLOW_WIDTH = 1_000, 65_536


def _check_flow(cfg: RunConfig) -> None:
    """model.flow_transforms and model.flow_hidden (prior flow, posterior iaf | nsf) in their bounds."""
    hidden, steps = cfg.model.flow_hidden, cfg.model.flow_transforms
    if not hidden or min(hidden) <= 0 or max(hidden) > MAX_FLOW_WIDTH:
        raise VaekitError(
            f"config: model.flow_hidden must list widths from 1 to {MAX_FLOW_WIDTH:,}, got {hidden!r}",
            key="model.flow_hidden",
        )
    if steps > MAX_FLOW_TRANSFORMS:
        raise VaekitError(
            f"config: model.flow_transforms must be at most {MAX_FLOW_TRANSFORMS:,} (flows use a few steps), "
            f"got {steps:,}",
            key="model.flow_transforms",
        )


def parse_scale(scale: str) -> str | float:
    """'learned' | 'shared' | 'decoded' | a positive number (a fixed Gaussian scale)."""
    if scale in ("learned", "shared", "decoded"):
        return scale
    try:
        value = float(scale)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise VaekitError(
            f"config: model.scale must be learned, shared, decoded or a positive number, got {scale!r}",
            key="model.scale",
        )
    if not MIN_FIXED_SCALE <= value < math.inf:  # log-densities of -inf or NaN in float32 (not the data's doing)
        raise VaekitError(
            f"config: model.scale {scale!r}: a fixed Gaussian scale must be finite and at least {MIN_FIXED_SCALE:g}, "
            "whose square float32 holds (the log-density divides by it)",
            key="model.scale",
        )
    return value


def short_runs(cfg: RunConfig) -> list[str]:
    """A note for each schedule that ``cfg``'s run ends before it ends: a warm-up of train.warmup_epochs 5 in a run
    of train.epochs 1 trains at a KL weight of beta / 5 at most (train.capacity_epochs, train.dimwise_warmup_epochs
    likewise; ``core.schedules`` has the ramps); and for a gumbel temperature that rises rather than anneals."""
    t, notes = cfg.train, []
    if cfg.model.family == "gumbel" and t.gumbel_tau_end > t.gumbel_tau:  # Jang et al. anneal it down
        notes.append(
            f"train.gumbel_tau_end {t.gumbel_tau_end:g} is above train.gumbel_tau {t.gumbel_tau:g}: the Gumbel-softmax "
            "temperature rises over the run (annealing lowers it, towards the discrete model)"
        )
    ramps = [
        ("warmup_epochs", "the KL weight", "of train.beta", 1.0, True),
        ("capacity_epochs", "the KL capacity", "of train.capacity_max", 1.0, t.capacity_max > 0),
        ("dimwise_warmup_epochs", "beta-TCVAE's dimension-wise KL weight", "of 1", 0.95, True),  # from 0.05
    ]
    for name, what, of, rise, used in ramps:
        if used and (n := getattr(t, name)) > t.epochs:
            end = 1 - rise + rise * t.epochs / n
            notes.append(
                f"train.{name} {n:g} is longer than the run (train.epochs {t.epochs}): {what} ends at {end:.0%} {of}"
            )
    return notes


def changed(cfg: RunConfig, key: str) -> bool:
    """Whether ``key`` differs from its default."""
    return _get(cfg, key) != _get(RunConfig(), key)


def given(cfg: RunConfig, key: str) -> bool:
    """Whether ``key`` was given (``cfg.given``: a flag, --set, a keyword, the user's TOML file), at any value, or
    differs from its default (a preset's value, a run's config.json, a RunConfig built in Python: no record)."""
    return key in cfg.given or changed(cfg, key)
