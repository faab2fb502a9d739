"""The registered model families at a glance: parameter counts for a data shape, as a markdown table."""

from __future__ import annotations

from collections.abc import Mapping

from ..config import ModelConfig
from ..core import discretized
from ..errors import VaekitError
from . import MODELS, build_model
from .ladder import new_levels

LIKELIHOOD_TEXT = {  # the likelihood axis: the data each p(x|z) is for, and the decoder outputs it needs per value
    "bernoulli": "p(x|z) for binary values, or values in [0, 1] (grey images: binarised, data.binarize): one logit "
    "per value",
    "cbernoulli": "continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): p(x|z) for any value in [0, 1], "
    "normalised over [0, 1]; one parameter per value",
    "gaussian": "N(loc, scale^2) for real values (a table's standardised columns), the scale as model.scale says",
    "discretized_logistic": "p(x|z) for 8-bit data, values k / 255 in [0, 1]: a mixture of K logistics per value "
    "(K = model.likelihood_components, 5) over its 256 levels; K (C + 2) decoder outputs per value",
}


def model_key(value: object) -> str:
    """The setting that ``model=value`` gives (``vaekit.train``'s): a registered family's name sets model.family,
    anything else model.net (mlp, conv)."""
    return "model.family" if isinstance(value, str) and value in MODELS else "model.net"


def family_table(shape: list[int], num_classes: int = 10, memory: int | None = None) -> tuple[str, int]:
    """(a markdown table of each registered family with MLP (and, for images, conv) networks at default settings,
    how many rows give their figures): a family that cannot be built on ``shape`` says why in their place, one
    whose float32 weights need more than ``memory`` bytes (None: no bound) as well."""
    if num_classes < 1:
        raise VaekitError(f"num_classes must be > 0, got {num_classes}", key="classes")
    lines = [
        f"| family | net | latent | parameters for {'x'.join(map(str, shape))}, Bernoulli p(x\\|z) | description |",
        "|---|---|---|---|---|",
    ]
    built = 0
    for family, cls in sorted(MODELS.items()):
        nets: tuple[str, ...] = ("mlp", "conv") if len(shape) == 3 else ("mlp",)
        if family == "deep":  # its own residual conv networks, for images only
            nets = ("conv",) if len(shape) == 3 else ()
        for net in nets:
            latent, figures, ok = counted(family, net, shape, num_classes, memory)
            built += ok
            said = (cls.__doc__ or "").strip().splitlines() or [f"{cls.__module__}:{cls.__qualname__}"]  # no docstring
            cells = [family, net, latent, figures, said[0]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # a bar would end a cell
    return "\n".join(lines) + "\n\n" + likelihood_note(shape), built


def counted(family: str, net: str, shape: list[int], classes: int, memory: int | None) -> tuple[str, str, bool]:
    """(latent sizes, parameter count, True) of ``family`` with ``net`` at default settings on items of ``shape``,
    counted on the meta device (nothing allocated); else (latent sizes or "-", why it cannot be built here, False):
    a setting it refuses on that shape, or float32 weights of more than ``memory`` bytes."""
    import torch

    items = f"{shape[1]} x {shape[2]} images" if len(shape) == 3 else f"items of {shape[0]} values"
    try:
        cfg = new_levels(
            ModelConfig(family=family, net=net, likelihood="bernoulli", input_shape=shape, num_classes=classes)
        )  # a ladder's levels as training settles them
        try:
            with torch.device("meta"):  # shapes only: a model of 10^12 parameters is counted, not allocated
                model = build_model(cfg)
        except (RuntimeError, NotImplementedError):  # a family whose construction computes on its tensors
            model = build_model(cfg)
    except VaekitError as e:
        return "-", f"does not fit {items}: {e}", False
    except (RuntimeError, MemoryError):
        return "-", "too large to allocate here", False
    n, sizes = sum(p.numel() for p in model.parameters()), list(model.latent_dims)  # a deep model's: one per group
    latent = ",".join(map(str, cfg.latent_dims)) or (
        f"{sum(sizes)} in {len(sizes)} groups" if len(sizes) > 1 else str(sizes[0])
    )
    if memory is not None and 4 * n > memory:
        return latent, f"too large to build here ({n:,} parameters)", False
    return latent, f"{n:,}", True


def likelihood_note(shape: list[int]) -> str:
    """What the counts assume: one decoder output per value (Bernoulli), and what ``auto`` picks instead."""
    if len(shape) != 3:
        return (
            "Counted with a Bernoulli p(x|z), one decoder output per value; the Gaussian that auto picks for a table "
            "adds a learned scale per column."
        )
    n = discretized.n_params(tuple(shape), 5)
    return (
        "Counted with a Bernoulli p(x|z), one decoder output per value. The discretized logistic mixture that auto "
        f"picks for 8-bit images (mnist5k, fashion-mnist, photos) has {n} per value (K (C + 2), K = 5): its "
        f"decoder's last layer is {n} times as wide."
    )


def axes_table(more: Mapping[str, tuple[str, Mapping[str, object]]] | None = None) -> str:
    """A markdown table of every axis of the zoo, its setting and its choices, each with its docstring's first
    line: families, priors, posteriors, likelihoods, objectives, and ``more`` (axis -> (setting, {name: entry}))."""
    from ..core.likelihoods import SUPPORT, _interval
    from ..core.objectives_zoo import OBJECTIVES
    from .posteriors import POSTERIORS
    from .priors import PRIORS

    likelihoods = {
        name: LIKELIHOOD_TEXT.get(
            name, f"p(x|z) for data in {_interval(s) if hasattr(s, 'lower_bound') else 'the reals'}"
        )
        for name, s in SUPPORT.items()
    }
    axes: dict[str, tuple[str, Mapping[str, object]]]  # axis -> (setting, {name: entry})
    axes = {
        "family": ("model.family", MODELS),
        "prior": ("model.prior", PRIORS),
        "posterior": ("model.posterior", POSTERIORS),
        "likelihood": ("model.likelihood", likelihoods),
        "objective": ("train.objective", OBJECTIVES),
        **(more or {}),
    }
    lines = ["| axis | setting | choice | what it is |", "|---|---|---|---|"]
    for axis, (setting, entries) in axes.items():
        for name, entry in entries.items():
            what = entry if isinstance(entry, str) else first_paragraph(getattr(entry, "__doc__", None) or "")
            lines.append(f"| {axis} | {setting} | {name} | {what.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def first_paragraph(doc: str) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())
