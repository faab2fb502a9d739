"""The torch modules an export traces (x -> loc, scale of q(z|x); z -> mean of p(x|z), and a Gaussian's scale),
with labels outside the classes made NaN, and how they are traced: nothing printed, torch's fused attention path
off, the outputs' sizes filled in."""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli, Distribution, Independent, Normal

from ..core.cbernoulli import LogitContinuousBernoulli
from ..core.contract import VAEModule
from ..core.discretized import channels, paths
from ..core.tabular import Tabular


class EncoderGraph(nn.Module):
    """x (B, *shape) [, y (B,)] -> loc (B, D), scale (B, D) of q(z|x); NaN rows where y is outside 0..classes-1
    (``classes`` > 0: the model reads label 0 there instead, so neither ONNX's OneHot nor Gather wraps it)."""

    def __init__(self, model: VAEModule, classes: int = 0):
        super().__init__()
        self.model, self.classes = model, classes

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, valid = in_range(y, self.classes)
        qz = self.model.encode(x, y)
        return masked(qz.mean, valid), masked(qz.stddev, valid)


class DecoderGraph(EncoderGraph):
    """z (B, D) [, y (B,)] -> mean of p(x|z) (B, *shape); NaN items where y is outside 0..classes-1. The
    parameters exported beside the mean (``params``: a Gaussian's scale) are kept in ``kept``, from the same
    p(x|z), for ``Decoder``."""

    kept: tuple[Tensor, ...] = ()

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        y, valid = in_range(y, self.classes)
        px = self.model.decode(z, y)
        self.kept = tuple(masked(t, valid) for t in params(px).values())
        return masked(own_mean(px), valid)


class Decoder(nn.Module):
    """The exported decoder: z (B, D) [, y (B,)] -> ``DecoderGraph``'s mean (B, *shape), then the parameters it
    kept beside it (each (B, *shape)), where p(x|z) has any."""

    def __init__(self, graph: DecoderGraph):
        super().__init__()
        self.graph = graph

    @property
    def model(self) -> VAEModule:
        return self.graph.model

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor | tuple[Tensor, ...]:
        mean = self.graph(z, y)
        return (mean, *self.graph.kept) if self.graph.kept else mean


def params(px: Distribution) -> dict[str, Tensor]:
    """What the decoder gives beside p(x|z)'s mean (B, *shape): a Gaussian's standard deviation ``scale``, that
    of a table's numbers with 0 in its one-hot slots (their categories are drawn from the mean's probabilities);
    nothing for another p(x|z)."""
    base = px
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, Tabular):
        return {"scale": torch.cat([base.scale, (base.logits * 0).abs()], -1)}  # not zeros_like: a trace fixes B
    if isinstance(base, Normal):
        return {"scale": base.scale}
    return {}


def output_names(likelihood: str) -> list[str]:
    """The decoder's outputs for p(x|z) of ``likelihood`` (a run's model.likelihood): mean, then ``params``'."""
    return ["mean", "scale"] if likelihood == "gaussian" else ["mean"]


GAUSS = "-log(scale) - log(2 pi) / 2 - ((x - mean) / scale)^2 / 2"
USE = {  # per likelihood: how x is drawn from p(x|z) and log p(x|z) scored with the decoder's outputs alone
    "bernoulli": {
        "draw": "x = 1 with probability mean, else 0, value by value",
        "score": "log p(x|z) = sum over the values of x log(mean) + (1 - x) log(1 - mean) (for grey levels x in "
        "[0, 1] too: the cross-entropy vaekit trains on)",
    },
    "gaussian": {
        "draw": "x = mean + scale * e, e ~ N(0, 1) value by value",
        "score": f"log p(x|z) = sum over the values of {GAUSS}",
    },
    "table": {
        "draw": "each number slot x = mean + scale * e, e ~ N(0, 1); each one-hot code (a category, a column's "
        "modes, a gap indicator) a 1 in one slot drawn with the probabilities mean holds in its slots, 0 in the "
        "others; vaekit's sample_table draws so, then clips each number to its column's training range "
        "(vaekit_table's min, max) and rounds it (decimals; step for dates and times)",
        "score": f"log p(x|z) = the sum over the number slots of {GAUSS}, plus for each one-hot code the log of "
        "the probability mean holds in the slot where x's code has its 1",
    },
    "cbernoulli": {
        "why": "only the mean is exported: the continuous Bernoulli's draws and its log-density, x l - softplus(l) "
        "+ log(l / tanh(l / 2)), need its logits l, which the graph does not give (the mean rises with l, so l can "
        "be solved for, losing precision as the mean nears 0 or 1); draw and score with vaekit"
    },
    "discretized_logistic": {
        "why": "only the mean is exported: the mixture's weights, locations and scales (and the channels' "
        "coefficients) are not, so the graph can neither draw from p(x|z) nor score it; draw and score with vaekit "
        "(its run.sample gives the means this graph gives)"
    },
}


def use(likelihood: str, table: bool) -> dict[str, object]:
    """How ``likelihood``'s p(x|z) is drawn from and scored with the decoder's outputs: {exact: True, draw, score},
    or {exact: False, why} where the graph does not give what that needs."""
    said = USE["table" if table else likelihood] if table or likelihood in USE else None
    said = said or {
        "why": f"only the mean of the run's own p(x|z) ({likelihood}) is exported; draw and score with vaekit"
    }
    return {"exact": "why" not in said, **said}


