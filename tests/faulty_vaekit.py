"""``vaekit`` with a fault injected at the N-th write, for the fault matrix (test_trust.py); the library itself
has no fault hooks. VAEKIT_FAULT:

- ``kill:N``: SIGKILL just before the N-th rename of a finished temporary file into the run folder (the moment a
  write is most exposed: a checkpoint's rotation may be half done);
- ``enospc:N``, ``eacces:N``, ``erofs:N``: the N-th fsync of a written file fails with that error (a full disk
  shows itself there; a folder made read-only or forbidden while the run writes it, likewise).
"""

import errno
import os
import signal
import sys

from vaekit.cli import main


def inject(kind: str, n: int) -> None:
    calls = {"replace": 0, "fsync": 0}
    replace, fsync = os.replace, os.fsync

    def counted_replace(src, dst):
        if str(src).endswith(".tmp"):
            calls["replace"] += 1
            if kind == "kill" and calls["replace"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return replace(src, dst)

    def counted_fsync(fd):
        calls["fsync"] += 1
        if kind != "kill" and calls["fsync"] == n:
            code = getattr(errno, kind.upper())
            raise OSError(code, os.strerror(code))
        return fsync(fd)

    os.replace, os.fsync = counted_replace, counted_fsync


if __name__ == "__main__":
    kind, n = os.environ["VAEKIT_FAULT"].split(":")
    inject(kind, int(n))
    sys.exit(main())
