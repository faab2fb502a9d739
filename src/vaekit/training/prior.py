"""The second stage of a two-stage model (the VQ-VAE): fit its autoregressive prior alone on the codes of the
trained model's training data, the rest of the model fixed (van den Oord et al. 2017, section 3.2).

A model takes part by having ``codes(x) -> index``, ``prior_nll(index) -> (B,)`` nats, ``prior_parameters()``
(frozen outside this stage) and ``set_prior_fitted()``.
``train.prior_epochs`` runs it at the end of training; ``vaekit.fit_prior(run)`` (re)fits a finished run.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch import Tensor, nn

from .. import files
from ..data import binarize_dynamic
from ..data.batching import batches
from ..data.lazy import LazyArray
from ..data.packed import Items
from ..errors import VaekitError
from ..io import run_lock
from .checkpoint import save_weights
from .progress import Lines


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
) -> list[float]:
    """Fit ``model``'s prior alone (Adam at ``lr``) for ``epochs`` on the codes of x (N, *shape), in shuffled
    batches; ``dynamic`` draws a fresh binarisation of each batch. Returns each epoch's mean -log p(codes), nats."""
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
    g, history, lines = torch.Generator().manual_seed(seed), [], Lines(progress)  # written as the trainer's are
    for epoch in range(epochs):
        history.append(_prior_epoch(part, x, opt, g, batch_size, dynamic, device))
        lines.say(
            f"prior epoch {epoch + 1}/{epochs}  nll {history[-1]:.2f} nats "
            f"({history[-1] / math.log(2):.1f} bits) per code grid"
        )
    for p in params:
        p.requires_grad_(False)
    part.set_prior_fitted()
    part.train(was_training)
    return history


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
    run, data: object = None, *, epochs: int = 5, batch_size: int = 128, lr: float = 1e-3, progress: bool = True
) -> list[float]:
    """Fit the prior of a trained run's model (``vaekit.load_run(path)`` or ``vaekit.fit(...)``'s result) on the
    codes of its training data, and write the weights back to its run folder (files derived from the old ones
    become stale). ``data``: items (N, *shape) as an array or tensor; default: the training split of the run's
    data spec. Returns each epoch's mean -log p(codes) in nats."""
    x = _training_items(run, data)
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
        )
        if run.path is not None:
            save_weights(run.model, run.path / files.WEIGHTS)
    return history


def _training_items(run, data: object) -> Tensor | LazyArray:
    """(N, *shape) float32 items: ``data`` as given, or the training split of the run's data spec."""
    if data is not None:
        x = data if isinstance(data, Tensor) else torch.as_tensor(data)
        return run.check_items(x.float())
    if not run.config.data.spec:
        raise VaekitError("this run was trained on data passed in memory: pass it as fit_prior(run, x)")
    from ..data.prepare import prepare_data

    cfg = type(run.config).from_dict(run.config.to_dict())
    return prepare_data(cfg)[0].train.x
