"""The zoo's rows of the conflicts table (priors, posteriors, objectives, discrete and deep families)."""

from __future__ import annotations

from .checks import IMPORTANCE
from .checks import changed as _changed


def zoo_conflicts() -> list:
    """The rows of the zoo's axes: prior, posterior and objective against the family and each other."""
    objective = lambda c: c.train.objective  # noqa: E731
    only = [
        ("model.pseudo_inputs", "model.prior", lambda c: c.model.prior != "vamp", "they are the VampPrior's"),
        ("model.pseudo_init", "model.prior", lambda c: c.model.prior != "vamp", "it starts the VampPrior's"),
        (
            "train.iw_samples",
            "train.objective",
            lambda c: objective(c) not in IMPORTANCE,
            "it is the importance-weighted objectives' K (iwae, miwae, ciwae, piwae)",
        ),
        (
            "train.iw_groups",
            "train.objective",
            lambda c: objective(c) not in ("miwae", "piwae"),
            "only miwae and piwae split their samples into groups",
        ),
        ("train.ciwae_beta", "train.objective", lambda c: objective(c) != "ciwae", "it mixes ciwae's bounds"),
        ("train.mmd_weight", "train.objective", lambda c: objective(c) != "mmd", "it weighs the mmd objective"),
        ("train.mmd_kernel", "train.objective", lambda c: objective(c) != "mmd", "it is the mmd objective's"),
        (
            "train.factor_gamma",
            "train.objective",
            lambda c: objective(c) != "factor",
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
    rows = [(a, b, lambda c, a=a, off=off: _changed(c, a) and off(c), why) for a, b, off, why in only]
    elbo_only = [
        (
            f"train.{key}",
            "train.objective",
            lambda c, key=key: getattr(c.train, key) > 0 and objective(c) != "elbo",
            f"train.{key} is a setting of the elbo objective",
        )
        for key in ("free_bits", "capacity_max", "tc_beta")
    ]
    return (
        rows
        + elbo_only
        + [
            (
                "model.prior",
                "model.family",
                lambda c: c.model.prior != "standard" and c.model.family != "vae",
                "the prior axis is built for the vae family (cvae learns p(z|y); vq and gumbel have discrete codes)",
            ),
            (
                "model.posterior",
                "model.family",
                lambda c: c.model.posterior != "gaussian" and c.model.family != "vae",
                "the posterior axis is built for the vae family",
            ),
            (
                "train.tc_beta",
                "model.posterior",
                lambda c: c.train.tc_beta > 0 and c.model.posterior != "gaussian",
                "beta-TCVAE's estimator needs a factorised Gaussian q(z|x)",
            ),
            *(
                (
                    f"train.{key}",
                    "train.objective",
                    lambda c, key=key: _changed(c, f"train.{key}") and objective(c) in IMPORTANCE,
                    "the importance-weighted bounds have no KL weight",
                )
                for key in ("beta", "warmup_epochs")
            ),
            (
                "train.kl_balance",
                "train.objective",
                lambda c: getattr(c.train, "kl_balance", False) and objective(c) != "elbo",
                "KL balancing reshapes the elbo objective's KL term",
            ),
            (
                "train.objective",
                "model.family",
                lambda c: objective(c) != "elbo" and c.model.family == "vq",
                "the VQ-VAE trains on its reconstruction and codebook terms (the elbo objective)",
            ),
        ]
    )
