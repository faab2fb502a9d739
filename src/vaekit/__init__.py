"""vaekit: variational autoencoders on PyTorch, on one ELBO."""

from .api import train
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .data import Dataset, Split, load_dataset
from .errors import VaekitError
from .models import MODELS, VAEOutput, build_model
from .objectives import elbo, iwae_bound, kl_term
from .run import Run, load_run
from .train import fit

__all__ = [
    "DataConfig", "Dataset", "MODELS", "ModelConfig", "Run", "RunConfig", "Split", "TrainConfig",
    "VAEOutput", "VaekitError", "build_model", "elbo", "fit", "iwae_bound", "kl_term", "load_dataset",
    "load_run", "train",
]
__version__ = "0.1.0"
