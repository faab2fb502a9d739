"""The training loop: model-agnostic (it uses only the model contract), shuffled batches from memory or streamed,
checkpoints (per epoch, every N steps or minutes, on SIGINT/SIGTERM) that resume bit for bit, early stopping,
and callbacks (``vaekit.training.callbacks``) for everything else."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import cast

import torch
from torch import Tensor
from tqdm import tqdm

from .. import files
from ..config import TrainConfig
from ..core.contract import VAEModule
from ..core.schedules import capacity_at, dimwise_weight_at, kl_weight, lr_at, tau_at
from ..data import Dataset, binarize_dynamic
from ..data.batching import batch_count, batches, fewest
from ..data.packed import to_device
from ..models.gumbel import set_tau
from . import distributed
from .callbacks import Callbacks
from .capture import compilable_steps, eager_epoch, make_step
from .checkpoint import save_checkpoint, save_weights
from .critic import Critic
from .early_stop import already_line, by_more, end_line, judge, refuse_diverged
from .guard import StepGuard
from .kept import kept_columns, kept_line, resume_line
from .metrics_file import metrics_row, write_metrics
from .progress import Lines, interactive, summary
from .rank_rng import rng_extra
from .restore import restore
from .signals import CheckpointClock, Interrupted, StopSignal
from .stability import EMA, swapped
from .state import at_patience, fingerprint, kept_dtype, processes_changed, set_aside_note
from .step import Scheduled, StepSetup, batch_sums, labels_on, make_optimizer
from .step_report import reads_every, step_metrics
from .val_loss import check_split_sizes, validation_loss


class Trainer:
    """One run's loop over epochs of shuffled batches, with validation, checkpoints (with a run folder ``run``)
    and callbacks.

    All randomness comes from torch's global generator, whose state every checkpoint holds; a mid-epoch
    checkpoint also holds the state at the epoch's start, which redraws the epoch's shuffle on resume.
    So a run stopped anywhere and resumed ends with the same weights as one never stopped (same device).
    Without a run folder the best weights are kept in memory.
    """

    def __init__(
        self,
        model: VAEModule,
        data: Dataset,
        t: TrainConfig,
        run: Path | None,
        *,
        resume: bool = False,
        dynamic: bool = False,
        dtype: torch.dtype | None = None,
        workers: int = 0,
        callbacks: Callbacks | None = None,
    ):
        self.model, self.t, self.run, self.dynamic = model, t, run, dynamic
        self.workers, self.callbacks = workers, callbacks or Callbacks([])
        self.lines = Lines(t.progress)  # the run's progress lines (train.progress)
        device = next(model.parameters()).device
        self.opt = make_optimizer(model, t.lr)
        self.critic = Critic.for_objective(t.objective, model.latent_dims[0], device)  # factor's discriminator
        # the loop state (from the checkpoint on resume), then every rank's generator is seeded
        self.state, extra, self.redrawn, self.remeasured = restore(model, self.opt, t, run, resume, fingerprint(data))
        self.rescaled = processes_changed(t, self.state, extra, resume)  # validation by another number of processes
        self.best: dict[str, Tensor] | None = None  # the best epoch's weights, kept here without a run folder
        self.trained = 0  # items the epoch's pass trains in this session (a resumed epoch: those after the resume)
        self.place(data, device)
        check_split_sizes(model, t, len(data.train), len(data.val), fewest(model, t))  # before any training
        self.prepare_steps(dtype, device)
        if self.state.step < 0:  # an older checkpoint's: its steps numbered as that vaekit did (epochs of this one's)
            self.state.step = self.state.epoch * batch_count(self.epoch_items(self.state.epoch), t.batch_size)
            self.state.step += self.state.batch
        self.every = distributed.from_main(reads_every(self.callbacks.items))  # rank 0's callbacks: steps they read
        self.ema = EMA(model, t.ema) if t.ema > 0 else None  # evaluation, saved weights and pictures use it
        if self.ema is not None:
            self.ema.load(extra)
        if self.critic is not None:
            self.critic.load(extra)
        self.clock = CheckpointClock(t.checkpoint_every, t.checkpoint_minutes if run is not None else 0.0)

    def place(self, data: Dataset, device: torch.device) -> None:
        """The network (DDP under torchrun) and the splits on ``device`` (``distributed.init`` checked the batch)."""
        self.net = distributed.wrap(self.model)  # DDP under torchrun: gradients averaged over the processes
        self.x, self.x_val = to_device(data.train.x, device), to_device(distributed.part(data.val.x), device)
        self.y: Tensor | None = None
        self.y_val: Tensor | None = None
        if self.model.needs_labels:  # labelled data (checked in fit) has labels in every split
            self.y, self.y_val = labels_on(data.train.y, device), distributed.part(labels_on(data.val.y, device))

    def prepare_steps(self, dtype: torch.dtype | None, device: torch.device) -> None:
        """The step guard, the steps' dtype, what every step shares and the step function (compiled or not)."""
        t = self.t
        self.guard = StepGuard(t.max_bad_steps, t.skip_grad, t.lr, t.skip_ratio, t.clip_grad)
        self.guard.load_state_dict(self.state.guard)  # a resumed run keeps counting skips in a row
        dtype = kept_dtype(t, self.state, dtype)
        critic, net = None if self.critic is None else self.critic.pair(), cast("VAEModule", self.net)  # DDP or model
        self.setup = StepSetup(net, self.opt, t, self.guard, dtype, len(self.x), critic)  # what every step shares
        # train.compile: a compiled step keeps its shapes, so each epoch's last short batch is dropped
        steps = compilable_steps(t.epochs, t.warmup_epochs, t.kl_balance, len(self.x) // t.batch_size)
        self.step, self.static = make_step(t.compile, device, steps)

    def fit(self, stop: StopSignal) -> None:
        """Epochs from the checkpoint's position to ``epochs`` (or early stopping)."""
        t, s = self.t, self.state
        self.set_aside()  # measured otherwise: trains on
        if self.at_patience():  # resumed at train.patience: nothing more (a larger train.patience goes on)
            self.lines.say(already_line(s, t), result=distributed.is_main())
            return
        if s.epoch or s.batch:  # resumed: where it goes on
            self.say(resume_line(s.epoch, s.batch, batch_count(self.epoch_items(s.epoch), t.batch_size), t.epochs))
        for epoch in range(s.epoch, t.epochs):
            lr = lr_at(t.lr, t.lr_schedule, epoch, t.epochs, s.lr_rule)  # an older checkpoint's rule: kept
            for group in self.opt.param_groups:
                group["lr"] = lr
            start = time.perf_counter()
            tr = self.train_epoch(epoch, stop)
            seconds = time.perf_counter() - start
            with swapped(self.ema, self.model):
                va = validation_loss(self.model, self.x_val, self.y_val, t, self.critic)
            s.rows.append(metrics_row(epoch, tr, va, lr, seconds, self.trained))  # the items behind seconds
            s.rows[-1]["skipped_steps"] = self.guard.skipped  # updates skipped so far (non-finite or too large)
            self.end_epoch(va["loss"])
            with swapped(self.ema, self.model):
                self.callbacks.on_epoch_end(epoch + 1, s.rows[-1], self.model)
            self.say(summary(s.rows[-1], t.epochs))
            if s.epoch < t.epochs and self.stopped_early():  # at the last epoch: the run has its epochs
                return
        self.say(end_line(s, t))

    def sets_aside(self) -> str:
        """Why a resumed run's best validation loss is set aside (it is measured otherwise: another val_loss, other
        validation draws or another number of processes) where training goes on, else ""."""
        s, why = self.state, "; ".join(filter(None, (self.remeasured, self.redrawn, self.rescaled)))
        return why if why and s.best_val != math.inf and s.epoch < self.t.epochs else ""

    def set_aside(self) -> None:
        """Set the best validation loss and the count of epochs without a better one aside where ``sets_aside``
        (said in one line, a run that stopped early trains on): afresh from here."""
        s, why = self.state, self.sets_aside()
        if why:
            distributed.warn(set_aside_note(s.best_val, why, s.epoch + 1, self.at_patience()))
            s.best_val, s.bad_epochs, s.patience_val = math.inf, 0, math.inf

    def at_patience(self) -> bool:
        """Whether the loop stands at an epoch's end after ``train.patience`` epochs without a better val_loss."""
        return at_patience(self.t, self.state.batch, self.state.bad_epochs)

    def stopped_early(self) -> bool:
        """``at_patience``, said in one line with the weights kept, even where progress lines are off (a result):
        early stopping, after an epoch before the last (``early_stop``: at the last, the run has its epochs)."""
        if not self.at_patience():
            return False
        n, kept = self.state.bad_epochs, kept_line(self.state.rows)
        said = f"early stopping: no better validation loss{by_more(self.t.min_delta)} for {n} epoch{'s' * (n != 1)}"
        self.lines.say(said + (f"; {kept}" if kept else ""), result=distributed.is_main())
        return True

    @property
    def muted(self) -> bool:
        """Whether a progress line could not be written (stdout full or gone): no more of them."""
        return self.lines.muted

    def say(self, line: str) -> None:
        """A progress line ("": none); one that cannot be written ends them, said once on stderr (``Lines.say``)."""
        if line:
            self.lines.say(line)

    def shuffle(self, epoch: int) -> Tensor:
        """The epoch's permutation, drawn from (seed, epoch) alone: the same in every process, and again on
        resume. Drawn on the data's device by that device's generator: batches of data in device memory are cut
        there with no copy."""
        g = torch.Generator(self.x.device).manual_seed(self.t.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x), generator=g, device=self.x.device)

    def train_epoch(self, epoch: int, stop: StopSignal) -> dict[str, float]:
        """One pass over the training split from the state's batch on (cut as one process cuts it, each process
        taking its share of every batch); returns means of loss, rec, KL, beta (the KL weight over the batches)."""
        t, s, model, size = self.t, self.state, self.model, self.t.batch_size  # batch_size: the global batch
        model.train()
        perm = self.shuffle(epoch)[: self.epoch_items(epoch)]
        n_batches = batch_count(len(perm), size)  # as ``batches`` cuts it: no lone last item, in any process count
        self.trained = len(perm) - min(s.batch * size, len(perm))  # the items this session trains (all ranks')
        # float64 running sums: a resume adding them in another order (rank 0 from all ranks') keeps metrics.csv's
        zeros = torch.zeros(3 + len(model.latent_dims), dtype=torch.float64, device=self.x.device)
        sums = torch.tensor(s.sums, dtype=torch.float64, device=self.x.device) if s.batch else zeros
        bar = tqdm(
            total=len(perm),
            initial=s.seen,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            unit=" items",  # images or table rows, as the epoch's line says
            leave=False,
            disable=not (t.progress and interactive()),
            dynamic_ncols=True,
        )
        share = {"rank": distributed.rank(), "world": distributed.world(), "least": fewest(model, t)}
        for b, xb, yb in batches(self.x, self.y, perm, size, s.batch, self.workers, self.x.device, **share):
            xb = binarize_dynamic(xb) if self.dynamic else xb
            now = self.scheduled(epoch + b / n_batches)
            terms = self.step(self.setup, xb, yb, now, f"epoch {epoch + 1}, batch {b + 1}")
            if terms is not None:
                self.ema.update(self.model) if self.ema is not None else None
                sums += batch_sums(terms, len(xb))
                s.seen += len(xb)
                self.report(bar, b, n_batches, terms, now.beta, sums, len(xb))
            s.step += 1  # skipped steps too: the run's steps, as its batches
            self.maybe_checkpoint(epoch, b + 1, sums, stop)
        bar.close()
        sums, seen = distributed.sum_over_ranks(sums, s.seen)
        loss, rec, kl, *levels = self.guard.epoch_means(sums, seen, epoch + 1)
        s.batch, s.sums, s.seen = 0, [], 0
        beta = sum(kl_weight(epoch + b / n_batches, t.beta, t.warmup_epochs) for b in range(n_batches)) / n_batches
        return {"loss": loss, "rec": rec, "kl": kl, "beta": beta, "kl_levels": levels}  # beta: the epoch's mean

    def epoch_items(self, epoch: int) -> int:
        """The items epoch ``epoch`` (0-based) trains: all, or under a compiled step whole batches alone."""
        n, size = len(self.x), self.t.batch_size
        if self.static and n >= size and not eager_epoch(epoch, self.t.warmup_epochs, self.t.kl_balance):
            return n // size * size
        return n

    def scheduled(self, progress: float) -> Scheduled:
        """The step's scheduled values at ``progress`` (fractional epochs: every schedule reads it); sets the
        categorical VAE's Gumbel-softmax temperature for it too."""
        t = self.t
        beta = kl_weight(progress, t.beta, t.warmup_epochs)
        set_tau(self.model, tau_at(progress, t.gumbel_tau, t.gumbel_tau_end, t.epochs))
        capacity = capacity_at(progress, t.capacity_max, t.capacity_epochs)
        return Scheduled(beta, capacity, dimwise_weight_at(progress, t.dimwise_warmup_epochs))

    def report(self, bar, b: int, n_batches: int, terms: dict, beta: float, sums: Tensor, n: int) -> None:
        """Callbacks after every step (the run's step ``state.step``: its metrics over every process's items at
        the steps they read, ``self.every``); the progress bar's numbers every 10 batches (a host sync)."""
        bar.update(n * distributed.world())  # every process's share of the batch
        read = self.every > 0 and self.state.step % self.every == 0  # every rank alike: a collective under torchrun
        if read or self.callbacks:
            metrics = step_metrics(terms, read, beta, self.opt.param_groups[0]["lr"])
            self.callbacks.on_step_end(self.state.step, metrics, self.model)
        if bar.disable or (b % 10 and b != n_batches - 1):
            return
        loss, rec, kl = (sums[:3] / self.state.seen).tolist()
        bar.set_postfix({"loss": f"{loss:.2f}", "rec": f"{rec:.2f}", "kl": f"{kl:.2f}"})  # the bar's rate: items/s

    def maybe_checkpoint(self, epoch: int, batches: int, sums: Tensor, stop: StopSignal) -> None:
        """A mid-epoch checkpoint when the clock says so or a stop signal came; then stop on the signal."""
        signum, due = distributed.agree(stop.signum, self.clock.due())  # every rank stops at the same step
        if signum is None and not due:
            return
        total, seen = distributed.sum_over_ranks(sums, self.state.seen)
        self.state.batch = batches
        self.save(sums=total.tolist(), seen=seen)
        if signum is not None:
            where = None if self.run is None else str(self.run)
            raise Interrupted(signum, f"epoch {epoch + 1}, batch {batches}", where)

    def save(self, **position) -> None:
        """The checkpoint, with a run folder (rank 0 writes it; every rank must call this: it gathers their RNG
        states)."""
        if self.run is None:
            return
        extra = rng_extra() | (self.ema.tensors() if self.ema is not None else {})
        extra |= self.critic.tensors() if self.critic is not None else {}
        self.state.guard = self.guard.state_dict()
        if distributed.is_main():
            save_checkpoint(self.run / files.CHECKPOINT, self.model, self.opt, asdict(self.state) | position, extra)

    def end_epoch(self, val_loss: float) -> None:
        """Book-keeping after an epoch: best weights, metrics, then the checkpoint (last, so it is never ahead)."""
        s = self.state
        refuse_diverged(s.rows, self.t.lr)  # not finite: a warning, or a stop where no epoch had a finite one
        s.epoch += 1
        improved = judge(s, val_loss, self.t.min_delta)  # the lowest val_loss (the first epoch's always) is kept
        s.rows[-1] |= kept_columns(s.rows, improved)  # which weights the run keeps: a set-aside best is not read back
        if improved:
            with swapped(self.ema, self.model):  # the averaged weights, where there is an average
                if self.run is None:
                    self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                elif distributed.is_main():
                    save_weights(self.model, self.run / files.WEIGHTS)
        if self.run is not None and distributed.is_main():
            write_metrics(self.run, s.rows)
        self.save()

    def best_weights(self) -> dict[str, Tensor] | None:
        """The best epoch's weights kept in memory (no run folder), else None: they are in the run folder."""
        return self.best
