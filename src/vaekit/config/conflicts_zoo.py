"""The zoo's rows of the conflicts table (priors, posteriors, objectives, discrete and deep families), then those of
beta 0 (``conflicts_beta``)."""

from __future__ import annotations

from typing import Any

from .checks import DISCRETE, IMPORTANCE
from .checks import given as _given
from .conflicts_beta import beta_zero

AR_OFF = "the kernel is the local autoregressive p(x|z)'s window, which is off (deep_ar_channels 0)"


def _objective(c: Any) -> Any:
    """The training objective's name, ``train.objective``."""
    return c.train.objective


BATCH_LEVEL = {  # what a training batch's items estimate together, so a step on a lone item cannot take effect
    "mmd": "the MMD between q(z) and p(z) compares the codes of a batch in pairs",
    "factor": "the factor objective's discriminator tells a batch's codes from the same codes shuffled across it",
    "tc_beta": "beta-TCVAE estimates q(z) from the codes of a batch's items together",
}


def batch_level(train: Any) -> str | None:
    """Why ``train`` (a TrainConfig) needs training batches of 2 items or more (``BATCH_LEVEL``), or None where each
    item's loss stands alone (tc_beta > 0 is the elbo objective's: the others refuse it)."""
    return BATCH_LEVEL.get("tc_beta" if train.tc_beta > 0 else train.objective)


def _axis_settings() -> list:
    """(setting, axis, when the axis's choice does not read it, why): a prior's, objective's or beta-TCVAE's."""
    return [
        ("model.pseudo_inputs", "model.prior", lambda c: c.model.prior != "vamp", "they are the VampPrior's"),
        ("model.pseudo_init", "model.prior", lambda c: c.model.prior != "vamp", "it starts the VampPrior's"),
        (
            "train.iw_samples",
            "train.objective",
            lambda c: _objective(c) not in IMPORTANCE,
            "it is the importance-weighted objectives' K (iwae, miwae, ciwae, piwae)",
        ),
        (
            "train.iw_groups",
            "train.objective",
            lambda c: _objective(c) not in ("miwae", "piwae"),
            "only miwae and piwae split their samples into groups",
        ),
        (
            "train.tc_estimator",
            "train.tc_beta",
            lambda c: not c.train.tc_beta > 0,
            "it picks how beta-TCVAE estimates q(z), and beta-TCVAE is off (0)",
        ),
        ("train.ciwae_beta", "train.objective", lambda c: _objective(c) != "ciwae", "it mixes ciwae's bounds"),
        ("train.mmd_weight", "train.objective", lambda c: _objective(c) != "mmd", "it weighs the mmd objective"),
        ("train.mmd_kernel", "train.objective", lambda c: _objective(c) != "mmd", "it is the mmd objective's"),
        (
            "train.factor_gamma",
            "train.objective",
            lambda c: _objective(c) != "factor",
            "it weighs the factor objective's total correlation",
        ),
        *(
            (
                f"model.{key}",
                "model.prior",
                lambda c: c.model.prior != "flow" and c.model.posterior == "gaussian",
                "it shapes the flow prior or a flow posterior (model.posterior iaf or nsf)",
            )
            for key in ("flow_transforms", "flow_hidden")
        ),
    ]


def components_given(c: Any) -> bool:
    """Whether model.prior_components was given (``checks.given``), and not, unless the user gave it, a 1 that means
    the default (a format-1 config's, the default of the vaekit that wrote it for every family; a cvae's 0 is 1)."""
    one = c.model.prior_components == 1 and (c.stored.format == 1 or c.model.family == "cvae")
    return _given(c, "model.prior_components") and not (one and "model.prior_components" not in c.given)


def _when_given(only: list) -> list:
    """Conflict rows from ``only``: each setting clashes when given (``checks.given``) while its axis is off."""
    return [(a, b, lambda c, a=a, off=off: _given(c, a) and off(c), why) for a, b, off, why in only]


def _elbo_only() -> list:
    """Rows for the elbo objective's KL shapers (free bits, capacity, beta-TCVAE) under another objective."""
    return [
        (
            f"train.{key}",
            "train.objective",
            lambda c, key=key: getattr(c.train, key) > 0 and _objective(c) != "elbo",
            f"train.{key} is a setting of the elbo objective",
        )
        for key in ("free_bits", "capacity_max", "tc_beta")
    ]


