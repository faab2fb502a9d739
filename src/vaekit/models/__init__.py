"""Model families, one registry, ``build_model(config)``, and the built-in network factories.

Every family is one class built from an encoder and a decoder ``nn.Module``; the built-in MLP and conv nets
are factories of such modules (``mlp_nets``, ``conv_nets``), and ``build_model`` picks them from a config.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..config import ModelConfig
from ..core.contract import VAEModule
from ..errors import VaekitError

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model family (a class with ``from_config(ModelConfig)``) under ``name``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = cls
        return cls

    return add


def build_model(cfg: ModelConfig | None = None, **settings) -> VAEModule:
    """The registered family ``cfg.family`` with the built-in networks, for ``cfg.input_shape``.

    ``settings`` are ModelConfig fields, alone or over ``cfg``: ``build_model(net="conv", input_shape=(1, 28, 28))``.
    """
    from dataclasses import replace

    cfg = replace(cfg or ModelConfig(), **settings)
    if cfg.family not in MODELS:
        raise VaekitError(
            f"unknown model family {cfg.family!r} (known: {', '.join(sorted(MODELS))})", key="model.family"
        )
    if not cfg.input_shape:
        raise VaekitError("model.input_shape is not set (it comes from the data)", key="model.input_shape")
    if cfg.likelihood == "auto":
        raise VaekitError(
            "likelihood 'auto' is chosen from the data (vaekit train and vaekit.train do it); name "
            "one to build a model alone: bernoulli, cbernoulli, gaussian or discretized_logistic",
            key="model.likelihood",
        )
    return MODELS[cfg.family].from_config(cfg)  # type: ignore[attr-defined]  # register() documents from_config


from .conditional import ConditionalVAE  # noqa: E402
from .deep import DeepVAE  # noqa: E402
from .gumbel import GumbelVAE  # noqa: E402
from .ladder import LadderVAE  # noqa: E402
from .nets import conv_nets, mlp_nets  # noqa: E402
from .vae import VAE  # noqa: E402  (each family registers itself)
from .vq import VQVAE  # noqa: E402

__all__ = [
    "MODELS",
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "DeepVAE",
    "GumbelVAE",
    "LadderVAE",
    "build_model",
    "conv_nets",
    "mlp_nets",
    "register",
]
