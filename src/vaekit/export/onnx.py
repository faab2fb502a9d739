"""ONNX export of a run's encoder (x -> loc, scale of q(z|x)) and decoder (z -> mean of p(x|z)), checked in onnxruntime.

Both graphs take a dynamic batch axis; conditional models take labels ``y`` (B,) int64 as a second input. The
encoder of a flow posterior (its scale estimated by drawing) and a decoder whose mean is drawn are refused.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli, Independent

from .. import files
from ..core.autoregressive import LocalARBernoulli
from ..core.contract import VAEModule, latent_size
from ..errors import VaekitError
from ..io import atomic_write, run_lock
from ..models.posteriors import FlowPosterior
from ..runs import Run

PARTS = ("encoder", "decoder", "both")
TOLERANCE = 1e-4  # max |onnxruntime - torch| accepted on the check inputs, relative to max(1, |torch|)


class EncoderGraph(nn.Module):
    """x (B, *shape) [, y (B,)] -> loc (B, D), scale (B, D) of q(z|x)."""

    def __init__(self, model: VAEModule):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        qz = self.model.encode(x, y)
        return qz.mean, qz.stddev


class DecoderGraph(nn.Module):
    """z (B, D) [, y (B,)] -> mean of p(x|z) (B, *shape)."""

    def __init__(self, model: VAEModule):
        super().__init__()
        self.model = model

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        px = self.model.decode(z, y)
        base = px.base_dist if isinstance(px, Independent) else px
        return cb_mean(base.probs, base._lims) if isinstance(base, ContinuousBernoulli) else px.mean


def cb_mean(probs: Tensor, lims: tuple[float, float]) -> Tensor:
    """``ContinuousBernoulli.mean`` (B, *shape) by torch's formula, in float64, its unstable region (probs near
    1/2: a Taylor series) found by ``|`` of comparisons rather than torch's max of booleans (onnxruntime refuses)."""
    p = probs.double()  # the two terms nearly cancel close to the unstable region: float32 loses ~1e-3 there
    stable = (p <= lims[0]) | (p > lims[1])
    cut = torch.where(stable, p, p.new_tensor(lims[0]))  # 0-d: full_like is traced as a constant of the trace's batch
    mus = cut / (2.0 * cut - 1.0) + 1.0 / (torch.log1p(-cut) - torch.log(cut))
    x = p - 0.5
    return torch.where(stable, mus, 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x * x) * x).to(probs.dtype)


def example_inputs(run: Run, part: str, n: int, seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs for ``part``: x ~ U(0, 1) (n, *shape) or z ~ N(0, I) (n, D), plus labels (n,) if conditional."""
    g = torch.Generator().manual_seed(seed)
    model = run.model
    if part == "encoder":
        first = torch.rand(n, *run.config.model.input_shape, generator=g)
    else:
        first = torch.randn(n, latent_size(model), generator=g)
    if not model.needs_labels:
        return (first,)
    return first, torch.randint(0, run.config.model.num_classes, (n,), generator=g)


def _names(run: Run, part: str) -> tuple[list[str], list[str]]:
    inputs = ["x" if part == "encoder" else "z"] + (["y"] if run.model.needs_labels else [])
    return inputs, (["loc", "scale"] if part == "encoder" else ["mean"])


def export_part(run: Run, part: str, path: Path, opset: int = 17) -> Path:
    """Write ``part`` ('encoder' or 'decoder') of the run's model as ONNX with a dynamic batch axis, atomically,
    with the digest of the weights in its metadata. The run's model is left as it was (a copy is traced)."""
    import onnx

    graph = (EncoderGraph if part == "encoder" else DecoderGraph)(copy.deepcopy(run.model).cpu().eval())
    inputs, outputs = _names(run, part)
    args = example_inputs(run, part, 2)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad(), _quiet(), _no_fastpath():
            warnings.simplefilter("ignore")  # tracer warnings about the label checks, frozen at trace time
            try:
                torch.onnx.export(
                    graph,
                    args,
                    str(tmp),
                    input_names=inputs,
                    output_names=outputs,
                    opset_version=opset,
                    dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
                    dynamo=False,
                )
            except OSError:
                raise  # a disk that refuses the file: atomic_write names it
            except Exception as e:  # noqa: BLE001 - an operator ONNX lacks, or a graph the tracer cannot take
                raise VaekitError(f"the {part} cannot be exported to ONNX: {_reason(e)}") from None
        proto = onnx.load(str(tmp))
        proto.metadata_props.add(key=files.DIGEST, value=run.digest)
        fixed_sizes(proto, graph, args)
        onnx.save(proto, str(tmp))

    return atomic_write(path, write)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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
def _no_fastpath() -> Iterator[None]:
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


def _reason(e: BaseException) -> str:
    """An error's first line, without torch's request for a pull request or onnxruntime's prefix, source paths
    and C++ signatures."""
    text = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    text = text.split(". Please")[0]
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Non-zero status code returned while )?", "", text)
    text = " ".join(re.sub(r"\S*onnxruntime_src\S*|void onnxruntime::\S+\([^)]*\)", "", text).split())
    return text if len(text) <= 300 else text[:297] + "..."


