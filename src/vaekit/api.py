"""The Python API in one call: ``vaekit.train(data="mnist5k", model="conv", epochs=10)``."""

from __future__ import annotations

from .config import RunConfig, set_value
from .models import MODELS
from .run import Run


def train(config: RunConfig | None = None, *, resume: bool = False, overwrite: bool = False, **settings) -> Run:
    """Train and return the finished run (its best weights loaded on the CPU).

    ``settings`` are config keys, qualified or bare (``lr=3e-4``, ``train.epochs=5`` as
    ``**{"train.epochs": 5}``); ``data`` sets the data spec, ``model`` the network or family.
    """
    from .train import fit

    cfg = config or RunConfig()
    for key, value in settings.items():
        if key == "model":
            key = "model.family" if value in MODELS else "model.net"
        elif key == "data":
            key = "data.spec"
        set_value(cfg, key, value)
    return Run.load(fit(cfg, resume=resume, overwrite=overwrite))
