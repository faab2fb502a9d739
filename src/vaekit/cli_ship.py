"""The shipping verbs of the command line: export (ONNX) and explore (a local web page)."""

from __future__ import annotations

import argparse

from .errors import VaekitError


def add_parsers(sub) -> None:
    """Add ``export`` and ``explore`` to the ``vaekit`` sub-parsers."""
    e = sub.add_parser("export", help="export the encoder and/or decoder as ONNX, checked in onnxruntime")
    e.add_argument("run", help="run folder")
    e.add_argument("--format", default="onnx", choices=["onnx"])
    e.add_argument("--part", default="both", choices=["encoder", "decoder", "both"])
    e.add_argument("--out", help="output folder (default: the run folder)")
    x = sub.add_parser("explore", help="a latent-space explorer page on http://127.0.0.1:PORT")
    x.add_argument("run", help="run folder")
    x.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    x.add_argument("--data", help="data spec for the items and the dim order (default: the run's own data)")
    x.add_argument("--split", default="test", choices=["train", "val", "test"])


def cmd_export(args: argparse.Namespace) -> None:
    from .export import export_onnx, ort_decode_ms
    from .run import Run

    run = Run.load(args.run)
    result = export_onnx(run, args.out, args.part)
    for part, r in result.items():
        print(f"{r['path']}: {r['bytes'] / 1024:.1f} KiB, max |onnxruntime - torch| = {r['max_abs_diff']:.2g} "
              f"on 100 random inputs")
    if "decoder" in result:
        ms = [ort_decode_ms(run, result["decoder"]["path"], b) for b in (1, 64)]
        print(f"onnxruntime decode (1 thread): {ms[0]:.3f} ms/image at batch 1, {ms[1]:.4f} ms/image at batch 64")


def cmd_explore(args: argparse.Namespace) -> None:
    import torch

    from .explore import load_explorer, make_server

    # one image per request: a second intra-op thread only adds contention (88 ms vs 0.8 ms p50 on a busy
    # 2-core machine); concurrency comes from the server's request threads
    torch.set_num_threads(1)
    if not 0 <= args.port <= 65535:
        raise VaekitError(f"--port {args.port}: expected 0..65535")
    server = make_server(load_explorer(args.run, args.data, args.split), args.port)
    print(f"explorer on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how it ends, not an interrupted training run
        print("explorer stopped")
    finally:
        server.server_close()


COMMANDS = {"export": cmd_export, "explore": cmd_explore}
