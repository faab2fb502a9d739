"""Model families, one registry, and ``build_model(config)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import VaekitError

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model family to the registry under ``name``."""
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = cls
        return cls
    return add


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the registered family ``cfg.family`` for ``cfg.input_shape``."""
    if cfg.family not in MODELS:
        raise VaekitError(f"config: unknown model family {cfg.family!r} (known: {', '.join(sorted(MODELS))})")
    if not cfg.input_shape:
        raise VaekitError("config: model.input_shape is not set (it comes from the data)")
    return MODELS[cfg.family](cfg)


from .vae import VAE, VAEOutput  # noqa: E402  (registers itself)
from .conditional import ConditionalVAE  # noqa: E402
from .ladder import LadderVAE  # noqa: E402

__all__ = ["MODELS", "VAE", "ConditionalVAE", "LadderVAE", "VAEOutput", "build_model", "register"]
