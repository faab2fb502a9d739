"""What a checkpoint carries besides tensors: the loop's state, and the fingerprint of the data it rests on."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import files
from ..config import RunConfig, TrainConfig
from ..config.resume import keep_recorded
from ..core.schedules import STEP_RULE
from ..data import Dataset, Split
from ..errors import VaekitError, is_number, is_whole
from ..io import parse_json
from . import distributed
from .checkpoint import header, read_tensors

FINGERPRINT_ITEMS = 16  # training items hashed: enough to tell other data, cheap for a streamed folder
SPLITS = ("training", "validation", "test")
FIXED_DRAW = "rows"  # fixed binarisation's draw since it was keyed by each item's row (data.draws); before: absent
DRAW_CHANGED = (
    "fixed binarisation's draw changed since it was written (an item's 0/1 values now follow the seed and its row "
    "in the file, loaded or streamed alike), so its training items differ"
)
REDRAW = ("train the run again in another out folder, with data.binarize fixed, none or dynamic", "out")
SET_ASIDE = (  # a resumed run's best validation loss measured otherwise: why, the next epoch, and set_aside_note's
    "best validation loss {:.6g} set aside: {}; the best weights are picked, and train.patience counts, afresh "
    "from epoch {} on{}"
)
NO_DTYPE = (  # a resumed checkpoint without ``precision`` under train.precision auto: the dtype picked today
    "the checkpoint records no dtype (an earlier vaekit's): its steps run in {} from here, as train.precision auto "
    "picks on this machine today, maybe not the dtype it started in; choose one with train.precision (--precision "
    "fp32 or bf16)"
)


@dataclass
class LoopState:
    """What the loop carries between steps and epochs; saved in the checkpoint as JSON."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch (> 0: a mid-epoch checkpoint)
    sums: list[float] = field(default_factory=list)  # the current epoch's running sums (see _sums)
    seen: int = 0  # items behind those sums
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since one better than patience_val by more than train.min_delta (early_stop.judge)
    patience_val: float = math.inf  # the validation loss train.patience counts from (``from_checkpoint``: best_val)
    step: int = 0  # the run's steps taken, skipped ones too (``from_checkpoint``: -1 where absent, ``Trainer.steps``)
    rows: list[dict] = field(default_factory=list)
    guard: dict = field(default_factory=dict)  # the step guard's counters and kept norms (StepGuard.state_dict)
    precision: str = ""  # the dtype the steps ran in, "bf16" or "fp32" ("": not started): a resumed run keeps it
    data: dict = field(default_factory=dict)  # fingerprint(data) of the run's data ({}: a run from before it)
    measure: dict = field(default_factory=dict)  # what defines best_val (val_loss.measured; {}: a run from before it)
    lr_rule: int = STEP_RULE  # the step schedule's rule the run trains under (``from_checkpoint``: 1 where absent)
    settings: dict = field(default_factory=dict)  # config.resume.recorded: what it rests on ({}: a run from before)
    world: int = 0  # the processes that measured its val_loss (0: a run from before it: ``processes_changed``)

    @classmethod
    def from_checkpoint(cls, saved: dict) -> LoopState:
        """The state a checkpoint saved (``state_problem`` found none); one without ``lr_rule``, an earlier
        vaekit's, keeps the step schedule it was trained under (``core.schedules.lr_at``, rule 1); without
        ``patience_val`` patience counts from its best validation loss, as it did; without ``step``, -1: derived
        from its position as that vaekit numbered its steps (``Trainer.steps``)."""
        before = {"lr_rule": 1, "patience_val": saved.get("best_val", math.inf), "step": -1}
        return cls(**(before | saved))


def set_aside_note(best: float, why: str, epoch: int, stopped: bool) -> str:
    """The line of a resumed run that sets its best validation loss ``best`` aside for ``why``, from ``epoch`` (1-based)
    on; ``stopped``: it had stopped early, and trains on (what its stop rested on is measured otherwise)."""
    return SET_ASIDE.format(
        best, why, epoch, " (it had stopped early on the old measure: it trains on)" if stopped else ""
    )


def state_problem(saved: dict, sums: int | None = None) -> str:
    """What keeps a checkpoint's loop state ``saved`` (JSON) from being a ``LoopState``, "" where nothing does: a
    field it has not, or a value of another type (``sums``: how many running sums a mid-epoch state holds)."""
    unknown = next((k for k in saved if k not in LoopState.__dataclass_fields__), None)
    if unknown is not None:
        return f"no field {unknown!r}"
    for key, ok in STATE_TYPES.items():
        if key in saved and not ok(saved[key]):
            return f"{key} is {str(saved[key])[:60]!r}"
    if sums is not None and saved.get("batch") and len(saved.get("sums", [])) != sums:
        return f"{len(saved.get('sums', []))} running sums, the model's epochs keep {sums}"
    return ""


_count = partial(is_whole, low=0)  # a counter of the loop: a whole number >= 0


