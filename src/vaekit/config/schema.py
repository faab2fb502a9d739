"""The settings of a run: flat dataclasses (data, model, train), saved as config.json beside the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import VaekitError
from .formats import Stored


@dataclass
class DataConfig:
    """Where the data comes from and how it is prepared."""

    spec: str = "mnist5k"  # built-in name or path (see vaekit.data.load_dataset)
    binarize: str = "auto"  # auto | dynamic | fixed | none (auto: dynamic for grey images + Bernoulli)
    standardize: str = "auto"  # auto | true | false: per-column loc/scale fitted on train (auto: Gaussian tables)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    label_column: str | None = None
    data_dir: str | None = None
    limit: int | None = None
    in_memory: str = "auto"  # auto | true | false: false streams a .npy (memory-mapped) or image folder
    workers: int = 2  # loader processes for streamed data (0: read in the training process)
    image_size: list[int] = field(default_factory=list)  # image folders: [S] or [H, W] to resize to ([]: as stored)
    crop: str = "center"  # center: crop to image_size's aspect ratio before resizing | none (never stretched)
    mode: str = "auto"  # image folders: auto (RGB if any image has colour, else L) | L | RGB
    cache: bool = False  # image folders: decode once into a uint8 cache that later epochs and runs read
    skip_unreadable: bool = False  # image folders: skip unreadable files (listed in the run's skipped.json)
    missing: str = "refuse"  # tables: refuse | drop (rows with gaps) | mean (train means; modes of categories)
    categorical: list[str] = field(default_factory=list)  # tables: columns modelled as categories (text ones are)
    numeric: str = "standard"  # tables: standard (standardised numbers) | modes (TVAE's mode-specific normalisation)


@dataclass
class ModelConfig:
    """Everything that rebuilds the network (with the input shape, filled in from the data)."""

    family: str = "vae"  # registered model family
    net: str = "mlp"  # mlp | conv (| custom: networks given in Python, see model.json)
    likelihood: str = "auto"  # auto | bernoulli | cbernoulli | gaussian | discretized_logistic (see data.prepare)
    likelihood_components: int = 5  # discretized_logistic: logistics in each pixel's mixture
    scale: str = "learned"  # gaussian scale: learned (per dim) | shared | decoded (from z) | a positive number
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [400, 400])  # MLP widths
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv widths, one stride-2 block each
    input_shape: list[int] = field(default_factory=list)  # (C, H, W) or (D,): set from the data
    latent_dims: list[int] = field(default_factory=list)  # ladder: z_1..z_L, data up; empty: 32,16 (old: latent_dim)
    ladder_posterior: str = "topdown"  # ladder: topdown (q reads d_l and the top-down state) | precision (LVAE)
    num_classes: int = 0  # conditional models: set from the data's labels
    label_embedding: int = 0  # cvae: 0 feeds y one-hot, n > 0 a learned n-dim embedding
    learned_prior: bool = True  # cvae: p(z|y) = N(loc_y, scale_y) learned per class; false: N(0, I)
    prior_components: int = 0  # Gaussians in the mixture p(z|y) per class (cvae) or p(z) (prior mixture); 0: 1 | 10
    prior: str = "standard"  # vae: p(z): standard | mixture | vamp | flow (vaekit.models.priors)
    pseudo_inputs: int = 500  # prior vamp: K learned pseudo-inputs
    pseudo_init: str = "data"  # prior vamp: start them at K training items (data) | 5% of the range + noise (noise)
    posterior: str = "gaussian"  # vae: q(z|x): gaussian | iaf | nsf (vaekit.models.posteriors)
    flow_transforms: int = 3  # prior flow, posterior iaf | nsf: flow steps
    flow_hidden: list[int] = field(default_factory=lambda: [128, 128])  # ... and each step's network widths
    deep_groups: list[int] = field(default_factory=lambda: [1, 2, 2, 0])  # deep: z groups per resolution, 1x1 first
    deep_width: int = 32  # deep: channels of the top-down state and the bottom-up activations
    deep_cell_width: int = 16  # deep: inner width of the residual cells
    deep_latent_channels: int = 4  # deep: channels C_z of each latent group (C_z x h x w)
    deep_cells: int = 1  # deep: residual cells per resolution, each way
    deep_patch: int = 1  # deep: p x p pixel patches folded into channels at the input, unfolded at the output
    deep_head_kernel: int = 3  # deep: kernel (odd) of p(x|z)'s convolution: 1 reads each cell alone, 3 its neighbours
    deep_ar_channels: int = 0  # deep: > 0 makes p(x|z) local autoregressive (bernoulli): features per pixel
    deep_ar_kernel: int = 11  # deep: the autoregressive head's causal window (odd), pixels above and to the left
    deep_init: str = "scaled"  # deep: residual branches start scaled by 1/sqrt(N) | zero
    residual_posterior: bool = False  # deep: q(z_g|x, z_<g) = N(loc_p + d_loc, scale_p * d_scale) (NVAE)
    checkpoint_cells: bool = False  # deep: recompute the top-down blocks in the backward pass (less memory)
    codebook_size: int = 512  # vq: K codes in the codebook
    code_dim: int = 64  # vq: D, the size of each code vector
    commitment: float = 0.25  # vq: beta_c of the commitment loss ||z_e - sg(e)||^2
    codebook_decay: float = 0.99  # vq: EMA decay of the codebook updates
    pixelcnn_channels: int = 64  # vq: width of the gated PixelCNN prior over the code grid
    pixelcnn_layers: int = 5  # vq: its gated layers
    categories: int = 10  # gumbel: K classes of each of the latent_dim categorical variables


@dataclass
class TrainConfig:
    """The optimisation: objective settings (beta, warm-up, free bits) and the loop."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "none"  # none | cosine | step (halved at each quarter of the run: 3 halvings in all)
    beta: float = 1.0
    warmup_epochs: float = 0.0  # KL weight rises linearly from 0 to beta over this many epochs
    free_bits: float = 0.0  # nats per latent dimension (Kingma et al. 2016)
    capacity_max: float = 0.0  # annealed capacity (Burgess et al. 2018): target KL C in nats; 0 turns it off
    capacity_epochs: float = 0.0  # C rises linearly from 0 to capacity_max over this many epochs
    gamma: float = 1000.0  # weight of |KL - C| under the capacity objective
    tc_beta: float = 0.0  # beta-TCVAE (Chen et al. 2018): weight of the total correlation; 0 turns it off
    dimwise_warmup_epochs: float = 0.0  # beta-TCVAE: dimension-wise KL weight rises 0.05 -> 1 over these epochs
    tc_estimator: str = "mws"  # beta-TCVAE: q(z) by minibatch-weighted (mws) | minibatch stratified (mss) sampling
    objective: str = "elbo"  # elbo | iwae | miwae | ciwae | piwae | mmd | factor (vaekit.core.objectives_zoo)
    iw_samples: int = 5  # iwae | miwae | ciwae | piwae: K importance samples (per group)
    iw_groups: int = 1  # miwae | piwae: M groups of K samples (Rainforth et al. 2018)
    ciwae_beta: float = 0.5  # ciwae: beta ELBO + (1 - beta) IWAE
    mmd_weight: float = 10.0  # mmd: weight of MMD(q(z), p(z)) beside -rec + beta KL (beta 0: WAE-MMD)
    mmd_kernel: str = "imq"  # mmd: imq (inverse multiquadratic) | rbf
    factor_gamma: float = 10.0  # factor: weight of the total correlation the discriminator estimates
    clip_grad: float = 0.0  # max gradient norm; 0 turns clipping off
    skip_grad: float = 0.0  # skip updates whose gradient norm exceeds this (VDVAE); 0 turns it off
    skip_ratio: float = 0.0  # ... or exceeds this multiple of the median norm of the last 256 kept updates; 0: off
    ema: float = 0.0  # EMA decay of the weights used for evaluation and sampling (e.g. 0.999); 0: off
    kl_balance: bool = False  # during KL warm-up, weigh each latent group's KL by its share (NVAE)
    prior_epochs: int = 5  # vq: epochs fitting the PixelCNN prior alone on the final codes (stage two)
    gumbel_tau: float = 1.0  # gumbel: Gumbel-softmax temperature at the start, annealed geometrically ...
    gumbel_tau_end: float = 0.5  # ... toward this over the epochs, step by step (Jang et al. 2017)
    patience: int = 0  # early stopping on validation loss; 0 turns it off
    min_delta: float = 0.0  # ... counting only a validation loss better than the best by more than this (nats)
    max_bad_steps: int = 20  # skipped steps in a row that stop the run: non-finite, or over skip_grad/skip_ratio
    checkpoint_every: int = 0  # a mid-epoch checkpoint every this many steps; 0: only the clock below
    checkpoint_minutes: float = 5.0  # ... and at least every this many minutes; 0 turns the clock off
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (one GPU by its number)
    threads: int = 0  # CPU threads of training's operations (torch.set_num_threads); 0: torch's default
    precision: str = "auto"  # auto | fp32 | bf16: the networks' matmuls in training (see train.autocast_dtype)
    compile: str = "auto"  # auto | off | graph | compile: the step compiled or CUDA-graphed (training.capture)
    progress: bool = True
    tensorboard: bool = True  # TensorBoard event files in the run folder (with tensorboard installed)


