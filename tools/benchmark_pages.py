"""The benchmark pages, rendered from the JSON the benchmarks write (benchmarks/results/*.json): one docs page
per benchmark and an index with one line each. Nothing is pasted; the README links to the index.

    python tools/benchmark_pages.py            # writes docs/benchmarks/
    python tools/benchmark_pages.py --check    # exits 1 when a page differs from the JSON
    python tools/benchmark_pages.py --results /tmp/res --pages /tmp/pages   # a preview of other results

A result from a smoke run (--quick) or with a budget argument below its default (its JSON's ``reduced``) is
labelled so, on its page and in the index.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS, PAGES = ROOT / "benchmarks" / "results", ROOT / "docs" / "benchmarks"
FIGURES = ROOT / "docs" / "img" / "benchmarks"
# every benchmark, in the order of the table; one without results says how to make them
BENCHMARKS = {
    "peer": "Speed and NLL against pythae",
    "peer_cuda": "Speed and NLL against pythae on a GPU",
    "peer_cpu_fp32": "Speed and NLL against pythae on a CPU whose bf16 is slow",
    "step_floor": "One training step against pythae's",
    "likelihoods": "What each likelihood costs a training step",
    "bits": "Bits per dimension of 8-bit images",
    "families": "Model families",
    "deep": "The deep hierarchy against the flat and ladder conv VAEs",
    "deep_mnist5k": "The deep hierarchy on mnist5k",
    "deep_bits": "The deep hierarchy's bits per dimension on 8-bit Fashion-MNIST",
    "deep_bits_photos": "The deep hierarchy's bits per dimension on photos",
    "deep_quality": "Sample quality of the deep hierarchy",
    "deep_gpu": "The deep hierarchy's GPU preset",
    "deep_gpu_bf16": "The deep hierarchy's GPU preset with a bf16 trunk",
    "anomaly": "Anomaly and out-of-distribution detection against PyOD",
    "anomaly_deep": "One-class detection with the deep hierarchy",
    "anomaly_scales": "Pooling factors of the one-class detector",
    "disentangle": "Disentanglement on dSprites",
    "scale": "Data larger than memory",
    "scale_verbs": "Verbs over data larger than memory",
    "photo_folder": "A photo folder as it comes",
    "tables": "Synthetic tables beside SDV's TVAE",
    "explore_load": "The explorer under load",
    "fid_sanity": "FID sanity: noise and blur",
    "zoo": "The model zoo against pythae",
}
# the command that makes a result whose name is not its script's
COMMANDS = {
    "peer_cuda": "peer.py --device cuda --json benchmarks/results/peer_cuda.json",
    "peer_cpu_fp32": "peer.py --json benchmarks/results/peer_cpu_fp32.json",
    "scale_verbs": "scale.py --verbs",
    "explore_load": "explore_load.py RUN_FOLDER",
    "deep_mnist5k": "deep.py --parts nll --sets mnist5k --json benchmarks/results/deep_mnist5k.json",
    "deep_bits": "deep.py --parts bits --bits-sets fashion-mnist --json benchmarks/results/deep_bits.json",
    "deep_bits_photos": "deep.py --parts bits --bits-sets photos:32 --json benchmarks/results/deep_bits_photos.json",
    "deep_quality": "deep.py --parts quality --sets fashion-mnist --json benchmarks/results/deep_quality.json",
    "deep_gpu_bf16": "deep_gpu.py --set train.precision=bf16 --json benchmarks/results/deep_gpu_bf16.json",
    "anomaly_deep": "anomaly.py --parts oneclass --json benchmarks/results/anomaly_deep.json",
}


def results(folder: Path = RESULTS) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}


def quick(r: dict) -> bool:
    return "--quick" in r["command"].split()


def load(r: dict) -> str:
    """The machine's load as the run started and ended (1-minute averages), where the result records it."""
    if "load" not in r:
        return ""
    return f" (load {r['load']['start'][0]:.2f} at the start, {r['load']['end'][0]:.2f} at the end: 1-minute averages)"


def precision(m: dict) -> str:
    """What train.precision auto chose for Bernoulli-type runs on the machine, where the result records it."""
    if "bf16_auto" not in m:
        return ""
    return f", precision auto: {'bf16' if m['bf16_auto'] else 'float32'} for Bernoulli-type likelihoods"


