"""The command line: parses, calls the library, prints; bad input becomes one line on stderr and exit code 2.

Every verb is declared once in ``VERBS`` (``cli.verbs``) by the module of its group: train, evaluate, apps, ship.
Library errors name the setting at fault (``VaekitError.key``); here it becomes the flag that sets it.
The parser is built from plain modules: torch, scikit-learn and matplotlib load inside the verb that needs them,
so --help, --version and a mistyped flag answer at once, and a Ctrl-C during those imports is the verb's one line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from .. import __version__
from ..errors import VaekitError
from ..io import printable
from . import apps, data_sets, evaluate, quality, report, ship, train  # each registers its verbs
from .errors import for_command_line
from .imports import IMPORT_HELP, import_modules
from .reading import refuse_unknown
from .stops import Terminated as Terminated  # re-exported: vaekit.cli.Terminated
from .stops import (
    cause,
    interrupted,
    loaded,
    lost_peer,
    quiet,
    resume_hint,
    room_hint,
    terminate,
    under_torchrun,
    wrapped_interrupt,
)
from .train_flags import FLAGS, train_config
from .verbs import KEEPS_NOTES, VERBS, Parser, expanded, quieted

__all__ = ["FLAGS", "VERBS", "build_parser", "main", "train_config"]
SPECIAL = {"overwrite": "--resume RUN or --overwrite"}


def build_parser() -> Parser:
    raw = argparse.RawDescriptionHelpFormatter  # the examples' lines as written; the flags laid out as before
    p = Parser(
        prog="vaekit",
        description="Variational autoencoders: train, sample, reconstruct.",
        epilog="documentation: docs/ of the source (docs/index.md; `make docs` builds the site); vaekit VERB --help",
        formatter_class=raw,
    )
    p.add_argument("--version", action="version", version=f"vaekit {__version__}")
    p.add_argument("--import", action="append", default=[], dest="imports", metavar="MODULE", help=IMPORT_HELP)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    p.verb_parsers = {}
    # help order: training, then the data it reads, then what reads a run
    groups = [m.__name__ for m in (train, data_sets, evaluate, report, quality, apps, ship)]
    for v in sorted(VERBS.values(), key=lambda v: groups.index(v.run.__module__)):
        verb_parser = p.verb_parsers[v.name] = sub.add_parser(
            v.name, help=v.help, epilog=v.epilog or None, formatter_class=raw
        )
        for names, options in v.args:
            verb_parser.add_argument(*names, **options)
    return p


def flag_for(parser: Parser, args: argparse.Namespace | None, key: str | None) -> str | None:
    """The flag of the verb being run that sets ``key`` (an argument name or a config key), if it has one."""
    if key is None or args is None:
        return None
    if key in SPECIAL:
        return SPECIAL[key]
    if key == "resume" and getattr(args, "run", None):  # a verb on a run stopped in its first epoch
        return f"vaekit train --resume {args.run}"
    if key in ("model.family", "model.net") and named_by_model(args, key):  # --model sets one or the other
        return "--model"
    dest = next((flag for flag, k in FLAGS.items() if k == key), key)
    options = {a.dest: a.option_strings[0] for a in parser.verb_parsers[args.command]._actions if a.option_strings}
    flag = options.get(dest) or (f"--set {key}=..." if "." in key and "set" in options else None)
    argv = [a.removeprefix("--set=") for a in getattr(args, "argv", [])]
    if "set" in options and "." in key and any(a.startswith((f"{key}=", f"{key.split('.')[1]}=")) for a in argv):
        return f"--set {key}=..."  # --set, which wins over a flag
    if flag is not None and any(a == flag or a.startswith(f"{flag}=") for a in argv):
        return flag
    where = f"{args.resume}/config.json" if getattr(args, "resume", None) else configured(args, key)
    if where and key == "model.net" and getattr(args, "model", None):  # a family by --model, the net by the file
        return f"{key} in {where}; --set {key}=mlp sets it back to its default"
    if where and "." in key:  # from the resumed run's own config.json, or the --config file
        return f"{key} in {where}" + (f"; {flag} changes it" if flag else "")
    return flag


def named_by_model(args: argparse.Namespace, key: str) -> bool:
    """Whether --model names ``key``'s kind: a network for model.net, a family for model.family (any name,
    where the families are not loaded: the registry loads torch)."""
    given = getattr(args, "model", None) or []
    nets = [name for name in given if name in ("mlp", "conv")]
    return bool(nets) if key == "model.net" else len(nets) < len(given)


def configured(args: argparse.Namespace, key: str) -> str | None:
    """The --config file (TOML, preset or a run's config.json) if it gives ``key`` (a user's TOML file at any value,
    a preset or config.json away from its default), else None: the setting at fault came from it, not a flag."""
    if not getattr(args, "config", None) or "." not in key:
        return None
    from ..config import load_toml_config
    from ..config.checks import given
    from ..config.sources import shipped

    try:
        name, preset = args.config, shipped(args.config) is not None and not Path(args.config).is_file()
        return (f"the preset {name}" if preset else name) if given(load_toml_config(name), key) else None
    except (VaekitError, OSError, AttributeError, ValueError):  # not a setting, or a file changed since
        return None


def refuse_repeated(parser: Parser, args: argparse.Namespace) -> None:
    """A flag given twice, whose last value would win unseen (--epochs 2 --epochs 1), refused in one line naming it,
    as --set refuses one setting set twice; flags meant to repeat (--set, --model) and switches are not."""
    verb = parser.verb_parsers[args.command]
    repeat = (argparse._AppendAction, argparse._AppendConstAction, argparse._CountAction)
    once = {o: a.dest for a in verb._actions if a.nargs != 0 and not isinstance(a, repeat) for o in a.option_strings}
    seen: dict[str, str] = {}
    for token in args.argv:
        flag = token.split("=", 1)[0]
        if token == "--":  # the rest are values
            return
        if flag in once and once[flag] in seen:
            said = (
                f"{flag} is given twice" if seen[once[flag]] == flag else f"{seen[once[flag]]} and {flag} are one flag"
            )
            raise VaekitError(f"{args.command}: {said}: give it once (the last would win unseen)")
        if flag in once:
            seen[once[flag]] = flag


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaekit`` console script; returns the exit code (a torchrun worker exits with it)."""
    code = run_command(argv)
    distributed = loaded("training.distributed")  # a torchrun worker's verb has loaded it
    if distributed is not None and distributed.launched():
        exit_now(code)
    return code