def _numbers(v: object) -> bool:
    return isinstance(v, list) and all(map(is_number, v))


def _guard(v: object) -> bool:  # StepGuard.state_dict's: counters and kept norms
    return (
        isinstance(v, dict)
        and all(_count(v.get(k, 0)) for k in ("in_row", "skipped", "large", "most"))
        and _numbers(v.get("norms", []))
    )


def _data(v: object) -> bool:  # fingerprint's: three split sizes, digests as text
    if not isinstance(v, dict) or not v:
        return isinstance(v, dict)
    items = v.get("items")
    texts = all(isinstance(v.get(k, ""), str) for k in ("sha256", "fixed_draw", "val_sha256"))
    return isinstance(items, list) and len(items) == len(SPLITS) and all(map(_count, items)) and texts


STATE_TYPES: dict[str, Callable[[object], bool]] = {  # LoopState's fields as JSON
    "epoch": _count,
    "batch": _count,
    "sums": _numbers,
    "seen": _count,
    "best_val": is_number,
    "bad_epochs": _count,
    "patience_val": is_number,
    "step": _count,
    "rows": lambda v: isinstance(v, list) and all(isinstance(r, dict) and all(map(is_number, r.values())) for r in v),
    "guard": _guard,
    "precision": lambda v: v in ("", "bf16", "fp32"),
    "data": _data,
    "measure": lambda v: isinstance(v, dict) and all(is_number(u) or isinstance(u, str) for u in v.values()),
    "settings": lambda v: isinstance(v, dict),
    "world": _count,
    "lr_rule": lambda v: is_whole(v, low=1) and int(v) <= STEP_RULE,  # a later vaekit's rule: refused
}


def positions(n: int) -> list[int]:
    """Up to FINGERPRINT_ITEMS item numbers in [0, n), sorted, from SHA-256 alone (no RNG whose stream a torch
    or numpy version could change)."""
    draws = (hashlib.sha256(f"vaekit.fingerprint.{i}".encode()).digest()[:8] for i in range(FINGERPRINT_ITEMS))
    return sorted({int.from_bytes(d, "big") % n for d in draws}) if n else []


