"""``vaekit models``: the registered model families and their parameter counts for a data shape."""

from __future__ import annotations

import argparse

from .errors import VaekitError

LADDER_DIMS = [32, 16]  # the table shows a 2-level ladder (z_1: 32, z_2: 16), as in benchmarks/families.py


def add_parsers(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the model families with their parameter counts")
    m.add_argument("--shape", default="1,28,28", help="data item shape: C,H,W or D (default 1,28,28)")
    m.add_argument("--classes", type=int, default=10, help="number of classes for conditional families")


def parse_shape(text: str) -> list[int]:
    """'1,28,28' -> [1, 28, 28]: a (C, H, W) or (D,) item shape of positive sizes."""
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) not in (1, 3) or min(shape) <= 0:
        raise VaekitError(f"--shape {text!r}: expected C,H,W or D with positive sizes")
    return shape


def family_table(shape: list[int], num_classes: int = 10) -> str:
    """A markdown table: each registered family with MLP (and, for images, conv) networks and default settings."""
    from .config import ModelConfig
    from .models import MODELS, build_model

    if num_classes < 1:
        raise VaekitError(f"--classes must be > 0, got {num_classes}")
    lines = [f"| family | net | latent | parameters for {'x'.join(map(str, shape))} | description |",
             "|---|---|---|---|---|"]
    for family, cls in sorted(MODELS.items()):
        dims = LADDER_DIMS if family == "ladder" else []
        for net in ("mlp", "conv") if len(shape) == 3 else ("mlp",):
            model = build_model(ModelConfig(family=family, net=net, input_shape=shape, num_classes=num_classes,
                                            latent_dims=dims))
            latent = ",".join(map(str, dims)) or str(model.latent_dims[0])
            doc = (cls.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")  # a bar would end the cell
            lines.append(f"| {family} | {net} | {latent} | {sum(p.numel() for p in model.parameters()):,} | {doc} |")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> None:
    print(family_table(parse_shape(args.shape), args.classes))


COMMANDS = {"models": cmd_models}
