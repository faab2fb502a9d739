"""Where the latent pictures lay their codes: the prior of the class drawn (a conditional run's p(z|y)), else
N(0, I). The manifold's grid spans that prior's 5% to 95% quantiles per dimension, and a traversal without an
item starts at its mean."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..core.contract import latent_size
from ..errors import VaekitError
from ..runs import LabelsLike, Run

GRID = 15  # the decoded manifold's codes per side by default (the CLI's --grid too)


def check_grid(grid: object) -> int:
    """``grid`` if it is a whole number >= 2 (a manifold spans its corners), else one line naming it."""
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise VaekitError(f"grid must be a whole number >= 2 (a manifold spans its corners), got {grid!r}", key="grid")
    return int(grid)


@torch.no_grad()
def prior_frame(run: Run, y: LabelsLike | None = None) -> tuple[Tensor, Tensor]:
    """(loc, scale), each (D,) on the CPU: the mean and standard deviation of p(z|y) for the first label of ``y``
    (a class number or name, or labels (N,)) of a conditional run (a mixture p(z|y): its moments), else 0 and 1
    (N(0, I), as a run without labels or a prior with no closed-form moments gets)."""
    d = latent_size(run.model)
    frame = torch.zeros(d), torch.ones(d)
    if not run.model.needs_labels or y is None:
        return frame
    pz = run.model.prior(run.labels(y, 1))  # p(z|y) of the class the pictures are drawn for, batch (1,)
    try:
        loc, scale = pz.mean.reshape(-1).cpu(), pz.stddev.reshape(-1).cpu()
    except NotImplementedError:  # a user's prior without moments
        return frame
    return (loc, scale) if loc.shape == (d,) and scale.shape == (d,) else frame


def quantile_grid(run: Run, grid: int, y: LabelsLike | None = None) -> Tensor:
    """(grid * grid, 2) codes over the 5% to 95% quantiles of each of the 2 dims of ``prior_frame``'s Gaussian:
    loc + scale * q, rows from high to low z[1], columns from low to high z[0]."""
    loc, scale = prior_frame(run, y)
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, grid))  # (grid,)
    z1, z0 = torch.meshgrid(loc[1] + scale[1] * q.flip(0), loc[0] + scale[0] * q, indexing="ij")
    return torch.stack([z0.flatten(), z1.flatten()], 1)
