"""TensorBoard event files in the run folder, beside metrics.csv, written by a training callback; a no-op when
tensorboard is not installed.

``tensorboard --logdir runs`` then shows every run: step scalars (every 10 steps), epoch scalars (the
metrics.csv row), and per epoch a grid of samples and one of inputs above their reconstructions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from .. import files
from ..core.contract import VAEModule
from ..core.reading import evaluating, mean_of
from ..io import write_error
from ..training import distributed
from ..training.callbacks import Callback, FitInfo
from .mlflow_lines import cause
from .plots import image_grid, is_image


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard needs the tensorboard package
        return None
    return SummaryWriter


class TensorBoard(Callback):
    """Writes event files into the run folder when tensorboard is importable (``active``); a no-op otherwise.

    A fresh run (not a resumed one) first removes event files an earlier run left there; a resumed one logs no
    step scalars at or below the last step its event files hold (``last_step``). A disk that refuses the events
    (full, read-only) stops the run with one line (``io.WriteError``), not the writer thread's traceback.
    """

    def __init__(self, every: int = 10, n: int = 16):
        self.writer_class, self.every, self.n = _writer_class(), every, n
        self.writer: Any = None  # a SummaryWriter while a run with a folder trains
        self.logged = -1  # the last step with step scalars in the folder's event files (a resumed run's)
        self.x: Tensor | None = None  # (8, *shape) validation images, for the reconstruction pictures
        self.y: Tensor | None = None
        self.folder: Path | None = None
        self.hook: Any = None  # threading.excepthook as it was before the writer's thread started

    @property
    def active(self) -> bool:
        return self.writer_class is not None

    def on_fit_start(self, model: nn.Module, info: FitInfo) -> None:
        if not self.active or info.path is None:
            return
        if not info.resumed:
            for old in info.path.glob(files.TENSORBOARD_EVENTS):
                old.unlink()
        self.logged = last_step(info.path) if info.resumed else -1
        self.folder, self.hook = info.path, threading.excepthook
        threading.excepthook = partial(_quiet_writer_thread, self.hook)  # the main thread raises its error
        try:
            with self.disk():  # the first event is written and flushed at once
                self.writer = self.writer_class(log_dir=str(info.path), flush_secs=30)
        except UnicodeError as e:  # a folder name the writer cannot encode (bytes not UTF-8): the run goes on
            self.close()
            distributed.warn(f"TensorBoard logging stopped: {cause(e)}; training goes on without its event files")
            return
        split = info.data.val
        self.x = split.x[:8] if is_image(tuple(info.data.shape)) and len(split) else None
        self.y = None if split.y is None or not model.needs_labels else split.y[:8]

    def on_step_end(self, step: int, metrics: dict, model: nn.Module) -> None:
        """Batch scalars every ``every`` steps: loss, rec and KL (batch means) and the KL weight."""
        if self.writer is None or step % self.every or step <= self.logged:  # taken again after a kill: once
            return
        values = torch.stack([metrics["loss"], metrics["rec"], metrics["kl"]]).tolist()  # one device sync
        with self.disk():  # a write raises what the writer's thread met before it
            for name, v in zip(("loss", "rec", "kl"), values):
                self.writer.add_scalar(f"step/{name}", v, step)
            self.writer.add_scalar("step/beta", metrics["beta"], step)

    def on_epoch_end(self, epoch: int, metrics: dict, model: nn.Module) -> None:
        """The epoch's metrics row as scalars; for image data samples and reconstructions of validation items."""
        if self.writer is None:
            return
        pictures = None
        if self.x is not None:
            x = self.x.to(next(model.parameters()).device)
            y = None if self.y is None else self.y.to(x.device)
            pictures = _pictures(cast(VAEModule, model), x, y, self.n)  # fit checked the contract
        with self.disk():
            for key, v in metrics.items():
                if key != "epoch":
                    self.writer.add_scalar(f"epoch/{key}", v, epoch)
            if pictures is not None:
                self.writer.add_image("samples", pictures[0], epoch, dataformats="HWC")
                self.writer.add_image("reconstructions", pictures[1], epoch, dataformats="HWC")
            self.writer.flush()

    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        if self.writer is not None:
            with self.disk():
                self.writer.flush()  # raises the thread's error, which close() would not
            self.close()

    def on_fit_error(self, error: BaseException, info: FitInfo) -> None:
        with contextlib.suppress(OSError):  # the error that stopped the run is the one to report
            self.close()

    def close(self) -> None:
        """Close the writer (if any) and give threading.excepthook back."""
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if self.hook is not None:
                threading.excepthook, self.hook = self.hook, None

    @contextlib.contextmanager
    def disk(self) -> Iterator[None]:
        """An OSError of the writer (or of its thread, which it raises again) as one line naming the events."""
        try:
            yield
        except OSError as e:
            with contextlib.suppress(OSError):
                self.close()
            assert self.folder is not None
            raise write_error(self.folder / files.TENSORBOARD_EVENTS, e) from None


def _quiet_writer_thread(hook: Any, args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook`` but silent on an OSError in TensorBoard's writer thread: the writer raises it in
    the main thread at its next write or flush, where it becomes one line."""
    if not (isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
        hook(args)


def last_step(folder: Path) -> int:
    """The last step of the step scalars in ``folder``'s event files (-1: none): a run killed after its last
    checkpoint logged steps that its resume takes again, and an event cannot be taken back."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # type: ignore[import-untyped]

    last = -1
    for path in folder.glob(files.TENSORBOARD_EVENTS):
        try:
            for event in EventFileLoader(str(path)).Load():
                if any(v.tag.startswith("step/") for v in event.summary.value):
                    last = max(last, event.step)
        except Exception:  # noqa: BLE001 - a file cut short by a kill: the events read before it count
            continue
    return last


@torch.no_grad()
def _pictures(model: VAEModule, x: Tensor, y: Tensor | None, n: int):
    """(H, W, 3) uint8 grids: ``n`` samples (labels cycling through y's classes), and x (B, C, H, W) above
    their reconstructions at the posterior mean."""
    ys = None if y is None else y.repeat((n + len(y) - 1) // len(y))[:n]  # (n,) labels for a conditional model
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    with evaluating(model), torch.random.fork_rng(devices=cuda):  # the training RNG stream kept: resume stays exact
        torch.manual_seed(0)  # the same codes every epoch, so the sample grids can be compared
        samples = mean_of(model.generate(n, 1.0, ys))
        x_rec = mean_of(model.decode(mean_of(model.encode(x, y)), y))
    return _rgb(image_grid(samples)), _rgb(image_grid(torch.cat([x, x_rec]), nrow=len(x)))  # any channels


def _rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 -> (H, W, 3|4) so TensorBoard always gets HWC."""
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
