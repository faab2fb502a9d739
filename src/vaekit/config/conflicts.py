"""Settings that cannot all take effect: one table of pairs, each refused in one line naming both."""

from __future__ import annotations

from ..errors import VaekitError
from .checks import changed
from .checks import given as _given
from .conflicts_loop import loop_conflicts
from .conflicts_zoo import components_given, zoo_conflicts
from .schema import SECTIONS, ModelConfig, RunConfig

LADDER = ("ladder", "conv")  # the conv ladder: one hidden width, between its levels
# (setting a, setting b, when both are set so, why they cannot both take effect)
CONFLICTS = [
    (
        "train.tc_beta",
        "train.capacity_max",
        lambda c: c.train.tc_beta > 0 and c.train.capacity_max > 0,
        "the beta-TCVAE penalty and the capacity objective each replace the KL term",
    ),
    (
        "train.capacity_max",
        "train.free_bits",
        lambda c: c.train.capacity_max > 0 and c.train.free_bits > 0,
        "the capacity objective replaces the KL term that free bits shape",
    ),
    (
        "train.tc_beta",
        "train.free_bits",
        lambda c: c.train.tc_beta > 0 and c.train.free_bits > 0,
        "the beta-TCVAE penalty replaces the KL term that free bits shape",
    ),
    (
        "train.capacity_max",
        "train.beta",
        lambda c: c.train.capacity_max > 0 and _given(c, "train.beta"),
        "the capacity objective weighs |KL - C| by train.gamma, not by beta",
    ),
    (
        "train.capacity_max",
        "train.warmup_epochs",
        lambda c: c.train.capacity_max > 0 and c.train.warmup_epochs > 0,
        "the capacity objective has no KL weight to warm up (train.capacity_epochs anneals C)",
    ),
    (
        "train.capacity_epochs",
        "train.capacity_max",
        lambda c: c.train.capacity_epochs > 0 and not c.train.capacity_max,
        "it anneals a capacity that is off (0)",
    ),
    (
        "train.gamma",
        "train.capacity_max",
        lambda c: _given(c, "train.gamma") and not c.train.capacity_max,
        "gamma weighs the capacity objective, which is off (0)",
    ),
    (
        "train.dimwise_warmup_epochs",
        "train.tc_beta",
        lambda c: c.train.dimwise_warmup_epochs > 0 and not c.train.tc_beta,
        "it warms up beta-TCVAE's dimension-wise term, which is off (0)",
    ),
    (
        "model.prior_components",
        "model.prior",
        lambda c: components_given(c) and c.model.family != "cvae" and c.model.prior != "mixture",
        "the components belong to a mixture prior: model.prior=mixture, or the conditional VAE's (cvae)",
    ),
    (
        "model.prior_components",
        "model.learned_prior",
        lambda c: components_given(c) and not c.model.learned_prior,
        "the mixture prior is the learned prior",
    ),
    *(
        (  # num_classes: set from the data's labels for cvae (and a user's model that reads them) alone
            f"model.{key}",
            "model.family",
            lambda c, key=key, own=own, on=on: on(c) and c.model.family not in ("cvae", *own),
            "only the conditional VAE (cvae) reads labels",
        )
        for key, own, on in (  # num_classes 0: no labels, the other families' own setting
            ("label_embedding", (), lambda c: _given(c, "model.label_embedding")),
            ("num_classes", ("custom",), lambda c: c.model.num_classes > 0),
        )
    ),
    (
        "model.learned_prior",
        "model.family",
        lambda c: _given(c, "model.learned_prior") and c.model.family != "cvae",
        "only the conditional VAE (cvae) learns a prior",
    ),
    (
        "model.latent_dims",
        "model.family",
        lambda c: bool(c.model.latent_dims) and c.model.family != "ladder",
        "only the ladder VAE lists its latent levels there; the deep hierarchy's are its latent groups, set by "
        "model.deep_groups (groups per resolution, 1 x 1 first) and model.deep_latent_channels (channels of each)",
    ),
    (
        "model.ladder_posterior",
        "model.family",
        lambda c: _given(c, "model.ladder_posterior") and c.model.family != "ladder",
        "it chooses the ladder VAE's inference",
    ),
    (
        "model.latent_dim",
        "model.latent_dims",
        lambda c: _given(c, "model.latent_dim") and (bool(c.model.latent_dims) or c.model.family == "ladder"),
        "model.latent_dims gives the ladder's sizes, z_1 first (default 32,16); model.latent_dim is then unused",
    ),
    *(
        (
            f"model.{key}",
            "model.family",
            lambda c, key=key: _given(c, f"model.{key}") and c.model.family != "deep",
            "it sets the deep hierarchy (family deep)",
        )
        for key in (
            *("deep_groups", "deep_width", "deep_cell_width", "deep_latent_channels", "deep_cells"),
            *("deep_patch", "deep_head_kernel", "deep_ar_channels", "deep_ar_kernel", "deep_init"),
            *("residual_posterior", "checkpoint_cells"),
        )
    ),
    *(
        (f"model.{key}", "model.family", lambda c, key=key: unread_by_deep(c, key), why)
        for key, why in (
            ("latent_dim", "the deep hierarchy's groups are sized by model.deep_latent_channels and model.deep_groups"),
            ("hidden", "the deep hierarchy's widths are model.deep_width and model.deep_cell_width"),
            ("channels", "the deep hierarchy's widths are model.deep_width and model.deep_cell_width"),
            ("net", "the deep hierarchy has residual cells of its own"),
        )
    ),
    (
        "train.beta",
        "model.family",
        lambda c: _given(c, "train.beta") and c.model.family == "vq",
        "the VQ-VAE's KL is the constant log K per code: beta would only scale a constant",
    ),
    (
        "train.warmup_epochs",
        "model.family",
        lambda c: c.train.warmup_epochs > 0 and c.model.family == "vq",
        "the VQ-VAE's KL is the constant log K per code: warming up its weight changes nothing",
    ),
    *(
        (
            "train.kl_balance",
            f"train.{key}",
            lambda c, key=key: c.train.kl_balance and getattr(c.train, key) > 0,
            f"{why}, so the loss holds no plain KL term for KL balancing to reweigh group by group",
        )
        for key, why in (
            ("free_bits", "free bits floor each latent dimension's KL"),
            ("capacity_max", "the capacity objective puts gamma * |KL - C| (a target C) in the KL's place"),
            ("tc_beta", "beta-TCVAE splits the KL into MI, total correlation and dimension-wise terms"),
        )
    ),
    *(
        (
            key,
            "train.kl_balance",
            lambda c, one=one: c.train.kl_balance and one(c.model),
            f"KL balancing weighs each latent group's KL against the others': {why}",
        )
        for key, one, why in (
            ("model.family", lambda m: m.family not in ("ladder", "deep"), "this family has one group"),
            ("model.deep_groups", lambda m: m.family == "deep" and sum(m.deep_groups) == 1, "these make one group"),
            ("model.latent_dims", lambda m: m.family == "ladder" and len(m.latent_dims) == 1, "these make one level"),
        )
    ),
    (
        "train.kl_balance",
        "train.warmup_epochs",
        lambda c: c.train.kl_balance and not c.train.warmup_epochs,
        "KL balancing acts during the KL warm-up, which is off (0)",
    ),
    (
        "model.scale",
        "model.likelihood",
        lambda c: _given(c, "model.scale") and c.model.likelihood not in ("gaussian", "auto"),
        "the scale belongs to the gaussian likelihood",
    ),
    (
        "model.likelihood_components",
        "model.likelihood",
        lambda c: (
            _given(c, "model.likelihood_components") and c.model.likelihood not in ("discretized_logistic", "auto")
        ),
        "the components are the discretized logistic mixture's",
    ),
    (
        "data.standardize",
        "model.likelihood",
        lambda c: c.data.standardize == "true" and c.model.likelihood not in ("gaussian", "auto"),
        "standardised columns are modelled by the gaussian likelihood",
    ),
    (
        "data.crop",
        "data.image_size",
        lambda c: _given(c, "data.crop") and not c.data.image_size,
        "the crop applies when images are resized to data.image_size",
    ),
    (
        "model.channels",
        "model.net",
        lambda c: _given(c, "model.channels") and c.model.net == "mlp" and c.model.family != "deep",  # its row above
        "the channels are the conv networks' widths",
    ),
    (
        "model.hidden",
        "model.net",
        lambda c: _given(c, "model.hidden") and c.model.net == "conv" and c.model.family != "ladder",
        "the hidden widths are the MLP networks' (the conv networks use model.channels)",
    ),
    (  # LadderVAE.from_config: width=hidden[-1]; the conv networks read channels
        "model.hidden",
        "model.net",
        lambda c: _given(c, "model.hidden") and len(c.model.hidden) > 1 and (c.model.family, c.model.net) == LADDER,
        "a conv ladder has one hidden width, of the layers between its levels: give one (e.g. [400]), as only the "
        "last entry would be used",
    ),
    *(
        (
            f"model.{key}",
            "model.family",
            lambda c, key=key: _given(c, f"model.{key}") and c.model.family != "vq",
            "it sets the VQ-VAE (family vq)",
        )
        for key in ("codebook_size", "code_dim", "commitment", "codebook_decay", "pixelcnn_channels", "pixelcnn_layers")
    ),
    (
        "model.categories",
        "model.family",
        lambda c: _given(c, "model.categories") and c.model.family != "gumbel",
        "it sets the categorical VAE (family gumbel)",
    ),
    (
        "model.family",
        "train.prior_epochs",
        lambda c: _given(c, "train.prior_epochs") and c.model.family != "vq",
        "only the VQ-VAE (family vq) fits its PixelCNN prior in a second stage",
    ),
    *(
        (
            "model.family",
            f"train.{key}",
            lambda c, key=key: _given(c, f"train.{key}") and c.model.family != "gumbel",
            "the temperature anneals the categorical VAE's Gumbel-softmax (family gumbel)",
        )
        for key in ("gumbel_tau", "gumbel_tau_end")
    ),
]


