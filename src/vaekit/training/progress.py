"""Progress lines on stdout, as training writes them: the first that cannot be written (stdout full, closed or
gone) ends them, said once on stderr, and the work goes on. The trainer's epochs and the VQ prior's stage share
one ``Lines`` each; an epoch's line is ``summary``."""

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


def nats(x: float) -> str:
    """A loss in an epoch's line: 2 decimals, or 4 significant digits in e-notation from 1e6 on (a diverged run's
    591475338000.00 as 5.915e+11, as its warning writes it)."""
    return f"{x:.3e}" if abs(x) >= 1e6 else f"{x:.2f}"


def summary(row: dict, epochs: int) -> str:
    """The one line printed after an epoch."""
    return (
        f"epoch {row['epoch']}/{epochs}  loss {nats(row['train_loss'])}  val {nats(row['val_loss'])} "
        f"(rec {nats(row['val_rec'])}, kl {nats(row['val_kl'])})  {row['seconds']:.1f}s  "
        f"{row['samples_per_s']:.0f} items/s"  # images or table rows
    )
