"""The shipping verbs: export (ONNX), explore (a local web page), and models (the families at a glance)."""

from __future__ import annotations

import argparse
import signal

from ..errors import VaekitError
from .examples import EXAMPLES
from .verbs import arg, count, positive, split_arg, verb


@verb(
    "export",
    "export the encoder and/or decoder as ONNX, checked in onnxruntime",
    arg("run", help="run folder"),
    arg("--format", default="onnx", choices=["onnx"]),
    arg(
        "--part",
        choices=["encoder", "decoder", "both"],
        help="default: both where both can be exported, else the one that can (a line says why the other is not)",
    ),
    arg("--out", help="output folder (default: the run folder); the parts exported there are replaced"),
    examples=("vaekit export runs/d", "vaekit export runs/d --part decoder --out exported/"),
)
def cmd_export(args: argparse.Namespace) -> None:
    from ..export.onnx import check_inputs, export_onnx, ort_decode_ms
    from ..runs import Run

    if args.out and args.out.lower().rstrip("/").endswith(".onnx"):  # not a folder named dec.onnx
        raise VaekitError(
            f"--out {args.out}: --out is a folder: the files are encoder.onnx and decoder.onnx (--part picks them)"
        )
    run = Run.load(args.run)
    part, skipped = parts_of(run, args.part)
    result = export_onnx(run, args.out, part)
    for part, r in result.items():
        print(
            f"{r['path']}: {r['bytes'] / 1024:.1f} KiB, max |onnxruntime - torch| = {r['max_abs_diff']:.2g} "
            f"on {check_inputs(run, part)}"
        )
    if "decoder" in result:
        ms = [ort_decode_ms(run, result["decoder"]["path"], b) for b in (1, 64)]
        unit = {1: "row", 3: "image"}.get(len(run.config.model.input_shape), "item")  # a table's, a signal's
        print(f"onnxruntime decode (1 thread): {ms[0]:.3g} ms/{unit} at batch 1, {ms[1]:.3g} ms/{unit} at batch 64")
    if skipped:
        print(skipped)


INSTEAD = {"encoder": "vaekit encode writes the codes", "decoder": "vaekit sample draws the items"}


def parts_of(run, asked: str | None) -> tuple[str, str]:
    """(the part to export, a line naming the part left out and why, or ""): --part not given is both where both can
    be exported, else the one that can; a part asked for that cannot be is refused, naming the --part that can."""
    from ..export.probes import decoder_refusal, encoder_refusal

    checks = {"encoder": encoder_refusal, "decoder": decoder_refusal}
    why = {p: w for p, check in checks.items() if asked in (None, "both", p) and (w := check(run))}
    if not why:
        return asked or "both", ""
    if len(why) == 2:
        raise VaekitError(f"neither part can be exported: {why['encoder']}; and {why['decoder']}")
    part = next(iter(why))
    other = "decoder" if part == "encoder" else "encoder"
    if asked is None:
        return other, f"{part}.onnx not written: {why[part]} ({INSTEAD[part]})"
    raise VaekitError(f"--part {asked}: {why[part]}: export the {other} alone with --part {other} ({INSTEAD[part]})")


@verb(
    "explore",
    "a latent-space explorer page on http://127.0.0.1:PORT",
    arg("run", help="run folder"),
    arg("--port", type=count, default=8765, help="0 picks a free port"),
    arg("--data", help="data spec for the items and the dim order (default: the run's own data)"),
    split_arg(),
    examples=EXAMPLES["explore"],
)
def cmd_explore(args: argparse.Namespace) -> None:
    import torch

    from ..viz.explore import open_explorer

    # one image per request: a second intra-op thread only adds contention (88 ms vs 0.8 ms p50 on a busy
    # 2-core machine); concurrency comes from the server's request threads
    torch.set_num_threads(1)
    if not 0 <= args.port <= 65535:
        raise VaekitError(f"--port {args.port}: expected 0..65535")
    server = open_explorer(args.run, args.port, args.data, args.split, device=args.device)  # port bound, then data
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a service manager's stop ends it as Ctrl-C does
    try:
        print(f"explorer on {server.url} (open this URL: its token lets the page in; Ctrl-C stops it)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how it ends, not an interrupted training run
        host, origin = server.refused["Host"], server.refused["Origin"]
        print(f"explorer stopped (refused {host} request{'s' * (host != 1)} by Host, {origin} by Origin)")
        if server.refused_token:
            print(f"refused {server.refused_token} request(s) without the token")
    finally:
        server.server_close()


@verb(
    "models",
    "list the model families with their parameter counts, and every axis of the zoo",
    arg("--shape", default="1,28,28", help="data item shape: C,H,W or D (default 1,28,28)"),
    arg("--classes", type=count, default=10, help="number of classes for conditional families"),
)
def cmd_models(args: argparse.Namespace) -> None:
    from ..data.limits import usable_memory
    from ..models.catalog import axes_table, family_table
    from ..samplers import SAMPLERS

    table, built = family_table(parse_shape(args.shape), positive(args.classes, "--classes"), usable_memory())
    print(table)
    print()  # then every axis of the zoo and its choices
    print(axes_table({"sampler": ("vaekit sample --sampler", SAMPLERS)}))
    print()  # then what the families refuse on those axes
    print(refused_objectives())
    if not built:
        raise VaekitError(f"--shape {args.shape}: no family can be built on it here (the table says why)")


def refused_objectives() -> str:
    """One line: the objectives each family refuses (``vaekit.config.CONFLICTS``, each tried with the family at
    their defaults), and the axes only the vae family has."""
    from ..config import RunConfig, refuse_conflicts
    from ..core.objectives_zoo import OBJECTIVES
    from ..models.catalog import MODELS

    said = []
    for family in sorted(MODELS):
        refused = []
        for name in OBJECTIVES:
            cfg = RunConfig()
            cfg.model.family, cfg.train.objective = family, name
            try:
                refuse_conflicts(cfg)
            except VaekitError:
                refused.append(name)
        rest = [name for name in OBJECTIVES if name not in refused]
        if refused:
            said.append(f"{family}: {'every one but ' + ', '.join(rest) if len(rest) == 1 else ', '.join(refused)}")
    return (
        f"Objectives a family refuses (vaekit.config.CONFLICTS): {'; '.join(said)}. The prior and posterior axes are "
        "the vae family's: other families refuse them."
    )


def parse_shape(text: str) -> list[int]:
    """'1,28,28' -> [1, 28, 28]: a (C, H, W) or (D,) item shape of positive sizes."""
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) not in (1, 3) or min(shape) <= 0:
        raise VaekitError(f"--shape {text!r}: expected C,H,W or D with positive sizes")
    return shape
