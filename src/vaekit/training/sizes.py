"""How much a run folder's files ask to build, held before anything is allocated: the modules a model.json may
name, and the bytes of the model a config.json (or model.json) builds against the weights file beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import TypeVar, cast

import torch
from torch import nn

from ..errors import VaekitError
from ..models.posteriors import POSTERIORS, FlowSettings, GaussianPosterior, IAFPosterior, NSFPosterior
from ..models.priors import PRIORS, FlowPrior, PriorSettings, StandardPrior
from ..models.spec import class_names
from .checkpoint import previous, unreadable

# modules a model.json may name, nested ones included: far above any real network (a deep VAE names a few
# hundred), far below the 200,000 whose rebuild took over five minutes (a few ms each, on the meta device first)
MAX_MODULES = 10_000


def check_modules(spec: object, source: str) -> None:
    """Refuse in one line a model spec (``source``: the file it came from) naming more than MAX_MODULES modules,
    each layer that a module repeats (``repeated_layers``: nn.LSTM's num_layers) counted as one."""
    n = len(class_names(spec, source)) + repeated_layers(spec)
    if n > MAX_MODULES:
        raise VaekitError(f"{source}: names {n:,} modules; a model.json may name at most {MAX_MODULES:,}")


# arguments that repeat a module's layers (nn.LSTM, nn.GRU, nn.RNN, the transformers), by name or by position
REPEATS = ("num_layers", "num_encoder_layers", "num_decoder_layers")
REPEAT_AT: dict[str, tuple[int, ...]] = {"LSTM": (2,), "GRU": (2,), "RNN": (2,), "Transformer": (2, 3)}
REPEAT_AT |= {"TransformerEncoder": (1,), "TransformerDecoder": (1,)}


def repeated_layers(spec: object) -> int:
    """The layers the modules of a model spec ask to repeat (``REPEATS``), summed over the whole spec."""
    n, stack = 0, [spec]
    while stack:  # no recursion: a spec is as deep as JSON lets it be
        v = stack.pop()
        if isinstance(v, dict):
            if isinstance(v.get("class"), str):  # a module: {"class": "torch.nn:LSTM", "args": ...}
                n += _repeats(v["class"].rpartition(":")[2], v.get("args"))
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return n


def _repeats(name: str, args: object) -> int:
    if isinstance(args, dict):
        found = [args.get(k) for k in REPEATS]
    else:
        found = [args[i] for i in REPEAT_AT.get(name, ()) if isinstance(args, list) and i < len(args)]
    return sum(v for v in found if type(v) is int and v > 0)


T = TypeVar("T")
# what torch and a model.json's networks raise on arguments they refuse: sizes, an index past a table
# (Embedding's padding_idx), heads that do not divide a width, a device this torch lacks ('cuda:0' without CUDA),
# a dict or a list where a network belongs
BUILD_FAULTS = (
    *(TypeError, ValueError, ArithmeticError, LookupError),
    *(RuntimeError, MemoryError, AssertionError, AttributeError),
)


def built(run: Path, names: str, build: Callable[[], T]) -> T:
    """``build()``, the run's model that config.json (with ``names``: model.json, the model given) describes; a
    failure is one line naming the run and its files, never a traceback."""
    files = f"config.json and {names} do" if names else "config.json does"
    try:
        return build()
    except VaekitError as e:  # the model's own check of an argument ('latent_dim must be...'): where it came from
        if str(run) in str(e):
            raise
        raise VaekitError(f"{run}: its {files} not build a model: {e}", key=e.key) from None
    except BUILD_FAULTS as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VaekitError(f"{run}: its {files} not build a model ({why})") from None


def meta_size(build: Callable[[], nn.Module]) -> int | None:
    """Bytes of the state a model ``build`` makes would hold, found by building it on the meta device (shapes,
    no storage). zuko's flows build on no meta device (their masks need real values): where the build fails, it
    is built again with each flow of the zoo (posterior iaf or nsf, prior flow) standing in as a Gaussian that
    holds its flow's bytes, worked out from its settings (``flow_bytes``). None where that fails too: the real
    build then reports for itself."""
    size = _on_meta(build)
    if size is None:
        with flows_counted():
            size = _on_meta(build)
    return size


def _on_meta(build: Callable[[], nn.Module]) -> int | None:
    try:
        with torch.device("meta"):
            model = build()
        return sum(v.numel() * v.element_size() for v in model.state_dict().values())
    except Exception:  # noqa: BLE001 - any failure here is the real build's to report
        return None


# numbers each flow step's network gives per latent dimension: an affine map's shift and scale, zuko's spline
# 8 + 8 + 7 (as samplers.flow counts them)
PER_DIM = {IAFPosterior: 2, NSFPosterior: 23, FlowPrior: 2}


def flow_bytes(latent_dim: int, context: int, s: FlowSettings, per_dim: int) -> int:
    """Bytes of a zuko MAF or NSF's state over D = ``latent_dim`` given ``context`` numbers: each of its steps a
    masked MLP D + C -> hidden... -> D x ``per_dim`` of float32 weights and biases, a bool mask per weight and
    its order (D,) in int64."""
    sizes = [latent_dim + context, *s.hidden, latent_dim * per_dim]
    weights = sum(a * b for a, b in pairwise(sizes))
    return s.transforms * (5 * weights + 4 * sum(sizes[1:]) + 8 * latent_dim)


class FlowBytes(nn.Module):
    """A flow's stand-in on the meta device: ``gaussian`` (the posterior or prior it is built as) and one meta
    buffer of the flow's bytes (counted by ``meta_size``)."""

    def __init__(self, gaussian: nn.Module, n: int):
        super().__init__()
        self.gaussian = gaussian
        self.register_buffer("flow", torch.empty(n, dtype=torch.uint8, device="meta"))

    def forward(self, *args: object) -> object:
        return self.gaussian(*args)

    def sample(self, n: int, temperature: float, qz_of: object = None) -> torch.Tensor:
        return self.gaussian.sample(n, temperature, qz_of)  # type: ignore[operator]  # a StandardPrior's


def _stand_in(cls: type) -> Callable[..., nn.Module]:
    """The registry entry ``cls`` as a ``FlowBytes`` while the meta device is the default (this thread's build in
    ``meta_size``), else ``cls`` itself (a real build elsewhere)."""

    def make(latent_dim: int, second: object, s: object) -> nn.Module:
        if torch.empty(0).device.type != "meta":
            return cls(latent_dim, second, s)
        if cls is FlowPrior:
            flow = cast(PriorSettings, s).flow
            return FlowBytes(StandardPrior(latent_dim, (), PriorSettings()), flow_bytes(latent_dim, 0, flow, 2))
        flow, features = cast(FlowSettings, s), cast(int, second)
        n = flow_bytes(latent_dim, flow.hidden[0], flow, PER_DIM[cls]) + 4 * (features + 1) * flow.hidden[0]
        return FlowBytes(GaussianPosterior(latent_dim, features, flow), n)  # + the context's linear layer

    return make


@contextmanager
def flows_counted() -> Iterator[None]:
    """The zoo's flows, in their registries, built as ``FlowBytes`` on the meta device while this lasts."""
    entries: list[tuple[dict, str]] = [(POSTERIORS, "iaf"), (POSTERIORS, "nsf"), (PRIORS, "flow")]
    saved = [(reg, name, reg.get(name)) for reg, name in entries]
    for reg, name, cls in saved:
        if cls in PER_DIM:  # not replaced by a registration of the user's
            reg[name] = _stand_in(cast(type, cls))
    try:
        yield
    finally:
        for reg, name, cls in saved:
            if cls is not None:
                reg[name] = cls


def held_to_weights(run: Path, weights: Path, build: Callable[[], nn.Module]) -> None:
    """Refuse, before anything is allocated, a model ``build`` makes that is larger than ``weights`` (sizes edited
    or sent to fill the memory), first built on the meta device. A weights file that cannot be read as safetensors
    (truncated, empty, a header of another size) is said to be damaged; a damaged checkpoint is passed over for
    the one before it, as resuming does."""
    have = readable_size(weights)
    need = meta_size(build)
    if need is not None and have is not None and need > 2 * have + 2**20:
        raise VaekitError(
            f"{run}: its config.json builds a model of {need / 1e6:,.1f} MB, and {weights.name} holds "
            f"{have / 1e3:,.1f} kB: the sizes do not belong to these weights"
        )


def readable_size(weights: Path) -> int | None:
    """Bytes of ``weights`` (None: no such file), or of the checkpoint before it where ``weights`` is damaged and
    that one is whole; a damaged file with none to fall back to is refused in one line."""
    if not weights.is_file():
        return None
    for path in (weights, previous(weights)):
        if path.is_file() and not unreadable(path):
            return path.stat().st_size
    raise VaekitError(f"{weights}: damaged: it cannot be read as a safetensors file ({unreadable(weights)})")
