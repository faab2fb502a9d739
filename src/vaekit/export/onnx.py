"""ONNX export of a run's encoder (x -> loc, scale of q(z|x)) and decoder (z -> mean of p(x|z), and a Gaussian's
scale), checked in onnxruntime.

Both graphs take a dynamic batch axis; conditional models take labels ``y`` (B,) int64 in 0..K-1 as a second
input (outside it every output is NaN). The encoder of a flow posterior (its scale estimated by drawing) and a
decoder whose mean is drawn are refused. Both graphs are written and checked beside the outputs as temporary
files, and renamed into place only once every part passes: a failed export leaves the folder as it was.
"""

from __future__ import annotations

import contextlib
import copy
import re
import secrets
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import files
from ..errors import VaekitError
from ..io import atomic_write, run_lock
from ..runs import Run
from ..training.distributed import warn
from .graphs import Decoder, DecoderGraph, EncoderGraph, fixed_sizes, output_names, own_outputs, quiet, traceable
from .meta import metadata
from .place import check_destinations, new_folders, replace_all
from .probes import N_CHECK, TRACE_BATCH, decoder_refusal, encoder_refusal
from .probes import check_inputs as check_inputs  # re-exported, as are example_inputs and model_device
from .probes import example_inputs as example_inputs
from .probes import model_device as model_device

PARTS = ("encoder", "decoder", "both")
TOLERANCE = 1e-4  # max |onnxruntime - torch| accepted on the check inputs, element by element, / max(1, |torch|)


def graph_of(run: Run, part: str) -> EncoderGraph | Decoder:
    """The graph of ``part`` on a CPU copy of the run's model (the run's own is left as it is)."""
    classes = run.config.model.num_classes if run.model.needs_labels else 0
    model = copy.deepcopy(run.model).cpu().eval()
    return EncoderGraph(model, classes) if part == "encoder" else Decoder(DecoderGraph(model, classes))


def _names(run: Run, part: str) -> tuple[list[str], list[str]]:
    inputs = ["x" if part == "encoder" else "z"] + (["y"] if run.model.needs_labels else [])
    return inputs, (["loc", "scale"] if part == "encoder" else output_names(run.config.model.likelihood))


def export_part(run: Run, part: str, path: Path, opset: int = 17, shown: Path | None = None) -> Path:
    """Write ``part`` ('encoder' or 'decoder') of the run's model as ONNX with a dynamic batch axis, atomically,
    with the weights' digest and what the graph takes and gives (``export.meta``) in its metadata. The run's
    model is left as it was (a copy is traced). ``shown``: the file a caller's temporary ``path`` becomes, which a
    disk that refuses the write is said of."""
    import onnx

    graph = graph_of(run, part)
    inputs, outputs = _names(run, part)
    args = example_inputs(run, part, TRACE_BATCH)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad(), quiet(), traceable():
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
        for key, value in metadata(run, part).items():
            proto.metadata_props.add(key=key, value=value)
        fixed_sizes(proto, graph, args)
        onnx.save(proto, str(tmp))

    return atomic_write(path, write, shown=shown)  # a full disk named as the file, not a hidden temporary one


def _reason(e: BaseException) -> str:
    """An error's first line, without torch's request for a pull request or onnxruntime's prefix, source paths
    and C++ signatures."""
    text = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    if text == "NotImplementedError":  # torch's bare one: a distribution's mean (TransformedDistribution's, a flow's)
        text = "a distribution it returns has no closed-form mean (torch's NotImplementedError), which export needs"
    text = text.split(". Please")[0]
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Non-zero status code returned while )?", "", text)
    text = " ".join(re.sub(r"\S*onnxruntime_src\S*|(?:void )?onnxruntime::\S+\([^)]*\)", "", text).split())
    return text if len(text) <= 300 else text[:120] + " ... " + text[-175:]  # the end says the shapes


def _session(path: Path, threads: int = 0):
    try:
        import onnxruntime as ort
    except ImportError:
        raise VaekitError("ONNX export needs onnx and onnxruntime: pip install 'vaekit[onnx]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: a failure is raised, not also logged on stderr
    opts.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_part(run: Run, part: str, path: Path, n: int = N_CHECK, shown: Path | None = None) -> float:
    """Max |onnxruntime - torch| over ``n`` inputs of ``example_inputs`` (x ~ U(0, 1) for the encoder, codes
    z ~ N(0, I) or from the model's own prior for the decoder, uniform labels; ``check_inputs`` says so), and over
    TRACE_BATCH + 1 more where ``n`` is no larger than the trace's batch (a size the trace fixed can pass at its own
    batch, and a slice of it at 1); torch's being the model's own q(z|x) or p(x|z) (``graphs.own_outputs``, not the
    traced module). Another shape, or an element whose |onnxruntime - torch| / max(1, |torch|) passes
    ``TOLERANCE``, is an error naming ``shown`` (default ``path``)."""
    sizes = (n,) if n > TRACE_BATCH else (n, TRACE_BATCH + 1)
    return max(_check_batch(run, part, path, size, shown or path) for size in sizes)


@torch.no_grad()
def _check_batch(run: Run, part: str, path: Path, n: int, shown: Path) -> float:
    """``check_part`` at one batch size ``n``."""
    args = example_inputs(run, part, n, seed=1)
    want = [t.numpy() for t in own_outputs(graph_of(run, part).model, part, args)]
    inputs, outputs = _names(run, part)
    try:
        got = _session(path).run(None, {name: a.numpy() for name, a in zip(inputs, args)})
    except VaekitError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime's own errors (a size the trace fixed, an operator it lacks)
        raise VaekitError(f"{shown}: onnxruntime cannot run the exported {part} on {n} inputs: {_reason(e)}") from None
    for name, g, w in zip(outputs, got, want):
        if g.shape != w.shape:  # np.abs(g - w) would broadcast
            raise VaekitError(f"{shown}: onnxruntime gives {name} of shape {g.shape} where torch gives {w.shape}")
        rel = np.nan_to_num(np.abs(g - w) / np.maximum(1.0, np.abs(w)), nan=np.inf)  # a NaN on either side fails
        at = np.unravel_index(int(rel.argmax()), rel.shape)  # per element: a table's large column sets no scale
        if rel[at] > TOLERANCE:
            raise VaekitError(
                f"{shown}: onnxruntime differs from torch by {abs(float(g[at]) - float(w[at])):.3g} in {name}"
                f"{list(map(int, at))} on {n} inputs, where torch gives {float(w[at]):.3g} (more than "
                f"{TOLERANCE:g} x max(1, |torch|))"
            )
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want))


