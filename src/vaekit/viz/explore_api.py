"""What the explorer page asks of a run (``Explorer``): codes in, pictures out; a refused request is an ``ApiError``."""

from __future__ import annotations

import base64
import io
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch import Tensor

from .. import files
from ..core.contract import latent_size
from ..core.reading import mean_of
from ..errors import VaekitError
from ..evaluation.metrics import encode_means
from ..runs import Run
from .curves import read_metrics
from .figures import decode_mean, lerp
from .latent_walks import snapped
from .plots import image_grid, is_image
from .report_pictures import best_epoch

Z_LIMIT = 10.0  # |z| accepted per dimension
MAX_STEPS, MAX_SAMPLES, N_ITEMS = 32, 64, 16
N_ENCODED = 1000  # items encoded for the dims' spread: the first of the items given
NO_CODES = "this model draws no codes from its prior (no prior_codes): leave out codes"
KEYS = {"decode": ("z", "y"), "interpolate": ("a", "b", "steps", "y"), "sample": ("n", "y", "codes")}  # a body's keys


def check_images(run: Run) -> None:
    """Refuse, in one line, a run not trained on images (C, H, W): the explorer draws pictures."""
    if not is_image(tuple(run.config.model.input_shape)):
        raise VaekitError("explore needs a run trained on images (C, H, W)")


