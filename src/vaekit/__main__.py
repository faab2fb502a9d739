"""``python -m vaekit``, and the console script's entry (``console``): a Ctrl-C while the command line's modules
are imported ends with the one line of any interrupted command and exit code 130, not a traceback."""

from __future__ import annotations

import sys


def console() -> int:
    """Import the command line and run it; returns the exit code."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(console())