CONFLICTS += zoo_conflicts() + loop_conflicts()


def deep_latent_size(m: ModelConfig) -> int | None:
    """The numbers in the codes of the deep hierarchy that ``m`` describes (sum over its groups of C_z * h * w, as
    ``DeepVAE.latent_dims`` sums them), or None where its items are no (C, H, W) images it can be built for."""
    if len(m.input_shape) != 3 or m.deep_patch < 1 or len(m.deep_groups) < 2:
        return None
    sides = []  # the grid at each resolution from 1 x 1 down, each half the next (ceil), as models.deep_cells.sizes
    for size in (m.input_shape[1] // m.deep_patch, m.input_shape[2] // m.deep_patch):
        halved = [size]
        for _ in range(len(m.deep_groups) - 2):
            halved.append((halved[-1] + 1) // 2)
        sides.append([1, *halved[::-1]])
    return m.deep_latent_channels * sum(g * h * w for g, h, w in zip(m.deep_groups, *sides))


def unread_by_deep(c: RunConfig, key: str) -> bool:
    """Whether ``key``, a model setting the deep hierarchy (built by vaekit, not from Python) does not read, is set
    other than as its run's config.json records it: no MLP or conv widths, and its latent size (``deep_latent_size``),
    any size with no widths (a run's record, its groups changed since: training records the size anew)."""
    m, kept = c.model, {"hidden": c.model.hidden == [], "channels": c.model.channels == []}
    kept["latent_dim"] = (kept["hidden"] and kept["channels"]) or m.latent_dim == deep_latent_size(m)
    deep = m.family == "deep" and m.net != "custom"  # a model from Python: as training.describe found it
    return deep and _given(c, f"model.{key}") and not kept.get(key, False)


def refuse_conflicts(
    cfg: RunConfig, sections: tuple[str, ...] = SECTIONS, only: tuple[str, ...] = (), unknown: tuple[str, ...] = ()
) -> RunConfig:
    """Refuse, in one line naming both, settings that cannot all take effect in training; returns ``cfg``. A row is
    checked when either of its settings is of ``sections`` (or in ``only``): a resume's train section holds a vae
    run's train.gumbel_tau to its family. A row naming a setting or section of ``unknown`` (fit's model before it is
    described) is not, nor one of the model section of a user's model class (family custom, as fit described it).
    Checked before training only: a run folder written before a check was added still loads."""
    if cfg.model.family == "custom":  # its model section records what fit found, as fit checks it: not settings
        sections, unknown = tuple(s for s in sections if s != "model"), (*unknown, "model.family")
    for a, b, clash, why in CONFLICTS:
        checked = [k for k in (a, b) if (k in only if only else k.split(".")[0] in sections)]
        if checked and not any(k in unknown or k.split(".")[0] in unknown for k in (a, b)) and clash(cfg):
            given = [k for k in checked if _given(cfg, k)] + checked  # one given (checks.given) first, the family
            given.sort(key=lambda k: k == "model.family")  # last: vq given with free bits names the free bits
            why += (
                f"; {given[0]} is given at its default" if given[0] in cfg.given and not changed(cfg, given[0]) else ""
            )
            raise VaekitError(f"config: {a} and {b} cannot both take effect: {why}", key=given[0])
    return cfg
