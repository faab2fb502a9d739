"""vaekit: variational autoencoders on PyTorch, on one ELBO.

    run = vaekit.fit(vaekit.VAE(encoder, decoder, latent_dim=8, likelihood="gaussian"), x, epochs=20)
    run.encode(x[:10]), run.sample(16), vaekit.load_run("runs/x", model=...)

Layers, lowest first: core (the model contract, likelihoods, ELBO) <- models <- data <- training <- runs <-
evaluation <- viz | export <- api <- cli.
"""

from .api import fit, train
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .core import VAEModel, VAEOutput, check_model, elbo, iwae_bound, kl_term
from .data import Dataset, Split, load_dataset
from .errors import VaekitError
from .evaluation.detector import VAEAnomalyDetector
from .evaluation.metrics import active_units, bits_per_dim, evaluate
from .evaluation.quality import quality_benchmark
from .evaluation.quality_run import quality
from .models import (
    MODELS,
    VAE,
    ConditionalVAE,
    DeepVAE,
    LadderVAE,
    build_model,
    conv_nets,
    mlp_nets,
)
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
