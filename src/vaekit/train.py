"""The training loop: model-agnostic, in-memory batches, checkpoints (per epoch, every N steps or minutes, on
SIGINT/SIGTERM) that resume bit for bit, early stopping."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import load_latest_checkpoint, save_checkpoint, save_weights
from .config import RunConfig, validate
from .data import Dataset, binarize_dynamic
from .errors import VaekitError
from .io import atomic_write_json
from .models import MODELS, build_model
from .objectives import capacity_at, elbo, kl_weight
from .run import CHECKPOINT, CONFIG, WEIGHTS, prepare_data, resolve_device
from .runlog import metrics_row, start_run, summary, write_metrics, write_pictures
from .signals import CheckpointClock, Interrupted, StopSignal
from .tensorboard import TBLogger


class TrainingStopped(VaekitError):
    """Training cannot go on (repeated non-finite losses); the last good checkpoint stays."""


@dataclass
class LoopState:
    """What the loop carries between steps and epochs; saved in the checkpoint as JSON."""

    epoch: int = 0                    # epochs completed
    batch: int = 0                    # batches completed in the current epoch (> 0: a mid-epoch checkpoint)
    sums: list[float] = field(default_factory=list)  # the current epoch's running sums (see _sums)
    seen: int = 0                     # items behind those sums
    best_val: float = math.inf
    bad_epochs: int = 0               # epochs since the best validation loss
    rows: list[dict] = field(default_factory=list)


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam; the fused kernel (one launch for all parameters) where this torch build has it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def lr_at(cfg: RunConfig, epoch: int) -> float:
    """The learning rate for ``epoch`` (0-based) under the configured schedule."""
    t = cfg.train
    if t.lr_schedule == "cosine":
        return t.lr * 0.5 * (1 + math.cos(math.pi * epoch / t.epochs))
    if t.lr_schedule == "step":  # halve every quarter of the run
        return t.lr * 0.5 ** (epoch // max(1, t.epochs // 4))
    return t.lr


@torch.no_grad()
def evaluate_loss(model: nn.Module, x: Tensor, y: Tensor | None, beta: float,
                  batch_size: int = 1000) -> dict[str, float]:
    """Mean objective, reconstruction and KL over ``x`` (N, *shape) with labels ``y`` (N,) or None, in batches."""
    model.eval()
    sums = torch.zeros(3 + len(model.latent_dims), device=x.device)
    for i in range(0, len(x), batch_size):
        xb = x[i: i + batch_size]
        terms = elbo(model(xb, None if y is None else y[i: i + batch_size]), xb, beta)
        sums += _sums(terms, len(xb))
    loss, rec, kl, *levels = (sums / max(1, len(x))).tolist()
    return {"loss": loss, "rec": rec, "kl": kl, "kl_levels": levels}


def _sums(terms: dict[str, Tensor], n: int) -> Tensor:
    """(3 + L,) batch sums of loss, rec, KL and the KL of each latent level (top to bottom), detached."""
    return torch.stack([terms["loss"].detach() * n, terms["rec"].detach().sum(), terms["kl"].detach().sum(),
                        *(k.detach().sum() for k in terms["kl_layers"])])


class StepGuard:
    """Skips steps whose loss or gradient norm is not finite; stops after ``limit`` in a row."""

    def __init__(self, limit: int):
        self.limit, self.in_row, self.skipped = limit, 0, 0

    def ok(self, value: Tensor, where: str) -> bool:
        if bool(torch.isfinite(value)):
            self.in_row = 0
            return True
        self.in_row += 1
        self.skipped += 1
        if self.in_row >= self.limit:
            raise TrainingStopped(f"training stopped: {self.in_row} steps in a row with a non-finite loss or "
                                  f"gradient ({where}); lower --lr or set train.clip_grad")
        return False


def train_step(model: nn.Module, opt: torch.optim.Optimizer, xb: Tensor, yb: Tensor | None, beta: float,
               cfg: RunConfig, guard: StepGuard, where: str, capacity: float | None = None,
               n_data: int = 0) -> dict[str, Tensor] | None:
    """One optimiser step on a batch (B, *shape) with labels (B,) or None; None when the guard skipped it.

    ``capacity`` (nats) switches the objective to the annealed-capacity one (Burgess et al. 2018).
    """
    terms = elbo(model(xb, yb), xb, beta, cfg.train.free_bits, capacity, cfg.train.gamma, cfg.train.tc_beta, n_data)
    if not guard.ok(terms["loss"].detach(), where):
        return None
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    if cfg.train.clip_grad > 0:
        norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad)
        if not guard.ok(norm, where):
            return None
    opt.step()
    return terms


class Trainer:
    """One run's loop over epochs of shuffled in-memory batches, with validation and checkpoints.

    All randomness comes from torch's global generator, whose state every checkpoint holds; a mid-epoch
    checkpoint also holds the state at the epoch's start, which redraws the epoch's shuffle on resume.
    So a run stopped anywhere and resumed ends with the same weights as one never stopped (same device).
    """

    def __init__(self, cfg: RunConfig, model: nn.Module, data: Dataset, mode: str, run: Path, resume: bool):
        self.cfg, self.model, self.run, self.dynamic = cfg, model, run, mode == "dynamic"
        device = next(model.parameters()).device
        self.opt = make_optimizer(model, cfg.train.lr)
        self.state, extra = LoopState(), {}
        if resume:
            state, extra = load_latest_checkpoint(run / CHECKPOINT, model, self.opt)
            self.state = LoopState(**state)
        self.epoch_rng: Tensor | None = extra.get("rng.epoch")
        self.x, self.x_val = data.train.x.to(device), data.val.x.to(device)
        # labelled data (checked in fit) has labels in every split
        self.y, self.y_val = (data.train.y.to(device), data.val.y.to(device)) if model.needs_labels else (None, None)
        self.guard = StepGuard(cfg.train.max_bad_steps)
        self.clock = CheckpointClock(cfg.train.checkpoint_every, cfg.train.checkpoint_minutes)
        self.tb = TBLogger(run, fresh=not resume)  # event files beside metrics.csv when tensorboard is installed

    def fit(self, stop: StopSignal) -> None:
        """Epochs from the checkpoint's position to ``train.epochs`` (or early stopping)."""
        t, s = self.cfg.train, self.state
        for epoch in range(s.epoch, t.epochs):
            for group in self.opt.param_groups:
                group["lr"] = lr_at(self.cfg, epoch)
            start = time.perf_counter()
            tr = self.train_epoch(epoch, stop)
            seconds = time.perf_counter() - start
            va = evaluate_loss(self.model, self.x_val, self.y_val, t.beta)
            s.rows.append(metrics_row(epoch, tr, va, lr_at(self.cfg, epoch), seconds, len(self.x)))
            self.end_epoch(va["loss"])
            self.tb.epoch(s.rows[-1], self.model, self.x_val, self.y_val)
            tqdm.write(summary(s.rows[-1], t.epochs)) if t.progress else None
            if t.patience and s.bad_epochs >= t.patience:
                tqdm.write(f"early stopping: no better validation loss for {s.bad_epochs} epochs")
                break
        self.tb.close()

    def shuffle(self) -> Tensor:
        """The epoch's permutation, drawn from the generator's state at the epoch's start (saved for resuming)."""
        resumed = self.state.batch > 0
        now = torch.get_rng_state()
        if not resumed or self.epoch_rng is None:
            self.epoch_rng = now
        torch.set_rng_state(self.epoch_rng)
        perm = torch.randperm(len(self.x)).to(self.x.device)
        if resumed:
            torch.set_rng_state(now)
        return perm

    def train_epoch(self, epoch: int, stop: StopSignal) -> dict[str, float]:
        """One pass over the training split from the state's batch on; returns means of loss, rec, KL, beta."""
        t, s, model = self.cfg.train, self.state, self.model
        model.train()
        perm, n_batches = self.shuffle(), math.ceil(len(self.x) / t.batch_size)
        sums = torch.tensor(s.sums, device=self.x.device) if s.batch else torch.zeros(3 + len(model.latent_dims),
                                                                                      device=self.x.device)
        bar = tqdm(total=len(self.x), initial=s.seen, desc=f"epoch {epoch + 1}/{t.epochs}", unit="img",
                   leave=False, disable=not t.progress, dynamic_ncols=True)
        beta = kl_weight(epoch + s.batch / n_batches, t.beta, t.warmup_epochs)
        for b in range(s.batch, n_batches):
            idx = perm[b * t.batch_size: (b + 1) * t.batch_size]
            xb = binarize_dynamic(self.x[idx]) if self.dynamic else self.x[idx]
            beta = kl_weight(epoch + b / n_batches, t.beta, t.warmup_epochs)
            terms = train_step(model, self.opt, xb, None if self.y is None else self.y[idx], beta, self.cfg,
                               self.guard, f"epoch {epoch + 1}, batch {b + 1}",
                               capacity_at(epoch + b / n_batches, t.capacity_max, t.capacity_epochs), len(self.x))
            if terms is not None:
                sums += _sums(terms, len(xb))
                s.seen += len(xb)
                self.report(bar, b, n_batches, epoch, terms, beta, sums, len(xb))
            self.maybe_checkpoint(epoch, b + 1, sums, stop)
        bar.close()
        loss, rec, kl, *levels = (sums / max(1, s.seen)).tolist()
        s.batch, s.sums, s.seen = 0, [], 0
        return {"loss": loss, "rec": rec, "kl": kl, "beta": beta, "kl_levels": levels}

    def report(self, bar, b: int, n_batches: int, epoch: int, terms: dict, beta: float, sums: Tensor,
               n: int) -> None:
        """Progress bar and TensorBoard every 10 batches (the only host syncs in the loop besides the guard)."""
        bar.update(n)
        if b % 10 and b != n_batches - 1:
            return
        self.tb.step(epoch * n_batches + b, terms, beta)
        if self.cfg.train.progress:
            loss, rec, kl = (sums[:3] / self.state.seen).tolist()
            elapsed = bar.format_dict["elapsed"]
            bar.set_postfix(loss=f"{loss:.2f}", rec=f"{rec:.2f}", kl=f"{kl:.2f}",
                            rate=f"{(bar.n - bar.initial) / elapsed:.0f}/s" if elapsed else "")

    def maybe_checkpoint(self, epoch: int, batches: int, sums: Tensor, stop: StopSignal) -> None:
        """A mid-epoch checkpoint when the clock says so or a stop signal came; then stop on the signal."""
        if stop.signum is None and not self.clock.due():
            return
        s = self.state
        s.batch, s.sums = batches, sums.tolist()
        self.save()
        if stop.signum is not None:
            raise Interrupted(stop.signum, f"epoch {epoch + 1}, batch {batches}", str(self.run))

    def save(self) -> None:
        save_checkpoint(self.run / CHECKPOINT, self.model, self.opt, asdict(self.state),
                        {"rng.epoch": self.epoch_rng} if self.epoch_rng is not None else None)

    def end_epoch(self, val_loss: float) -> None:
        """Book-keeping after an epoch: best weights, metrics, then the checkpoint (last, so it is never ahead)."""
        s = self.state
        s.epoch += 1
        if val_loss < s.best_val or not (self.run / WEIGHTS).exists():
            s.best_val, s.bad_epochs = min(val_loss, s.best_val), 0
            save_weights(self.model, self.run / WEIGHTS)
        else:
            s.bad_epochs += 1
        write_metrics(self.run, s.rows)
        self.save()


