"""config.json's format: a run folder's settings as the vaekit that wrote them meant them.

Every config.json vaekit writes carries ``"format": FORMAT``; one without it is format 1 (every vaekit before
it wrote one). A setting a stored config lacks is read as its vaekit behaved, where today's default would build
another model or read the data otherwise (``BEFORE``); any other missing setting takes today's default, which
does what that vaekit did. A new setting whose default changes what an older run builds or reads raises
``FORMAT`` and joins ``BEFORE`` with the format it first appears in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import VaekitError

FORMAT = 2


@dataclass(frozen=True)
class Before:
    """``key`` read as ``value`` in a config of a format below ``since`` that lacks it (for ``families``; empty:
    every family): what the vaekit before ``commit`` did."""

    key: str
    value: object
    since: int
    commit: str
    families: tuple[str, ...] = ()


BEFORE = (
    # today 'auto' standardises a Gaussian table's columns: the checkpoint then misses Standardized's loc and scale
    Before("data.standardize", "false", 2, "69c12bf"),
    # the ladder's q(z_l|x, z_>l) was LVAE's precision-weighted one (to_q read d_l alone), today's default topdown
    Before("model.ladder_posterior", "precision", 2, "c60be88", ("ladder",)),
    # p(x|z) read each cell alone (a 1x1 convolution, to_x.1.weight (C, W, 1, 1)), today's default a 3x3 one
    Before("model.deep_head_kernel", 1, 2, "941d399", ("deep",)),
)


@dataclass
class Stored:
    """What a config read from config.json carried: its ``format``, and the settings it lacked that were
    ``filled`` (key: value) with what the vaekit that wrote it did. A config made today is of ``FORMAT``."""

    format: int = FORMAT
    filled: dict[str, object] = field(default_factory=dict)
    # read from a run folder to be used (``load_json_config``): an objective not registered here is taken, as only
    # training reads it (``registered``); a config to train is made anew (``RunConfig.from_dict``) or set False
    loaded: bool = False


def upgrade(d: object) -> Stored:
    """Take "format" out of a config.json's dict ``d`` and fill in the settings its format lacks (``BEFORE``),
    in place; a ``d`` that is no dict is left for ``RunConfig.from_dict`` to refuse."""
    if not isinstance(d, dict):
        return Stored(1)
    version = d.pop("format", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise VaekitError(f"config: format must be a whole number from 1 (vaekit writes {FORMAT}), got {version!r}")
    if version > FORMAT:
        raise VaekitError(
            f"config: format {version} comes from a later vaekit (this one reads formats 1 to {FORMAT}): upgrade "
            "vaekit to read this run"
        )
    model = d.get("model")
    family = model.get("family", "vae") if isinstance(model, dict) else None
    if isinstance(model, dict) and family not in ("cvae", "custom") and model.get("num_classes"):
        model["num_classes"] = 0  # vaekit.fit recorded the data's classes for models that read no labels too
    filled: dict[str, object] = {}
    for rule in BEFORE:
        section, name = rule.key.split(".")
        table = d.setdefault(section, {})
        applies = version < rule.since and (not rule.families or family in rule.families)
        if applies and isinstance(table, dict) and name not in table:
            table[name] = filled[rule.key] = rule.value
    return Stored(version, filled)


def note(key: str, value: object, stored: Stored) -> str:
    """How a resumed run's ``value`` of ``key`` was read: from config.json, or filled for an older run."""
    if key in stored.filled:
        return f"{value!r} for a run written before {key} existed"
    return f"{value!r} in config.json"


def shown(value: object) -> str:
    """A setting's value as a line shows it: a float by ``:g`` (0.001, 1e-05), anything else as text (cosine)."""
    return f"{value:g}" if isinstance(value, float) else str(value)
