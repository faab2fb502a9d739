"""The one contract every model meets: three distributions, a forward pass, and sampling.

Everything above the models (the ELBO, the IWAE bound, training, evaluation, anomaly scores, pictures, ONNX
export, the explorer) uses a model only through ``VAEModel``, so a new family or a user's own model that meets
it works everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from ..errors import VaekitError
from .reading import evaluating as evaluating  # re-exported: the contract's helpers for reading a model
from .reading import kept_rng as kept_rng
from .reading import mean_of as mean_of
from .reading import probing


@dataclass
class VAEOutput:
    """What every model's forward returns; ``elbo`` and ``iwae_bound`` read only this."""

    px: Distribution  # p(x|z); log_prob(x) has shape (B,)
    qz: list[Distribution]  # q(z_l|.), one per latent layer, top to bottom
    pz: list[Distribution]  # the matching priors p(z_l|.)
    z: list[Tensor]  # the rsample()d latents, each (B, D_l)
    # extra loss terms the model adds to the objective (VQ-VAE's commitment loss), each (B,) or a scalar;
    # elbo() adds their batch means to the loss (they are no part of the bound: rec and kl leave them out)
    extra: dict[str, Tensor] = field(default_factory=dict)


@runtime_checkable
class VAEModel(Protocol):
    """A VAE as vaekit sees it; ``y`` (B,) int64 labels are passed only when ``needs_labels`` is true.

    - ``encode(x, y=None)``: q(z|x) with batch (B,) and event (sum D_l,): every latent level, top to bottom;
    - ``decode(z, y=None)``: p(x|z) with batch (B,) and event ``x.shape[1:]``, for z as ``encode`` gives it;
    - ``prior(y=None)``: p(z) of the top latent level, event (D_L,);
    - ``forward(x, y=None)``: a ``VAEOutput`` with one rsample()d z per latent level;
    - ``generate(n, temperature=1.0, y=None)``: p(x|z) for n draws from the prior, scales times temperature;
    - ``latent_dims``: the sizes of the latent levels, top to bottom; ``needs_labels``: conditional or not.
    """

    @property
    def latent_dims(self) -> list[int]: ...  # read-only: an attribute or a property meets it

    @property
    def needs_labels(self) -> bool: ...

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution: ...

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution: ...

    def prior(self, y: Tensor | None = None) -> Distribution: ...

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput: ...

    def __call__(self, x: Tensor, y: Tensor | None = None) -> VAEOutput: ...  # nn.Module's call runs forward

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution: ...


if TYPE_CHECKING:
    from torch import nn

    class VAEModule(nn.Module, VAEModel):
        """For the type checker only: an ``nn.Module`` that meets ``VAEModel`` (what ``check_model`` returns)."""

else:
    from torch.nn import Module as VAEModule  # at run time any nn.Module; the contract is checked by check_model


MEMBERS = ("encode", "decode", "prior", "forward", "generate", "latent_dims", "needs_labels")