def fit(cfg: RunConfig, resume: bool = False, overwrite: bool = False, data: Dataset | None = None) -> Path:
    """Train ``cfg`` and write its run folder (config, weights, checkpoint, metrics, pictures); returns its path.

    ``data`` (already prepared, e.g. arrays from the API) skips loading ``cfg.data.spec``; resuming needs the spec.
    SIGINT or SIGTERM finish the current step, write a checkpoint and raise ``Interrupted``.
    """
    validate(cfg)
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    data, mode = (data, "none") if data is not None else prepare_data(cfg)
    cfg.model.input_shape = list(data.shape)
    if getattr(MODELS.get(cfg.model.family), "needs_labels", False):
        cfg.model.num_classes = labelled(data)
    model = build_model(cfg.model).to(device)
    run = start_run(cfg.out, resume, overwrite)  # only now, when the input is known to be good, touch the disk
    trainer = Trainer(cfg, model, data, mode, run, resume)
    atomic_write_json(run / CONFIG, cfg.to_dict())
    with StopSignal() as stop:
        trainer.fit(stop)
    write_pictures(run, data.test if len(data.test.x) else data.val)
    return run


def labelled(data: Dataset) -> int:
    """The number of classes of a labelled data set, for conditional models; a set without labels is refused."""
    if not data.num_classes:
        raise VaekitError(f"{data.name}: this model conditions on labels, and the data has none")
    return data.num_classes
