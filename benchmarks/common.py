"""What every benchmark writes: its tables as JSON (benchmarks/results/<name>.json) with the command, the machine,
torch, the commit and the date, and the same tables printed as markdown. tools/benchmark_pages.py renders the
JSON as the docs' benchmark pages and their index."""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import torch

from vaekit.config import RunConfig, load_json_config
from vaekit.config.resume import resume_keys, take_derived
from vaekit.errors import VaekitError
from vaekit.io import atomic_write_text
from vaekit.training.step import fast_bf16

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    """Where the figures come from: the CPU model and threads, the GPU if one is used, torch and Python, and
    whether ``train.precision`` auto trains Bernoulli-type runs in bf16 there (``bf16_auto``: a CPU's flags decide
    it, and it moves each family's speed by a different factor)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    device = torch.device("cuda" if gpu else "cpu")
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_auto": fast_bf16(device),
    }


def commit() -> str:
    """The repository's commit (and '+changes' when src, the presets or the benchmarks' code differ from it);
    VAEKIT_BENCH_COMMIT names it where the tree travelled without its .git (a GPU machine's copy). Taken once,
    as a benchmark starts (``STARTED``): the code it runs, whatever changes in the tree while it runs."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "src", "configs", "benchmarks/*.py")
        return git("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("VAEKIT_BENCH_COMMIT", "unknown")


STARTED = commit()
LOAD = os.getloadavg()  # the machine's load (1, 5, 15-minute averages) as the benchmark starts
REDUCED: list[str] = []  # the budget arguments this run set below their defaults (``budget``), in its result


def below(gap: float, unit: str = "", digits: int = 2) -> str:
    """A gap ``gap`` = theirs - ours as words: '1.18 nats below' where positive, '9.23 above' where negative."""
    return f"{abs(gap):.{digits}f}{unit} {'above' if round(gap, digits) < 0 else 'below'}"


def summary(doc: str) -> str:
    """A script's docstring's first paragraph as one line: its --help description."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def budget(parser: argparse.ArgumentParser, args: argparse.Namespace, *dests: str, **full: float) -> list[str]:
    """Record the budget arguments ``dests`` this run set below their defaults ('--rounds 2 (default 10)'), as
    parsed (before --quick); one whose default is none or a word ('all') counts when given, unless ``full`` names
    the number that default stands for; a comma-separated list counts when it has fewer items. ``write`` stores
    them as the result's ``reduced``; the pages label such a result as they do a smoke run's."""
    for dest in dests:
        value, default = getattr(args, dest), full.get(dest, parser.get_default(dest))
        a, b = value, default
        if isinstance(a, str) and isinstance(b, str) and "," in b:  # a list ('0,1,2'): fewer items
            a, b = len(a.split(",")), len(b.split(","))
        numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
        if value is not None and (a < b if numbers else a != b):
            REDUCED.append(f"--{dest.replace('_', '-')} {value} (default {default})")
    return REDUCED


def choices(parser: argparse.ArgumentParser, flag: str, value: str, known: list[str] | tuple[str, ...]) -> list[str]:
    """``value``, a comma-separated list of ``known`` names, as a list; an unknown name is the parser's error."""
    names = [v for v in value.split(",") if v]
    wrong = [v for v in names if v not in known]
    if wrong or not names:
        parser.error(f"{flag} takes {', '.join(known)} (comma-separated), got {value!r}")
    return names


def data_specs(parser: argparse.ArgumentParser, flag: str, value: str) -> list[str]:
    """``value``, comma-separated data specs, as a list: each a built-in set or an existing file or folder, else
    the parser's error (a mistyped name fails here, not as a set 'not installed' after the others trained)."""
    from vaekit.config.specs import BUILTINS, builtin_key
    from vaekit.errors import VaekitError

    def known(spec: str) -> bool:
        try:
            return builtin_key(spec) is not None or Path(spec).expanduser().exists()
        except VaekitError:
            return False

    specs = [v for v in value.split(",") if v]
    wrong = [s for s in specs if not known(s)]
    if wrong:
        parser.error(f"{flag}: {', '.join(wrong)} is neither a built-in set ({', '.join(BUILTINS)}) nor a path")
    return specs


def peak_mib(device: str | torch.device) -> float:
    """Peak memory of this process so far, MiB: allocated memory on CUDA, the resident set on a CPU (Linux)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def metrics_rows(run: str | Path) -> list[dict[str, str]]:
    """The rows of a run folder's metrics.csv, one per epoch, values as written (strings)."""
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def carried_rows(
    run: str | Path, asked: RunConfig, keys: Iterable[str] = (), reuse: str = "--carry-on"
) -> list[dict[str, str]]:
    """The metrics.csv rows of the run folder ``run`` that ``--carry-on`` goes on from ([] where it has none).
    Refused in one line (exit) where its config.json holds another value than the RunConfig ``asked`` of a setting
    in ``keys``, data.spec or those a resumed run keeps (its data and model sections, seed, batch size): before
    the budget says whether another epoch trains, so that runs on other settings (a --limit of 3000 items where
    1000 are asked) are neither trained on nor scored under this command. A setting ``asked`` leaves to the data
    ('auto', no input shape or class count) is not compared, nor the model sizes training derives (the deep
    hierarchy's latent size: ``take_derived``). ``reuse`` names what reuses the folder."""
    if not (Path(run) / "metrics.csv").exists():
        return []
    try:
        saved = load_json_config(Path(run) / "config.json")
    except VaekitError as e:
        sys.exit(f"{reuse}: {run} holds no run to reuse: {e}")
    asked = take_derived(saved, copy.deepcopy(asked))
    for key in dict.fromkeys(["data.spec", *keys, *resume_keys(saved)]):
        section, name = key.split(".")
        old, new = (json.loads(json.dumps(getattr(getattr(c, section), name))) for c in (saved, asked))
        unsettled = new == "auto" or (name in ("input_shape", "num_classes") and not new)
        if old != new and not unsettled:
            sys.exit(
                f"{reuse}: {run} was trained with {key} {old!r}, this command asks {new!r}; "
                + (
                    "carry on with the same settings, or leave out --carry-on to train afresh (or give another --out)"
                    if reuse == "--carry-on"
                    else "give the settings it was trained with"
                )
            )
    return metrics_rows(run)


def table(caption: str, columns: list[str], rows: list[list]) -> dict:
    """One table of a result, printed as markdown as it is made."""
    print(f"\n{caption}\n\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    return {
        "caption": caption,
        "columns": columns,
        "rows": [[v if isinstance(v, (int, float)) else str(v) for v in row] for row in rows],
    }


def command() -> str:
    """This process's command line, quoted as a shell reads it (an empty argument shows as ''), its script
    relative to the repository."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
    return shlex.join(["python", name, *sys.argv[1:]])


def result_path(name: str, out: str | Path | None = None) -> Path:
    """Where ``write`` puts result ``name``: ``out``, else benchmarks/results/<name>.json, or for a smoke run
    (``--quick``) runs/quick/<name>.json, leaving the published results as they are."""
    quick = "--quick" in sys.argv[1:]
    return Path(out) if out else (ROOT / "runs" / "quick" if quick else RESULTS) / f"{name}.json"


def beside(name: str, out: str | Path | None, suffix: str) -> Path:
    """A file beside result ``name``'s JSON (``result_path``): <stem>-<suffix>, such as its samples figure."""
    path = result_path(name, out)
    return path.with_name(f"{path.stem}-{suffix}")


def figure_name(path: str | Path) -> str:
    """How a note names a figure: its file name where the pages show it (docs/img/benchmarks/), else its path,
    which the pages leave unshown (a figure beside a scratch result is no published one)."""
    path = Path(path).resolve()
    if path.parent == ROOT / "docs" / "img" / "benchmarks":
        return path.name
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def write(
    name: str, title: str, headline: str, tables: list[dict], notes: list[str] = (), out: str | Path | None = None
) -> Path:
    """``result_path``'s JSON: the tables, a one-line headline and notes, with provenance (the command, the machine
    and its load at the start and the end, the commit, the date, the budget arguments set below their defaults).
    A result whose tables have no row (nothing measured: a part that ran nothing) is refused, not written."""
    path = result_path(name, out)
    if not any(t["rows"] for t in tables):
        sys.exit(f"{name}: no table has a row (nothing was measured); {path} is not written")
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "name": name,
        "title": title,
        "headline": headline,
        "tables": tables,
        "notes": list(notes),
        "command": command(),
        "machine": machine(),
        "commit": STARTED,
        "date": datetime.date.today().isoformat(),
        "load": {"start": [round(v, 2) for v in LOAD], "end": [round(v, 2) for v in os.getloadavg()]},
        "reduced": list(REDUCED),
    }
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")  # a run stopped mid-write leaves the old file
    print(f"\n{headline}\n-> {path}")
    return path


def rewrite(path: str | Path, into: str | Path | None = None, **fields: object) -> Path:
    """Replace ``fields`` (headline, notes) of a written result, atomically, leaving its figures and provenance;
    written to ``path`` or to ``into``."""
    result = json.loads(Path(path).read_text())
    atomic_write_text(into or path, json.dumps({**result, **fields}, indent=2) + "\n")
    print(f"{fields.get('headline', '')}\n-> {into or path}")
    return Path(into or path)
