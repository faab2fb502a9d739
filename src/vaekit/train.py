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

from . import distributed
from .checkpoint import load_latest_checkpoint, save_checkpoint, save_weights
from .config import RunConfig, validate
from .data import Dataset, binarize_dynamic
from .data.lazy import batches
from .errors import VaekitError
from .io import atomic_write_json
from .models import MODELS, build_model
from .objectives import capacity_at, capacity_objective, dimwise_weight_at, elbo, kl_weight
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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (CUDA with bf16, CPUs with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: absent in some builds
    return device.type == "cpu" and any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The dtype the networks run in during training steps: bf16 or None (float32).

    'auto' picks bf16 where the hardware has it and the likelihood is Bernoulli-type (bf16 logits lose
    nothing a Bernoulli can tell apart; a Gaussian's mean can need more than bf16's 8 bits). Distributions,
    losses and every evaluation (validation loss, NLL) stay float32 whatever this says.
    """
    mode = cfg.train.precision
    if mode == "auto":
        mode = "bf16" if native_bf16(device) and cfg.model.likelihood != "gaussian" else "fp32"
    return torch.bfloat16 if mode == "bf16" else None


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
        if distributed.all_ok(bool(torch.isfinite(value))):  # under DDP every rank skips, or none
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
               dtype: torch.dtype | None = None, n_data: int = 0, dimwise: float = 1.0) -> dict[str, Tensor] | None:
    """One optimiser step on a batch (B, *shape) with labels (B,) or None; None when the guard skipped it.

    ``capacity`` (nats) switches the objective to the annealed-capacity one (Burgess et al. 2018). ``dtype``
    (bf16) runs the networks under autocast; the model hands back float32 distributions, so the ELBO is float32.
    ``n_data`` (the training set's size) serves the beta-TCVAE term's minibatch-weighted sampling, ``dimwise`` is
    the weight of its dimension-wise KL.
    """
    with torch.autocast(xb.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(xb, yb)
    terms = elbo(out, xb, beta, cfg.train.free_bits, capacity, cfg.train.gamma, cfg.train.tc_beta, n_data, dimwise)
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
        distributed.seed_rank(cfg.train.seed, extra, (self.state.epoch, self.state.batch))
        if not distributed.is_main():  # the checkpoint's running sums are the sum over all ranks: rank 0 holds them
            self.state.sums, self.state.seen = [0.0] * len(self.state.sums), 0
        self.net = distributed.wrap(model)  # DDP under torchrun: gradients averaged over the processes
        self.size = cfg.train.batch_size // distributed.world()  # batch_size is the global batch
        self.x, self.x_val = data.train.x.to(device), distributed.part(data.val.x.to(device))
        # labelled data (checked in fit) has labels in every split
        self.y, self.y_val = ((data.train.y.to(device), distributed.part(data.val.y.to(device)))
                              if model.needs_labels else (None, None))
        self.guard = StepGuard(cfg.train.max_bad_steps)
        self.dtype = autocast_dtype(cfg, device)
        self.clock = CheckpointClock(cfg.train.checkpoint_every, cfg.train.checkpoint_minutes)
        # event files beside metrics.csv when tensorboard is installed (rank 0 only)
        self.tb = TBLogger(run, fresh=not resume, enabled=distributed.is_main())

    def fit(self, stop: StopSignal) -> None:
        """Epochs from the checkpoint's position to ``train.epochs`` (or early stopping)."""
        t, s = self.cfg.train, self.state
        for epoch in range(s.epoch, t.epochs):
            for group in self.opt.param_groups:
                group["lr"] = lr_at(self.cfg, epoch)
            start = time.perf_counter()
            tr = self.train_epoch(epoch, stop)
            seconds = time.perf_counter() - start
            va = distributed.mean_over_ranks(evaluate_loss(self.model, self.x_val, self.y_val, t.beta), len(self.x_val))
            if t.capacity_max > 0:  # weights are judged by the capacity objective at its final target C
                va["loss"] = capacity_objective(va["rec"], va["kl"], t.capacity_max, t.gamma)
            s.rows.append(metrics_row(epoch, tr, va, lr_at(self.cfg, epoch), seconds, len(self.x)))
            self.end_epoch(va["loss"])
            self.tb.epoch(s.rows[-1], self.model, self.x_val, self.y_val)
            tqdm.write(summary(s.rows[-1], t.epochs)) if t.progress else None
            if t.patience and s.bad_epochs >= t.patience:
                tqdm.write(f"early stopping: no better validation loss for {s.bad_epochs} epochs")
                break
        self.tb.close()

    def shuffle(self, epoch: int) -> Tensor:
        """This rank's share of the epoch's permutation, drawn from (seed, epoch) alone: the same in every
        process, and again on resume."""
        g = torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + epoch)
        return distributed.shard(torch.randperm(len(self.x), generator=g)).to(self.x.device)

    def train_epoch(self, epoch: int, stop: StopSignal) -> dict[str, float]:
        """One pass over the training split from the state's batch on; returns means of loss, rec, KL, beta."""
        t, s, model = self.cfg.train, self.state, self.model
        model.train()
        perm = self.shuffle(epoch)
        n_batches = math.ceil(len(perm) / self.size)
        sums = torch.tensor(s.sums, device=self.x.device) if s.batch else torch.zeros(3 + len(model.latent_dims),
                                                                                      device=self.x.device)
        bar = tqdm(total=len(perm) * distributed.world(), initial=s.seen, desc=f"epoch {epoch + 1}/{t.epochs}",
                   unit="img", leave=False, disable=not t.progress, dynamic_ncols=True)
        beta = kl_weight(epoch + s.batch / n_batches, t.beta, t.warmup_epochs)
        for b, xb, yb in batches(self.x, self.y, perm, self.size, s.batch, self.cfg.data.workers, self.x.device):
            xb = binarize_dynamic(xb) if self.dynamic else xb
            progress = epoch + b / n_batches  # fractional epochs: every schedule reads it
            beta = kl_weight(progress, t.beta, t.warmup_epochs)
            terms = train_step(self.net, self.opt, xb, yb, beta, self.cfg,
                               self.guard, f"epoch {epoch + 1}, batch {b + 1}",
                               capacity_at(progress, t.capacity_max, t.capacity_epochs), self.dtype,
                               len(self.x), dimwise_weight_at(progress, t.dimwise_warmup_epochs))
            if terms is not None:
                sums += _sums(terms, len(xb))
                s.seen += len(xb)
                self.report(bar, b, n_batches, epoch, terms, beta, sums, len(xb))
            self.maybe_checkpoint(epoch, b + 1, sums, stop)
        bar.close()
        sums, seen = distributed.sum_over_ranks(sums, s.seen)
        loss, rec, kl, *levels = (sums / max(1, seen)).tolist()
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
        signum, due = distributed.agree(stop.signum, self.clock.due())  # every rank stops at the same step
        if signum is None and not due:
            return
        total, seen = distributed.sum_over_ranks(sums, self.state.seen)
        self.state.batch = batches
        self.save(sums=total.tolist(), seen=seen)
        if signum is not None:
            raise Interrupted(signum, f"epoch {epoch + 1}, batch {batches}", str(self.run))

    def save(self, **position) -> None:
        """The checkpoint (rank 0 writes it; every rank must call this: it gathers their RNG states)."""
        extra = distributed.rng_extra()
        if distributed.is_main():
            save_checkpoint(self.run / CHECKPOINT, self.model, self.opt, asdict(self.state) | position, extra)

    def end_epoch(self, val_loss: float) -> None:
        """Book-keeping after an epoch: best weights, metrics, then the checkpoint (last, so it is never ahead)."""
        s = self.state
        s.epoch += 1
        if val_loss < s.best_val or s.best_val == math.inf:  # the first epoch always writes weights
            s.best_val, s.bad_epochs = min(val_loss, s.best_val), 0
            if distributed.is_main():
                save_weights(self.model, self.run / WEIGHTS)
        else:
            s.bad_epochs += 1
        if distributed.is_main():
            write_metrics(self.run, s.rows)
        self.save()


def fit(cfg: RunConfig, resume: bool = False, overwrite: bool = False, data: Dataset | None = None,
        pictures: bool = True) -> Path:
    """Train ``cfg`` and write its run folder (config, weights, checkpoint, metrics, pictures); returns its path.

    ``pictures=False`` skips samples.png, reconstructions.png and loss.png (most of a tiny run's time).
    ``data`` (already prepared, e.g. arrays from the API) skips loading ``cfg.data.spec``; resuming needs the spec.
    SIGINT or SIGTERM finish the current step, write a checkpoint and raise ``Interrupted``.
    Under torchrun every process runs this; they train one DDP model and rank 0 writes the run folder.
    """
    validate(cfg)
    device = distributed.init(resolve_device(cfg.train.device), cfg.train.batch_size)
    cfg.train.progress = cfg.train.progress and distributed.is_main()
    torch.manual_seed(cfg.train.seed)
    data, mode = (data, "none") if data is not None else prepare_data(cfg, stream=True)
    cfg.model.input_shape = list(data.shape)
    if getattr(MODELS.get(cfg.model.family), "needs_labels", False):
        cfg.model.num_classes = labelled(data)
    model = build_model(cfg.model).to(device)
    # only now, when the input is known to be good, touch the disk (rank 0 alone)
    run = distributed.on_main(lambda: start_run(cfg.out, resume, overwrite), "start the run") or Path(cfg.out)
    trainer = Trainer(cfg, model, data, mode, run, resume)
    if distributed.is_main():
        atomic_write_json(run / CONFIG, cfg.to_dict())
    with StopSignal() as stop:
        trainer.fit(stop)
    if pictures and distributed.is_main():
        write_pictures(run, data.test if len(data.test.x) else data.val)
    distributed.leave(wait=True)
    return run


def labelled(data: Dataset) -> int:
    """The number of classes of a labelled data set, for conditional models; a set without labels is refused."""
    if not data.num_classes:
        raise VaekitError(f"{data.name}: this model conditions on labels, and the data has none")
    return data.num_classes
