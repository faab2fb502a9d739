"""What a checkpoint carries besides tensors: the loop's state, and the fingerprint of the data it rests on."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import Dataset
from ..errors import VaekitError

FINGERPRINT_ITEMS = 16  # training items hashed: enough to tell other data, cheap for a streamed folder
SPLITS = ("training", "validation", "test")
FIXED_DRAW = "rows"  # fixed binarisation's draw since it was keyed by each item's row (data.draws); before: absent


@dataclass
class LoopState:
    """What the loop carries between steps and epochs; saved in the checkpoint as JSON."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch (> 0: a mid-epoch checkpoint)
    sums: list[float] = field(default_factory=list)  # the current epoch's running sums (see _sums)
    seen: int = 0  # items behind those sums
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since the best validation loss
    rows: list[dict] = field(default_factory=list)
    guard: dict = field(default_factory=dict)  # the step guard's counters and kept norms (StepGuard.state_dict)
    precision: str = ""  # the dtype the steps ran in, "bf16" or "fp32" ("": not started): a resumed run keeps it
    data: dict = field(default_factory=dict)  # fingerprint(data) of the run's data ({}: a run from before it)


def positions(n: int) -> list[int]:
    """Up to FINGERPRINT_ITEMS item numbers in [0, n), sorted, from SHA-256 alone (no RNG whose stream a torch
    or numpy version could change)."""
    draws = (hashlib.sha256(f"vaekit.fingerprint.{i}".encode()).digest()[:8] for i in range(FINGERPRINT_ITEMS))
    return sorted({int.from_bytes(d, "big") % n for d in draws}) if n else []


def fingerprint(data: Dataset) -> dict:
    """The data a run rests on, cheaply: ``items``, the number of items of each split, and ``sha256``, over the
    item shape and FINGERPRINT_ITEMS training items x (16, *shape) at fixed positions and their labels, as the
    trainer gets them (before the draws of dynamic binarisation). Every process computes the same. Items that
    differ when read twice (a Dataset's random transforms) give an empty ``sha256``: only the counts are kept.
    ``fixed_draw`` names the draw of fixed binarisation when the training items were drawn so."""
    rows = torch.tensor(positions(len(data.train)), dtype=torch.int64)
    digests = []
    with torch.random.fork_rng(devices=[]):  # a Dataset's transforms may draw: the run's stream stays as it was
        for _ in range(2):
            h = hashlib.sha256(f"{tuple(data.shape)}|{rows.tolist()}|".encode())
            h.update(data.train.x[rows].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            if data.train.y is not None:
                h.update(np.asarray(data.train.y[rows].cpu(), dtype=np.int64).tobytes())
            digests.append(h.hexdigest())
    items = [len(split) for split in (data.train, data.val, data.test)]
    drawn = {"fixed_draw": FIXED_DRAW} if data.train.fixed else {}
    return {"items": items, "sha256": digests[0] if digests[0] == digests[1] else "", **drawn}


def check_same_data(saved: dict, given: dict) -> None:
    """Refuse, in one line, data other than the data a resumed run's checkpoint rests on (``saved`` and ``given``
    are ``fingerprint``s; a checkpoint from before fingerprints, ``{}``, is not checked). Training items fixed-
    binarised by another draw than today's (a checkpoint from before it) are named as such."""
    if not saved:
        return
    advice, key = "train a new run (another out folder) on other data", "data.spec"
    if saved["items"] != given["items"]:
        what = ", ".join(f"{a} {name}" for a, name in zip(saved["items"], SPLITS, strict=True))
        now = ", ".join(str(b) for b in given["items"])
        why = f"it has {what} items, and the data given {now}"
    elif saved["sha256"] and given["sha256"] and saved["sha256"] != given["sha256"]:
        why = "the training items given differ from its items (as many, other values)"
        if given.get("fixed_draw") and saved.get("fixed_draw") != given["fixed_draw"]:
            why = (
                "fixed binarisation's draw changed since it was written (an item's 0/1 values now follow the seed "
                "and its row in the file, loaded or streamed alike), so its training items differ"
            )
            advice, key = "train the run again in another out folder, with data.binarize fixed, none or dynamic", "out"
    else:
        return
    raise VaekitError(f"data: a resumed run trains on the data its checkpoint rests on: {why}; {advice}", key=key)
