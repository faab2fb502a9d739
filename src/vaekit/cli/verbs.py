"""The one table of verbs: each is declared once, with its arguments, by ``@verb`` on the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import VaekitError


@dataclass
class Verb:
    name: str
    help: str
    args: tuple[tuple[tuple, dict], ...]
    run: Callable[[argparse.Namespace], int | None]


VERBS: dict[str, Verb] = {}
OPENS_RUN = {"run", "--resume"}  # the arguments that name a run folder: their verbs take --trust-code


def arg(*names: str, **options) -> tuple[tuple, dict]:
    """One argparse argument: ``arg("--n", type=int, default=64)``. A default that means something (not None, a
    flag's False or an empty list) is shown in the help, unless the help says its default itself."""
    default, text = options.get("default"), options.get("help", "")
    shown = default is None or default is False or default == [] or "default" in text or text == argparse.SUPPRESS
    if not shown:
        options["help"] = f"{text} (default: %(default)s)".lstrip()
    return names, options


def verb(name: str, help: str, *args: tuple[tuple, dict]) -> Callable:
    """Register the decorated function as the verb ``name`` with ``args`` (and --trust-code if it opens a run)."""
    if any(names[0] in OPENS_RUN for names, _ in args):
        args += (
            arg(
                "--trust-code",
                action="store_true",
                help="let the run's model.json name any class and import it (runs its code): your own runs only",
            ),
        )

    def add(run: Callable[[argparse.Namespace], int | None]) -> Callable:
        VERBS[name] = Verb(name, help, args, run)
        return run

    return add


def positive(n: int, flag: str) -> int:
    if n <= 0:
        raise VaekitError(f"{flag} must be > 0, got {n}")
    return n


def at_least(n: int, least: int, flag: str, why: str) -> int:
    """``n`` if it is at least ``least``, else one line saying why it must be."""
    if n < least:
        raise VaekitError(f"{flag} must be >= {least} ({why}), got {n}")
    return n


def ints(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VaekitError(f"{flag} {text!r}: expected integers separated by commas") from None


def out_path(args: argparse.Namespace, default: str) -> Path:
    """--out, or RUN/``default``; the suffix must be the default's."""
    if args.out is not None and not args.out.strip():
        raise VaekitError("--out is empty: name a file, or leave --out out for RUN/" + default)
    out = Path(args.out) if args.out else Path(args.run) / default
    if out.suffix.lower() != Path(default).suffix:
        raise VaekitError(f"--out {out}: expected a {Path(default).suffix} file name")
    return out


def temperatures(text: str) -> float | list[float]:
    """--temperature: a number, or a comma-separated list of them (one per resolution); the run checks their
    range (``Run.check_temperature``, ``models.temperature``)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers (one, or one per resolution), got {text!r}") from None
    return values[0] if len(values) == 1 else values
