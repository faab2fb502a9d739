"""How a command stops: Ctrl-C and SIGTERM, a torchrun peer lost or stopping, and the one line each says (with
where to go on)."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from pathlib import Path
from types import ModuleType

from ..errors import VaekitError
from ..files import checkpointed
from .train_flags import train_config


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop (which checkpoints on it: ``training.signals``), raised where the verb
    is, as a Ctrl-C is: the files it was writing are removed (their ``finally``), none is left half-written."""


def terminate(signum: int, frame: object) -> None:
    """The SIGTERM handler while a verb runs: raise ``Terminated``."""
    raise Terminated


def loaded(name: str) -> ModuleType | None:
    """vaekit's module ``name`` (``training.distributed``) if a verb has imported it, else None: what is asked of
    it then cannot apply (no process group, no training loop), and the answer costs no import of torch."""
    return sys.modules.get(f"vaekit.{name}")


def interrupted(e: KeyboardInterrupt, args: argparse.Namespace | None) -> int:
    """The one line of a Ctrl-C (or SIGTERM) and its exit code: the training loop's Interrupted names the
    checkpoint it wrote; anywhere else (a verb, the imports at start-up) says where to go on only if one can.
    A torchrun worker of rank > 0 says nothing: the signal reached every rank, and rank 0 names it."""
    if quiet(e):
        return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
    if loaded("training.signals") is not None:  # else the training loop has not run: no import of it now
        from ..training.signals import Interrupted

        if isinstance(e, Interrupted):  # SIGINT/SIGTERM during training: the loop wrote a checkpoint first
            from ..training import distributed

            if distributed.is_main():  # under torchrun every process stops; one says so
                hint = f" (continue with {resume_command(e.run)})" if e.run else ""
                print(f"vaekit: {e}{hint}", file=sys.stderr)
            return e.code
    stopped = "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"
    print(f"vaekit: {stopped}{resume_hint(args)}", file=sys.stderr)
    return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130


def under_torchrun() -> bool:
    """Started by torchrun with more than one process (WORLD_SIZE), checked without importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def quiet(e: BaseException) -> bool:
    """Whether this torchrun worker leaves ``e`` unsaid (``training.launcher.silent``: stopped by a peer or by a
    signal every rank got); never outside torchrun, where nothing is imported for it."""
    if not under_torchrun():
        return False
    from ..training.launcher import silent

    return silent(e)


def wrapped_interrupt(e: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or Terminated) in ``e``'s causes, if any: Python wraps one raised in a class body's
    ``__set_name__`` (a dataclass being imported) in a RuntimeError."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def lost_peer(e: RuntimeError) -> bool:
    """Whether ``e`` is a torchrun worker's process group failing because another process of it died."""
    from ..training import distributed  # a RuntimeError comes from a verb that has loaded torch

    if not distributed.launched():  # no process group to lose a peer of
        return False
    import torch.distributed as dist

    gone = ("closed by peer", "Connection reset by peer", "Broken pipe")  # gloo's words for a peer that died
    return isinstance(e, dist.DistError) or any(w in str(e) for w in gone)


def cause(e: RuntimeError) -> str:
    """The cause in a collective's error: its first line up to gloo's advice ("This is typically caused by ...
    GLHF!"), without a closing full stop, at most 200 characters."""
    line = (str(e).strip().splitlines() or [""])[0].split("This is typically caused")[0].strip().rstrip(".")
    return (line if len(line) <= 200 else line[:199] + "…") or type(e).__name__


def resume_command(folder: object) -> str:
    """'vaekit train --resume RUN', with '--nproc N' where this command trains in N processes on this machine
    (torchrun's WORLD_SIZE and LOCAL_WORLD_SIZE), or 'under torchrun' where they span machines."""
    n = int(os.environ.get("WORLD_SIZE", "1"))
    here = int(os.environ.get("LOCAL_WORLD_SIZE", n))  # torchrun's processes on this machine
    where = "" if n == 1 else f" --nproc {n}" if n == here else f", under torchrun as before ({n} processes)"
    return f"vaekit train --resume {folder}{where}"


def training_folder(args: argparse.Namespace | None) -> Path | None:
    """The run folder of a ``vaekit train`` command that holds a checkpoint to resume, else None."""
    folder = getattr(args, "resume", None) or getattr(args, "out", None)
    if args is None or getattr(args, "command", None) != "train" or not folder or not checkpointed(Path(folder)):
        return None
    return Path(folder)


def resume_hint(args: argparse.Namespace | None) -> str:
    """'; ... continue with vaekit train --resume RUN' for an interrupted training whose folder holds a
    checkpoint; for one stopped while drawing its pictures, the resume that draws them (it trains nothing, and
    draws the pictures missing or older than its checkpoint: ``viz.callbacks.Pictures``); else nothing."""
    folder = training_folder(args)
    if args is None or folder is None:
        return ""
    if trained_all(args, folder):
        return f"; its epochs are all trained, its pictures not all drawn (vaekit train --resume {folder} draws them)"
    return f"; the last checkpoint is kept (continue with {resume_command(folder)})"


def room_hint(e: BaseException, args: argparse.Namespace | None) -> str:
    """'; continue with vaekit train --resume RUN once there is room' after a training stopped by a full disk
    (``io.WriteError``: no space, or over a quota) with a checkpoint to resume; else "". The epoch being written
    may stand in metrics.csv or the best weights ahead of the checkpoint (written last): the resume trains it
    again and writes them over."""
    folder = training_folder(args)
    if folder is None or getattr(e, "errno", None) not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    return f"; continue with {resume_command(folder)} once there is room"


def trained_all(args: argparse.Namespace, folder: Path) -> bool:
    """Whether the checkpoint in ``folder`` ends the training the command asked for: at the end of its last epoch,
    or stopped early (``train.patience``), and no second-stage prior (vq) that a resume might still fit."""
    state = loaded("training.state")  # else the training loop has not run: no import of torch now
    if state is None or not (at := state.recorded_state(folder)) or at.get("batch"):
        return False
    try:
        cfg = train_config(args)  # the interrupted command's: config.json and its flags
    except (VaekitError, OSError):
        return False
    t, done, bad = cfg.train, at.get("epoch", 0), at.get("bad_epochs", 0)
    if cfg.model.family == "vq" and t.prior_epochs:
        return False
    return done >= t.epochs or state.at_patience(t, 0, bad)
