"""The one table of verbs: each is declared once, with its arguments, by ``@verb`` on the function that runs it."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..config.parse import did_you_mean
from ..errors import VaekitError, is_seed
from ..io import printable


@dataclass
class Verb:
    name: str
    help: str
    args: tuple[tuple[tuple, dict], ...]
    run: Callable[[argparse.Namespace], int | None]
    epilog: str = ""  # the end of its help page: examples


VERBS: dict[str, Verb] = {}
OPENS_RUN = {"run", "--resume"}  # the arguments that name a run folder: their verbs take --trust-code
ON_DEVICE = {  # the verbs whose model runs on --device (train's is train.device, in its table of flags)
    *("evaluate", "anomaly", "anomaly-eval", "quality", "reconstruct", "encode", "sample"),
    *("interpolate", "traverse", "latent-map", "report", "disentangle", "explore"),
}
KEEPS_NOTES = {"train"}  # its --quiet stops the lines per epoch and the bar, as before: its notes still print
N = TypeVar("N", int, None)  # a count, or None where it is not given
PATHS = ("run", "resume", "out", "config", "features")  # the arguments that name a file or folder (data: its spec)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump; the closest flag or choice suggested) and exits
    with 2; plain ``vaekit`` shows its help before the line."""

    verb_parsers: dict[str, argparse.ArgumentParser]  # each verb's own parser (build_parser sets them)

    def __init__(self, *args, **kwargs) -> None:
        # --ou is not --out, nor --over --overwrite: a shortened flag is refused
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        verb = self.prog.removeprefix("vaekit").strip()  # the line begins "vaekit: error:" already
        if not verb and message.endswith("required: command"):  # plain `vaekit`: what it offers, then the line
            self.print_help(sys.stderr)
        if (bad := re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)) and (
            hint := did_you_mean(bad[1], [c.strip(" '") for c in bad[2].split(",")])
        ):  # the closest choice instead of the whole list: a mistyped verb, or --split tset
            message = message[: bad.start(2) - len("(choose from ")] + hint.lstrip()
        raise VaekitError(f"{verb}: {message}" if verb else message)

    def parse_args(self, args=None, namespace=None):
        """argparse's, with the verb's closest flag to the first it does not know: --epoch -> --epochs."""
        found, extras = self.parse_known_args(args, namespace)
        if extras:
            verb = getattr(self, "verb_parsers", {}).get(getattr(found, "command", None), self)
            first = next((e.split("=")[0] for e in extras if e.startswith("-")), "")
            flags = {o.lstrip("-"): o for a in verb._actions for o in a.option_strings}  # names without dashes
            near = difflib.get_close_matches(first.lstrip("-"), list(flags), 1, 0.7) if first else []  # --split: no
            hint = f" (did you mean {flags[near[0]]}?)" if near else ""  # not --limit, for --split: by name alone
            hint = " (--import comes before the verb: vaekit --import MODULE VERB ...)" if first == "--import" else hint
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return found


