"""A bounded load test of ``vaekit explore``: N decode requests from C concurrent keep-alive clients on 127.0.0.1.

    python benchmarks/explore_load.py runs/demo --requests 2000 --clients 8

Starts the explorer in-process on a free port, sends random codes (z ~ N(0, I), a random class for a
conditional run), and prints errors and the p50 / p99 / max latency of the whole request (client side) as a table,
written as JSON (``--json``, default benchmarks/results/explore_load.json) with the command, the machine, torch,
the commit and the date.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time


def load_test(port: int, d: int, num_classes: int = 0, requests: int = 2000, clients: int = 8, seed: int = 0) -> dict:
    """Send ``requests`` POST /api/decode from ``clients`` threads -> {"n", "errors", "p50_ms", "p99_ms", ...}."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(k: int, n: int) -> None:
        rng = random.Random(seed * 1000 + k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(n):
            body = {"z": [rng.gauss(0, 1) for _ in range(d)]}
            body |= {"y": rng.randrange(num_classes)} if num_classes else {}
            start = time.perf_counter()
            try:
                err = decode(conn, body)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                err, conn = repr(e), http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                latencies.append(time.perf_counter() - start)
                errors.extend([err] if err else [])
        conn.close()

    share = [requests // clients + (k < requests % clients) for k in range(clients)]
    threads = [threading.Thread(target=client, args=(k, n)) for k, n in enumerate(share)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(latencies, errors, time.perf_counter() - start)


def decode(conn: http.client.HTTPConnection, body: dict) -> str | None:
    """One POST /api/decode of ``body`` on ``conn``: None when it answers 200 with a PNG, else the status."""
    conn.request("POST", "/api/decode", json.dumps(body).encode(), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()  # read whatever the status, so the connection can carry the next request
    ok = resp.status == 200 and json.loads(data)["image"].startswith("data:image/png")
    return None if ok else f"status {resp.status}"


def summary(latencies: list[float], errors: list[str], wall: float) -> dict:
    """The load test's figures from its latencies (seconds) and errors, ``wall`` seconds in all."""
    ms = sorted(x * 1000 for x in latencies)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return {
        "n": len(ms),
        "errors": errors,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "max_ms": ms[-1],
        "requests_per_s": len(ms) / wall,
    }


def report(r: dict, args: argparse.Namespace, d: int, num_classes: int) -> None:
    """The load test's table, headline and notes: printed and written."""
    import common

    table = common.table(
        f"POST /api/decode on 127.0.0.1, {args.clients} concurrent keep-alive clients",
        ["requests", "clients", "errors", "p50 (ms)", "p99 (ms)", "max (ms)", "requests/s"],
        [
            [
                r["n"],
                args.clients,
                len(r["errors"]),
                round(r["p50_ms"], 2),
                round(r["p99_ms"], 2),
                round(r["max_ms"], 2),
                round(r["requests_per_s"]),
            ]
        ],
    )
    headline = (
        f"the explorer answers {r['n']} decode requests from {args.clients} clients at "
        f"{r['requests_per_s']:.0f} requests/s: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"{len(r['errors'])} errors"
    )
    notes = [
        f"`vaekit explore` served in-process (one torch thread) for the run {args.run} (z: {d} dims"
        + (f", {num_classes} classes" if num_classes else "")
        + "); random codes z ~ N(0, I)"
        + (", a random class each" if num_classes else "")
        + "; latency of the whole request, client side."
    ]
    if r["errors"]:
        print("first errors:", r["errors"][:5])
        notes.append(f"first errors: {r['errors'][:5]}")
    common.write("explore_load", "Explorer load test", headline, [table], notes, out=args.json)


def main() -> None:
    import common
    import runner
    import torch

    from vaekit.viz.explore import load_explorer, make_server

    p = runner.parser(__doc__)
    p.add_argument("run")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--json", help="the result (default: benchmarks/results/explore_load.json)")
    args = p.parse_args()
    common.budget(p, args, "requests", "clients")
    torch.set_num_threads(1)  # as `vaekit explore` does
    explorer = load_explorer(args.run)
    server = make_server(explorer, 0, token="")  # the load alone: no token to send
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = load_test(server.server_address[1], explorer.d, explorer.info()["num_classes"], args.requests, args.clients)
    finally:
        server.shutdown()
        server.server_close()
    report(r, args, explorer.d, explorer.info()["num_classes"])


if __name__ == "__main__":
    import runner

    runner.entry(main)