SAME_AS = (  # (objective, its weight, the value at which it trains another named objective's loss: what to use)
    ("mmd", "mmd_weight", 0.0, "-rec + beta KL, the elbo objective's loss: use train.objective=elbo (the same beta)"),
    ("factor", "factor_gamma", 0.0, "the ELBO (a discriminator weighing nothing): use train.objective=elbo"),
    ("ciwae", "ciwae_beta", 0.0, "IWAE alone: use train.objective=iwae (the same train.iw_samples)"),
    (
        "ciwae",
        "ciwae_beta",
        1.0,
        "the mean of K one-sample ELBOs: use train.objective=miwae with train.iw_groups K and train.iw_samples 1",
    ),
)


def _same_as_another() -> list:
    """Rows for an objective's weight at the value that makes it another named objective (``SAME_AS``): such a
    setting cannot take effect as asked. beta 0 is WAE-MMD (no other objective), so it stays."""
    return [
        (
            f"train.{key}",
            "train.objective",
            lambda c, name=name, key=key, value=value: _objective(c) == name and getattr(c.train, key) == value,
            f"the {name} objective with {key} {value:g} trains {same}",
        )
        for name, key, value, same in SAME_AS
    ]


TC_PRIOR = (  # its dimension-wise warm-up would also weigh down the one term that fits a learned p(z)
    "beta-TCVAE's dimension-wise KL is sum_d KL(q(z_d) || p(z_d)), which needs a p(z) that factorises by dimension "
    "(the standard prior); against a mixture (a cvae's p(z|y) too), VampPrior or flow it is no such sum"
)


def _mixture_pzy(c: Any) -> bool:
    """Whether the conditional VAE's learned p(z|y) is a mixture (model.prior_components > 1): no factorised p."""
    return c.model.family == "cvae" and c.model.prior_components > 1


FACTORISED = ("vae", "cvae", "ladder", "deep")  # families whose KL splits by latent dimension (vq has no free bits)
GAUSSIAN = "which needs a factorised q(z|x) and p(z) (a Gaussian posterior, the standard prior); this KL is one total"
ONE_VARIABLE = "the total correlation of one latent variable (model.latent_dim 1) is 0: there is none to measure"


def _one_variable(c: Any) -> bool:
    """Whether the codes whose total correlation beta-TCVAE and the factor objective measure are one variable: the
    latent_dim of a flat family (a gumbel's: its categorical variables); ladder, deep and vq refuse both above."""
    return c.model.latent_dim == 1 and c.model.family not in ("ladder", "deep", "vq")


def _family_axes() -> list:
    """Rows for the prior and posterior axes against the model family, and beta-TCVAE against the posterior."""
    return [
        (
            "model.prior",
            "model.family",
            lambda c: _given(c, "model.prior") and c.model.family != "vae",
            "the prior axis is built for the vae family (cvae learns p(z|y); ladder and deep have a prior per latent "
            "group; vq and gumbel have discrete codes)",
        ),
        (
            "model.posterior",
            "model.family",
            lambda c: _given(c, "model.posterior") and c.model.family != "vae",
            "the posterior axis is built for the vae family",
        ),
        (
            "train.tc_beta",
            "model.family",
            lambda c: c.train.tc_beta > 0 and c.model.family in ("ladder", "deep"),
            "beta-TCVAE estimates q(z) of one latent layer, and a hierarchy's other groups would go unmeasured",
        ),
        (
            "train.tc_beta",
            "model.posterior",
            lambda c: c.train.tc_beta > 0 and c.model.posterior != "gaussian",
            "beta-TCVAE's estimator needs a factorised Gaussian q(z|x)",
        ),
        ("train.tc_beta", "model.prior", lambda c: c.train.tc_beta > 0 and c.model.prior != "standard", TC_PRIOR),
        ("train.tc_beta", "model.prior_components", lambda c: c.train.tc_beta > 0 and _mixture_pzy(c), TC_PRIOR),
        ("train.tc_beta", "model.latent_dim", lambda c: c.train.tc_beta > 0 and _one_variable(c), ONE_VARIABLE),
        ("train.objective", "model.latent_dim", lambda c: _objective(c) == "factor" and _one_variable(c), ONE_VARIABLE),
        *(
            (
                "train.free_bits",
                f"model.{axis}",
                lambda c, axis=axis, plain=plain: c.train.free_bits > 0 and getattr(c.model, axis) not in plain,
                f"free bits floor the KL of each latent dimension, {why}",
            )
            for axis, plain, why in (("prior", ("standard",), GAUSSIAN), ("posterior", ("gaussian",), GAUSSIAN))
            + (("family", FACTORISED, "and the categorical VAE's KL (family gumbel) is one total over its variables"),)
        ),
        (
            "train.free_bits",
            "model.prior_components",
            lambda c: c.train.free_bits > 0 and _mixture_pzy(c),
            "free bits floor the KL of each latent dimension, and the KL against the conditional VAE's mixture "
            "p(z|y) is one total",
        ),
    ]