def expanded(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with ``~`` in the paths it names (RUN, --resume, --out, --config, --features) made the home folder,
    as a shell does it unquoted: a quoted '~/runs/a' names no folder called '~'."""
    for name in PATHS:
        if isinstance(value := getattr(args, name, None), str):
            setattr(args, name, os.path.expanduser(value))
    return args


def arg(*names: str, **options) -> tuple[tuple, dict]:
    """One argparse argument: ``arg("--n", type=int, default=64)``. A default that means something (not None, a
    flag's False or an empty list) is shown in the help, unless the help says its default itself."""
    default, text = options.get("default"), options.get("help", "")
    shown = default is None or default is False or default == [] or "default" in text or text == argparse.SUPPRESS
    if not shown:
        options["help"] = f"{text} (default: %(default)s)".lstrip()
    return names, options


def split_arg(default: str | None = None) -> tuple[tuple, dict]:
    """--split of a verb that reads any items: all (every item in file order) or one of the run's seeded splits;
    ``default`` None: all for a --data file other than the run's own, else test (``outputs.default_split``)."""
    return arg(
        "--split",
        default=default,
        choices=["all", "train", "val", "test"],
        help="all: every item in file order (train file, then test file); else the run's seeded split"
        + (" (default: all for a --data file other than the run's own, else test)" if default is None else ""),
    )


DATA_ITEMS = {  # how each verb takes a binarised run's items (evaluation.outputs.prepared_split's binarized)
    "grey": "items as given: a binarised run's grey levels, no random draw of them",
    "drawn": "a binarised run's items binarised as in training, by one seeded draw of each",
    "trained": "items prepared as in training: a binarised run's binarised by seeded draws",
}


def data_arg(
    items: str, more: str = "", name: str = "--data", what: str = "data spec (default: the run's own data)", **options
) -> tuple[tuple, dict]:
    """--data (or ``name``) of a verb on a run's data, saying how it takes a binarised run's items (``DATA_ITEMS``:
    grey, drawn or trained); ``more`` ends the help."""
    return arg(name, help=f"{what}; {DATA_ITEMS[items]}{more}", **options)


def unknown_arg() -> tuple[tuple, dict]:
    """--unknown of the verbs that read other data of a table run (encode, reconstruct, anomaly, anomaly-eval,
    evaluate, quality): its choices are ``data.table_cells.UNKNOWN`` (not imported: that loads torch)."""
    return arg(
        "--unknown",
        choices=["refuse", "gap"],
        default="refuse",
        help="a table run's category it was not trained on: refuse (default), or gap: read as a gap of its column, "
        "where the run models that column's gaps (data.missing=mean), counted in one note",
    )


def verb(name: str, help: str, *args: tuple[tuple, dict], quiet: str = "", examples: tuple[str, ...] = ()) -> Callable:
    """Register the decorated function as the verb ``name`` with ``args``, --quiet (``quiet``: what else it stops),
    ``examples`` (command lines) ending its help; --trust-code if it opens a run, --device if it runs its model."""
    said = "no progress bar; notes, warnings" if name in KEEPS_NOTES else "no notes or progress bars; warnings"
    args += (arg("--quiet", action="store_true", help=f"{quiet}{said} and errors print"),)
    if name in ON_DEVICE:
        args += (device_arg(),)
    if any(names[0] in OPENS_RUN for names, _ in args):
        args += (
            arg(
                "--trust-code",
                action="store_true",
                help="let the run's model.json name any class and import it (runs its code): your own runs only",
            ),
        )

    def add(run: Callable[[argparse.Namespace], int | None]) -> Callable:
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else ""
        VERBS[name] = Verb(name, help, args, run, epilog)
        return run

    return add


@contextlib.contextmanager
def quieted(quiet: bool) -> Iterator[None]:
    """A verb run with --quiet (``quiet``): the ``vaekit`` logger at WARNING (its notes unsaid, its warnings said), and
    stderr taken for no terminal (no progress bar, no terminal-only line); both as they were after."""
    from ..logs import LOGGER

    level, stderr = LOGGER.level, sys.stderr
    if quiet:
        LOGGER.setLevel(logging.WARNING)
        sys.stderr = stderr if stderr is None else NoTerminal(stderr)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
        sys.stderr = stderr


class NoTerminal:
    """A stream as it is, but no terminal: what shows only on one (tqdm's bars, "decoding N images ...") is off."""

    def __init__(self, stream) -> None:
        self.stream, self.isatty = stream, lambda: False

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def device_arg() -> tuple[tuple, dict]:
    """--device of every verb that loads a run: train's (its metavar and help, train.device's choices), checked
    against this machine by ``Run.load`` (CUDA asked for without it: one line)."""
    from .train_flags import TABLE

    _, metavar, text = TABLE["device"]
    return arg("--device", type=device, default="cpu", metavar=metavar, help=f"where the run's model runs; {text}")


def device(text: str) -> str:
    """--device's value if train.device takes it (auto, cpu, cuda or cuda:N), else argparse's one line."""
    from ..config.checks import CHOICES, is_device

    if is_device(text):
        return text
    raise argparse.ArgumentTypeError(f"expected {', '.join(CHOICES['train.device'])} or cuda:N, got {text!r}")


def count(text: str, key: str = "") -> int:
    """A count given on the command line: a whole number, also written 1e3 or 1_000; else argparse's one line,
    naming the setting ``key`` where the flag sets one (train's); its sign is the verb's to check (``positive``)."""
    try:
        return int(text)  # 1_000 too
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value == int(value):
        return int(value)
    said = f"{key} must be " if key else "expected "
    raise argparse.ArgumentTypeError(f"{said}a whole number (such as 1000, 1e3 or 1_000), got {text!r}")


def given(args: argparse.Namespace, *flags: str) -> str:
    """Which of ``flags`` (one flag's names: --limit, --n) the command line used, for its lines; the first if none."""
    typed = {token.split("=", 1)[0] for token in getattr(args, "argv", [])}
    return next((f for f in flags if f in typed), flags[0])


def in_run(run: str | Path, name: str) -> str:
    """RUN/``name`` as a verb prints it: one separator however RUN was typed (runs/a/ -> runs/a/quality.json)."""
    return printable(Path(run) / name)


def positive(n: N, flag: str) -> N:
    """``n`` if it is > 0 or None (not given), else one line."""
    if n is not None and n <= 0:
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


def seed(value: int) -> int:
    """--seed if it is a seed (``errors.is_seed``: a whole number in [0, 2**32)), else one line."""
    if not is_seed(value):
        raise VaekitError(f"--seed must be a whole number in [0, 2**32), got {value}")
    return value


def not_data(out: str | Path, *specs: str | None) -> None:
    """Refuse an --out that names one of the data files ``specs`` (--data, the run's training data), however
    either is written: writing it would replace the data."""
    target = Path(out).expanduser()
    for what, spec in zip(("--data", "the run's training data"), specs):
        path = Path(spec).expanduser() if spec else None
        if path is not None and path.is_file() and (path.resolve() == target.resolve() or same_file(path, target)):
            raise VaekitError(f"--out {out} is {what} ({spec}): name another file, or it would be written over")


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (a hard link too); False where either is missing."""
    try:
        return a.samefile(b)
    except OSError:
        return False


def temperatures(text: str) -> float | list[float]:
    """--temperature: a number, or a comma-separated list of them (one per resolution); the run checks their
    range (``Run.check_temperature``, ``models.temperature``)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers (one, or one per resolution), got {text!r}") from None
    return values[0] if len(values) == 1 else values
