"""vaekit: variational autoencoders on PyTorch, on one ELBO.

    run = vaekit.fit(vaekit.VAE(encoder, decoder, latent_dim=8, likelihood="gaussian"), x, epochs=20)
    run.encode(x[:10]), run.sample(16), vaekit.load_run("runs/x", model=...)

Layers, lowest first: core (the model contract, likelihoods, ELBO) <- models <- data <- training <- runs <-
evaluation <- viz | export <- api <- cli.

``import vaekit`` is cheap: each public name (and each subpackage, ``vaekit.data``) is imported on its first use
(PEP 562, as numpy and scipy do), so the command line's --help never loads torch, scikit-learn or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and editors; at run time __getattr__ loads them
    from .api import fit, train
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from .core import VAEModel, VAEOutput, check_model, elbo, iwae_bound, kl_term
    from .data import Dataset, Split, load_dataset
    from .errors import VaekitError
    from .evaluation.detector import VAEAnomalyDetector
    from .evaluation.metrics import active_units, bits_per_dim, evaluate
    from .evaluation.quality import quality_benchmark
    from .evaluation.quality_run import quality
    from .models import MODELS, VAE, ConditionalVAE, DeepVAE, LadderVAE, build_model, conv_nets, mlp_nets
    from .models.trust import register_module
    from .runs import Run, load_run
    from .samplers import SAMPLERS, fit_sampler
    from .training import Callback, FitInfo
    from .training.prior import fit_prior
    from .viz.figures import interpolate, latent_map, lerp, manifold, slerp, traverse
    from .viz.mlflow import MLflow
    from .viz.report import write_report

__all__ = [
    "MODELS",
    "SAMPLERS",
    "VAE",
    "Callback",
    "ConditionalVAE",
    "DataConfig",
    "Dataset",
    "DeepVAE",
    "FitInfo",
    "LadderVAE",
    "MLflow",
    "ModelConfig",
    "Run",
    "RunConfig",
    "Split",
    "TrainConfig",
    "VAEAnomalyDetector",
    "VAEModel",
    "VAEOutput",
    "VaekitError",
    "active_units",
    "bits_per_dim",
    "build_model",
    "check_model",
    "conv_nets",
    "elbo",
    "evaluate",
    "fit",
    "fit_prior",
    "fit_sampler",
    "interpolate",
    "iwae_bound",
    "kl_term",
    "latent_map",
    "lerp",
    "load_dataset",
    "load_run",
    "manifold",
    "mlp_nets",
    "quality",
    "quality_benchmark",
    "register_module",
    "slerp",
    "train",
    "traverse",
    "write_report",
]
__version__ = "0.1.0"

# the module (below vaekit) of each name in __all__, as the imports above bring them
_HOMES = {
    "api": ("fit", "train"),
    "config": ("DataConfig", "ModelConfig", "RunConfig", "TrainConfig"),
    "core": ("VAEModel", "VAEOutput", "check_model", "elbo", "iwae_bound", "kl_term"),
    "data": ("Dataset", "Split", "load_dataset"),
    "errors": ("VaekitError",),
    "evaluation.detector": ("VAEAnomalyDetector",),
    "evaluation.metrics": ("active_units", "bits_per_dim", "evaluate"),
    "evaluation.quality": ("quality_benchmark",),
    "evaluation.quality_run": ("quality",),
    "models": ("MODELS", "VAE", "ConditionalVAE", "DeepVAE", "LadderVAE", "build_model", "conv_nets", "mlp_nets"),
    "models.trust": ("register_module",),
    "runs": ("Run", "load_run"),
    "samplers": ("SAMPLERS", "fit_sampler"),
    "training": ("Callback", "FitInfo"),
    "training.prior": ("fit_prior",),
    "viz.figures": ("interpolate", "latent_map", "lerp", "manifold", "slerp", "traverse"),
    "viz.mlflow": ("MLflow",),
    "viz.report": ("write_report",),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
# the subpackages and modules that ``import vaekit`` once brought along, reachable as vaekit.X without an import
_SUBMODULES = (
    "api",
    "config",
    "core",
    "data",
    "errors",
    "evaluation",
    "export",
    "files",
    "io",
    "models",
    "runs",
    "samplers",
    "training",
    "viz",
)


def __getattr__(name: str) -> Any:
    """A public name (or a subpackage) on its first use: its module is imported then, and the value kept here."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later uses find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
