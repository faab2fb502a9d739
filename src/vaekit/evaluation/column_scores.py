"""Which columns make a table row anomalous: each column's share of the reconstruction term of its -ELBO.

log p(x|z) of a table run factorises over its columns (``core.tabular.Tabular``: a Gaussian per numeric column,
in the data's units, and a Categorical per categorical one; a table of numbers alone: an ``Independent`` Normal),
so the reconstruction term -E_q(z|x) log p(x|z) splits into one term per column: a numeric column's Gaussian
-log density (under data.numeric=modes with its TVAE mode's -log p), a categorical column's -log p(category),
each with its gap indicator's -log p(filled or gap) where the run models its gaps (data.missing=mean). The terms
are averaged over the draws of z that ``neg_elbo`` averages over (its ``samples`` and ``seed``): they sum to its
reconstruction term, ``neg_elbo - kl`` (both as ``anomaly_scores`` gives them), to float tolerance. Not to
``recon_error``, a squared error at the posterior mean.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from ..core.contract import VAEModel, VAEModule, dist_name, flat, probing, with_article
from ..core.model_inputs import label_tensor
from ..core.objectives import repeat_items
from ..core.tabular import Tabular, normal_log_prob
from ..data.containers import is_frame
from ..data.lazy import LazyArray
from ..data.tables import TableSchema
from ..data.user import run_items
from ..errors import VaekitError
from ..runs import Run
from .regret import draws, normal_q
from .score_checks import SETTINGS, check_model, check_seed, check_settings, model_shape
from .scores import Streams, _batches, noise, scored_items

NOT_A_TABLE = (
    "column scores split a table run's score by its columns, and this run has none: a run trained on a CSV file or "
    "a data frame has them"
)


@torch.no_grad()
def column_scores(
    run_or_model: Run | VAEModule,
    x: object,
    table: TableSchema | None = None,
    samples: int = SETTINGS["samples"].default,
    seed: int = 0,
    batch_size: int = 256,
    y: object = None,
) -> dict[str, np.ndarray]:
    """{column: (N,) -E_q(z|x) log p(x_column | z)} for the rows x (N, D) of a table, in the table's column order
    (its label column is none of them: a conditional model takes it as y). The columns' terms of an item sum to its
    ``neg_elbo`` minus its ``kl`` (``anomaly_scores`` with the same ``samples`` and ``seed``): the largest names the
    column that makes the row anomalous.

    ``run_or_model``: a table run (its ``table`` is the default), or a model with ``table`` its run's schema;
    x as the run's methods take it (items (N, D), or a data frame of its columns, encoded by ``table``); y (N,)
    the labels a conditional model needs. ``samples`` draws of z from ``seed``, ``batch_size`` items at a time.
    """
    model, table, labels, items = _inputs(run_or_model, x, table, y)
    unused = (SETTINGS["iw_samples"].default, SETTINGS["steps"].default)  # the settings of no term here: as they are
    check_settings(["neg_elbo"], samples, *unused, batch_size, 1)
    seed = check_seed(seed)
    p = next(model.parameters())
    eps = noise(samples, model.latent_dims[0], seed, p.device, p.dtype)  # neg_elbo's draws, shared by every item
    owners, streams, parts = slot_owners(table), Streams(seed, p.device), []
    with probing(model):  # the caller's model and RNGs are left as they were
        for xb, yb in _batches(items, labels if model.needs_labels else None, batch_size, p):
            with streams("neg_elbo"):  # a hierarchy's or a discrete code's fresh draws: neg_elbo's stream
                px, xr = decoded(model, xb, eps, yb)
            units, starts = factor_log_probs(px, xr)  # (S*B, U)
            owner = torch.as_tensor(unit_owners(owners, starts, px), device=units.device)  # (U,)
            terms = units.new_zeros(len(xr), len(table.columns)).index_add_(1, owner, units)  # (S*B, C)
            parts.append(-terms.view(samples, len(xb), -1).mean(0).cpu())
    out = torch.cat(parts).double().numpy() if parts else np.zeros((0, len(table.columns)))  # (N, C)
    return {c.name: out[:, j] for j, c in enumerate(table.columns)}


def _inputs(
    run_or_model: Run | VAEModule, x: object, table: TableSchema | None, y: object
) -> tuple[VAEModule, TableSchema, Tensor | None, Tensor | LazyArray]:
    """The model, the table, labels (N,) (None for an unconditional model) and items x (N, D) as the scores read
    them (``scores.scored_items``); a run that is not a table's, or a model without ``table``, is one line."""
    if isinstance(run_or_model, Run):
        model, table = run_or_model.model, run_or_model.table if table is None else table
        if table is None:
            raise VaekitError(NOT_A_TABLE)
        run_or_model.unconditional_label(y, "its scores", "y")
        labels = run_or_model.labels(y, len(x), "y")  # type: ignore[arg-type]  # None for an unconditional run
    else:
        model = run_or_model
        if table is None:
            raise VaekitError("column scores of a model need its table's schema: table=run.table", key="table")
        labels = None if y is None else label_tensor(y, len(x))  # type: ignore[arg-type]
    if not isinstance(table, TableSchema):
        raise VaekitError(f"table must be a TableSchema (run.table), got {type(table).__name__}", key="table")
    check_model(model, ["neg_elbo"], labels)
    x = run_items(x, model_shape(model) or (), table) if is_frame(x) else x  # a frame held to the table's columns
    items = scored_items(model, x, labels)
    if tuple(items.shape[1:]) != (table.width,):
        raise VaekitError(f"items of shape {tuple(items.shape[1:])} do not fit this table's {table.width} slots")
    return model, table, labels, items


