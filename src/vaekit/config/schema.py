"""The settings of a run: flat dataclasses (data, model, train), saved as config.json beside the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import VaekitError


@dataclass
class DataConfig:
    """Where the data comes from and how it is prepared."""

    spec: str = "mnist5k"          # built-in name or path (see vaekit.data.load_dataset)
    binarize: str = "auto"         # auto | dynamic | fixed | none (auto: dynamic for grey images + Bernoulli)
    standardize: str = "auto"      # auto | true | false: per-column loc/scale fitted on train (auto: Gaussian tables)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    label_column: str | None = None
    data_dir: str | None = None
    limit: int | None = None
    in_memory: str = "auto"        # auto | true | false: false streams a .npy (memory-mapped) or image folder
    workers: int = 2               # loader processes for streamed data (0: read in the training process)


@dataclass
class ModelConfig:
    """Everything that rebuilds the network (with the input shape, filled in from the data)."""

    family: str = "vae"            # registered model family
    net: str = "mlp"               # mlp | conv (| custom: networks given in Python, see model.json)
    likelihood: str = "auto"       # auto | bernoulli | cbernoulli | gaussian | discretized_logistic (see data.prepare)
    likelihood_components: int = 5  # discretized_logistic: logistics in each pixel's mixture
    scale: str = "learned"         # gaussian scale: learned (per dim) | shared | decoded (from z) | a positive number
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [400, 400])  # MLP widths
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv widths, one stride-2 block each
    input_shape: list[int] = field(default_factory=list)           # (C, H, W) or (D,): set from the data
    latent_dims: list[int] = field(default_factory=list)  # ladder: z_1..z_L from the data up; empty: [latent_dim]
    ladder_posterior: str = "topdown"  # ladder: topdown (q reads d_l and the top-down state) | precision (LVAE)
    num_classes: int = 0           # conditional models: set from the data's labels
    label_embedding: int = 0       # cvae: 0 feeds y one-hot, n > 0 a learned n-dim embedding
    learned_prior: bool = True     # cvae: p(z|y) = N(loc_y, scale_y) learned per class; false: N(0, I)
    prior_components: int = 1      # cvae: the learned p(z|y) as a mixture of this many Gaussians per class


@dataclass
class TrainConfig:
    """The optimisation: objective settings (beta, warm-up, free bits) and the loop."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "none"      # none | cosine | step
    beta: float = 1.0
    warmup_epochs: float = 0.0     # KL weight rises linearly from 0 to beta over this many epochs
    free_bits: float = 0.0         # nats per latent dimension (Kingma et al. 2016)
    capacity_max: float = 0.0      # annealed capacity (Burgess et al. 2018): target KL C in nats; 0 turns it off
    capacity_epochs: float = 0.0   # C rises linearly from 0 to capacity_max over this many epochs
    gamma: float = 1000.0          # weight of |KL - C| under the capacity objective
    tc_beta: float = 0.0           # beta-TCVAE (Chen et al. 2018): weight of the total correlation; 0 turns it off
    dimwise_warmup_epochs: float = 0.0  # beta-TCVAE: dimension-wise KL weight rises 0.05 -> 1 over these epochs
    clip_grad: float = 0.0         # max gradient norm; 0 turns clipping off
    patience: int = 0              # early stopping on validation loss; 0 turns it off
    max_bad_steps: int = 20        # consecutive non-finite steps before the run stops
    checkpoint_every: int = 0      # a mid-epoch checkpoint every this many steps; 0: only the clock below
    checkpoint_minutes: float = 5.0  # ... and at least every this many minutes; 0 turns the clock off
    seed: int = 0
    device: str = "auto"           # auto | cpu | cuda
    precision: str = "auto"        # auto | fp32 | bf16: the networks' matmuls in training (see train.autocast_dtype)
    progress: bool = True


@dataclass
class RunConfig:
    """The whole run: saved as config.json in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/run"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Rebuild from a dict (config.json or TOML); unknown keys and wrong types are refused."""
        if not isinstance(d, dict):
            raise VaekitError(f"config: expected a table of sections, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise VaekitError(f"config: unknown section or key {sorted(unknown)[0]!r}")
        from .parse import _as_table, _coerce, set_value

        cfg = cls()
        for name, value in d.items():
            if name == "out":
                cfg.out = _coerce("out", value, str)
            else:
                for key, v in _as_table(name, value).items():
                    set_value(cfg, f"{name}.{key}", v)
        return cfg


SECTIONS = ("data", "model", "train")
