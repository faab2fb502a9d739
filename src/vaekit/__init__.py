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

# the names of _HOMES (below), for type checkers and editors (``X as X`` re-exports each, as a static __all__ would);
# at run time __getattr__ loads them
if TYPE_CHECKING:
    from .api import fit as fit
    from .api import train as train
    from .config import DataConfig as DataConfig
    from .config import ModelConfig as ModelConfig
    from .config import RunConfig as RunConfig
    from .config import TrainConfig as TrainConfig
    from .core import VAEModel as VAEModel
    from .core import VAEOutput as VAEOutput
    from .core import check_model as check_model
    from .core import elbo as elbo
    from .core import iwae_bound as iwae_bound
    from .core import kl_term as kl_term
    from .data import Dataset as Dataset
    from .data import Split as Split
    from .data import load_dataset as load_dataset
    from .errors import VaekitError as VaekitError
    from .evaluation.column_scores import column_scores as column_scores
    from .evaluation.detector import VAEAnomalyDetector as VAEAnomalyDetector
    from .evaluation.encoder import VAEEncoder as VAEEncoder
    from .evaluation.metrics import active_units as active_units
    from .evaluation.metrics import bits_per_dim as bits_per_dim
    from .evaluation.metrics import evaluate as evaluate
    from .evaluation.quality import quality_benchmark as quality_benchmark
    from .evaluation.quality_run import quality as quality
    from .models import MODELS as MODELS
    from .models import VAE as VAE
    from .models import ConditionalVAE as ConditionalVAE
    from .models import DeepVAE as DeepVAE
    from .models import LadderVAE as LadderVAE
    from .models import build_model as build_model
    from .models import conv_nets as conv_nets
    from .models import mlp_nets as mlp_nets
    from .models.trust import register_module as register_module
    from .runs import Run as Run
    from .runs import load_run as load_run
    from .samplers import SAMPLERS as SAMPLERS
    from .samplers import fit_sampler as fit_sampler
    from .training import Callback as Callback
    from .training import FitInfo as FitInfo
    from .training.prior import fit_prior as fit_prior
    from .viz.figures import interpolate as interpolate
    from .viz.figures import lerp as lerp
    from .viz.figures import slerp as slerp
    from .viz.figures import traverse as traverse
    from .viz.latent_maps import latent_map as latent_map
    from .viz.latent_maps import manifold as manifold
    from .viz.mlflow import MLflow as MLflow
    from .viz.report import write_report as write_report

__version__ = "0.1.0"

# The one table of public names: the module below vaekit of each, which __getattr__ imports on first use.
# __all__ is its names; the imports under TYPE_CHECKING above repeat them statically for type checkers and editors
# (tests/test_startup.py holds the two to the same names and modules).
_HOMES = {
    "api": ("fit", "train"),
    "config": ("DataConfig", "ModelConfig", "RunConfig", "TrainConfig"),
    "core": ("VAEModel", "VAEOutput", "check_model", "elbo", "iwae_bound", "kl_term"),
    "data": ("Dataset", "Split", "load_dataset"),
    "errors": ("VaekitError",),
    "evaluation.column_scores": ("column_scores",),
    "evaluation.detector": ("VAEAnomalyDetector",),
    "evaluation.encoder": ("VAEEncoder",),
    "evaluation.metrics": ("active_units", "bits_per_dim", "evaluate"),
    "evaluation.quality": ("quality_benchmark",),
    "evaluation.quality_run": ("quality",),
    "models": ("MODELS", "VAE", "ConditionalVAE", "DeepVAE", "LadderVAE", "build_model", "conv_nets", "mlp_nets"),
    "models.trust": ("register_module",),
    "runs": ("Run", "load_run"),
    "samplers": ("SAMPLERS", "fit_sampler"),
    "training": ("Callback", "FitInfo"),
    "training.prior": ("fit_prior",),
    "viz.figures": ("interpolate", "lerp", "slerp", "traverse"),
    "viz.latent_maps": ("latent_map", "manifold"),
    "viz.mlflow": ("MLflow",),
    "viz.report": ("write_report",),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME)
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


if not TYPE_CHECKING:  # hidden from type checkers, which then see the names above and flag a misspelt one

    def __getattr__(name: str) -> Any:
        """A public name (or a subpackage) on its first use: its module is imported then, and the value kept."""
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