def check_model(model: object) -> VAEModule:
    """``model`` if it meets ``VAEModel`` (and is an ``nn.Module``), else one line naming what it lacks."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise VaekitError(f"the model must be a torch.nn.Module, got {type(model).__name__}")
    compiled = [n or "model" for n, m in model.named_modules() if "_orig_mod" in m._modules]  # torch.compile's
    if compiled:
        raise VaekitError(
            f"the {compiled[0]} is torch.compile'd: its weights would be saved as {compiled[0]}._orig_mod.*, which no "
            "run loads; pass it uncompiled (vaekit's own setting, train.compile, compiles the training step)"
        )
    lazy = getattr(model, "input_shape", ()) is None and hasattr(model, "build")  # built by fit's first batch
    missing = [m for m in MEMBERS if not hasattr(model, m) and not (lazy and hasattr(type(model), m))]
    if missing:
        raise VaekitError(
            f"{type(model).__name__} does not meet vaekit's model contract: it lacks "
            f"{', '.join(missing)} (see vaekit.VAEModel)"
        )
    return model  # type: ignore[return-value]


def latent_size(model: VAEModel) -> int:
    """D of the codes ``encode`` returns and ``decode`` takes: the sum over latent levels."""
    return sum(model.latent_dims)


def flat(model: VAEModel) -> bool:
    """One latent level: q(z|x) from ``encode`` and p(z) from ``prior`` cover the whole latent code."""
    return len(model.latent_dims) == 1


def dist_name(d: object) -> str:
    """A distribution's name for messages: 'Independent(Laplace)' for one reinterpreted by ``Independent``, else
    its class name (of any object)."""
    return f"Independent({dist_name(d.base_dist)})" if isinstance(d, Independent) else type(d).__name__


def with_article(name: str) -> str:
    """``name`` with its indefinite article: 'an Independent(Laplace)', 'a Beta'."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def check_output(model: VAEModel, out: object, x: Tensor, y: Tensor | None = None) -> VAEOutput:
    """``out`` of ``model(x, y)`` if the model meets the contract's shapes, else one line naming what is wrong.

    A dry run, once before training (not per step): p(x|z) against the items x (B, *shape); q, p and z of every
    latent level against each other and ``latent_dims``; ``encode``'s q(z|x) and ``prior``'s p(z); and
    ``generate(2)``. ``y`` (B,): a conditional model's labels (label 0 where None)."""
    name = type(model).__name__
    if not isinstance(out, VAEOutput):
        raise VaekitError(f"{name}.forward must return a vaekit.VAEOutput, got {type(out).__name__}")
    if not len(out.qz) == len(out.pz) == len(out.z) == len(model.latent_dims):
        raise VaekitError(
            f"{name}.forward gives {len(out.qz)} q, {len(out.pz)} p and {len(out.z)} z for "
            f"{len(model.latent_dims)} latent levels (latent_dims)"
        )
    _check_px(name, out.px, x)
    _check_levels(name, out, list(model.latent_dims), len(x))
    if y is None and model.needs_labels:
        y = torch.zeros(len(x), dtype=torch.long, device=x.device)
    _check_encode_and_prior(model, x, y)
    _check_generate(model, tuple(x.shape[1:]), None if y is None else y.new_zeros(2))
    return out


def _check_px(name: str, px: object, x: Tensor) -> None:
    """p(x|z) of ``forward``: a Distribution with batch (B,) and the items' shape as event shape."""
    if not isinstance(px, Distribution):
        raise VaekitError(
            f"{name}.forward's px is {with_article(type(px).__name__)}: the contract wants p(x|z), a Distribution"
        )
    item, event = tuple(x.shape[1:]), tuple(px.event_shape)
    if event != item and tuple(px.batch_shape) + event != (len(x), *item):  # not the item dims left in the batch
        raise VaekitError(
            f"{name}.decode's p(x|z) has event shape {event} while the items are {item}: the contract wants p(x|z) "
            "with the items' shape as event shape"
        )
    shape = tuple(px.log_prob(x).shape)
    if shape != (len(x),):
        raise VaekitError(
            f"{name}: p(x|z).log_prob(x) has shape {shape}, the contract wants ({len(x)},): declare "
            "the item dims as event dims (torch.distributions.Independent)"
        )


def _latent_event(what: str, d: object, batch: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """The event shape (D,) of ``d``, a q or p over one latent level whose batch shape must be one of ``batch``;
    anything else is refused in one line naming ``what``."""
    if not isinstance(d, Distribution):
        raise VaekitError(f"{what} is {with_article(type(d).__name__)}: the contract wants a torch Distribution")
    shape, event = tuple(d.batch_shape), tuple(d.event_shape)
    if len(event) != 1 or shape not in batch:
        hint = ": declare the latent dim as event dim (torch.distributions.Independent(..., 1))" if not event else ""
        raise VaekitError(
            f"{what} has batch shape {shape} and event shape {event}: the contract wants event shape (D,) with "
            f"batch shape (B,){hint}"
        )
    return event


def _check_levels(name: str, out: VAEOutput, dims: list[int], b: int) -> None:
    """q, p (event (D_l,), batch (B,); p's may be ()) and z (B, D_l) of each latent level, D_l from ``dims``."""
    for level, (q, p, z, d) in enumerate(zip(out.qz, out.pz, out.z, dims)):
        qn, pn = ("q(z|x)", "prior()") if len(dims) == 1 else (f"q(z_{level}|.)", f"p(z_{level}|.)")
        eq = _latent_event(f"{name}: {qn}", q, ((b,),))
        ep = _latent_event(f"{name}: {pn}", p, ((), (b,)))
        if ep != eq:
            raise VaekitError(
                f"{name}: {pn} has event shape {ep}, {qn} has {eq}: the contract wants both (D,) with batch "
                f"shape (B,) (latent_dims: {dims})"
            )
        if eq != (d,):
            raise VaekitError(
                f"{name}: latent_dims says {dims}, and {qn} has event shape {eq}: set latent_dims to the sizes "
                "of the codes encode gives"
            )
        if not isinstance(z, Tensor) or tuple(z.shape) != (b, d):
            got = tuple(z.shape) if isinstance(z, Tensor) else with_article(type(z).__name__)
            raise VaekitError(f"{name}.forward's z[{level}] is {got}: the contract wants the rsample()d codes (B, {d})")


def _call(name: str, what: str, fn: Callable[[], object]) -> object:
    """``fn()``, a call of the model's ``what``; an error it raises is one line naming it."""
    try:
        return fn()
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError) as e:
        if isinstance(e, VaekitError):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise VaekitError(f"{name}.{what} fails: {first}") from None


