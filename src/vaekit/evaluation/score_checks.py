"""The anomaly scores' names and settings, and what ``anomaly_scores`` refuses before scoring: unknown names,
a model a score cannot read, items of another shape, and a setting that shapes none of the scores asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from ..core.contract import VAEModel, dist_name, flat, probing, with_article
from ..core.discrete import CodeGrid, CodePrior, GumbelSoftmax
from ..core.model_inputs import check_items as check_item_shape
from ..core.model_inputs import model_shape as model_shape  # re-exported (scores reads the items by it)
from ..data.lazy import LazyArray
from ..errors import VaekitError, is_seed, is_whole
from ..models.posteriors import FlowPosterior
from ..models.standardized import Standardized, hierarchical
from ..runs import Run
from .regret import normal_q
from .score_names import DESCRIPTIONS as DESCRIPTIONS  # the names and settings, re-exported
from .score_names import SCORES as SCORES
from .score_names import SETTINGS as SETTINGS


def check_scores(names: str | Sequence[str]) -> list[str]:
    """Refuse unknown score names; returns them as a list (one name may come as a string)."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in SCORES:
            raise VaekitError(f"unknown score {name!r} (known: {', '.join(SCORES)})")
    if not names:
        raise VaekitError(f"no score named (known: {', '.join(SCORES)})")
    return names


def check_model(model: VAEModel, names: list[str], y: Tensor | None) -> None:
    """A model (a Run is refused, naming its model), labels for a conditional model; the likelihood regret (a
    re-fitted q(z|x)) needs one latent level."""
    if isinstance(model, Run):  # as vaekit.fit refuses a Run: the scores read a model (evaluate reads a Run)
        raise VaekitError("the scores take a model, got a Run: pass run.model", key="model")
    if not isinstance(model, nn.Module):
        raise VaekitError(f"the model must be a torch.nn.Module, got {type(model).__name__}", key="model")
    missing = [m for m in ("encode", "decode", "prior", "latent_dims", "needs_labels") if not hasattr(model, m)]
    if missing:  # what the scores read (not generate): one line, not an AttributeError
        raise VaekitError(f"{type(model).__name__} lacks {', '.join(missing)}, which the scores read", key="model")
    if model.needs_labels and y is None:
        raise VaekitError("this model is conditional: its anomaly scores need the items' labels y")
    if "likelihood_regret" in names and not flat(model):
        raise VaekitError(
            f"likelihood_regret re-fits q(z|x) of one latent level; this model has {len(model.latent_dims)}",
            key="score",
        )
    if "likelihood_regret" in names and not gaussian_or_unknown(qz := dry_posterior(model, y)):
        raise VaekitError(
            "likelihood_regret re-fits a Gaussian q(z|x) (an Independent(Normal)); this model's is "
            f"{with_article(dist_name(qz))}: leave likelihood_regret out",
            key="score",
        )
    if "llr" in names and (flat(model) or not hierarchical(model)):
        inner = model.model if isinstance(model, Standardized) else model  # the model built, not its table's wrapper
        if hierarchical(model):  # a deep or ladder model of one group: no group above the lowest to infer
            check_llr_k(1, len(model.latent_dims))
        raise VaekitError(
            "llr compares latent groups drawn from the prior and the posterior: it needs a "
            f"hierarchical model (family deep or ladder); this {type(inner).__name__} has "
            f"{len(model.latent_dims)} latent level(s)",
            key="score",
        )


def check_llr_k(k: object, groups: int) -> int:
    """``k`` as an int where a whole number in 1..groups-1 (llr's lowest k of a model's ``groups`` latent groups
    taken from their priors: k = 0 compares the ELBO with itself, k = groups infers no group from x), else one
    line; a model of one group, which llr cannot score, is said to be so."""
    if groups < 2:
        raise VaekitError(
            "llr is not applicable to a model of 1 latent group: it infers the groups above the lowest k from x, "
            "and there are none; leave llr out (or give the model more groups)",
            key="score",
        )
    if not is_whole(k) or not 1 <= int(k) < groups:  # 1.5, True: no; np.int64(2): yes
        said = f"llr_k must be in 1..{groups - 1} (below the model's {groups} latent groups), got {k!r}"
        raise VaekitError(said, key="llr_k")
    return int(k)


def gaussian_or_unknown(qz: object) -> bool:
    """Whether q(z|x) is a factorised Normal (None: not known, taken as one)."""
    return qz is None or (isinstance(qz, Independent) and isinstance(qz.base_dist, Normal))


@torch.no_grad()
def dry_posterior(model: VAEModel, y: Tensor | None) -> Distribution | None:
    """q(z|x) of one item the model draws itself (``generate(1)``, with the first label ``y`` where conditional):
    its kind, what a score may need, does not depend on the item. None where the model cannot draw one. Drawn in
    eval mode (no batch statistics updated); the mode and the random number generators are left as they were."""
    with probing(cast(nn.Module, model)) as device:
        labels = None if y is None or not model.needs_labels else y[:1].to(device)
        try:
            return model.encode(model.generate(1, y=labels).sample(), labels)
        except Exception:  # noqa: BLE001 - a model that cannot draw here: the score itself tells
            return None