def page(r: dict, title: str) -> str:
    """One benchmark's page under ``title`` (the index's): what it measured, where and when, tables and notes."""
    m = r["machine"]
    where = (m["gpu"] or f"{m['cpu']}, {m['threads']} thread{'s' * (m['threads'] != 1)}") + load(r) + precision(m)
    lines = [
        f"# {title}",
        "",
        f"**{r['headline']}**",
        "",
        f"Measured on {where}, torch {m['torch']}, commit `{r['commit']}`, {r['date']}, by",
        "",
        f"```sh\n{r['command']}\n```",
        "",
    ]
    if quick(r):
        lines += [
            '!!! note "A smoke run"',
            "    These figures come from `--quick`: little data and one or two "
            "epochs. They show the benchmark runs, not what the models reach; run it without `--quick` for "
            "those.",
            "",
        ]
    elif r.get("reduced"):
        lines += [
            '!!! note "A reduced budget"',
            f"    This run set {', '.join(r['reduced'])}: less than the benchmark's budget. Its figures show "
            "what that budget gives, not what the full one does; run it without those arguments for those.",
            "",
        ]
    for t in r["tables"]:
        lines += [t["caption"], "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t["rows"]] + [""]
    lines += [f"- {n}" for n in r.get("notes", [])]
    for n in r.get("notes", []):  # a note that names a figure of docs/img/benchmarks/ shows it
        name = n.rsplit(" ", 1)[-1]
        if name.endswith(".png") and (FIGURES / name).is_file():
            lines += ["", f"![{n}](../img/benchmarks/{name})"]
    return "\n".join(lines).rstrip() + "\n"


def missing(name: str) -> str:
    return (
        f"# {BENCHMARKS[name]}\n\nNo results yet. Run\n\n```sh\n.venv/bin/python benchmarks/"
        f"{COMMANDS.get(name, name + '.py')}\n```\n\n"
        "and `make docs` renders its JSON here.\n"
    )


def headline_table(found: dict[str, dict], link: str) -> str:
    """The table of one line per benchmark, each linking to its page (``link`` prefixes the page path)."""
    rows = ["| benchmark | result | measured |", "|---|---|---|"]
    for name, title in BENCHMARKS.items():
        r = found.get(name)
        result = r["headline"] if r else "not run yet"
        when = f"{r['date']}, {r['machine']['gpu'] or r['machine']['cpu']}" if r else "-"
        when += ", a smoke run (--quick)" if r and quick(r) else ""
        when += f", a reduced budget ({reduced_flags(r)})" if r and not quick(r) and r.get("reduced") else ""
        rows.append(f"| [{title}]({link}{name}.md) | {result} | {when} |")
    return "\n".join(rows)


def reduced_flags(r: dict) -> str:
    """The flags of the budget arguments a result set below their defaults: '--rounds 2, --steps 5'."""
    return ", ".join(a.split(" (default")[0] for a in r["reduced"])


def rendered(found: dict[str, dict], pages: Path = PAGES) -> dict[Path, str]:
    """Each page's path (in ``pages``) and text: one per benchmark and the index."""
    out = {pages / f"{n}.md": page(found[n], BENCHMARKS[n]) if n in found else missing(n) for n in BENCHMARKS}
    out[pages / "index.md"] = (
        "# Benchmarks\n\nEach page is rendered from the JSON its benchmark wrote "
        "(`benchmarks/results/`), with the command, the machine and the commit.\n\n" + headline_table(found, "") + "\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the pages (or with --check, compare them); --help and a wrong argument write nothing."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when a page differs from its JSON; write nothing")
    p.add_argument("--results", type=Path, default=RESULTS, help="the folder of result JSON (%(default)s)")
    p.add_argument("--pages", type=Path, default=PAGES, help="the folder the pages go to (%(default)s)")
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a wrong argument (2)
        return int(stop.code or 0)
    pages = rendered(results(args.results), args.pages)
    if args.check:
        return int(any(not p.is_file() or p.read_text(encoding="utf-8") != t for p, t in pages.items()))
    args.pages.mkdir(parents=True, exist_ok=True)
    for path, text in pages.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
