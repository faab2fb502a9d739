"""Every benchmark's smoke run (benchmarks/README.md's column), one after another: a line each with its exit
status, its seconds and its last line, so a change that breaks a script shows before a long run finds it.

    .venv/bin/python tools/bench_smoke.py               # all of them: about 12 minutes on 2 cores
    .venv/bin/python tools/bench_smoke.py deep zoo      # some, by name
    make bench-smoke                                    # the peers installed first, then all

Everything goes under --out (default runs/smoke): results, run folders and one log per run, never
benchmarks/results. The scripts that compare with a peer need it installed (`make bench-peer-install`). The
figures a smoke run prints measure nothing (its budgets are tiny): it says whether each script runs to the end.
Exits 1 when any run failed, naming it and its log.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# each entry point of benchmarks/ (scale twice: training and the verbs) and its smoke arguments; {out} is --out.
# explore_load serves the run folder deep's smoke run trains: it comes after deep (ask for both, or deep once before)
SMOKE: dict[str, list[str]] = {
    "anomaly": ["--quick", "--json", "{out}/anomaly.json"],
    "anomaly_scales": ["--quick", "--json", "{out}/anomaly_scales.json"],
    "bits": ["--quick", "--sets", "mnist5k", "--out", "{out}/bits.json"],
    "deep": ["--quick", "--out", "{out}/deep", "--json", "{out}/deep.json"],
    "deep_gpu": ["--quick", "--out", "{out}/deep_gpu", "--json", "{out}/deep_gpu.json"],
    "disentangle": ["--quick", "--out", "{out}/disentangle", "--json", "{out}/disentangle.json"],
    "explore_load": ["{out}/deep/fashion-mnist-deep", "--requests", "200", "--json", "{out}/explore_load.json"],
    "families": ["--quick", "--out", "{out}/families", "--json", "{out}/families.json"],
    "fid_sanity": ["--quick", "--out", "{out}/fid_sanity.json"],
    "likelihoods": ["--quick", "--json", "{out}/likelihoods.json"],
    "peer": ["--quick", "--json", "{out}/peer.json"],
    "photo_folder": ["--n", "300", "--dir", "{out}", "--json", "{out}/photo_folder.json"],
    "scale": ["--gb", "0.2", "--compare", "50000", "--dir", "{out}/scale", "--json", "{out}/scale.json"],
    "scale --verbs": ["--verbs", "--gb", "0.2", "--dir", "{out}/scale", "--json", "{out}/scale_verbs.json"],
    "step_floor": ["--rounds", "1", "--steps", "10", "--json", "{out}/step_floor.json"],
    "tables": ["--quick", "--out", "{out}/tables.json"],
    "zoo": ["--quick", "--out", "{out}/zoo.json"],
}


def smoke(name: str, out: Path, python: str = sys.executable) -> tuple[int, float, str]:
    """Run ``name``'s smoke run, its output in OUT/logs/<name>.log: (exit status, seconds, its last line)."""
    script, *more = name.split()
    log = out / "logs" / f"{name.replace(' --', '-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [a.format(out=out) for a in [*more, *SMOKE[name]]]
    start = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call([python, str(ROOT / "benchmarks" / f"{script}.py"), *args], stdout=f, stderr=f, cwd=ROOT)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return rc, time.perf_counter() - start, lines[-1][:120] if lines else ""


def main(argv: list[str] | None = None) -> int:
    """Run the smoke runs asked (default all), in SMOKE's order, and print a table; 1 when any failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("names", nargs="*", help=f"scripts to run (default all): {', '.join(SMOKE)}")
    p.add_argument("--out", default="runs/smoke", help="where their results, runs and logs go")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in SMOKE]
    if unknown:
        p.error(f"no smoke run named {', '.join(map(repr, unknown))}; known: {', '.join(SMOKE)}")
    names = [n for n in SMOKE if n in args.names or not args.names]
    out, failed = Path(args.out).resolve(), []
    print("| script | exit | seconds | last line |\n|---|---|---|---|", flush=True)
    for name in names:
        rc, seconds, last = smoke(name, out)
        print(f"| {name} | {rc} | {seconds:.0f} | {last.replace('|', '/')} |", flush=True)
        failed += [name] if rc else []
    for name in failed:
        print(f"{name} failed: {out / 'logs' / (name.replace(' --', '-') + '.log')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
