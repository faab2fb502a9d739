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
from .models import (
    MODELS,
    VAE,
    ConditionalVAE,
    LadderVAE,
    build_model,
    conv_nets,
    mlp_nets,
)
from .runs import Run, load_run
from .training import Callback, FitInfo
from .viz.figures import interpolate, latent_map, lerp, manifold, slerp, traverse
from .viz.report import write_report

__all__ = [
    "MODELS", "VAE", "Callback", "ConditionalVAE", "DataConfig", "Dataset", "FitInfo", "LadderVAE", "ModelConfig",
    "Run", "RunConfig", "Split", "TrainConfig", "VAEAnomalyDetector", "VAEModel", "VAEOutput", "VaekitError",
    "active_units", "bits_per_dim", "build_model", "check_model", "conv_nets", "elbo", "evaluate", "fit",
    "interpolate", "iwae_bound", "kl_term", "latent_map", "lerp", "load_dataset", "load_run", "manifold",
    "mlp_nets", "slerp", "train", "traverse", "write_report",
]
__version__ = "0.1.0"