class ApiError(Exception):
    """A refused request: HTTP ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def png_url(x: Tensor, nrow: int | None = None, pad: int = 2) -> str:
    """(N, C, H, W) in [0, 1] -> a data: URL of their grid as PNG."""
    buf = io.BytesIO()
    Image.fromarray(image_grid(x, nrow, pad)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Explorer:
    """What the page asks of a run: codes in, pictures out. ``items`` (N, *shape) with labels (N,) or None."""

    def __init__(self, run: Run, x: Tensor, y: Tensor | None, n_items: int = N_ITEMS):
        check_images(run)
        self.run, self.d = run, latent_size(run.model)
        self.k = len(run.classes) if run.classes else run.config.model.num_classes  # as run.labels counts them
        self.conditional = bool(run.model.needs_labels)
        y = y if self.conditional else None
        means = encode_means(run, x[:N_ENCODED], None if y is None else y[:N_ENCODED])  # (N, D)
        spread = means.std(0) if len(means) > 1 else torch.ones(self.d)
        self.order = spread.argsort(descending=True).tolist()  # most active first
        self.spread = spread.tolist()
        self.items_x, self.items_y = x[:n_items], None if y is None else y[:n_items]
        self.items_z = means[:n_items]  # (n_items, D) posterior means
        # a hierarchy's groups are conditional (p(z_2 | z_1), ...): zero, or N(0, I) draws, mean nothing there
        self.start = self.items_z[0] if len(run.model.latent_dims) > 1 and len(self.items_z) else torch.zeros(self.d)
        self.prior_codes = callable(getattr(run.model, "prior_codes", None))  # draws codes from its prior
        self.weights = self._weights_file()  # as loaded: /api/info says when the file on disk changes

    def _weights_file(self) -> dict:
        """The served weights: the epoch they are from (the best by val_loss, as the trainer keeps them; None:
        unknown) and their file's modification time (None: no folder)."""
        if self.run.path is None:
            return {"epoch": None, "mtime": None, "ns": None}
        try:
            epoch = best_epoch(read_metrics(self.run.path / files.METRICS))
        except VaekitError:
            epoch = None
        return {"epoch": epoch, "mtime": _mtime(self.run.path / files.WEIGHTS), "ns": _stamp(self.run.path)}

    def info(self) -> dict:
        return {
            "latent_dim": self.d,
            "order": self.order,
            "spread": self.spread,
            "z_limit": Z_LIMIT,
            "num_classes": self.k if self.conditional else 0,
            "classes": self.run.classes if self.conditional else None,  # names, label 0 first (None: numbers)
            "shape": self.run.config.model.input_shape,
            "run": self.run.folder.name,
            "max_steps": MAX_STEPS,
            "max_samples": MAX_SAMPLES,
            "start": self.start.tolist(),  # the sliders' first code: zeros, or a hierarchy's item 0's posterior mean
            "prior_codes": self.prior_codes,  # /api/sample draws codes from the prior ("codes": true)
            "weights_epoch": self.weights["epoch"],
            "weights_mtime": self.weights["mtime"],  # ISO 8601, UTC
            "weights_changed": self.run.path is not None and _stamp(self.run.path) != self.weights["ns"],
        }

    def items(self) -> dict:
        ys = [None] * len(self.items_x) if self.items_y is None else self.items_y.tolist()
        return {
            "items": [
                {"index": i, "image": png_url(self.items_x[i : i + 1], pad=0), "y": ys[i]}
                for i in range(len(self.items_x))
            ]
        }

    def decode(self, body: dict) -> dict:
        _keys(body, "decode")
        z, y = self._z(body.get("z")), self._label(body.get("y"))
        start = time.perf_counter()
        image = png_url(decode_mean(self.run, snapped(self.run, z[None]), y), pad=0)  # a discrete run's: codes
        return {"image": image, "ms": round((time.perf_counter() - start) * 1000, 2)}

    def interpolate(self, body: dict) -> dict:
        _keys(body, "interpolate")
        a, b = (_int(body.get(key), key, 0, len(self.items_x) - 1) for key in ("a", "b"))
        steps = _int(body.get("steps", 10), "steps", 2, MAX_STEPS)
        codes = lerp(self.items_z[a], self.items_z[b], torch.linspace(0, 1, steps))  # (steps, D)
        codes = snapped(self.run, codes)  # a gumbel or vq run's points made codes its decoder reads, as interpolate
        y = None if self.items_y is None else self.items_y[a : a + 1]  # the path keeps a's class
        y = self._label(body["y"]) if body.get("y") is not None else y
        frames = decode_mean(self.run, codes, y)
        return {"frames": [png_url(f[None], pad=0) for f in frames], "codes": codes.tolist()}

    def sample(self, body: dict) -> dict:
        """``n`` samples' grid; with ``codes``, of a model that draws them (``prior_codes``), also their codes
        (n, D), drawn from the prior (a hierarchy's groups each given those above) and decoded."""
        _keys(body, "sample")
        n, y = _int(body.get("n", 16), "n", 1, MAX_SAMPLES), self._label(body.get("y"))
        codes = body.get("codes", False)
        if not isinstance(codes, bool) or (codes and not self.prior_codes):
            raise ApiError(422, "codes must be true or false" if not isinstance(codes, bool) else NO_CODES)
        with torch.no_grad():
            if codes:
                z = getattr(self.run.model, "prior_codes")(n).cpu()  # noqa: B009 (a hierarchy's) - (n, D)
                x = decode_mean(self.run, z, y)
            else:
                x = mean_of(self.run.model.generate(n, 1.0, None if y is None else y.repeat(n))).cpu()
        drawn = {"codes": z.tolist()} if codes else {}
        return {"image": png_url(x, nrow=math.ceil(math.sqrt(n))), **drawn}

    def _z(self, z: object) -> Tensor:
        """A code: a list of ``d`` finite numbers within +-Z_LIMIT -> (D,)."""
        if not isinstance(z, list) or len(z) != self.d:
            raise ApiError(422, f"z must be a list of {self.d} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
            raise ApiError(422, "z must hold numbers only")
        if not all(abs(v) <= Z_LIMIT for v in z):  # False for NaN and inf; safe for huge ints
            raise ApiError(422, f"z values must be finite and within +-{Z_LIMIT:g}")
        return torch.tensor(z, dtype=torch.float32)

    def _label(self, y: object) -> Tensor | None:
        """(1,) int64 for a conditional model (required): a label number 0..K-1 (an integer) or a class name (text,
        as the command line takes it; a run without names takes its numbers as text), read by ``run.labels`` as
        every verb reads labels; None otherwise (a label is then refused)."""
        if not self.conditional:
            if y is not None:
                raise ApiError(422, "this model is not conditional: leave out y")
            return None
        names = self.run.classes
        want = f"a label number in 0..{self.k - 1}" + (f" or a class name ({', '.join(names)[:200]})" if names else "")
        if not isinstance(y, (int, str)) or isinstance(y, bool):
            raise ApiError(422, f"y must be {want}")
        try:
            return cast(Tensor, self.run.labels(y, 1))
        except VaekitError:
            raise ApiError(
                422, f"y {y[:60]!r}: expected {want}" if isinstance(y, str) else f"y must be {want}"
            ) from None


def _int(v: object, name: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(422, f"{name} must be an integer in {lo}..{hi}")
    return v


def _keys(body: dict, endpoint: str) -> None:
    """Refuse (422) a body key the endpoint does not read: a typo would otherwise silently get the default."""
    if unknown := [k for k in body if k not in KEYS[endpoint]]:
        allowed = ", ".join(KEYS[endpoint])
        raise ApiError(422, f"/api/{endpoint} takes only {allowed}; not {', '.join(map(repr, unknown))[:200]}")


def _mtime(path: Path) -> str | None:
    """``path``'s modification time as ISO 8601 UTC text (None: unreadable)."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    except OSError:
        return None


def _stamp(folder: Path) -> int | None:
    """The weights file's modification time in ns, and so whether it changed (None: unreadable)."""
    try:
        return (folder / files.WEIGHTS).stat().st_mtime_ns
    except OSError:
        return None
