"""What every benchmark script's command line shares: its parser (--help shows the docstring's example commands,
a small run among them), the check of the peers a script compares against (one install command for all), and the
entry that ends a stopped run (SIGTERM, Ctrl-C) in one line."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from common import ROOT, command, summary

from vaekit.training.signals import Interrupted

PEERS_INSTALL = "make bench-peer-install"  # the one command that installs every peer (pythae, PyOD, SDV) into .venv


def need_peers(script: str, *modules: str, skip: str = "") -> None:
    """Exit in one line, before any training, where a peer module the run compares against (``modules``: 'pythae',
    'pyod', 'sdv') is not installed, naming ``PEERS_INSTALL``; ``skip`` says how to run without it, if the script
    has a way."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        them = "them" if len(missing) > 1 else "it"
        sys.exit(
            f"benchmarks/{script}.py needs {' and '.join(missing)}: install {them} into .venv with `{PEERS_INSTALL}`"
            + (f" (or {skip})" if skip else "")
        )


def entry(main: Callable[[], object], carry_on: bool = False) -> None:
    """Run a script's ``main`` as its command: a stop by SIGTERM or Ctrl-C (the training loop's Interrupted, which
    wrote a checkpoint, or a KeyboardInterrupt elsewhere) ends in one line on stderr and the shell's 128 + signal
    number, not a traceback; with ``carry_on`` (a script with --carry-on), the line names the command that goes on."""
    try:
        code = main()
    except KeyboardInterrupt as e:
        stop = str(e) if isinstance(e, Interrupted) else "stopped by SIGINT"
        if carry_on:
            stop += f"; to go on: {go_on()}"
        print(f"{Path(sys.argv[0]).name}: {stop}", file=sys.stderr)
        sys.exit(e.code if isinstance(e, Interrupted) else 130)
    sys.exit(code)


def go_on() -> str:
    """This process's command line with --carry-on (added where it is not there), its Python as it was run."""
    python = Path(sys.executable)
    python_name = python.relative_to(ROOT).as_posix() if python.is_relative_to(ROOT) else "python"
    extra = [] if "--carry-on" in sys.argv[1:] else ["--carry-on"]
    return shlex.join([python_name, *shlex.split(command())[1:], *extra])


class Help(argparse.HelpFormatter):
    """argparse's help, its description and epilog filled to the width as usual except the indented lines (the
    example commands), kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = lambda line: textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)  # noqa: E731
        return "\n".join(line if line.startswith(" ") else fill(line) for line in text.splitlines())


def examples(doc: str) -> str:
    """The example commands of a script's docstring (its indented lines that start with python or make), as
    --help's epilog."""
    example = re.compile(r"\s{4}(nice )?(\.venv/bin/python|python|make) ")
    found = [line.rstrip() for line in doc.splitlines() if example.match(line)]
    return "examples:\n" + "\n".join(found) if found else ""


def parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser: its docstring's first paragraph as the description, its example commands as the epilog."""
    return argparse.ArgumentParser(description=summary(doc), epilog=examples(doc), formatter_class=Help)
