"""vaekit against pythae 0.1.2 on the same VAE, in one run: training speed, matmul efficiency, NLL, memory.

Both train the same networks (MLP 784-400-400-20 with ReLU, or vaekit's conv nets) with a Bernoulli
likelihood, Adam (lr 1e-3), batch 128, on dynamically binarised Fashion-MNIST, from the same seed. pythae's
trainer has no per-batch hook, so its dataset binarises per item ("pythae"); "pythae-fixed" binarises once
up front, pythae's fastest setting, against which the speed target is judged. Each training runs in its own
process (so peak RSS is its own), in alternating order round by round.
Both trained models are scored by vaekit's importance-weighted estimator (float32) on the same test images;
pythae's own ``get_nll`` scores its model too, which times the two estimators on one model. Writes JSON
(``--json``, default benchmarks/results/peer.json) with the command, the machine, torch, the commit and the date.

    make bench-peer-install                         # the peers (pythae beside the pinned torch) into .venv
    make bench-peer                                 # installs them and runs this
    .venv/bin/python benchmarks/peer.py             # about 6 min on 2 idle CPU cores
    .venv/bin/python benchmarks/peer.py --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
import runner
import torch

ROOT = Path(__file__).resolve().parent


def matmul_rate(dtype: torch.dtype, device: str, n: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of torch.mm on (n, n) matrices of ``dtype``: the machine's matmul limit for this process."""
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        _sync(device)
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        _sync(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def spawn(library: str, net: str, args: argparse.Namespace, nll_k: int) -> dict:
    """Run peer_worker.py's ``worker`` in a fresh process; returns what it printed as JSON."""
    job = json.dumps({"library": library, "net": net, "args": vars(args), "nll_k": nll_k})
    print(f"  training {library} ({net}) ...", flush=True)
    r = subprocess.run([sys.executable, str(ROOT / "peer_worker.py"), job], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(f"{library} ({net}) failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summarise(results: list[dict], rates: dict[str, float]) -> dict:
    """Pool the rounds of one library and net: median seconds of epochs 2.., samples/s, GFLOP/s, NLL."""
    seconds = statistics.median(s for r in results for s in (r["seconds"][1:] or r["seconds"]))
    items, flops = results[0]["items"], results[0]["flops"]
    rate = items / seconds
    precision = results[0]["precision"]
    return {
        "precision": precision,
        "s_epoch": seconds,
        "rate": rate,
        "gflops": rate * flops / 1e9,
        "limit": rates[precision],
        "nll": statistics.mean(r["nll"] for r in results),
        "nll_s": statistics.median(r["nll_seconds"] for r in results),
        "peak": max(r["peak_mib"] for r in results),
    }


def table(rows: dict[tuple[str, str], dict], k: dict[str, int], args: argparse.Namespace) -> dict:
    """The table of every library and net, printed and returned for the JSON."""
    columns = [
        "net",
        "library",
        "precision",
        "s/epoch",
        "samples/s",
        "GFLOP/s",
        "% of matmul limit",
        "test NLL (K)",
        "NLL time (s)",
        "peak MiB",
    ]
    cells = [
        [
            net,
            lib,
            r["precision"],
            round(r["s_epoch"], 2),
            round(r["rate"]),
            round(r["gflops"]),
            f"{100 * r['gflops'] / r['limit']:.0f}% of {r['limit']:.0f}",
            f"{r['nll']:.2f} ({k[net]})",
            round(r["nll_s"], 1),
            round(r["peak"]),
        ]
        for (net, lib), r in rows.items()
    ]
    epochs = {"mlp": f"MLP {args.epochs} epochs", "conv": f"conv {args.conv_epochs} epochs"}
    caption = (
        f"{args.device}, batch 128, Fashion-MNIST dynamically binarised; "
        + ", ".join(epochs[net] for net in dict.fromkeys(net for net, _ in rows))
        + f", {args.rounds} round(s); test NLL on {args.nll_items} test images"
    )
    return common.table(caption, columns, cells)


def fastest_peer(rows: dict[tuple[str, str], dict], net: str) -> dict:
    """The row of pythae's fastest setting on ``net``: the speed target is judged against it."""
    return max((r for (n, lib), r in rows.items() if n == net and lib != "vaekit"), key=lambda r: r["rate"])


def headline(rows: dict[tuple[str, str], dict]) -> str:
    """vaekit's speed against pythae's fastest setting and against pythae with the same dynamic binarisation, the
    two precisions of each pair named (vaekit's bf16 against pythae's fp32 is no like-for-like pair), and the
    test NLLs of the dynamic pair, on the MLP if it ran."""
    net = "mlp" if ("mlp", "vaekit") in rows else next(iter(rows))[0]
    v, same = rows[(net, "vaekit")], rows[(net, "pythae")]
    fast = fastest_peer(rows, net)
    lib = next(lib for (n, lib), r in rows.items() if n == net and r is fast)
    return (
        f"vaekit ({v['precision']}) trains the {net} VAE at {v['rate'] / fast['rate']:.2f}x the samples/s of "
        f"pythae's fastest setting ({lib}, {fast['precision']}) and {v['rate'] / same['rate']:.2f}x pythae's with "
        f"the same dynamic binarisation ({v['precision']} vs {same['precision']}); test NLL {v['nll']:.2f} vs "
        f"pythae's {same['nll']:.2f} nats"
    )


def stored_rows(result: dict) -> dict[tuple[str, str], dict]:
    """The rows of a written result's table as ``summarise`` gives them (rate, NLL, precision): its headline's."""
    table = result["tables"][0]
    at = {c: i for i, c in enumerate(table["columns"])}
    return {
        (r[at["net"]], r[at["library"]]): {
            "precision": r[at["precision"]],
            "rate": float(r[at["samples/s"]]),
            "nll": float(str(r[at["test NLL (K)"]]).split()[0]),
        }
        for r in table["rows"]
    }


def estimators(runs: list[dict], args: argparse.Namespace) -> tuple[dict, str]:
    """vaekit's and pythae's NLL estimators on pythae's own MLP models: figures and seconds, and their line."""
    est = {
        "vaekit": statistics.mean(r["nll"] for r in runs),
        "pythae": statistics.mean(r["pythae_nll"] for r in runs),
        "vaekit_s": statistics.median(r["nll_seconds"] for r in runs),
        "pythae_s": statistics.median(r["pythae_nll_seconds"] for r in runs),
    }
    est["ratio"], est["diff"] = est["pythae_s"] / est["vaekit_s"], est["vaekit"] - est["pythae"]
    line = (
        f"pythae's get_nll on its own models: {est['pythae']:.2f} nats in {est['pythae_s']:.1f} s; "
        f"vaekit's estimator on the same models: {est['vaekit']:.2f} nats in {est['vaekit_s']:.1f} s "
        f"(K = {args.nll_k}, {args.nll_items} test images)"
    )
    return est, line


def checks(rows: dict, est: dict) -> list[str]:
    """The issue's targets, each with its measured figure, printed and returned."""
    v, p = rows[("mlp", "vaekit")], rows[("mlp", "pythae")]
    fast = fastest_peer(rows, "mlp")
    lines = [
        (
            v["rate"] / fast["rate"] >= 4,
            f"training speed vaekit / fastest pythae variant {v['rate'] / fast['rate']:.2f}x "
            f"(target >= 4x); vaekit / pythae dynamic {v['rate'] / p['rate']:.2f}x",
        ),
        (v["nll"] <= p["nll"] + 0.3, f"test NLL vaekit {v['nll']:.2f} vs pythae {p['nll']:.2f} (target <= +0.3)"),
        (
            v["gflops"] >= 0.5 * v["limit"],
            f"vaekit reaches {100 * v['gflops'] / v['limit']:.0f}% of the {v['precision']} matmul rate (target >= 50%)",
        ),
        (
            est["ratio"] >= 3,
            f"NLL estimator on pythae's model: vaekit {est['vaekit_s']:.1f} s, pythae get_nll "
            f"{est['pythae_s']:.1f} s: {est['ratio']:.1f}x (target >= 3x)",
        ),
        (
            abs(est["diff"]) <= 0.5,
            f"same model, two estimators: {est['vaekit']:.2f} vs {est['pythae']:.2f} nats (target within 0.5)",
        ),
        (v["peak"] <= p["peak"], f"peak memory vaekit {v['peak']:.0f} MiB vs pythae {p['peak']:.0f} MiB"),
    ]
    lines = [f"[{'x' if ok else ' '}] {text}" for ok, text in lines]
    print("\n" + "\n".join(f"- {line}" for line in lines))
    return lines


COUNTS = ("epochs", "conv_epochs", "rounds", "nll_items", "nll_k", "conv_nll_k")  # the budget: each >= 1
NOTES = [
    "Same networks (MLP 784-400-400-20 or vaekit's conv nets), Bernoulli likelihood, Adam lr 1e-3, batch 128, "
    "dynamically binarised Fashion-MNIST, same seed; each training in its own process, libraries alternated "
    "round by round.",
    "pythae binarises per item in its dataset; pythae-fixed binarises once up front (pythae's fastest setting, "
    "against which the speed target is judged).",
    "s/epoch: median over rounds of the epochs after the first (all of one); GFLOP/s: matmul/conv FLOPs of a "
    "training step counted by torch; % of matmul limit: of torch.mm on 2048 x 2048 at the run's precision.",
    "test NLL: vaekit's importance-weighted estimator (float32, K samples) on both libraries' trained models; "
    "peak MiB: resident set on the CPU, allocated memory on CUDA.",
]


def parse(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, checked before the matmul probe: --nets from mlp and conv, counts of at least 1."""
    args = ap.parse_args()
    args.nets = common.choices(ap, "--nets", args.nets, ("mlp", "conv"))
    small = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in COUNTS and v < 1]
    if small:
        ap.error(f"{', '.join(small)}: each must be at least 1")
    common.budget(ap, args, *COUNTS)
    return args


def main() -> None:
    ap = runner.parser(__doc__)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--conv-epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="trainings per library and net, alternated")
    ap.add_argument("--nll-items", type=int, default=1000)
    ap.add_argument("--nll-k", type=int, default=1000)
    ap.add_argument("--conv-nll-k", type=int, default=100)
    ap.add_argument("--nets", default="mlp,conv", help="comma-separated, from mlp, conv")
    ap.add_argument("--precision", default="auto", help="vaekit's train.precision (auto, fp32, bf16)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 1 round, 100 test images, K = 100")
    ap.add_argument("--json", help="the result (default: benchmarks/results/peer.json)")
    ap.add_argument("--rehead", metavar="JSON", help="recompute a written result's headline from its table; no run")
    args = parse(ap)
    if args.rehead:
        common.rewrite(args.rehead, headline=headline(stored_rows(json.loads(Path(args.rehead).read_text()))))
        return
    runner.need_peers("peer", "pythae")
    if args.quick:
        args.epochs, args.conv_epochs, args.rounds, args.nll_items, args.nll_k, args.conv_nll_k = 1, 1, 1, 100, 100, 20
    torch.set_num_threads(args.threads) if args.threads else None
    rates = {"fp32": matmul_rate(torch.float32, args.device), "bf16": matmul_rate(torch.bfloat16, args.device)}
    machine = (
        f"{args.device}, {torch.get_num_threads()} threads: matmul {rates['fp32']:.0f} GFLOP/s fp32, "
        f"{rates['bf16']:.0f} GFLOP/s bf16 (2048 x 2048)"
    )
    print(machine, flush=True)
    k = {"mlp": args.nll_k, "conv": args.conv_nll_k}
    rows, raw = {}, {}
    for net in args.nets:
        libs = ["vaekit", "pythae", "pythae-fixed"] if net == "mlp" and not args.quick else ["vaekit", "pythae"]
        for r in range(args.rounds):
            for lib in libs if r % 2 == 0 else libs[::-1]:
                raw.setdefault((net, lib), []).append(spawn(lib, net, args, k[net]))
        for lib in libs:
            rows[(net, lib)] = summarise(raw[(net, lib)], rates)
    tables, notes = [table(rows, k, args)], [*NOTES, machine]
    if ("mlp", "pythae") in raw:
        est, line = estimators(raw[("mlp", "pythae")], args)
        print("\n" + line)
        notes += [line, *checks(rows, est)]
    common.write("peer", "vaekit against pythae on the same VAE", headline(rows), tables, notes, out=args.json)


if __name__ == "__main__":
    runner.entry(main)
