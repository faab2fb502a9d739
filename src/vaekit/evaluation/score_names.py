"""The anomaly scores' names and settings: plain data, without torch, so the command line builds its flags from
them (``vaekit anomaly --help``) without loading the scores themselves (``score_checks`` re-exports them)."""

from __future__ import annotations

from typing import NamedTuple

SCORES = ("neg_elbo", "iwae_nll", "recon_error", "likelihood_regret", "complexity", "llr", "kl")
DESCRIPTIONS = {
    "neg_elbo": "-ELBO (nats), S common noise draws",
    "iwae_nll": "-log p(x) by the K-sample importance-weighted bound (nats)",
    "recon_error": "squared error of the reconstruction at the posterior mean (standardised units for tables)",
    "likelihood_regret": "ELBO gain from re-fitting q(z|x) to the item (Xiao et al. 2020)",
    "complexity": "-log2 p(x) - L(x) bits, L = PNG size of the 8-bit input (Serra et al. 2020)",
    "llr": "LLR^{>k}: the ELBO minus that with the lowest k latent groups at their priors' means (Havtorn et al. 2021)",
    "kl": "the rate KL(q(z|x) || p(z)) (nats), summed over latent dims and levels: how far the code is from the prior",
}


class Setting(NamedTuple):
    """A setting of ``anomaly_scores``: its default, the scores it shapes, what it is."""

    default: int
    scores: tuple[str, ...]
    help: str


# one table: a setting changed from its default for none of the scores computed cannot take effect, and is refused
SETTINGS = {
    "samples": Setting(
        8,
        ("neg_elbo", "likelihood_regret", "llr", "kl"),
        "S common noise draws of the ELBO (and of a KL of no closed form)",
    ),
    "iw_samples": Setting(64, ("iwae_nll", "complexity"), "K of the IWAE NLL"),
    "steps": Setting(30, ("likelihood_regret",), "Adam steps of the likelihood regret"),
    "llr_k": Setting(1, ("llr",), "llr: the lowest k latent groups set to their conditional priors' means"),
}