def _check_encode_and_prior(model: VAEModel, x: Tensor, y: Tensor | None) -> None:
    """``encode(x)``: q(z|x) of every level, event (sum D_l,); ``prior()``: p(z) of the top level, event (D_0,)."""
    name, dims, b = type(model).__name__, list(model.latent_dims), len(x)
    qz = _call(name, "encode(x)", lambda: model.encode(x) if y is None else model.encode(x, y))
    event = _latent_event(f"{name}.encode(x)", qz, ((b,),))
    if event != (sum(dims),):
        raise VaekitError(
            f"{name}: latent_dims says {dims}, and encode(x) gives q(z|x) of event shape {event}: the contract wants "
            f"({sum(dims)},), the codes of every latent level"
        )
    pz = _call(name, "prior()", lambda: model.prior() if y is None else model.prior(y))
    event = _latent_event(f"{name}.prior()", pz, ((), (b,)))
    if event != (dims[0],):
        raise VaekitError(
            f"{name}.prior() has event shape {event}, and latent_dims says {dims}: the contract wants ({dims[0]},), "
            "the top latent level's"
        )


def _check_generate(model: VAEModel, item: tuple[int, ...], y: Tensor | None) -> None:
    """``generate(2)``: p(x|z) of two draws from the prior, a Distribution of batch (2,) and event the items'."""
    name = type(model).__name__
    px = _call(name, "generate(2)", lambda: model.generate(2) if y is None else model.generate(2, y=y))
    if not isinstance(px, Distribution):
        raise VaekitError(
            f"{name}.generate(2) returns {with_article(type(px).__name__)}: the contract wants p(x|z) of draws from "
            "the prior, a torch Distribution (callers take .sample() or .mean)"
        )
    if (tuple(px.batch_shape), tuple(px.event_shape)) != ((2,), item):
        raise VaekitError(
            f"{name}.generate(2) gives p(x|z) of batch shape {tuple(px.batch_shape)} and event shape "
            f"{tuple(px.event_shape)}: the contract wants (2,) and the items' {item}"
        )


def check_labels(model: VAEModule, x: Any, y: Tensor | None) -> None:
    """Refuse, in one line, labels y (N,) a conditional model cannot take with items x (N, *shape): not whole
    numbers, or outside its classes 0..num_classes-1; for a model that declares no num_classes, the largest label
    where one item's forward pass fails on it and not on label 0 (an embedding or one-hot code of K classes)."""
    if y is None or not model.needs_labels or not len(y):
        return
    if len(y) != len(x) or y.dim() != 1:
        raise VaekitError(f"labels y must be (N,), one per item: got shape {tuple(y.shape)} for {len(x)} items")
    if y.is_floating_point() and not bool((y == y.round()).all()):  # NaN too
        raise VaekitError(f"labels y must be whole numbers (class numbers), found {y[y != y.round()][0].item()}")
    low, high = int(y.min()), int(y.max())
    k = getattr(model, "num_classes", None) or getattr(getattr(model, "model", None), "num_classes", None)
    known = isinstance(k, int) and not isinstance(k, bool) and k > 0
    if low < 0 or (known and high >= cast(int, k)):
        classes = f"0..{cast(int, k) - 1}" if known else "numbered from 0"
        raise VaekitError(f"label {low if low < 0 else high}: this model's classes are {classes}")
    if not known and not _takes(model, x, high) and _takes(model, x, 0):
        raise VaekitError(
            f"label {high}: this model fails on it: its labels are class numbers 0..K-1 (a run that renumbered its "
            "labels names them in run.classes, label 0 first)"
        )


def _takes(model: VAEModule, x: Any, label: int) -> bool:
    """Whether one forward pass of the first item of x (N, *shape) under ``label`` runs; RNGs and the model's
    mode stay as they were."""
    p = next(model.parameters())
    try:
        with torch.no_grad(), probing(model) as device:
            model(x[:1].to(device, p.dtype), torch.tensor([label], device=device))
    except (IndexError, RuntimeError, ValueError):
        return False
    return True
