"""The second stage of a two-stage model (the VQ-VAE): fit its autoregressive prior alone on the codes of the
trained model's training data, the rest of the model fixed (van den Oord et al. 2017, section 3.2).

A model takes part by having ``codes(x) -> index``, ``prior_nll(index) -> (B,)`` nats, ``prior_parameters()``
(frozen outside this stage) and ``set_prior_fitted()``.
``train.prior_epochs`` runs it at the end of training; ``vaekit.fit_prior(run)`` (re)fits a finished run. Each
epoch's NLL, on the training codes and on the validation split's, goes to the run folder's prior_metrics.csv.
"""

from __future__ import annotations

import csv
import io
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch import Tensor, nn

from .. import files
from ..data import binarize_dynamic
from ..data.batching import batches
from ..data.lazy import LazyArray
from ..data.packed import Items
from ..errors import VaekitError
from ..io import atomic_write_text, run_lock
from .checkpoint import save_weights
from .progress import Lines

PRIOR_FIELDS = ("epoch", "nll_nats", "bits", "val_nll_nats", "val_bits", "seconds")  # prior_metrics.csv's columns


class TwoStage(Protocol):
    """What a model part with a second-stage prior has (see above): x (B, *shape) -> codes (B, h, w)."""

    def codes(self, x: Tensor) -> Tensor: ...

    def prior_nll(self, index: Tensor) -> Tensor: ...

    def prior_parameters(self) -> list[nn.Parameter]: ...

    def set_prior_fitted(self) -> None: ...


if TYPE_CHECKING:

    class TwoStageModule(nn.Module, TwoStage):
        """For the type checker only: an ``nn.Module`` with a second-stage prior."""

else:
    TwoStageModule = nn.Module


def two_stage(model: nn.Module) -> TwoStageModule | None:
    """The part of ``model`` with a second-stage prior (itself, or inside a wrapper), else None."""
    part = next((m for m in model.modules() if hasattr(m, "prior_nll") and hasattr(m, "codes")), None)
    return cast("TwoStageModule | None", part)  # it has codes and prior_nll: the two-stage part


def fit_prior_on(
    model: nn.Module,
    x: Items,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    *,
    dynamic: bool = False,
    seed: int = 0,
    progress: bool = False,
    val: Items | None = None,
    run: Path | None = None,
) -> list[float]:
    """Fit ``model``'s prior alone (Adam at ``lr``) for ``epochs`` on the codes of x (N, *shape), in shuffled
    batches; ``dynamic`` draws a fresh binarisation of each batch. After each epoch its NLL on the codes of ``val``
    (M, *shape; None: not measured), and where ``run`` is given (a run folder whose lock the caller holds), every
    epoch's row so far into its prior_metrics.csv (``PRIOR_FIELDS``). Returns each epoch's mean -log p(codes) over
    x, nats."""
    part = two_stage(model)
    if part is None:
        raise VaekitError(f"{type(model).__name__} has no second-stage prior to fit (the VQ-VAE, family vq, has)")
    device = next(part.parameters()).device
    params = part.prior_parameters()
    for p in params:  # trainable here only: the ELBO never moves the prior
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    was_training = part.training
    part.eval()  # the encoder and codebook stay as trained (no EMA updates)
    g, history, rows, lines = torch.Generator().manual_seed(seed), [], [], Lines(progress)  # as the trainer's
    for epoch in range(epochs):
        start = time.perf_counter()
        history.append(_prior_epoch(part, x, opt, g, batch_size, dynamic, device))
        seconds = time.perf_counter() - start  # the training pass, as metrics.csv's
        val_nll = codes_nll(part, val, batch_size, device) if val is not None and len(val) else None
        rows.append(prior_row(epoch + 1, history[-1], val_nll, seconds))
        write_prior_metrics(run, rows) if run is not None else None
        lines.say(prior_line(rows[-1], epochs))
    for p in params:
        p.requires_grad_(False)
    part.set_prior_fitted()
    part.train(was_training)
    return history


def prior_row(epoch: int, nll: float, val_nll: float | None, seconds: float) -> dict:
    """One prior_metrics.csv row (``PRIOR_FIELDS``; 1-based ``epoch``): NLLs per code grid in nats and in bits,
    9 significant digits (a float32 read back exactly); no validation NLL: empty cells."""
    bits = lambda v: None if v is None else v / math.log(2)  # noqa: E731
    values = (nll, bits(nll), val_nll, bits(val_nll), seconds)
    return {"epoch": epoch} | {k: None if v is None else float(f"{v:.9g}") for k, v in zip(PRIOR_FIELDS[1:], values)}


