"""The disentanglement metrics of a run trained on dsprites, and per latent dimension the factor it captures."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError
from ..runs import Run
from ..training.rng import keeps_rng
from .disentangle import encode_factors, factor_of_each_code, scores


def dsprites_size(run: Run) -> int:
    """The image size of the dsprites spec a run was trained on; other runs are refused in one line."""
    from ..data.dsprites import parse_spec

    spec = run.config.data.spec.strip().lower()
    if spec.split(":")[0] != "dsprites":
        raise VaekitError(
            f"{run.path}: trained on {run.config.data.spec!r}; the disentanglement metrics need a run "
            "trained on dsprites"
        )
    if run.model.needs_labels or len(run.model.latent_dims) != 1:
        raise VaekitError(f"{run.path}: the disentanglement metrics score flat, unconditional models (family vae)")
    size = parse_spec(spec)[0]
    if list(run.config.model.input_shape) != [1, size, size]:
        raise VaekitError(f"{run.path}: model input {run.config.model.input_shape} does not match {spec!r}")
    return size


@keeps_rng
def evaluate_run(run: Run, n: int = 10000, votes: int = 1000, seed: int = 0) -> dict:
    """All metrics of a dsprites run, and per latent dim the factor it captures best (normalised MI) and the
    std of its posterior means over sampled items."""
    from ..data.dsprites import DSprites

    data = DSprites(dsprites_size(run))
    torch.manual_seed(seed)

    def encode(x: Tensor) -> Tensor:  # (B, 1, H, W) -> (B, D)
        return run.encode(x).mean

    metrics = scores(encode, data, n=n, n_test=max(2, n // 2), votes=(votes, max(1, votes // 2)), seed=seed)
    factors = data.sample_factors(min(n, 5000), np.random.default_rng(seed + 1))
    codes = encode_factors(encode, data, factors)
    best = factor_of_each_code(codes, factors, data.factor_names)
    dims = [
        {"dim": d, "factor": name, "normalised_mi": round(mi, 4), "std": round(float(codes[:, d].std()), 4)}
        for d, (name, mi) in enumerate(best)
    ]
    return {
        "metrics": {k: round(float(v), 4) for k, v in metrics.items()},
        "dims": dims,
        "settings": {"n": n, "votes": votes, "seed": seed, "spec": run.config.data.spec},
    }
