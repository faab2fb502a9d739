"""Flat dataclass configs (data, model, train) saved with the weights; TOML files and key=value overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import VaekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    """Where the data comes from and how it is prepared."""

    spec: str = "mnist5k"          # built-in name or path (see vaekit.data.load_dataset)
    binarize: str = "auto"         # auto | dynamic | fixed | none (auto: dynamic for images + Bernoulli)
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
    likelihood: str = "bernoulli"  # bernoulli | cbernoulli | gaussian
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
        cfg = cls()
        for name, value in d.items():
            if name == "out":
                cfg.out = _coerce("out", value, str)
            else:
                for key, v in _as_table(name, value).items():
                    set_value(cfg, f"{name}.{key}", v)
        return cfg


SECTIONS = ("data", "model", "train")


def _as_table(name: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise VaekitError(f"config: section {name!r} must be a table")
    return value


def _field(section: object, key: str) -> dataclasses.Field:
    for f in fields(section):
        if f.name == key:
            return f
    raise VaekitError(f"config: unknown key {key!r} in section {type(section).__name__}")


def _resolve(cfg: RunConfig, key: str) -> tuple[object, str]:
    """Find the section holding ``key`` ('train.lr' or an unambiguous bare 'lr')."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise VaekitError(f"config: unknown section {section!r} in {key!r}")
        return getattr(cfg, section), name
    owners = [s for s in SECTIONS if any(f.name == key for f in fields(getattr(cfg, s)))]
    if len(owners) != 1:
        what = "unknown" if not owners else f"ambiguous ({', '.join(owners)})"
        raise VaekitError(f"config: {what} key {key!r}")
    return getattr(cfg, owners[0]), key


def set_value(cfg: RunConfig, key: str, value: object) -> None:
    """Set one setting, converting strings (from --set) to the field's type."""
    if key == "out":
        cfg.out = _coerce(key, value, str)
        return
    section, name = _resolve(cfg, key)
    hints = typing.get_type_hints(type(section))
    setattr(section, name, _coerce(key, value, hints[_field(section, name).name]))


def _coerce(key: str, value: object, tp: object) -> object:
    """Convert ``value`` to type ``tp`` (str, int, float, bool, list[int], X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(key, value, args[0])
    if origin is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise VaekitError(f"config: {key} must be a list, got {value!r}")
        return [_coerce(key, v, typing.get_args(tp)[0]) for v in items if v != ""]
    try:
        if tp is bool:
            return _to_bool(value)
        if tp in (int, float) and isinstance(value, bool):
            raise ValueError  # JSON true is not a number
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if tp is str and not isinstance(value, str):
            raise ValueError
        return tp(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        raise VaekitError(f"config: {key} must be {getattr(tp, '__name__', tp)}, got {_short(value)}") from None


def _short(value: object) -> str:
    """repr of a bad value, cut so that the error stays one readable line."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str limit
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError


def load_toml(path: str | Path) -> dict:
    """Read a TOML config file into a dict of sections."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaekitError(f"{path}: config file not found") from None
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError, or an int past the 4300-digit limit
        raise VaekitError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:  # a folder, no permission
        raise VaekitError(f"{path}: cannot read config file ({e.strerror or e})") from None


def load_json_config(path: str | Path) -> RunConfig:
    """Read a run's config.json."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise VaekitError(f"{path}: not found (is this a vaekit run folder?)") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, or an int past the 4300-digit limit
        raise VaekitError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise VaekitError(f"{path}: cannot read ({e.strerror or e})") from None
    with settings_from(path):
        return RunConfig.from_dict(d)


def load_toml_config(path: str | Path) -> RunConfig:
    """Read a TOML config file (tables [data], [model], [train]) into a RunConfig."""
    with settings_from(path):
        return RunConfig.from_dict(load_toml(path))


@contextmanager
def settings_from(path: str | Path) -> Iterator[None]:
    """Errors about settings read from ``path`` name that file instead of 'config'."""
    try:
        yield
    except VaekitError as e:
        msg = str(e).removeprefix("config: ")
        raise VaekitError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from None


CHOICES = {
    "data.binarize": ("auto", "dynamic", "fixed", "none"),
    "data.in_memory": ("auto", "true", "false"),
    "model.net": ("mlp", "conv", "custom"),  # custom: networks given in Python (model.json)
    "model.likelihood": ("bernoulli", "cbernoulli", "gaussian"),
    "model.ladder_posterior": ("topdown", "precision"),
    "train.lr_schedule": ("none", "cosine", "step"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("auto", "fp32", "bf16"),
}
POSITIVE = ("model.latent_dim", "model.prior_components", "train.epochs", "train.batch_size", "train.lr",
            "train.max_bad_steps")
NON_NEGATIVE = ("train.checkpoint_every", "train.checkpoint_minutes", "train.beta", "train.warmup_epochs",
                "train.dimwise_warmup_epochs",
                "train.free_bits", "train.clip_grad", "train.patience",
                "model.num_classes", "model.label_embedding", "train.capacity_max", "train.capacity_epochs",
                "train.gamma", "data.workers", "train.tc_beta")


def validate(cfg: RunConfig) -> RunConfig:
    """Refuse nonsense settings with one line each; returns ``cfg``."""
    def get(key: str) -> object:
        section, name = key.split(".")
        return getattr(getattr(cfg, section), name)

    for key, allowed in CHOICES.items():
        if get(key) not in allowed:
            raise VaekitError(f"config: {key} must be one of {', '.join(allowed)}, got {get(key)!r}")
    for section in SECTIONS:
        for f in fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise VaekitError(f"config: {section}.{f.name} must be a finite number, got {value!r}")
    for key in POSITIVE:
        if not get(key) > 0:
            raise VaekitError(f"config: {key} must be > 0, got {get(key)!r}")
    for key in NON_NEGATIVE:
        if not get(key) >= 0:
            raise VaekitError(f"config: {key} must be >= 0, got {get(key)!r}")
    for key in ("model.hidden", "model.channels", "model.latent_dims"):
        if any(w <= 0 for w in get(key)):
            raise VaekitError(f"config: {key} widths must be > 0, got {get(key)!r}")
    if cfg.train.tc_beta > 0 and len(cfg.model.latent_dims) > 1:
        raise VaekitError("config: train.tc_beta (beta-TCVAE) needs a single latent layer, not model.latent_dims")
    if cfg.model.net == "conv" and not cfg.model.channels:
        raise VaekitError("config: model.channels must name at least one conv block")
    for key in ("data.val_fraction", "data.test_fraction"):
        if not 0 <= get(key) < 1:
            raise VaekitError(f"config: {key} must be in [0, 1), got {get(key)!r}")
    parse_scale(cfg.model.scale)
    return cfg


def parse_scale(scale: str) -> str | float:
    """'learned' | 'shared' | 'decoded' | a positive number (a fixed Gaussian scale)."""
    if scale in ("learned", "shared", "decoded"):
        return scale
    try:
        value = float(scale)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise VaekitError(f"config: model.scale must be learned, shared, decoded or a positive number, got {scale!r}")
    return value
