"""The training loop: model-agnostic, in-memory batches, checkpoints every epoch, resume, early stopping."""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import RunConfig, validate
from .data import Dataset, Split, binarize_dynamic
from .errors import VaekitError
from .io import atomic_write_json, atomic_write_text
from .models import MODELS, build_model
from .objectives import capacity_at, elbo, kl_weight
from .plots import plot_losses, save_reconstructions, save_samples
from .run import CHECKPOINT, CONFIG, METRICS, WEIGHTS, prepare_data, resolve_device
from .tensorboard import TBLogger

FIELDS = ["epoch", "train_loss", "train_rec", "train_kl", "val_loss", "val_rec", "val_kl",
          "beta", "lr", "seconds", "samples_per_s"]


class TrainingStopped(VaekitError):
    """Training cannot go on (repeated non-finite losses); the last good checkpoint stays."""


@dataclass
class LoopState:
    """What the loop carries between epochs; saved in the checkpoint as JSON."""

    epoch: int = 0                    # epochs completed
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
               cfg: RunConfig, guard: StepGuard, where: str, capacity: float | None = None) -> dict[str, Tensor] | None:
    """One optimiser step on a batch (B, *shape) with labels (B,) or None; None when the guard skipped it.

    ``capacity`` (nats) switches the objective to the annealed-capacity one (Burgess et al. 2018).
    """
    terms = elbo(model(xb, yb), xb, beta, cfg.train.free_bits, capacity, cfg.train.gamma)
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


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor | None, cfg: RunConfig,
                epoch: int, dynamic: bool, guard: StepGuard, tb: TBLogger | None = None) -> dict[str, float]:
    """One pass over ``x`` (N, *shape) (labels ``y`` (N,) or None) in shuffled batches.

    Returns the mean loss, rec and KL, and the last KL weight.
    """
    t = cfg.train
    model.train()
    perm = torch.randperm(len(x), device=x.device)
    n_batches = math.ceil(len(x) / t.batch_size)
    sums, seen, beta = torch.zeros(3 + len(model.latent_dims), device=x.device), 0, t.beta
    bar = tqdm(total=len(x), desc=f"epoch {epoch + 1}/{t.epochs}", unit="img", leave=False,
               disable=not t.progress, dynamic_ncols=True)
    for b in range(n_batches):
        idx = perm[b * t.batch_size: (b + 1) * t.batch_size]
        xb = binarize_dynamic(x[idx]) if dynamic else x[idx]
        beta = kl_weight(epoch + b / n_batches, t.beta, t.warmup_epochs)
        terms = train_step(model, opt, xb, None if y is None else y[idx], beta, cfg, guard,
                           f"epoch {epoch + 1}, batch {b + 1}",
                           capacity_at(epoch + b / n_batches, t.capacity_max, t.capacity_epochs))
        if terms is None:
            continue
        sums += _sums(terms, len(xb))
        seen += len(xb)
        bar.update(len(xb))
        if tb is not None and b % 10 == 0:  # batch scalars, at the progress bar's cadence
            tb.step(epoch * n_batches + b, terms, beta)
        if t.progress and (b % 10 == 0 or b == n_batches - 1):
            loss, rec, kl = (sums[:3] / seen).tolist()
            bar.set_postfix(loss=f"{loss:.2f}", rec=f"{rec:.2f}", kl=f"{kl:.2f}",
                            rate=f"{seen / bar.format_dict['elapsed']:.0f}/s" if bar.format_dict["elapsed"] else "")
    bar.close()
    loss, rec, kl, *levels = (sums / max(1, seen)).tolist()
    return {"loss": loss, "rec": rec, "kl": kl, "beta": beta, "kl_levels": levels}


def write_metrics(run: Path, rows: list[dict]) -> None:
    """metrics.csv, one row per epoch, rewritten whole (atomically) after every epoch."""
    buf = io.StringIO()
    # models with several latent levels add train_kl_l / val_kl_l columns (l = 1 next to the data)
    writer = csv.DictWriter(buf, fieldnames=FIELDS + [k for k in (rows[0] if rows else {}) if k not in FIELDS])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run / METRICS, buf.getvalue())


