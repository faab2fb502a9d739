"""The registered model families at a glance: parameter counts for a data shape, as a markdown table."""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import VaekitError
from . import MODELS, build_model

LADDER_DIMS = [32, 16]  # the table shows a 2-level ladder (z_1: 32, z_2: 16), as in benchmarks/families.py


def family_table(shape: list[int], num_classes: int = 10) -> str:
    """A markdown table: each registered family with MLP (and, for images, conv) networks and default settings."""
    if num_classes < 1:
        raise VaekitError(f"num_classes must be > 0, got {num_classes}", key="classes")
    lines = [f"| family | net | latent | parameters for {'x'.join(map(str, shape))} | description |",
             "|---|---|---|---|---|"]
    for family, cls in sorted(MODELS.items()):
        dims = LADDER_DIMS if family == "ladder" else []
        for net in ("mlp", "conv") if len(shape) == 3 else ("mlp",):
            model = build_model(ModelConfig(family=family, net=net, likelihood="bernoulli", input_shape=shape,
                                            num_classes=num_classes,
                                            latent_dims=dims))
            latent = ",".join(map(str, dims)) or str(model.latent_dims[0])
            doc = (cls.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")  # a bar would end the cell
            lines.append(f"| {family} | {net} | {latent} | {sum(p.numel() for p in model.parameters()):,} | {doc} |")
    return "\n".join(lines)