@torch.no_grad()
def fixed_sizes(proto, graph: torch.nn.Module, args: tuple) -> None:
    """Give the outputs' dims after the batch their sizes, where the tracer left names (Expandloc_dim_1)."""
    got = graph(*args)
    for out, t in zip(proto.graph.output, got if isinstance(got, tuple) else (got,)):
        for dim, size in list(zip(out.type.tensor_type.shape.dim, t.shape))[1:]:
            dim.dim_value = int(size)  # a oneof: the name goes


def _session(path: Path, threads: int = 0):
    try:
        import onnxruntime as ort
    except ImportError:
        raise VaekitError("ONNX export needs onnx and onnxruntime: pip install 'vaekit[onnx]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: a failure is raised, not also logged on stderr
    opts.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@torch.no_grad()
def check_part(run: Run, part: str, path: Path, n: int = 100) -> float:
    """Max |onnxruntime - torch| over ``n`` random inputs; above ``TOLERANCE`` it is an error."""
    graph = (EncoderGraph if part == "encoder" else DecoderGraph)(copy.deepcopy(run.model).cpu().eval())
    args = example_inputs(run, part, n, seed=1)
    want = graph(*args)
    want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
    inputs, _ = _names(run, part)
    try:
        got = _session(path).run(None, {name: a.numpy() for name, a in zip(inputs, args)})
    except VaekitError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime's own errors (a size the trace fixed, an operator it lacks)
        raise VaekitError(f"{path}: onnxruntime cannot run the exported {part} on {n} inputs: {_reason(e)}") from None
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    scale = max(1.0, *(float(np.abs(w).max()) for w in want))  # a table's own units can be large
    if not diff <= TOLERANCE * scale:  # also catches NaN
        raise VaekitError(f"{path}: onnxruntime differs from torch by {diff:.3g} (> {TOLERANCE:g})")
    return diff


def export_onnx(run: Run, out: str | Path | None = None, part: str = "both", n_check: int = 100) -> dict[str, dict]:
    """Export and check ``part`` into ``out`` (default: the run folder) -> {part: {"path", "bytes", "max_abs_diff"}}."""
    if part not in PARTS:
        raise VaekitError(f"part {part!r}: expected one of {', '.join(PARTS)}", key="part")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise VaekitError("ONNX export needs onnx and onnxruntime: pip install 'vaekit[onnx]'") from None
    out = Path(out) if out else run.folder
    if part != "encoder":
        refuse_drawn_mean(run)
    if part != "decoder":
        refuse_estimated_scale(run)
    result, made, written = {}, not out.exists(), []
    try:
        with run_lock(out):
            for name in ("encoder", "decoder") if part == "both" else (part,):
                path = out / (files.ENCODER_ONNX if name == "encoder" else files.DECODER_ONNX)
                written.append(export_part(run, name, path))
                diff = check_part(run, name, path, n_check)
                result[name] = {"path": path, "bytes": path.stat().st_size, "max_abs_diff": diff}
    except BaseException:
        for path in written:  # a graph that failed its check, and the part exported beside it: not kept
            path.unlink(missing_ok=True)
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a refused export leaves no empty folder behind
        raise
    return result


def refuse_drawn_mean(run: Run) -> None:
    """One line for a decoder whose mean of p(x|z) is estimated by drawing (a local autoregressive p(x|z))."""
    model = run.model
    with torch.no_grad():
        px = model.decode(*example_inputs(run, "decoder", 1))
    if isinstance(px, LocalARBernoulli):
        raise VaekitError(
            "the decoder's p(x|z) is local autoregressive (model.deep_ar_channels): its mean is estimated by drawing "
            "pixel by pixel, which an ONNX graph does not do; export the encoder alone (--part encoder)"
        )


def refuse_estimated_scale(run: Run) -> None:
    """One line for an encoder whose scale of q(z|x) is estimated by drawing (a flow posterior), naming what works."""
    with torch.no_grad():
        qz = run.model.encode(*example_inputs(run, "encoder", 1))
    if isinstance(qz, FlowPosterior):
        raise VaekitError(
            f"the encoder's q(z|x) is a flow posterior (model.posterior {run.config.model.posterior}): its scale has "
            "no closed form and is estimated by drawing, which an ONNX graph does not do; export the decoder alone "
            "(--part decoder), and write the codes with vaekit encode"
        )


def ort_decode_ms(run: Run, path: str | Path, batch: int, repeats: int = 50, threads: int = 1) -> float:
    """Median onnxruntime time per image (ms) decoding batches of ``batch`` codes with the exported decoder.

    One thread by default: on a shared machine a second intra-op thread mostly waits for a core.
    """
    sess = _session(Path(path), threads)
    inputs, _ = _names(run, "decoder")
    feed = {name: a.numpy() for name, a in zip(inputs, example_inputs(run, "decoder", batch))}
    sess.run(None, feed)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / batch
