"""Settings: flat dataclass configs (data, model, train) saved with the weights; TOML files, key=value overrides,
and validation."""

from .checks import (
    CHOICES,
    NON_NEGATIVE,
    OWN_LIKELIHOOD,
    POSITIVE,
    maybe_own,
    own_likelihood,
    parse_scale,
    validate,
)
from .conflicts import CONFLICTS, refuse_conflicts
from .formats import FORMAT
from .parse import (
    load_json_config,
    load_toml,
    load_toml_config,
    set_value,
    settings_from,
)
from .resume import RESUME_MAY_CHANGE, keep_settings
from .schema import SECTIONS, DataConfig, ModelConfig, RunConfig, TrainConfig
from .specs import absolute_spec

__all__ = [
    "CHOICES",
    "CONFLICTS",
    "FORMAT",
    "NON_NEGATIVE",
    "OWN_LIKELIHOOD",
    "POSITIVE",
    "RESUME_MAY_CHANGE",
    "SECTIONS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "absolute_spec",
    "keep_settings",
    "load_json_config",
    "load_toml",
    "load_toml_config",
    "maybe_own",
    "own_likelihood",
    "parse_scale",
    "refuse_conflicts",
    "set_value",
    "settings_from",
    "validate",
]