@dataclass
class RunConfig:
    """The whole run: saved as config.json in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/run"
    # not a setting: what config.json held, when read from one (its format, the settings filled for an older run)
    stored: Stored = field(default_factory=Stored, compare=False, repr=False)
    # not a setting: the keys the user gave (a TOML file's, a flag, --set, a keyword), at any value (checks.given)
    given: set[str] = field(default_factory=set, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The settings (the sections and out), as config.json holds them beside its format."""
        d = asdict(self)
        del d["stored"], d["given"]
        return d

    @classmethod
    def from_dict(cls, d: dict, given: bool = False) -> RunConfig:
        """Rebuild from a dict (config.json or TOML); unknown keys and wrong types are refused. ``given``: its keys
        are the user's (a TOML file of theirs, not a preset or a run's config.json), recorded in ``given``."""
        if not isinstance(d, dict):
            raise VaekitError(f"config: expected a table of sections, got {type(d).__name__}")
        from .parse import _as_table, _coerce, did_you_mean, set_value

        names = [f.name for f in fields(cls) if f.name not in ("stored", "given")]
        unknown = sorted(set(d) - set(names))
        if unknown:
            hint = did_you_mean(unknown[0], names)
            if unknown[0] == "format":  # a run's config.json handed over as it is
                hint = " (config.json's format: read a run's config.json with vaekit.config.load_json_config)"
            raise VaekitError(f"config: unknown section or key {unknown[0]!r}{hint}")

        cfg = cls()
        for name, value in d.items():
            if name == "out":
                cfg.out = _coerce("out", value, str)
            else:
                for key, v in _as_table(name, value).items():
                    set_value(cfg, f"{name}.{key}", v, strict=True, given=given)  # TOML's, JSON's values keep types
        return cfg


SECTIONS = ("data", "model", "train")
