"""The conflicts table's rows for beta 0: the KL shapers it leaves with no KL term, and the priors (learned ones, a
hierarchy's conditional ones) that only the KL term fits; the capacity objective's gamma 0."""

from __future__ import annotations

from typing import Any

NO_GAMMA = "gamma 0 leaves no |KL - C| term for the capacity to target, nor any term to fit a learned prior"
NO_HIERARCHY = (  # ladder: down.*.1, deep: every group's to_p would stay at their start
    "beta 0 leaves no KL term to fit the hierarchy's p(z_l|z_>l), which q(z|x) does not read: samples would come "
    "from their untrained start (model.ladder_posterior=precision, model.residual_posterior=true: q reads p)"
)
LEARNED_PRIORS = ("mixture", "vamp", "flow")  # the built-in priors with parameters of their own
# the objectives whose one term fitting p(z) is beta KL (mmd's prior draws carry no gradient, factor's critic reads
# q(z) alone); the importance-weighted bounds (log p(z) in each weight) and the capacity objective read no beta
BETA_FITS_PRIOR = ("elbo", "mmd", "factor")


def _no_prior_fit(c: Any) -> bool:
    """Whether beta 0 leaves the loss with no term that fits a learned prior (an objective of BETA_FITS_PRIOR)."""
    return c.train.beta == 0 and c.train.objective in BETA_FITS_PRIOR and not c.train.capacity_max > 0


def _priors_kl_alone(m: Any) -> bool:
    """Whether only the KL term reaches a hierarchy's conditional priors p(z_l|z_>l) (ModelConfig ``m``): a ladder's
    of 2 levels or more whose q does not weigh p's precision in, a deep one's whose q is not relative to p."""
    ladder = m.family == "ladder" and m.ladder_posterior == "topdown" and len(m.latent_dims) != 1  # [] is 32,16
    return ladder or (m.family == "deep" and not m.residual_posterior)


def beta_zero() -> list:
    """Rows for the settings that shape the KL term (warm-up, free bits, beta-TCVAE) when beta 0 removes it, and
    for the learned priors that term alone fits (samples would come from an untrained prior); capacity's gamma 0."""
    why = "beta 0 leaves no KL term to fit the learned prior"
    return [
        *(
            (
                f"train.{key}",
                "train.beta",
                lambda c, key=key: getattr(c.train, key) > 0 and c.train.beta == 0,
                f"beta 0 leaves no KL term for {what} to shape",
            )
            for key, what in (
                ("dimwise_warmup_epochs", "beta-TCVAE's dimension-wise warm-up"),  # before tc_beta, which it needs
                ("warmup_epochs", "the warm-up"),
                ("free_bits", "free bits"),
                ("tc_beta", "beta-TCVAE"),
            )
        ),
        (
            "train.beta",
            "model.prior",
            lambda c: _no_prior_fit(c) and c.model.prior in LEARNED_PRIORS,
            f"{why}, so samples would come from its untrained start (model.prior=standard: N(0, I))",
        ),
        (
            "train.beta",
            "model.learned_prior",
            lambda c: _no_prior_fit(c) and c.model.family == "cvae" and c.model.learned_prior,
            f"{why} p(z|y), so samples would come from its untrained start (model.learned_prior=false: N(0, I))",
        ),
        ("train.beta", "model.family", lambda c: _no_prior_fit(c) and _priors_kl_alone(c.model), NO_HIERARCHY),
        ("train.gamma", "train.capacity_max", lambda c: c.train.capacity_max > 0 and not c.train.gamma, NO_GAMMA),
    ]
