"""The guard of the training steps: it skips a step whose loss or gradient norm is not finite or too large,
counts the skips, warns of a run of them and stops the run in one line naming the setting to change; it warns
too of a run whose epochs' losses diverge while every step stays finite (``StepGuard.diverged``)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

import torch
from torch import Tensor

from ..core.objectives import Terms
from ..errors import is_number
from . import distributed
from .first_step import TrainingStopped, non_finite_term

IN_ROW = " steps in a row "  # the words of the skipped-steps warning and stop, after the count

WINDOW, WARM = 256, 32  # skip_ratio: the median of the last WINDOW kept norms, once WARM steps were kept
# an epoch whose mean loss rose FAR x the first kept step's |loss| (at least 1 nat) above it, or whose mean KL grew
# past that, diverged: the first step, at the initial weights, has about the run's largest loss (its KL small)
FAR = 100


class StepGuard:
    """Skips steps whose loss or gradient norm is not finite, or whose gradient norm exceeds ``skip_grad`` (> 0;
    VDVAE's update skipping) or ``skip_ratio`` (> 0) times the median norm of the last ``WINDOW`` kept steps
    (a threshold that follows the loss's scale: nats per image differ 50-fold between binarised and 8-bit
    colour data). Counts the skips (``skipped``, ``large``) and the longest run of them in a row (``most``),
    warns once ``warns_at(limit)`` are skipped in a row (unless ``warns`` is False: a caller that says so in its
    own words) and stops after ``limit`` in a row, naming the step and the setting to change. Its counters and
    norms go into the checkpoint (``state_dict``), so a run that resumes keeps counting."""

    def __init__(
        self, limit: int, skip_grad: float = 0.0, lr: float | None = None, skip_ratio: float = 0.0, clip_grad: float = 0
    ):
        self.limit, self.skip_grad, self.lr, self.skip_ratio = limit, skip_grad, lr, skip_ratio
        self.clip_grad = clip_grad  # > 0: the norm is clipped already, so "set train.clip_grad" is no advice
        self.in_row, self.skipped, self.large = 0, 0, 0
        self.most, self.warns = 0, True  # the longest run in a row (the whole run's); whether to warn of one
        self.start: float | None = None  # the first kept step's loss (the run's, resumes included): ``diverged``
        self.said = False  # whether ``diverged`` warned
        self.forward = ""  # the last skipped step's non-finite term, where its loss itself was not finite
        self.norms: deque[float] = deque(maxlen=WINDOW)  # kept steps' norms (skip_ratio only)
        self.opt: torch.optim.Optimizer | None = None  # StepSetup binds it: no state until the first update

    def state_dict(self) -> dict:
        """The counters and the kept norms, as JSON."""
        counts = {"in_row": self.in_row, "skipped": self.skipped, "large": self.large, "most": self.most}
        return counts | {"norms": list(self.norms), "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        """Counters and norms from ``state_dict`` (an empty dict: a checkpoint from before they were saved; one
        without ``most``, from before it was: the longest run starts from the skips in a row it saved)."""
        self.in_row, self.skipped, self.large = (int(state.get(k, 0)) for k in ("in_row", "skipped", "large"))
        self.most = max(self.most, self.in_row, int(state.get("most", 0)))  # mid-run of skips: it goes on counting
        self.norms.extend(state.get("norms", []))
        start = state.get("start")  # none saved (an earlier vaekit's): this session's first kept step's
        if isinstance(start, int | float) and is_number(start, finite=True):
            self.start = float(start)

    def threshold(self) -> tuple[float, str]:
        """The norm above which a step is skipped now and the setting that sets it (inf, "": nothing)."""
        limits = [(math.inf, "")]
        if self.skip_grad > 0:
            limits.append((self.skip_grad, "train.skip_grad"))
        if self.skip_ratio > 0 and len(self.norms) >= WARM:
            limits.append((self.skip_ratio * statistics.median(self.norms), "train.skip_ratio"))
        return min(limits)

    def ok(self, value: Tensor, where: str, norm: Tensor | None = None, terms: Terms | None = None) -> bool:
        """Whether the step with this loss + norm ``value`` (0-dim) and gradient norm may be taken; ``terms``, the
        step's, tell a loss that the forward pass made non-finite (the term named, not train.lr) from a gradient."""
        value_, norm_ = (value.item(), None) if norm is None else torch.stack([value, norm]).tolist()  # one sync
        limit, setting = self.threshold()
        bad = not math.isfinite(value_) or (norm_ is not None and norm_ > limit)
        if distributed.all_ok(not bad):  # under DDP every rank skips, or none
            self.in_row, self.forward = 0, ""
            if self.start is None:  # value_ is loss + norm where a norm is given
                self.start = value_ - (norm_ or 0.0)
            if self.skip_ratio > 0 and norm_ is not None:
                self.norms.append(norm_)
            return True
        self.in_row += 1
        self.skipped += 1
        self.most = max(self.most, self.in_row)
        large = math.isfinite(value_)  # finite, so skipped for its norm
        self.large += large
        lost = not large and terms is not None and not bool(terms["loss"].detach().isfinite())
        self.forward = non_finite_term(terms) if lost and terms is not None else ""  # the forward pass's doing
        by_norm = large and bool(setting)  # finite, with a threshold set: skipped for its norm
        key = setting if by_norm else None if self.fresh() or self.forward else "train.lr"
        ratio = setting == "train.skip_ratio"  # the limit is the ratio times the median kept norm
        how = f"{self.skip_ratio:g} x {limit / self.skip_ratio:.4g}" if ratio else f"{limit:g}"
        what = "with a non-finite loss" if self.forward else "with a non-finite loss or gradient"
        what = f"skipped, gradient norm {norm_:.4g} > {setting} {how}" if by_norm else what
        fix = self.fix(setting if by_norm else "")
        if self.in_row >= self.limit:
            raise TrainingStopped(f"training stopped at {where}: {self.in_row}{IN_ROW}{what}; {fix}", key=key)
        if self.warns and self.in_row == warns_at(self.limit):  # every rank skipped it (all_ok): rank 0 says so
            distributed.warn(f"{self.in_row}{IN_ROW}{what} (at {where}); {fix}")
        return False

    def epoch_means(self, sums: Tensor, seen: int, epoch: int) -> list[Any]:
        """The epoch's mean terms from their ``sums`` over the ``seen`` items of its kept steps; an epoch whose
        every step was skipped stops the run in one line (it reported a loss of 0 and trained nothing), one whose
        means diverged is warned of (``diverged``)."""
        if not seen and self.skipped:
            setting = self.threshold()[1] if self.large else ""  # skipped for a norm above it, or non-finite
            fix = "lower train.lr or raise the skip threshold (train.skip_grad, train.skip_ratio)"
            raise TrainingStopped(
                f"training stopped after epoch {epoch}: every step of it was skipped ({self.skipped} so far); "
                + (fix if self.large and not setting else self.fix(setting)),
                key=(setting if self.fresh() else "" if self.forward else "train.lr") or None,
            )
        means = (sums / max(1, seen)).tolist()
        self.diverged(means, epoch)
        return means

    def diverged(self, means: list[float], epoch: int) -> None:
        """Warn, once, where epoch ``epoch``'s mean loss (``means``: loss, rec, kl...) rose ``FAR`` x max(|start|, 1)
        above the first kept step's (``start``), or its mean KL grew past that: the run diverged though its steps
        stay finite (an lr far too large), and its kept weights are an early epoch's at best."""
        if self.start is None or self.said or len(means) < 3:
            return
        loss, kl = means[0], means[2]
        limit = FAR * max(abs(self.start), 1.0)
        grew = [f"loss {loss:.4g}" if loss - self.start > limit else "", f"KL {kl:.4g}" if kl > limit else ""]
        if any(grew):
            self.said = True
            what = " and ".join(filter(None, grew))
            distributed.warn(
                f"epoch {epoch}: the training {what} per item grew by orders of magnitude (over {FAR} x the first "
                f"step's loss, {self.start:.4g}): the run diverged; {self.fix('')}"
            )

    def fresh(self) -> bool:
        """Whether no update was applied yet (Adam's state starts at the first): train.lr has acted on nothing."""
        return self.opt is not None and not self.opt.state

    def fix(self, setting: str) -> str:
        """What to change for steps skipped for a norm above ``setting`` ("": a non-finite loss or gradient): for a
        loss the forward pass made non-finite, its term and network (``forward``); where no update was applied yet,
        only the threshold, or for a non-finite one the model or data; else train.lr."""
        if not setting and self.forward:
            return f"the loss itself is not finite (the forward pass, not its gradient): {self.forward}"
        if setting and self.fresh():
            return f"raise {setting}: no update was applied yet, so the starting gradient norm exceeds it"
        if self.fresh():
            return NOT_LR
        lr = "" if self.lr is None else f" (now {self.lr:g})"
        clip = " or set train.clip_grad" if self.clip_grad <= 0 else f" (train.clip_grad {self.clip_grad:g} is set)"
        return f"lower train.lr{lr}" + (f" or raise {setting}" if setting else clip)


NOT_LR = (
    "no update was applied yet (so not for train.lr): the model or the data gives a non-finite gradient from "
    "the start, such as that of sqrt or log at 0"
)


def warns_at(limit: int) -> int:
    """The skipped steps in a row at which ``StepGuard`` warns, for a guard stopping after ``limit`` in a row."""
    return max(2, limit // 4)