def start_run(cfg: RunConfig, resume: bool, overwrite: bool) -> Path:
    """Check the run folder: a new run must not overwrite another by accident; a resumed one needs its checkpoint."""
    run = Path(cfg.out)
    if resume:
        if not (run / CHECKPOINT).is_file():
            raise VaekitError(f"{run}: no {CHECKPOINT} to resume from")
    elif (run / CONFIG).exists() and not overwrite:
        raise VaekitError(f"{run}: already holds a run; pass --resume to continue it or --overwrite to replace it")
    elif overwrite:
        for name in (CONFIG, WEIGHTS, CHECKPOINT, METRICS, "samples.png", "reconstructions.png", "loss.png"):
            (run / name).unlink(missing_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    return run


def fit(cfg: RunConfig, resume: bool = False, overwrite: bool = False, data: Dataset | None = None) -> Path:
    """Train ``cfg`` and write its run folder (config, weights, checkpoint, metrics, pictures); returns its path.

    ``data`` (already prepared, e.g. arrays from the API) skips loading ``cfg.data.spec``; resuming needs the spec.
    """
    validate(cfg)
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    data, mode = (data, "none") if data is not None else prepare_data(cfg)
    cfg.model.input_shape = list(data.shape)
    if getattr(MODELS.get(cfg.model.family), "needs_labels", False):
        cfg.model.num_classes = labelled(data)
    model = build_model(cfg.model).to(device)
    run = start_run(cfg, resume, overwrite)  # only now, when the input is known to be good, touch the disk
    opt = make_optimizer(model, cfg.train.lr)
    state = LoopState(**load_checkpoint(run / CHECKPOINT, model, opt)) if resume else LoopState()
    atomic_write_json(run / CONFIG, cfg.to_dict())
    x_train, x_val = data.train.x.to(device), data.val.x.to(device)
    y_train, y_val = (labels(data, s, device) if model.needs_labels else None for s in ("train", "val"))
    guard = StepGuard(cfg.train.max_bad_steps)
    tb = TBLogger(run, fresh=not resume)  # event files beside metrics.csv when tensorboard is installed
    for epoch in range(state.epoch, cfg.train.epochs):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch)
        start = time.perf_counter()
        tr = train_epoch(model, opt, x_train, y_train, cfg, epoch, mode == "dynamic", guard, tb)
        seconds = time.perf_counter() - start
        va = evaluate_loss(model, x_val, y_val, cfg.train.beta)
        state.rows.append(_row(epoch, tr, va, lr_at(cfg, epoch), seconds, len(x_train)))
        _end_epoch(run, cfg, model, opt, state, va["loss"])
        tb.epoch(state.rows[-1], model, x_val, y_val)
        tqdm.write(_summary(state.rows[-1], cfg.train.epochs)) if cfg.train.progress else None
        if cfg.train.patience and state.bad_epochs >= cfg.train.patience:
            tqdm.write(f"early stopping: no better validation loss for {state.bad_epochs} epochs")
            break
    tb.close()
    write_pictures(run, data.test if len(data.test.x) else data.val)
    return run


def labelled(data: Dataset) -> int:
    """The number of classes of a labelled data set, for conditional models; a set without labels is refused."""
    if not data.num_classes:
        raise VaekitError(f"{data.name}: this model conditions on labels, and the data has none")
    return data.num_classes


def labels(data: Dataset, split: str, device: torch.device) -> Tensor:
    """The labels (N,) of a split, for models that condition on them; a set without labels is refused."""
    y = getattr(data, split).y
    if y is None:
        raise VaekitError(f"{data.name}: this model conditions on labels, and the data has none")
    return y.to(device)


def _end_epoch(run: Path, cfg: RunConfig, model: nn.Module, opt: torch.optim.Optimizer, state: LoopState,
               val_loss: float) -> None:
    """Book-keeping after an epoch: best weights, metrics, then the checkpoint (last, so it is never ahead)."""
    state.epoch += 1
    if val_loss < state.best_val or not (run / WEIGHTS).exists():
        state.best_val, state.bad_epochs = min(val_loss, state.best_val), 0
        save_weights(model, run / WEIGHTS)
    else:
        state.bad_epochs += 1
    write_metrics(run, state.rows)
    save_checkpoint(run / CHECKPOINT, model, opt, state.__dict__)


def _row(epoch: int, tr: dict, va: dict, lr: float, seconds: float, n: int) -> dict:
    row = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_rec": tr["rec"], "train_kl": tr["kl"],
           "val_loss": va["loss"], "val_rec": va["rec"], "val_kl": va["kl"], "beta": tr["beta"], "lr": lr,
           "seconds": seconds, "samples_per_s": n / seconds}
    if len(tr["kl_levels"]) > 1:  # per level, l = 1 at the bottom (the lists run top to bottom)
        for part, terms in (("train", tr), ("val", va)):
            row.update({f"{part}_kl_{l}": v for l, v in enumerate(terms["kl_levels"][::-1], 1)})
    return {k: v if k == "epoch" else float(f"{v:.6g}") for k, v in row.items()}


def _summary(row: dict, epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.2f}  val {row['val_loss']:.2f} "
            f"(rec {row['val_rec']:.2f}, kl {row['val_kl']:.2f})  {row['seconds']:.1f}s  "
            f"{row['samples_per_s']:.0f} img/s")


@torch.no_grad()
def write_pictures(run: Path, split: Split, n: int = 64) -> None:
    """samples.png, reconstructions.png (from the best weights) and loss.png."""
    from .run import Run

    best = Run.load(run, device=str(split.x.device))
    if best.model.needs_labels:  # one row per class
        per_class = 8
        save_samples(best.sample_classes(per_class), run / "samples.png", nrow=per_class)
    else:
        save_samples(best.sample(n), run / "samples.png")
    xs, ys = split.x[:32], None if split.y is None else split.y[:32]
    save_reconstructions(xs.cpu(), best.reconstruct(xs, ys), run / "reconstructions.png")
    plot_losses(run / METRICS, run / "loss.png")
