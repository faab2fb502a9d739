"""vaekit: variational autoencoders on PyTorch, on one ELBO."""

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .data import Dataset, Split, load_dataset
from .errors import VaekitError
from .evaluate import active_units, bits_per_dim, evaluate
from .figures import interpolate, latent_map, lerp, manifold, slerp, traverse
from .models import MODELS, VAEOutput, build_model
from .objectives import elbo, iwae_bound, kl_term
from .report import write_report
from .run import Run, load_run
from .train import fit
from .api import train  # noqa: E402  after the submodule vaekit.train, so the name means the function

__all__ = [
    "DataConfig", "Dataset", "MODELS", "ModelConfig", "Run", "RunConfig", "Split", "TrainConfig",
    "VAEOutput", "VaekitError", "active_units", "bits_per_dim", "build_model", "elbo", "evaluate", "fit",
    "interpolate", "iwae_bound", "kl_term", "latent_map", "lerp", "load_dataset", "load_run", "manifold",
    "slerp", "train", "traverse", "write_report",
]
__version__ = "0.1.0"