def decoded(model: VAEModel, x: Tensor, eps: Tensor, y: Tensor | None) -> tuple[Distribution, Tensor]:
    """p(x|z) for the draws of z that ``neg_elbo`` scores x (B, D) by, S*B rows sample-major, and x repeated to
    match (S*B, D): z = loc + scale * eps_s for a Gaussian q(z|x) of one level (eps (S, D)), else a forward pass."""
    if flat(model) and normal_q(qz := model.encode(x, y)):
        out, xr = draws(model, x, qz.mean, qz.stddev, eps, y)
        return out.px, xr
    xr = repeat_items(x, len(eps))
    return model(xr, None if y is None else y.repeat(len(eps))).px, xr


def factor_log_probs(px: Distribution, x: Tensor) -> tuple[Tensor, list[int]]:
    """log p(x|z) of items x (B, D) as its factors (B, U), which sum to ``px.log_prob(x)``, and the first slot of
    x each covers (U,): a ``Tabular``'s numeric slots, then one per one-hot group; an ``Independent``'s slots."""
    if isinstance(px, Tabular):
        hot = x[..., px.n :].split(px.categories, -1) if px.categories else []
        groups = [(logp * code).sum(-1, keepdim=True) for logp, code in zip(px.groups(), hot)]  # (B, 1) each
        starts = np.cumsum([px.n, *px.categories])[:-1].tolist()  # each group's first slot
        return torch.cat([normal_log_prob(px.loc, px.scale, x[..., : px.n]), *groups], -1), [*range(px.n), *starts]
    if isinstance(px, Independent) and px.reinterpreted_batch_ndims == 1:  # (B, D): one factor per slot
        return px.base_dist.log_prob(x), list(range(x.shape[-1]))
    raise VaekitError(
        f"column scores need p(x|z) to factorise over a table's slots; this model's is {with_article(dist_name(px))}"
    )


def slot_owners(table: TableSchema) -> np.ndarray:
    """(D,) int64: the index in ``table.columns`` of the column each slot of an item is of: the numeric columns'
    slots, then their TVAE modes (data.numeric=modes), the categorical columns' one-hot codes and the gap
    indicators (``TableSchema.categories``' order), each with its column."""
    at = {c.name: j for j, c in enumerate(table.columns)}
    numeric = [at[c.name] for c in table.numeric]
    coded = (numeric if table.coding == "modes" else []) + [at[c.name] for c in table.categorical + table.gapped]
    return np.asarray(numeric + [j for j, k in zip(coded, table.categories) for _ in range(k)], dtype=np.int64)


def unit_owners(owners: np.ndarray, starts: list[int], px: Distribution) -> np.ndarray:
    """(U,) the column of each factor of p(x|z), which begins at slot ``starts[u]``; one line where a factor
    covers slots of two columns (a p(x|z) not built on this table's layout)."""
    ends = [*starts[1:], len(owners)]
    if len(owners) != ends[-1] or any(len(set(owners[a:b].tolist())) != 1 for a, b in zip(starts, ends)):
        raise VaekitError(f"this model's p(x|z) ({dist_name(px)}) does not group the slots as the table's columns do")
    return owners[starts]
