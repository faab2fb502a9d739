"""What every benchmark writes: its tables as JSON (benchmarks/results/<name>.json) with the command, the machine,
torch, the commit and the date, and the same tables printed as markdown. tools/benchmark_pages.py renders the
JSON as the docs' benchmark pages and their index."""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from vaekit.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    """Where the figures come from: the CPU model and threads, the GPU if one is used, torch and Python."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
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


def peak_mib(device: str | torch.device) -> float:
    """Peak memory of this process so far, MiB: allocated memory on CUDA, the resident set on a CPU (Linux)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def metrics_rows(run: str | Path) -> list[dict[str, str]]:
    """The rows of a run folder's metrics.csv, one per epoch, values as written (strings)."""
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


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


def write(
    name: str, title: str, headline: str, tables: list[dict], notes: list[str] = (), out: str | Path | None = None
) -> Path:
    """benchmarks/results/<name>.json (or ``out``): the tables, a one-line headline and notes, with provenance. A
    smoke run (``--quick``) writes runs/quick/<name>.json instead, leaving the published results as they are."""
    quick = "--quick" in sys.argv[1:]
    path = Path(out) if out else (ROOT / "runs" / "quick" if quick else RESULTS) / f"{name}.json"
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
    }
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")  # a run stopped mid-write leaves the old file
    print(f"\n{headline}\n-> {path}")
    return path


def rewrite(path: str | Path, **fields: object) -> Path:
    """Replace ``fields`` (headline, notes) of a written result, atomically, leaving its figures and provenance."""
    result = json.loads(Path(path).read_text())
    atomic_write_text(path, json.dumps({**result, **fields}, indent=2) + "\n")
    print(f"{fields.get('headline', '')}\n-> {path}")
    return Path(path)
