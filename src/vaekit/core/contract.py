"""The one contract every model meets: three distributions, a forward pass, and sampling.

Everything above the models (the ELBO, the IWAE bound, training, evaluation, anomaly scores, pictures, ONNX
export, the explorer) uses a model only through ``VAEModel``, so a new family or a user's own model that meets
it works everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from torch import Tensor
from torch.distributions import Distribution

from ..errors import VaekitError


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
    missing = [m for m in MEMBERS if not hasattr(model, m)]
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


def check_output(model: VAEModel, out: object, x: Tensor) -> VAEOutput:
    """``out`` of ``model(x)`` if it has the contract's shapes, else one line naming what is wrong."""
    name = type(model).__name__
    if not isinstance(out, VAEOutput):
        raise VaekitError(f"{name}.forward must return a vaekit.VAEOutput, got {type(out).__name__}")
    if not len(out.qz) == len(out.pz) == len(out.z) == len(model.latent_dims):
        raise VaekitError(
            f"{name}.forward gives {len(out.qz)} q, {len(out.pz)} p and {len(out.z)} z for "
            f"{len(model.latent_dims)} latent levels (latent_dims)"
        )
    shape = tuple(out.px.log_prob(x).shape)
    if shape != (len(x),):
        raise VaekitError(
            f"{name}: p(x|z).log_prob(x) has shape {shape}, the contract wants ({len(x)},): declare "
            "the item dims as event dims (torch.distributions.Independent)"
        )
    return out
