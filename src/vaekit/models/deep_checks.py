"""The settings the deep hierarchy (``vaekit.models.deep``) is built with, each checked in one line: its image
shape, the integer settings, the groups per resolution, the init, and the autoregressive head's settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import ModelConfig
from ..config.conflicts_zoo import AR_OFF
from ..errors import VaekitError
from .deep_cells import INITS, resolutions

AR_KERNEL: int = ModelConfig.deep_ar_kernel  # the autoregressive head's window by default


def check_settings(shape: Sequence[int], groups: Sequence[int], init: str, likelihood: str, **positive: int) -> None:
    """One line for settings the hierarchy cannot be built with (``positive``: the integer settings by name)."""
    if len(shape) != 3:
        raise VaekitError(f"the deep family needs (C, H, W) images, got item shape {tuple(shape)}", key="model.family")
    for name, v in positive.items():  # first: the checks below compute with them
        zero = name in ("cells", "ar_channels")  # 0: no cells, no autoregressive head
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero else 1):
            least = "an integer >= 0" if zero else "a positive integer"
            raise VaekitError(f"model.deep_{name} must be {least}, got {v!r}", key=f"model.deep_{name}")
    p = positive.get("patch", 1)
    if p > 1 and (shape[1] % p or shape[2] % p):
        raise VaekitError(
            f"model.deep_patch {p} must divide the images' height and width, got {shape[1]} x {shape[2]}",
            key="model.deep_patch",
        )
    for name, smallest in (("head_kernel", 1), ("ar_kernel", 3)):  # the masked window needs a row above the pixel
        k = positive.get(name, smallest)
        if k % 2 == 0 or k < smallest:
            raise VaekitError(f"model.deep_{name} must be odd and >= {smallest}, got {k}", key=f"model.deep_{name}")
    check_groups(shape, groups, p)
    if init not in INITS:
        raise VaekitError(f"model.deep_init must be one of {', '.join(INITS)}, got {init!r}", key="model.deep_init")
    check_head(likelihood, positive.get("ar_channels", 0), positive.get("ar_kernel", AR_KERNEL))


def check_groups(shape: Sequence[int], groups: Sequence[int], p: int) -> None:
    """Images (C, H, W) cut into patches of ``p`` that give a hierarchy (two resolutions or more), said first and
    alone for 1 x 1 ones, and model.deep_groups, one entry per resolution from 1 x 1 down, that fit it."""
    most = resolutions(max(shape[1], shape[2]) // p)
    if most < 2:  # before the groups: no list of groups fits a hierarchy of one resolution
        patched = f" ({shape[1] // p} x {shape[2] // p} after model.deep_patch {p})" if p > 1 else ""
        raise VaekitError(
            f"the deep family needs images of at least 2 x 2 (two resolutions or more), got {shape[1]} x {shape[2]}"
            f"{patched}",
            key="model.deep_patch" if p > 1 else "model.family",
        )
    if (
        len(groups) < 2
        or any(isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in groups)
        or not sum(groups)
    ):
        raise VaekitError(
            f"model.deep_groups lists the latent groups per resolution from 1 x 1 down to the data's "
            f"(at least 2 entries, >= 0, one > 0), got {list(groups)!r}",
            key="model.deep_groups",
        )
    if len(groups) > most:
        raise VaekitError(
            f"model.deep_groups lists {len(groups)} resolutions; {shape[1]} x {shape[2]} images (deep_patch {p}) "
            f"have {most}, each half the next, down to 1 x 1",
            key="model.deep_groups",
        )


def check_head(likelihood: str, ar_channels: int, ar_kernel: int) -> None:
    """The autoregressive head's settings: Bernoulli only, and its window only with the head on (the window is
    told from the default, ``AR_KERNEL``, as the conflicts table tells a changed setting)."""
    if ar_channels and likelihood != "bernoulli":
        raise VaekitError(
            f"model.deep_ar_channels > 0 (a local autoregressive p(x|z)) needs the bernoulli likelihood, got "
            f"{likelihood!r}",
            key="model.deep_ar_channels",
        )
    if not ar_channels and ar_kernel != AR_KERNEL:
        why = f"model.deep_ar_kernel and model.deep_ar_channels cannot both take effect: {AR_OFF}"
        raise VaekitError(why, key="model.deep_ar_kernel")


def check_flags(**flags: object) -> None:
    """One line for a switch that is not a bool (``"yes"``, 1), which the model would keep and record."""
    for name, v in flags.items():
        if not isinstance(v, bool):
            raise VaekitError(f"model.{name} must be True or False, got {v!r}", key=f"model.{name}")
