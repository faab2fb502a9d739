"""The disentanglement metrics of a run trained on dsprites, and per latent dimension the factor it captures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.reading import mean_of
from ..errors import VaekitError, is_seed
from ..runs import Run
from ..training.folder import CUSTOM
from ..training.rng import keeps_rng
from .disentangle import encode_factors, factor_of_each_code, scores
from .disentangle_checks import PRUNE

MIN_N, MIN_VOTES = 1000, 100  # sampled items, votes; below MIN_N the plug-in MI of 20 bins per dim is mostly bias
WHY_N = "the per-dim mutual information of 20 bins needs it"
WHY_VOTES = "half as many evaluate: fewer give scores in steps coarser than 0.02"  # 10 votes: 5 points, 0.0 or 0.2


def check_settings(n: int, votes: int, n_dims: int = 10, seed: int = 0) -> None:
    """Refuse, in one line, ``n`` below MIN_N, ``votes`` below MIN_VOTES, ``n_dims`` below 1 and a ``seed`` outside
    [0, 2**32)."""
    if not is_seed(seed):
        raise VaekitError(f"seed must be a whole number in [0, 2**32), got {seed!r}", key="seed")
    for name, value, least, why in [
        ("n", n, MIN_N, WHY_N),
        ("votes", votes, MIN_VOTES, WHY_VOTES),
        ("n_dims", n_dims, 1, ""),
    ]:
        if value < least:
            raise VaekitError(f"{name} must be >= {least}{f' ({why})' if why else ''}, got {value}", key=name)


def unwritable(out: Path) -> str | None:
    """Why a figure path cannot be written (a folder; under a file or a folder this process may not write in),
    or None: checked before any scoring."""
    parent = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if out.is_dir():
        return "is a folder"
    return None if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not a writable folder"


def dsprites_size(run: Run) -> int:
    """The image size of the dsprites spec a run was trained on; other runs are refused in one line, and so are
    models other than a flat, unconditional VAE (family vae, or a model class of the user's) with any q(z|x)."""
    from ..data.dsprites import parse_spec
    from ..models import MODELS

    spec, family = run.config.data.spec.strip().lower(), run.config.model.family
    if spec.split(":")[0] != "dsprites":
        raise VaekitError(
            f"{run.path}: trained on {run.config.data.spec!r}; the disentanglement metrics of a run need one trained "
            "on dsprites (for your own codes and factors: mig, sap, dci, factorvae_score, betavae_score and "
            "factor_of_each_code in vaekit.evaluation.disentangle)"
        )
    others = tuple(cls for name, cls in MODELS.items() if name != "vae")
    if family not in ("vae", CUSTOM) or isinstance(run.model, others) or run.model.needs_labels or len(
        run.model.latent_dims) != 1:  # fmt: skip
        raise VaekitError(
            f"{run.path}: a {family} model; the disentanglement metrics score flat, unconditional models (family "
            "vae, any posterior: a flow's mean is estimated from draws)"
        )
    size = parse_spec(spec)[0]
    if list(run.config.model.input_shape) != [1, size, size]:
        raise VaekitError(f"{run.path}: model input {run.config.model.input_shape} does not match {spec!r}")
    return size


@keeps_rng
def evaluate_run(run: Run, n: int = 10000, votes: int = 1000, seed: int = 0, n_dims: int = 10) -> dict:
    """All metrics of a dsprites run (``factorvae`` None where no dim is active), the number of active dims, per
    latent dim the factor of largest normalised MI (None where the dim depends on no factor: ``factor_of_each_code``),
    that MI and the std of its posterior means over sampled items, and the ``n_dims`` dims of most normalised MI
    (the ones the traversal figure draws). The codes are ``mean_of`` q(z|x): a flow's from 64 seeded draws."""
    from ..data.dsprites import DSprites

    check_settings(n, votes, n_dims, seed)
    data = DSprites(dsprites_size(run))
    torch.manual_seed(seed)

    def encode(x: Tensor) -> Tensor:  # (B, 1, H, W) -> (B, D)
        return mean_of(run.encode(x))

    metrics = scores(encode, data, n=n, n_test=max(2, n // 2), votes=(votes, max(1, votes // 2)), seed=seed)
    active = int(metrics.pop("active_dims") or 0)
    factors = data.sample_factors(min(n, 5000), np.random.default_rng(seed + 1))
    codes = encode_factors(encode, data, factors)
    best = factor_of_each_code(codes, factors, data.factor_names)
    dims = [
        {"dim": d, "factor": name, "normalised_mi": round(mi, 4), "std": round(float(codes[:, d].std()), 4)}
        for d, (name, mi) in enumerate(best)
    ]
    return {
        "metrics": {k: None if v is None else round(float(v), 4) for k, v in metrics.items()},
        "active_dims": active,
        "dims": dims,
        "traversal_dims": most_informative(dims, n_dims),
        "settings": {"n": n, "votes": votes, "seed": seed, "spec": run.config.data.spec, "active_std": PRUNE},
    }


def most_informative(dims: list[dict], n: int) -> list[int]:
    """The indices of the ``n`` dims (``evaluate_run``'s) of largest normalised MI, largest first (ties: spread)."""
    return [d["dim"] for d in sorted(dims, key=lambda d: (-d["normalised_mi"], -d["std"]))[:n]]