def export_onnx(run: Run, out: str | Path | None = None, part: str = "both", n_check: int = N_CHECK) -> dict[str, dict]:
    """Export and check ``part`` into ``out`` (default: the run folder) -> {part: {"path", "bytes", "max_abs_diff"}}.

    The files of the parts are replaced, all or none, only once every part passes its check on ``n_check``
    (>= 1) noise inputs (and on 3 where that is the trace's batch or fewer): the encoder on x ~ U(0, 1) of the
    items' shape, not data items, the decoder on z ~ N(0, I) or, where p(z) is not N(0, I), on codes drawn from the
    model's own prior (``probes.own_prior``), a conditional model's on uniform labels
    (``check_inputs`` says it in words); a refused export leaves ``out`` as
    it was, without a folder it made. One part exported beside the other part of other weights is a warning
    (the pair does not match; its ``vaekit_weights_sha256`` says so). A run without a folder needs ``out``."""
    if part not in PARTS:
        raise VaekitError(f"part {part!r}: expected one of {', '.join(PARTS)}", key="part")
    if isinstance(n_check, bool) or not isinstance(n_check, int) or n_check < 1:
        raise VaekitError(f"n_check {n_check!r}: expected a whole number of inputs >= 1", key="n_check")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise VaekitError("ONNX export needs onnx and onnxruntime: pip install 'vaekit[onnx]'") from None
    if not out and run.path is None:  # run.folder's advice (fit with out=...) is not what export needs
        raise VaekitError("this run has no folder to export into: give export_onnx(run, out=...) a folder", key="out")
    out = Path(out) if out else run.folder
    if part != "encoder":
        refuse_drawn_mean(run)
    if part != "decoder":
        refuse_estimated_scale(run)
    names = ("encoder", "decoder") if part == "both" else (part,)
    check_destinations(out, [out / FILE[name] for name in names])
    made = new_folders(out)
    try:
        with run_lock(out):
            result = _write_checked(run, out, names, n_check)
    except BaseException:
        for folder in made:  # deepest first: each folder this export made, if it is empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if part != "both":
        _warn_other_part(run, out / FILE["decoder" if part == "encoder" else "encoder"])
    return result


FILE = {"encoder": files.ENCODER_ONNX, "decoder": files.DECODER_ONNX}


def _write_checked(run: Run, out: Path, names: tuple[str, ...], n_check: int) -> dict[str, dict]:
    """Each part written and checked as a temporary file in ``out``, then all renamed into place (or none)."""
    temps = {name: out / f".{FILE[name]}.{secrets.token_hex(6)}.tmp" for name in names}
    try:
        result = {}
        for name, tmp in temps.items():
            export_part(run, name, tmp, shown=out / FILE[name])
            diff = check_part(run, name, tmp, n_check, shown=out / FILE[name])
            result[name] = {"path": out / FILE[name], "bytes": tmp.stat().st_size, "max_abs_diff": diff}
        replace_all({tmp: out / FILE[name] for name, tmp in temps.items()})
        return result
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _warn_other_part(run: Run, other: Path) -> None:
    """A warning where the other part beside the one just written came from other weights."""
    if not other.is_file():
        return
    found = files.stamp(other)
    if found != run.digest:
        said = f"weights {found[:12]}" if found else "no weights digest"
        mine = run.digest[:12]
        warn(f"{other} is from other weights ({said}; this run's: {mine}): the pair in {other.parent} does not match")


def refuse_drawn_mean(run: Run) -> None:
    """One line for a decoder whose mean of p(x|z) is estimated by drawing (a local autoregressive p(x|z))."""
    if why := decoder_refusal(run):
        raise VaekitError(f"{why}; export the encoder alone (part 'encoder')", key="part")


def refuse_estimated_scale(run: Run) -> None:
    """One line for an encoder whose scale of q(z|x) is estimated by drawing (a flow posterior), naming what works."""
    if why := encoder_refusal(run):
        raise VaekitError(
            f"{why}; export the decoder alone (part 'decoder'), and write the codes with the run's encode", key="part"
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