def check_items(model: VAEModel, x: Tensor | LazyArray) -> None:
    """Refuse items x (N, *shape) of another shape than the model's (where it declares one: ``input_shape``, or
    that of the model a wrapper such as ``Standardized`` holds), as ``iwae_bound`` refuses them
    (``core.model_inputs.check_items``)."""
    check_item_shape(model_shape(model), x)


def check_seed(seed: object) -> int:
    """``seed`` as an int; refused where not a whole number in [0, 2**32) (``errors.is_seed``), as training's
    seed is (numpy's integers taken: np.uint32's 2**32 - 1 plus one would wrap)."""
    if not is_seed(seed):
        raise VaekitError(f"seed must be a whole number in [0, 2**32), got {seed!r}", key="seed")
    return int(seed)  # type: ignore[call-overload]  # is_seed: a whole number


def check_settings(names: list[str], samples: int, iw_samples: int, steps: int, batch_size: int, llr_k: int) -> None:
    """Refuse draw counts or a batch size below 1, a negative number of regret steps, and a setting changed from
    its default (``SETTINGS``) that shapes none of the scores ``names``."""
    for flag, value in (("samples", samples), ("iw_samples", iw_samples), ("batch_size", batch_size)):
        if value <= 0:
            raise VaekitError(f"{flag} must be > 0, got {value}", key=flag)
    if steps < 0:
        raise VaekitError(f"steps must be >= 0, got {steps}", key="steps")
    values = {"samples": samples, "iw_samples": iw_samples, "steps": steps, "llr_k": llr_k}
    for key, s in SETTINGS.items():
        if values[key] != s.default and not set(s.scores) & set(names):
            shaped = ", ".join(s.scores)
            raise VaekitError(f"{key} cannot take effect: it shapes {shaped}, not {', '.join(names)}", key=key)


def settings_for(names: str | Sequence[str], **values: int) -> dict[str, Any]:  # Any: keyword arguments
    """The ``SETTINGS`` among ``values`` that shape one of the scores ``names``: what a caller that holds every
    setting (the detector, a benchmark) hands ``anomaly_scores``, which refuses the others."""
    named = set(check_scores(names))
    return {k: v for k, v in values.items() if set(SETTINGS[k].scores) & named}


@torch.no_grad()
def scores_that_apply(
    model: VAEModel, images: bool, x: Tensor, y: Tensor | None = None, left: dict[str, str] | None = None
) -> list[str]:
    """The scores this model and data allow: complexity for images, llr for hierarchies, the likelihood regret for
    a factorised Normal q(z|x) of one level, as that of the items ``x`` (B, *shape) (one is enough) shows, and kl
    unless one constant (``left_out``); ``left``, where given, gets each score left out and why."""
    check_model(model, [], y)  # a conditional model's labels
    out = left_out(model, images, x, y)
    if left is not None:
        left.update(out)
    return [s for s in SCORES if s not in out]


NOTED = ("likelihood_regret", "kl")  # left out by the model's own latents (not by the data's shape, as --score says)


def left_out(model: VAEModel, images: bool, x: Tensor, y: Tensor | None = None) -> dict[str, str]:
    """{score: why} for each score this model and data leave out: complexity but for images, llr but for a
    hierarchy, the likelihood regret but for one level of factorised Normal q(z|x), as that of the items ``x`` (B,
    *shape) shows (one is enough), and kl where it is one constant (a VQ-VAE's point codes under its uniform prior,
    no PixelCNN fitted: H * W * log K nats)."""
    qz = model.encode(x, y) if flat(model) else None
    out = {"complexity": "it compresses images"} if not images else {}
    if flat(model) or not hierarchical(model):
        out["llr"] = "it needs a hierarchy (family deep or ladder)"
    if not normal_q(qz):
        out["likelihood_regret"] = f"q(z|x) {posterior_kind(model, qz)} (it refits a Gaussian q(z|x) of one level)"
    if isinstance(qz, CodeGrid) and isinstance(pz := model.prior(None), CodePrior) and pz.net is None:
        out["kl"] = "the VQ-VAE's KL is one constant, H x W x log K, under its uniform prior (no PixelCNN fitted)"
    return out


def posterior_kind(model: VAEModel, qz: object) -> str:
    """What q(z|x) ``qz`` (None: of a model of several latent levels) is, in words after "q(z|x)"."""
    if qz is None:
        return f"has {len(model.latent_dims)} latent levels"
    kinds = {
        FlowPosterior: "a flow posterior",
        CodeGrid: "the VQ-VAE's point codes",
        GumbelSoftmax: "categorical (Gumbel-softmax)",
    }
    return "is " + next((w for k, w in kinds.items() if isinstance(qz, k)), with_article(dist_name(qz)))


def left_out_note(left: dict[str, str]) -> str:
    """One line naming each default score of ``NOTED`` in ``left`` (``left_out``'s) and why; "" where none."""
    return "; ".join(f"{name} left out: {why}" for name, why in left.items() if name in NOTED)
