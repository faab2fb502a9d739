"""``vaekit train --nproc N``: re-run the command under torchrun on this machine, its workers tied to it.

Signals sent to the launcher go on to torchrun and through it to every worker; a launcher that dies, even by
SIGKILL, takes torchrun with it (``die_with_parent``), which workers also call (``distributed.init``). What the
CLI asks of a torchrun worker before torch loads lives here too: a verb that runs in one process refused
(``refuse_launched``), and which rank stays silent (``silent``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VaekitError

if TYPE_CHECKING:
    from ..config import RunConfig


class Stopped(VaekitError):
    """This rank stops because another did (rank 0 refused a setting, could not start the run): rank 0 says why,
    so the CLI prints nothing for it (``silent``); a script's traceback still shows the line."""


def launched() -> bool:
    """Started by torchrun (or another launcher that sets WORLD_SIZE) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def silent(e: BaseException) -> bool:
    """Whether this process leaves ``e`` unsaid: a torchrun worker of rank > 0 stopped by a peer (``Stopped``) or
    by a signal torchrun passed on to every rank (rank 0 says where it stopped), not by its own error."""
    if not launched() or os.environ.get("RANK", "0") == "0":
        return False
    return isinstance(e, (Stopped, KeyboardInterrupt))


def refuse_launched(verb: str) -> None:
    """Refuse a verb other than train under torchrun: on rank 0 in one line, on the others silently (``Stopped``)."""
    if launched():
        line = f"vaekit {verb} runs in one process: start it without torchrun"
        raise (VaekitError if os.environ.get("RANK", "0") == "0" else Stopped)(line)


def precheck(cfg: RunConfig, nproc: int, resume: bool, overwrite: bool) -> None:
    """What every worker would refuse alike, checked once before torchrun starts them (one line, not one per
    worker): the settings and their conflicts, the global batch's split, the device, the data spec, and (without
    ``overwrite``, which the workers do) the run folder."""
    import copy

    from ..config import refuse_conflicts, validate
    from ..data import BUILTINS
    from ..data.builtin import builtin_name
    from .distributed import check_batch
    from .folder import start_run
    from .step import resolve_device

    cfg = refuse_conflicts(validate(copy.deepcopy(cfg)), ("train",) if resume else ("data", "model", "train"))
    check_batch(cfg.train.batch_size, nproc, cfg.train)
    resolve_device(cfg.train.device)
    spec = cfg.data.spec
    if builtin_name(spec) is None and not Path(spec).expanduser().exists():
        raise VaekitError(f"{spec}: no such file or folder, and not a built-in data set ({', '.join(BUILTINS)})")
    if not overwrite:
        with ExitStack() as stack:  # its lock taken and given back: the rank 0 worker takes it again
            start_run(cfg.out, resume, False, stack)


def launch(argv: list[str], nproc: int) -> int:
    """Re-run ``vaekit <argv>`` (without --nproc) under ``python -m torch.distributed.run`` on this machine.

    SIGINT/SIGTERM sent to this process go to torchrun, which passes them on to every worker; if this process
    dies (even by SIGKILL), torchrun gets SIGTERM, so no worker trains on without it.
    """
    cmd, env = torchrun_command(argv, nproc)
    proc = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent if sys.platform == "linux" else None)
    got: list[int] = []

    def forward(signum: int, frame: object) -> None:
        got.append(signum)
        proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        if not got:
            for s, handler in old.items():
                signal.signal(s, handler)
    if got:  # stopped by a signal: a later one (a second Ctrl-C) would find the default handlers back on this
        sys.stdout.flush()  # process's way out and kill it, silently and with the wrong code

        sys.stderr.flush()
        os._exit(code if code >= 0 else 128 - code)
    return code


def torchrun_command(argv: list[str], nproc: int) -> tuple[list[str], dict[str, str]]:
    """The torchrun command line that runs ``vaekit <argv>`` (without --nproc) in ``nproc`` processes, and its
    environment: torchelastic's warnings and errors ("Received 2 death signal", "failed (exitcode: 2)") left
    out, as a stopped run's one line is the workers' (a user's own LOGLEVEL or TORCH_CPP_LOG_LEVEL is kept)."""
    if nproc < 1:
        raise VaekitError(f"nproc must be >= 1, got {nproc}", key="nproc")
    rest, skip = [], False
    for a in argv:
        if skip or a.startswith("--nproc="):
            skip = False
            continue
        skip = a == "--nproc"
        if not skip:
            rest.append(a)
    cmd = [sys.executable, "-c", TORCHRUN, "--standalone", f"--nproc_per_node={nproc}", "-m", "vaekit", *rest]
    env = {**os.environ, "PYTHONSAFEPATH": "1"}  # -c and -m put the working directory first on sys.path: its
    # .py files would be imported before vaekit's own (the vaekit script adds it for no worker)
    if nproc > 1:  # what torchrun sets when it is unset, without its banner saying so
        env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("LOGLEVEL", "CRITICAL")  # torch.distributed.elastic's loggers: a failed worker says why itself
    env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # c10d's (C++) ones
    return cmd, env


def die_with_parent() -> None:
    """This process (or a child before it execs) gets SIGTERM when the process that started it dies (Linux's
    prctl(PR_SET_PDEATHSIG); elsewhere nothing)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):  # no prctl: the child outlives a killed parent, as before
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


# torchrun, its elastic loggers at LOGLEVEL (default CRITICAL: not its "failed (exitcode: 2)" lines; those made by
# get_logger read it themselves), exiting with 128 + the signal's number when a signal stopped it (the workers
# checkpoint first; SIGINT named where both came, as a Ctrl-C sends one and the launcher passes one on; further
# signals wait for the workers, and os._exit leaves no teardown for them to break), or with a failed worker's exit
# code (the worker printed its one line; a rank 0 killed by a signal, which printed none, named here), where plain
# torchrun prints a traceback
TORCHRUN = """import logging, os, signal, sys
import torch.distributed.elastic.multiprocessing.api as api
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
logging.getLogger("torch.distributed.elastic").setLevel(os.environ.get("LOGLEVEL", "CRITICAL"))
seen = []
def stop(signum, frame):
    seen.append(signum)
    if len(seen) == 1:
        api_handler(signum, frame)
def bye(code):
    sys.stdout.flush(); sys.stderr.flush(); os._exit(code)
api_handler, api._terminate_process_handler = api._terminate_process_handler, stop
try:
    main()
except api.SignalException:
    bye(128 + (signal.SIGINT if signal.SIGINT in seen else seen[0]))
except ChildFailedError as e:
    first = e.failures.get(0)
    if first is not None and first.exitcode < 0:
        print(f"vaekit: error: rank 0 was stopped by {signal.Signals(-first.exitcode).name}", file=sys.stderr)
        bye(128 - first.exitcode)
    bye(next((f.exitcode for f in e.failures.values() if f.exitcode > 0), 1))
"""