def prior_line(row: dict, epochs: int) -> str:
    """The line printed after an epoch of the prior (a ``prior_row``) of ``epochs``."""
    val = "" if row["val_nll_nats"] is None else f", val {row['val_nll_nats']:.2f} ({row['val_bits']:.1f} bits)"
    return (
        f"prior epoch {row['epoch']}/{epochs}  nll {row['nll_nats']:.2f} nats ({row['bits']:.1f} bits) per code "
        f"grid{val}  {row['seconds']:.1f}s"
    )


def write_prior_metrics(run: Path, rows: list[dict]) -> None:
    """``run``'s prior_metrics.csv: ``rows`` (``prior_row``), rewritten whole (atomically) after every epoch."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PRIOR_FIELDS, restval="")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    atomic_write_text(run / files.PRIOR_METRICS, buf.getvalue())


@torch.no_grad()
def codes_nll(part: TwoStageModule, x: Items, batch_size: int, device: torch.device) -> float:
    """The mean -log p(codes) per item of the codes of x (N, *shape) (a split binarised once, or grey), nats."""
    total = torch.zeros((), device=device)
    for _, xb, _ in batches(x, None, torch.arange(len(x)), batch_size, 0, 0, device, least=1):
        xb = xb.to(device)
        total += part.prior_nll(part.codes(xb)).sum()
    return total.item() / max(1, len(x))


def _prior_epoch(
    part: TwoStageModule,
    x: Items,
    opt: torch.optim.Optimizer,
    g: torch.Generator,
    batch_size: int,
    dynamic: bool,
    device: torch.device,
) -> float:
    """One epoch of the prior on the codes of x (N, *shape), in an order drawn from ``g``; returns the mean
    -log p(codes) per item, nats."""
    total = torch.zeros((), device=device)
    for _, xb, _ in batches(x, None, torch.randperm(len(x), generator=g), batch_size, 0, 0, device):
        xb = xb.to(device)
        with torch.no_grad():
            index = part.codes(binarize_dynamic(xb) if dynamic else xb)  # (B, h, w)
        loss = part.prior_nll(index).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(xb)
    return total.item() / max(1, len(x))


def fit_prior(
    run,
    data: object = None,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    progress: bool = True,
    val: object = None,
) -> list[float]:
    """Fit the prior of a trained run's model (``vaekit.load_run(path)`` or ``vaekit.fit(...)``'s result) on the
    codes of its training data, and write the weights back to its run folder (files derived from the old ones
    become stale) with each epoch's NLL in prior_metrics.csv. ``data``: items (N, *shape) as an array or tensor;
    default: the training split of the run's data spec. ``val``: items (M, *shape) whose NLL is measured after
    each epoch; default: the validation split of the run's data spec where ``data`` is None, else none. Returns
    each epoch's mean -log p(codes) over the training items in nats."""
    x, val_x = _items(run, data, val)
    cfg = run.config
    with run_lock(run.path) if run.path is not None else nullcontext():  # a folder being written: refused first
        history = fit_prior_on(
            run.model,
            x,
            epochs,
            batch_size,
            lr,
            dynamic=data is None and cfg.data.binarize == "dynamic",
            seed=cfg.train.seed,
            progress=progress,
            val=val_x,
            run=run.path,
        )
        if run.path is not None:
            save_weights(run.model, run.path / files.WEIGHTS)
    return history


def _items(run, data: object, val: object) -> tuple[Tensor | LazyArray, Tensor | LazyArray | None]:
    """(N, *shape) and (M, *shape) float32 items to fit on and to validate on: ``data`` and ``val`` as given, or
    the training and validation splits of the run's data spec (``val`` None with ``data`` given: none)."""
    x, val_x = (None if v is None else _checked(run, v) for v in (data, val))
    if x is not None:
        return x, val_x
    if not run.config.data.spec:
        raise VaekitError("this run was trained on data passed in memory: pass it as fit_prior(run, x)")
    from ..data.prepare import prepare_data

    cfg = type(run.config).from_dict(run.config.to_dict())
    splits = prepare_data(cfg)[0]
    return splits.train.x, splits.val.x if val_x is None else val_x


def _checked(run, items: object) -> Tensor:
    """``items`` (N, *shape), an array or tensor, as float32 the run's model takes (``Run.check_items``)."""
    return run.check_items((items if isinstance(items, Tensor) else torch.as_tensor(items)).float())
