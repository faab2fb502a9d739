"""The torch modules an export traces (x -> loc, scale of q(z|x); z -> mean of p(x|z)), with labels outside the
classes made NaN, and how they are traced: nothing printed, torch's fused attention path off, the outputs' sizes
filled in."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli, Distribution, Independent

from ..core.cbernoulli import LogitContinuousBernoulli
from ..core.contract import VAEModule


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
    """z (B, D) [, y (B,)] -> mean of p(x|z) (B, *shape); NaN items where y is outside 0..classes-1."""

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        y, valid = in_range(y, self.classes)
        return masked(own_mean(self.model.decode(z, y)), valid)


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
    q(z|x) or (mean of p(x|z),), which an export is checked against."""
    if part == "encoder":
        qz = model.encode(*args)
        return qz.mean, qz.stddev
    return (own_mean(model.decode(*args)),)


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


@torch.no_grad()
def fixed_sizes(proto, graph: torch.nn.Module, args: tuple) -> None:
    """Give the outputs' dims after the batch their sizes, where the tracer left names (Expandloc_dim_1)."""
    got = graph(*args)
    for out, t in zip(proto.graph.output, got if isinstance(got, tuple) else (got,)):
        for dim, size in list(zip(out.type.tensor_type.shape.dim, t.shape))[1:]:
            dim.dim_value = int(size)  # a oneof: the name goes
