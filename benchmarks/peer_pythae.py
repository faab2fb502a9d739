"""The pythae 0.1.2 side of benchmarks/peer.py: the same networks as vaekit's, trained by pythae's own trainer.

pythae wants networks that return ModelOutput(embedding, log_covariance) and ModelOutput(reconstruction)
(probabilities for its BCE loss), and a dataset of DatasetOutput(data=...). Dynamic binarisation happens in
the dataset, per item, as a pythae user would write it. ``AsVaekit`` shows a trained pythae model through
vaekit's model interface so vaekit's estimator can score it.
"""

from __future__ import annotations

import time

import torch
from pythae.data.datasets import BaseDataset, DatasetOutput
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback
from torch import Tensor, nn
from torch.distributions import Bernoulli, Independent

from vaekit.core import gaussian


class Encoder(BaseEncoder):
    """vaekit's encoder network and q head; pythae's VAE reads a log-variance."""

    def __init__(self, features: nn.Module, to_q: nn.Module):
        super().__init__()
        self.features, self.to_q = features, to_q

    def forward(self, x: Tensor) -> ModelOutput:
        mu, log_var = self.to_q(self.features(x)).chunk(2, dim=-1)
        return ModelOutput(embedding=mu, log_covariance=log_var)


class Decoder(BaseDecoder):
    """vaekit's decoder network; pythae's BCE loss reads probabilities."""

    def __init__(self, net: nn.Module, shape: tuple[int, ...]):
        super().__init__()
        self.net, self.shape = net, shape

    def logits(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.shape)

    def forward(self, z: Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.logits(z)))


class Binarised(BaseDataset):
    """Grey images in [0, 1]; each access draws a fresh binarisation (dynamic binarisation)."""

    def __getitem__(self, index):
        x = self.data[index]
        return DatasetOutput(data=torch.bernoulli(x), labels=self.labels[index])


class EpochClock(TrainingCallback):
    """Seconds of each epoch's training pass (pythae's train_step), without its evaluation pass."""

    def __init__(self):
        self.start, self.seconds = 0.0, []

    def on_train_step_begin(self, training_config, **kwargs):
        self.start = time.perf_counter()

    def on_eval_step_begin(self, training_config, **kwargs):
        if len(self.seconds) < kwargs.get("epoch", 0):
            self.seconds.append(time.perf_counter() - self.start)


def build(vaekit_model: nn.Module, latent_dim: int) -> VAE:
    """A pythae VAE whose networks are fresh copies of ``vaekit_model``'s (same layers, same init scheme)."""
    shape = tuple(vaekit_model.input_shape)
    cfg = VAEConfig(input_dim=shape, latent_dim=latent_dim, reconstruction_loss="bce")
    return VAE(
        cfg, encoder=Encoder(vaekit_model.encoder, vaekit_model.to_qz), decoder=Decoder(vaekit_model.decoder, shape)
    )


def train(
    model: VAE,
    x_train: Tensor,
    x_val: Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    out: str,
    device: str,
    dynamic: bool = True,
) -> tuple[VAE, list[float]]:
    """pythae's BaseTrainer on (N, *shape) grey images; returns its best model and the seconds per epoch.

    ``dynamic``: a fresh binarisation per item access; otherwise the images are binarised once up front.
    """
    cfg = BaseTrainerConfig(
        output_dir=out,
        num_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        no_cuda=device != "cuda",
        steps_saving=None,
    )
    clock = EpochClock()
    val = torch.bernoulli(x_val, generator=torch.Generator().manual_seed(seed + 1))
    labels = torch.zeros(len(x_train))
    train_set = (
        Binarised(x_train, labels)
        if dynamic
        else BaseDataset(torch.bernoulli(x_train, generator=torch.Generator().manual_seed(seed)), labels)
    )
    trainer = BaseTrainer(model, train_set, BaseDataset(val, torch.zeros(len(val))), cfg, callbacks=[clock])
    trainer.train()
    return trainer._best_model, clock.seconds


class AsVaekit(nn.Module):
    """A trained pythae VAE seen through vaekit's model interface (encode, decode, prior), for its estimator."""

    needs_labels = False

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model
        self.latent_dims = [model.model_config.latent_dim]

    def encode(self, x: Tensor, y: Tensor | None = None) -> Independent:
        out = self.model.encoder(x)
        return gaussian(out.embedding, (0.5 * out.log_covariance).exp())

    def decode(self, z: Tensor, y: Tensor | None = None) -> Independent:
        logits = self.model.decoder.logits(z)
        return Independent(Bernoulli(logits=logits, validate_args=False), logits.dim() - 1)

    def prior(self, y: Tensor | None = None) -> Independent:
        zeros = torch.zeros(self.latent_dims[0], device=next(self.parameters()).device)
        return gaussian(zeros, torch.ones_like(zeros))