def mean_memory(shape: tuple[int, ...], components: int) -> dict[str, object] | None:
    """For a colour discretized logistic decoder: onnxruntime's memory per item decoded (the graph computes the
    mean over every pixel at once, where vaekit goes in chunks; ~24 bytes per pixel, component and path: measured
    11.6 MiB per 3 x 32 x 32 image at K = 5) and the batch that keeps it within 1 GiB; None for other decoders."""
    c = channels(shape)
    if c < 2:
        return None
    per = 24 * components * (math.prod(shape) // c) * paths(c)
    return {
        "bytes_per_item": per,
        "batch_within_1_gib": max(1, (1 << 30) // per),
        "what": "onnxruntime's memory grows by about bytes_per_item for each item of a batch (the colour mean is "
        "computed over every pixel at once): decode in batches of batch_within_1_gib or fewer to stay within 1 GiB",
    }


def own_mean(px: Distribution) -> Tensor:
    """p(x|z)'s own mean (B, *shape): vaekit's continuous Bernoulli's is written in the logits (torch.where, no
    frozen probs); torch's own ContinuousBernoulli (a user's p(x|z)) takes a max of booleans onnxruntime refuses,
    so its formula is written out by ``cb_mean`` (in float64, where torch's float32 loses up to 3e-3)."""
    base = px
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, ContinuousBernoulli) and not isinstance(base, LogitContinuousBernoulli):
        return cb_mean(base.probs, base._lims)
    return px.mean


def own_outputs(model: VAEModule, part: str, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """What the model itself gives for ``part`` at ``args`` (inputs in range), outside any graph: (loc, scale) of
    q(z|x), or p(x|z)'s mean and ``params``, which an export is checked against."""
    if part == "encoder":
        qz = model.encode(*args)
        return qz.mean, qz.stddev
    px = model.decode(*args)
    return (own_mean(px), *params(px).values())


def in_range(y: Tensor | None, classes: int) -> tuple[Tensor | None, Tensor | None]:
    """Labels (B,) -> (those in 0..classes-1, the others as 0; which were in range (B,) bool), or (y, None)."""
    if y is None or classes <= 0:
        return y, None
    valid = (y >= 0) & (y < classes)
    return torch.where(valid, y, y.new_tensor(0)), valid  # 0-d: a constant of no batch size


def masked(t: Tensor, valid: Tensor | None) -> Tensor:
    """(B, ...) with the rows where ``valid`` (B,) is False set to NaN."""
    if valid is None:
        return t
    return torch.where(valid.view(-1, *[1] * (t.dim() - 1)), t, t.new_tensor(float("nan")))


def cb_mean(probs: Tensor, lims: tuple[float, float]) -> Tensor:
    """``ContinuousBernoulli.mean`` (B, *shape) by torch's formula, in float64, its unstable region (probs near
    1/2: a Taylor series) found by ``|`` of comparisons rather than torch's max of booleans (onnxruntime refuses)."""
    p = probs.double()  # the two terms nearly cancel close to the unstable region: float32 loses ~1e-3 there
    stable = (p <= lims[0]) | (p > lims[1])
    cut = torch.where(stable, p, p.new_tensor(lims[0]))  # 0-d: full_like is traced as a constant of the trace's batch
    mus = cut / (2.0 * cut - 1.0) + 1.0 / (torch.log1p(-cut) - torch.log(cut))
    x = p - 0.5
    return torch.where(stable, mus, 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x * x) * x).to(probs.dtype)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Nothing printed on stdout, Python's or the process's (torch's exporter logs the whole graph there, from C++,
    when it fails)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 to quiet
        saved = None
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()):
            if saved is not None:
                os.dup2(null.fileno(), 1)
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def no_fastpath() -> Iterator[None]:
    """torch's fused inference path of nn.TransformerEncoder and nn.MultiheadAttention off while tracing: its one
    operator (aten::_transformer_encoder_layer_fwd) has no ONNX form; the plain path computes the same."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    was = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(was)


@contextlib.contextmanager
def signbit_form() -> Iterator[None]:
    """torch.signbit, which torch's exporter has no ONNX form for (a standardised table's scale of its constant
    columns), written as x < 0 or 1 / x < 0 (-0.0 too) while tracing."""
    from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic

    def form(g, x):
        zero = g.op("Constant", value_t=torch.tensor(0.0))
        return g.op("Or", g.op("Less", x, zero), g.op("Less", g.op("Reciprocal", x), zero))

    register_custom_op_symbolic("aten::signbit", form, 9)
    try:
        yield
    finally:
        unregister_custom_op_symbolic("aten::signbit", 9)


@contextlib.contextmanager
def traceable() -> Iterator[None]:
    """What a trace needs of torch besides the model: its fused attention path off (``no_fastpath``) and an ONNX
    form of torch.signbit (``signbit_form``)."""
    with no_fastpath(), signbit_form():
        yield


@torch.no_grad()
def fixed_sizes(proto, graph: torch.nn.Module, args: tuple) -> None:
    """Give the outputs' dims after the batch their sizes, where the tracer left names (Expandloc_dim_1)."""
    got = graph(*args)
    for out, t in zip(proto.graph.output, got if isinstance(got, tuple) else (got,)):
        for dim, size in list(zip(out.type.tensor_type.shape.dim, t.shape))[1:]:
            dim.dim_value = int(size)  # a oneof: the name goes