def run_command(argv: list[str] | None) -> int:
    """Parse ``argv`` and run its command; errors become one line on stderr and the exit code."""
    parser, args, out = None, None, Watched(writable_stdout())
    sys.stdout = out  # a proxy: write and flush watched, the rest the stream's
    main_thread = threading.current_thread() is threading.main_thread()  # handlers are the main thread's alone
    old = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    try:
        parser = build_parser()
        args = expanded(parser.parse_args(argv))
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc hands on to torchrun
        refuse_repeated(parser, args)
        refuse_unknown(args)  # --unknown gap of a run with no category it could read as a gap
        import_modules(args.imports)  # the user's own entries (register_prior...), before the verb reads a setting
        with (
            trust_code(args),
            quieted(args.quiet and args.command not in KEEPS_NOTES),
        ):  # every run folder the verb opens; --quiet's notes unsaid
            if args.command != "train" and under_torchrun():
                from ..training.launcher import refuse_launched

                refuse_launched(args.command)  # one process's verbs: rank 0 says so, the others nothing
            code = VERBS[args.command].run(args)
        sys.stdout.flush()  # output that cannot be written fails here, not at exit
    except VaekitError as e:
        if quiet(e):  # a torchrun worker stopped by a peer: rank 0 says why
            return e.exit_code
        text, flag = for_command_line(e, flag_for(parser, args, e.key) if parser else None, args)  # the CLI's ways
        line = f"vaekit: error: {printable(text)}" + (f" ({flag})" if flag else "")  # names from files
        print(line + printable(room_hint(e, args)), file=sys.stderr)  # a full disk: the resume once there is room
        return e.exit_code
    except BrokenPipeError:  # stdout piped into a reader that stopped (| head): as other command-line tools, quietly
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes it at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except OSError as e:  # stdout refused a write (a full disk, /dev/full): one line, not a traceback
        if not out.failed:
            raise
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes it at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        with contextlib.suppress(OSError):
            print(f"vaekit: error: cannot write the output ({e.strerror or e})", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        return interrupted(e, args)
    except RuntimeError as e:  # under torchrun, a peer process that died (killed, out of memory) breaks the group
        if (stop := wrapped_interrupt(e)) is not None:  # a Ctrl-C in an import, wrapped by __set_name__
            return interrupted(stop, args)
        if not lost_peer(e):
            raise
        from ..training import distributed

        if distributed.rank() == 0:  # the others stop with it; a lost rank 0 is named by the launcher (--nproc)
            print(f"vaekit: error: rank 0 lost a process of its run ({cause(e)}){resume_hint(args)}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = out.stream
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return code or 0


def writable_stdout() -> TextIO:
    """sys.stdout as a verb writes to it. One closed at the start (``>&-``: Python's None) is the null device: the
    work goes on, its lines dropped. One that cannot encode a character (PYTHONIOENCODING=ascii, a non-ASCII run
    folder) writes it as its escape, not a UnicodeEncodeError once the work is done."""
    if sys.stdout is None:
        return open(os.devnull, "w", encoding="utf-8")  # sys.stdout's for the rest of the process
    if isinstance(sys.stdout, io.TextIOWrapper):
        with contextlib.suppress(OSError, ValueError):  # a stream detached or closed: as it is
            sys.stdout.reconfigure(errors="backslashreplace")
    return sys.stdout


class Watched:
    """sys.stdout as the verb sees it: remembers a write that failed (a full disk, /dev/full), so that error, and
    no other OSError, becomes one line."""

    def __init__(self, stream) -> None:
        self.stream, self.failed = stream, False

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError:
            self.failed = True
            raise

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            self.failed = True
            raise

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def trust_code(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """``models.trust.trusting()`` for a verb given --trust-code; else nothing to set (the default trusts no
    run's code) and nothing to import: the module loads torch, which the verb imports when it needs it."""
    if not getattr(args, "trust_code", False):
        return contextlib.nullcontext()
    from ..models.trust import trusting

    return trusting()


def exit_now(code: int) -> None:
    """End a torchrun worker whose work is done, skipping the interpreter's teardown.

    Tearing down gloo's C++ objects at interpreter exit aborts a rank now and then (std::terminate on a
    joinable thread, "terminate called without an active exception", after the process group was destroyed;
    3 of 40 two-process test runs on a loaded 2-core machine, 0 of 25 with this exit), which fails a finished
    run. Files are closed by then; the streams are flushed here.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
