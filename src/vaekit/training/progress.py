"""Progress lines on stdout, as training writes them: the first that cannot be written (stdout full, closed or
gone) ends them, said once on stderr, and the work goes on. The trainer's epochs and the VQ prior's stage share
one ``Lines`` each."""

from __future__ import annotations

import contextlib
import sys

from tqdm import tqdm


class Lines:
    """Progress lines (``train.progress`` says whether any are written); ``muted`` once one could not be."""

    def __init__(self, on: bool) -> None:
        self.on, self.muted = on, False

    def say(self, line: str, result: bool = False) -> None:
        """Write ``line`` (beside tqdm's bars); one that cannot be written ends them, said once on stderr. A
        ``result`` (early stopping, the weights kept) is written even where progress lines are off."""
        if (self.on or result) and not self.muted:
            try:
                tqdm.write(line)
                sys.stdout.flush()
            except (OSError, ValueError, AttributeError) as e:  # ValueError: stdout closed; AttributeError: None
                self.muted = True
                with contextlib.suppress(OSError, ValueError):
                    print(
                        f"vaekit: progress lines cannot be written ({e}); training goes on without them",
                        file=sys.stderr,
                    )


def interactive() -> bool:
    """Bars only on a terminal: a log file, a pipe, CI or nohup get the one plain line per epoch alone."""
    streams = (sys.stdout, sys.stderr)  # None where Python started with one closed (``>&-``)
    return all(s is not None and s.isatty() for s in streams)
