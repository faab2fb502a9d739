"""``vaekit train --nproc N``: re-run the command under torchrun on this machine, its workers tied to it.

Signals sent to the launcher go on to torchrun and through it to every worker; a launcher that dies, even by
SIGKILL, takes torchrun with it (``die_with_parent``), which workers also call (``distributed.init``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

from ..errors import VaekitError


def launch(argv: list[str], nproc: int) -> int:
    """Re-run ``vaekit <argv>`` (without --nproc) under ``python -m torch.distributed.run`` on this machine.

    SIGINT/SIGTERM sent to this process go to torchrun, which passes them on to every worker; if this process
    dies (even by SIGKILL), torchrun gets SIGTERM, so no worker trains on without it.
    """
    cmd, env = torchrun_command(argv, nproc)
    proc = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent if sys.platform == "linux" else None)
    old = {s: signal.signal(s, lambda signum, frame: proc.send_signal(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def torchrun_command(argv: list[str], nproc: int) -> tuple[list[str], dict[str, str]]:
    """The torchrun command line that runs ``vaekit <argv>`` (without --nproc) in ``nproc`` processes, and its
    environment: torchelastic's warnings ("Received 2 death signal, shutting down workers") left out, as a stopped
    run's one line is the workers' (a user's own LOGLEVEL or TORCH_CPP_LOG_LEVEL is kept)."""
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
    for name in ("LOGLEVEL", "TORCH_CPP_LOG_LEVEL"):  # torch.distributed.elastic's loggers; c10d's (C++) ones
        env.setdefault(name, "ERROR")
    return cmd, env


def die_with_parent() -> None:
    """This process (or a child before it execs) gets SIGTERM when the process that started it dies (Linux's
    prctl(PR_SET_PDEATHSIG); elsewhere nothing)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):  # no prctl: the child outlives a killed parent, as before
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


# torchrun, its elastic loggers at LOGLEVEL (those made by get_logger read it themselves), exiting with 128 +
# the signal's number when a signal stopped it (the workers checkpoint first), or with a failed worker's exit
# code (the worker printed its one line), where plain torchrun prints a traceback
TORCHRUN = """import logging, os, sys
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
logging.getLogger("torch.distributed.elastic").setLevel(os.environ.get("LOGLEVEL", "ERROR"))
try:
    main()
except SignalException as e:
    sys.exit(128 + int(e.sigval))
except ChildFailedError as e:
    sys.exit(next((f.exitcode for f in e.failures.values() if f.exitcode > 0), 1))
"""