def _objective_clashes() -> list:
    """Rows for KL weights under the importance-weighted bounds, KL balancing, and the VQ-VAE's objective."""
    return [
        *(
            (
                f"train.{key}",
                "train.objective",
                lambda c, key=key, on=on: on(c) and _objective(c) in IMPORTANCE,
                "the importance-weighted bounds have no KL weight",
            )
            for key, on in (  # a warm-up of 0 epochs is its off switch, as with vq
                ("beta", lambda c: _given(c, "train.beta")),
                ("warmup_epochs", lambda c: c.train.warmup_epochs > 0),
            )
        ),
        (
            "train.objective",
            "model.family",
            lambda c: _objective(c) == "piwae" and c.model.family in ("ladder", "deep"),
            "piwae routes MIWAE's gradient to every parameter the latents depend on, and a hierarchy's latents "
            "depend on its top-down generative path (use iwae or miwae)",
        ),
        (
            "train.kl_balance",
            "train.objective",
            lambda c: getattr(c.train, "kl_balance", False) and _objective(c) != "elbo",
            "KL balancing reshapes the elbo objective's KL term",
        ),
        (
            "train.objective",
            "model.family",
            lambda c: _objective(c) in ("factor", "mmd") and c.model.family in ("ladder", "deep"),
            "the factor and mmd objectives measure q(z) of one latent layer, and a hierarchy's other groups would "
            "go unmeasured",
        ),
        (
            "train.objective",
            "model.family",
            lambda c: _objective(c) != "elbo" and c.model.family == "vq",
            "the VQ-VAE trains on its reconstruction and codebook terms (the elbo objective)",
        ),
        *(
            (
                "train.batch_size",
                "train.tc_beta" if name == "tc_beta" else "train.objective",
                lambda c, why=why: c.train.batch_size < 2 and batch_level(c.train) == why,
                f"{why}: a batch of one has nothing to compare",
            )
            for name, why in BATCH_LEVEL.items()
        ),
    ]


def _ar_off(c: Any) -> bool:
    """Whether the deep family's local autoregressive p(x|z) is off (its window then unread; DeepVAE refuses it)."""
    return c.model.family == "deep" and not c.model.deep_ar_channels


def _discrete_families() -> list:
    """Rows for the discrete families (vq, gumbel): the KL shapers, the conv code grid, the importance weighted."""
    return [
        (
            "model.family",
            "train.tc_beta",
            lambda c: c.model.family in DISCRETE and c.train.tc_beta > 0,
            "beta-TCVAE's estimator needs a Gaussian q(z|x); vq and gumbel have discrete latents",
        ),
        *(
            (
                "model.family",
                f"train.{key}",
                lambda c, key=key: c.model.family == "vq" and getattr(c.train, key) > 0,
                "the VQ-VAE's KL term is its PixelCNN prior's loss on the codes, which shape nothing",
            )
            for key in ("capacity_max", "free_bits")
        ),
        (
            "model.latent_dim",
            "model.net",
            lambda c: c.model.family == "vq" and c.model.net == "conv" and _given(c, "model.latent_dim"),
            "the conv VQ-VAE's code grid comes from the image size and model.channels (latent_dim sizes the MLP grid)",
        ),
        (
            "train.objective",
            "model.family",
            lambda c: c.train.objective in ("iwae", "miwae", "ciwae", "piwae") and c.model.family == "gumbel",
            "the Gumbel-softmax draws are relaxed one-hots, which the categorical q(z|x) gives no density to weigh",
        ),
    ]


def zoo_conflicts() -> list:
    """The rows of the zoo's axes: the discrete families' first (they follow the table's own rows), then prior,
    posterior and objective against the family and each other."""
    deep = [("model.deep_ar_kernel", "model.deep_ar_channels", _ar_off, AR_OFF)]
    rows = _when_given(_axis_settings() + deep) + _same_as_another() + _elbo_only() + _family_axes()
    rows += _objective_clashes()
    return _discrete_families() + rows + beta_zero()
