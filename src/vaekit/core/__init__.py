"""The bottom layer: the model contract, the likelihoods, the ELBO and the IWAE bound, and their schedules."""

from .contract import VAEModel, VAEOutput, check_model
from .likelihoods import LIKELIHOODS, Likelihood, check_support, diag_normal, gaussian
from .objectives import (
    capacity_objective,
    elbo,
    iwae_bound,
    kl_per_dim,
    kl_term,
    log_weights,
    tc_decomposition,
)
from .schedules import capacity_at, dimwise_weight_at, kl_weight, lr_at

__all__ = [
    "LIKELIHOODS",
    "Likelihood",
    "VAEModel",
    "VAEOutput",
    "capacity_at",
    "capacity_objective",
    "check_model",
    "check_support",
    "diag_normal",
    "dimwise_weight_at",
    "elbo",
    "gaussian",
    "iwae_bound",
    "kl_per_dim",
    "kl_term",
    "kl_weight",
    "log_weights",
    "lr_at",
    "tc_decomposition",
]
