"""Why a run's first step, before any update, gave a loss that is not finite: the term that is not, or the weight of
the objective's that overflows it, named in one line (the model, the data or a setting is at fault, not train.lr)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.objectives import Terms
from ..core.objectives_zoo import ObjectiveSettings
from ..errors import VaekitError
from . import distributed


class TrainingStopped(VaekitError):
    """Training cannot go on (repeated non-finite losses); the last good checkpoint stays."""


CAUSES = {  # the likely cause of a non-finite term of the first step's loss
    "inf": "data at the edge of the likelihood's support (a Beta's log-density at 0 or 1: move the data inside)",
    "overflow": "values too far from the training items for float32 (a square or exponential overflows)",
    "nan": "NaN from the decoder (its outputs, p(x|z)'s parameters), or data at the edge of its support",
    "kl": "NaN from the encoder or the prior, or a scale of 0 in q(z|x) or p(z)",
    "encoder": "NaN or infinite values from the encoder (its outputs, q(z|x)'s parameters: its draws of z are not "
    "finite)",
}


def refuse_first_step(terms: Terms, where: str, s: ObjectiveSettings | None = None) -> None:
    """Stop, in one line naming the term and its likely cause, a run whose loss is not finite before any update:
    the model, the data or a weight of the objective (``s``, the step's settings) is at fault, not train.lr.
    A step skipped for its gradient norm alone (a finite loss) is left to the guard; under DDP every process
    stops, as one's loss is not finite."""
    finite = bool(torch.isfinite(terms["loss"].detach()))
    if not distributed.all_ok(finite):
        why, key = ("the loss is not finite on another process", None) if finite else diagnose(terms, s)
        raise TrainingStopped(f"training stopped at {where}, before any update (so not for train.lr): {why}", key=key)


def non_finite_term(terms: Terms, s: ObjectiveSettings | None = None, edge: bool = True) -> str:
    """Which term of a non-finite loss is not finite, for how many of the batch's items, and the likely cause;
    with finite terms, the weight of ``s`` whose product overflows float32 (``diagnose``). ``edge`` False: a
    p(x|z) finite on all its support (vaekit's), so an infinite rec is an overflow, not data at its edge."""
    return diagnose(terms, s, edge)[0]


def diagnose(terms: Terms, s: ObjectiveSettings | None, edge: bool = True) -> tuple[str, str | None]:
    """(why, the setting to change or None) for a non-finite loss of ``terms``: rec, then kl not finite (for how many
    items, the likely cause; kl first, blamed on the encoder, where its draws of z are not finite), else the first
    weight of ``s`` whose product with its term is not finite, else a term the model adds (their sum,
    ``terms["extra"]``, as vaekit's objectives record it in the step), else the objective's loss itself."""
    encoder = any(not bool(z.detach().isfinite().all()) for z in terms.get("z", []))  # q(z|x)'s draws
    both = [("kl", "kl = KL(q(z|x) || p(z))", terms["kl"]), ("rec", "rec = log p(x|z)", terms["rec"])]
    for key, what, value in both if encoder else both[::-1]:  # rec first: its overflow names float32
        value = value.detach()
        bad, nan = int((~value.isfinite()).sum()), int(value.isnan().sum())
        if not bad:
            continue
        kind = "NaN" if bad == nan else "infinite" if not nan else "NaN or infinite"
        named = "kl" if key == "kl" else "nan" if nan else "inf" if edge else "overflow"
        cause = CAUSES["encoder" if encoder else named]
        return f"{what} is {kind} for {bad} of {value.numel()} items: {cause}", None
    for setting, weight, term, value in weighted(terms, s) if s is not None else []:
        if not (weight * value).isfinite():
            return (
                f"rec and kl are finite, and {setting} {weight:g} x {term} {value:.4g} is not: lower {setting}",
                setting,
            )
    extra = terms.get("extra")  # the sum of the model's terms in this very step (a training-only one too)
    if extra is not None and not bool(extra.detach().isfinite()):
        return "rec and kl are finite, a term the model adds (out.extra) is not", None
    return "rec and kl are finite, and the loss the objective builds of them is not", None


def weighted(terms: Terms, s: ObjectiveSettings) -> list[tuple[str, float, str, Tensor]]:
    """(setting, its weight, the term's name, the term's batch mean) of each weight the objective of ``terms``
    reads, beta last: beta-TCVAE's tc_beta, the capacity objective's gamma (it reads no beta), MMD's weight,
    FactorVAE's gamma, and beta, the KL's weight."""
    kl = terms["kl"].detach().mean()
    if "mi" not in terms and s.capacity is not None:  # gamma |KL - C| in the KL's place
        return [("train.gamma", s.gamma, "|KL - C|", (kl - s.capacity).abs())]
    found: list[tuple[str, float, str, Tensor]] = []
    if "mi" in terms:  # beta-TCVAE (elbo with tc_beta > 0): beta (MI + tc_beta TC + dimension-wise KL)
        found.append(("train.tc_beta", s.tc_beta, "TC", terms["tc"].detach().mean()))
    if "mmd" in terms:
        found.append(("train.mmd_weight", s.mmd_weight, "MMD", terms["mmd"].detach()))
    if "critic_loss" in terms:  # FactorVAE: gamma times the discriminator's estimate of the TC
        found.append(("train.factor_gamma", s.factor_gamma, "TC", terms["tc"].detach()))
    return [*found, ("train.beta", s.beta, "KL", kl)]