def digest(split: Split, shape: tuple[int, ...]) -> str:
    """SHA-256 over ``shape`` and FINGERPRINT_ITEMS items x (16, *shape) of ``split`` at fixed positions and their
    labels, as the trainer gets them; "" where they differ when read twice (a Dataset's random transforms)."""
    rows = torch.tensor(positions(len(split)), dtype=torch.int64)
    digests = []
    with torch.random.fork_rng(devices=[]):  # a Dataset's transforms may draw: the run's stream stays as it was
        for _ in range(2):
            h = hashlib.sha256(f"{tuple(shape)}|{rows.tolist()}|".encode())
            h.update(split.x[rows].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            if split.y is not None:
                h.update(np.asarray(split.y[rows].cpu(), dtype=np.int64).tobytes())
            digests.append(h.hexdigest())
    return digests[0] if digests[0] == digests[1] else ""


def fingerprint(data: Dataset) -> dict:
    """The data a run rests on, cheaply: ``items``, the number of items of each split, and ``sha256``, the
    ``digest`` of its training items (before the draws of dynamic binarisation). Every process computes the same.
    Items that differ when read twice give an empty ``sha256``: only the counts are kept. ``fixed_draw`` names
    the draw of fixed binarisation when the training items were drawn so; ``val_sha256``, a dynamic run's, is
    the ``digest`` of its validation items as drawn once, which its validation losses are measured on."""
    drawn = {"fixed_draw": FIXED_DRAW} if data.train.fixed else {}
    if data.val.fixed and not data.train.fixed:  # dynamic binarisation: only the held-out splits drawn once
        drawn["val_sha256"] = digest(data.val, data.shape)
    items = [len(split) for split in (data.train, data.val, data.test)]
    return {"items": items, "sha256": digest(data.train, data.shape), **drawn}


def check_same_data(saved: dict, given: dict) -> None:
    """Refuse, in one line, data other than the data a resumed run's checkpoint rests on (``saved`` and ``given``
    are ``fingerprint``s; a checkpoint from before fingerprints, ``{}``, is checked for the draw alone).
    Training items fixed-binarised by another draw than today's (a checkpoint without ``fixed_draw``: every one
    without a fingerprint came before it) are named as such."""
    advice, key = "train a new run (another out folder) on other data", "data.spec"
    if not saved and not given.get("fixed_draw"):
        return
    if not saved:
        why, (advice, key) = DRAW_CHANGED, REDRAW
    elif saved["items"] != given["items"]:
        what = ", ".join(f"{a} {name}" for a, name in zip(saved["items"], SPLITS, strict=True))
        now = ", ".join(str(b) for b in given["items"])
        why = f"it has {what} items, and the data given {now}"
    elif saved["sha256"] and given["sha256"] and saved["sha256"] != given["sha256"]:
        why = "the training items given differ from its items (as many, other values)"
        if given.get("fixed_draw") and saved.get("fixed_draw") != given["fixed_draw"]:
            why, (advice, key) = DRAW_CHANGED, REDRAW
    else:
        return
    raise VaekitError(f"data: a resumed run trains on the data its checkpoint rests on: {why}; {advice}", key=key)


def validation_redrawn(saved: dict, given: dict) -> str:
    """Why a resumed dynamic run's validation items (``given``, a ``fingerprint``, records their ``val_sha256``)
    may not be those its checkpoint's best validation loss was measured on (``saved``); "" where they are."""
    now = given.get("val_sha256")
    if not now or saved.get("val_sha256") == now:
        return ""
    if "val_sha256" not in saved:
        return "its checkpoint does not record the draw of its validation items (an earlier vaekit drew them otherwise)"
    return "its validation items are drawn otherwise than when its checkpoint was written"


def processes_changed(t: TrainConfig, state: LoopState, extra: dict, resume: bool) -> str:
    """Why a resumed run's best validation loss does not compare with the losses it measures now: another number
    of processes measured it (each draws its validation noise from a stream of its own, ``val_loss.fixed_draws``),
    acted on where training goes on (a run stopped early stays stopped: its stop compared losses of one measure);
    "" where as many do. Records today's number in ``state``. A checkpoint from before ``world`` is counted by
    its ``rng.rank.<r>`` tensors, which every run of more than one process saved (``rank_rng.rng_extra``)."""
    before = state.world or 1 + sum(k.startswith("rng.rank.") for k in extra)
    state.world = now = distributed.world()
    if not resume or before == now or at_patience(t, state.batch, state.bad_epochs):
        return ""
    by = f"{before} process{'es' * (before > 1)}"
    return f"its validation loss was measured by {by}, now by {now}, each drawing its own validation noise"


def recorded_state(run: Path) -> dict | None:
    """The loop state (``epoch``, ``bad_epochs``, ``data``...) that the newest readable checkpoint of the run
    folder ``run`` records, from its metadata alone; None where the folder holds no checkpoint to read."""
    for name in (files.CHECKPOINT, files.PREVIOUS_CHECKPOINT):
        found = header(run / name)
        try:
            state = parse_json(found[1]["state"], run / name) if found else None
        except (ValueError, KeyError, TypeError):  # ValueError: VaekitError, not JSON (too deep, not UTF-8)
            continue
        if isinstance(state, dict) and not state_problem(state):
            return state
    return None


def kept_dtype(t: TrainConfig, state: LoopState, dtype: torch.dtype | None) -> torch.dtype | None:
    """The steps' dtype (``dtype``: today's pick, None: float32), recorded in ``state``: under precision "auto" a
    resumed run keeps the one its checkpoint records (the pick could come out otherwise on another machine or
    vaekit), so it ends as if never stopped; a checkpoint that records none (an earlier vaekit's) takes today's
    pick, said in one line."""
    if t.precision == "auto" and state.precision:
        dtype = torch.bfloat16 if state.precision == "bf16" else None
    elif t.precision == "auto" and (state.epoch or state.batch):  # resumed, no dtype recorded
        distributed.warn(NO_DTYPE.format("bf16" if dtype == torch.bfloat16 else "float32"))
    state.precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    return dtype


def at_patience(t: TrainConfig, batch: int, bad_epochs: int) -> bool:
    """Whether a loop at ``batch`` (0: an epoch's end) after ``bad_epochs`` epochs without a better val_loss has
    met ``t.patience``: early stopping, by the trainer or as a recorded state tells it."""
    return bool(t.patience) and batch == 0 and bad_epochs >= t.patience


def kept_settings(run: Path | None, cfg: RunConfig) -> dict:
    """The record of the settings of ``cfg`` a resumed run keeps (``config.resume.recorded``), which its checkpoints
    carry; a resume (``run``: its folder) whose checkpoint records other values is refused in one line first."""
    saved = recorded_state(run) if run is not None else None
    return keep_recorded((saved or {}).get("settings", {}), cfg)


def recorded_data(run: Path) -> dict | None:
    """The data ``fingerprint`` that the newest readable checkpoint of the run folder ``run`` records ({}: one
    from before fingerprints); None where the folder holds no checkpoint to read."""
    state = recorded_state(run)
    return None if state is None else state.get("data", {})


def refuse_damaged(weights: Path) -> None:
    """Refuse, in one line, a resumed run whose best weights (``weights``; none yet: a stop in its first epoch)
    cannot be read whole or fail their checksum: it would train an epoch, then fail where it loads them, on every
    resume until a better epoch replaced them. They are read once (their checksum), before anything trains."""
    if weights.is_file():
        try:
            read_tensors(weights)
        except VaekitError as e:
            raise VaekitError(
                f"{e}: the run's best weights are damaged; put back a copy of them, or train a new run (another out "
                "folder)",
                key="resume",
            ) from None
