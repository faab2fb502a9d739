"""TensorBoard event files in the run folder, beside metrics.csv; a no-op when tensorboard is not installed.

``tensorboard --logdir runs`` then shows every run: step scalars (every 10 steps), epoch scalars (the
metrics.csv row), and per epoch a grid of samples and one of inputs above their reconstructions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .figures import displayable
from .plots import image_grid, is_image


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard needs the tensorboard package
        return None
    return SummaryWriter


class TBLogger:
    """Writes to ``run`` when tensorboard is importable (``active``); every method is a no-op otherwise.

    ``fresh`` (a new or overwritten run, not a resumed one) removes event files left by an earlier run.
    """

    def __init__(self, run: str | Path, fresh: bool = True, enabled: bool = True):
        writer = _writer_class() if enabled else None
        self.active = writer is not None
        self.writer = None
        if self.active:
            if fresh:
                for old in Path(run).glob("events.out.tfevents.*"):
                    old.unlink()
            self.writer = writer(log_dir=str(run), flush_secs=30)

    def step(self, step: int, terms: dict[str, Tensor], beta: float) -> None:
        """Batch scalars at global ``step``: loss, rec and KL (batch means) and the KL weight."""
        if not self.active:
            return
        values = torch.stack([terms["loss"].detach(), terms["rec"].detach().mean(), terms["kl"].detach().mean()])
        for name, v in zip(("loss", "rec", "kl"), values.tolist()):  # one device sync for the three
            self.writer.add_scalar(f"step/{name}", v, step)
        self.writer.add_scalar("step/beta", beta, step)

    def epoch(self, row: dict, model: nn.Module, x: Tensor, y: Tensor | None, n: int = 16) -> None:
        """The epoch's metrics row as scalars; for image data samples and reconstructions of ``x`` (B, *shape)."""
        if not self.active:
            return
        epoch = int(row["epoch"])
        for key, v in row.items():
            if key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", v, epoch)
        if is_image(tuple(x.shape[1:])) and len(x):
            samples, pairs = _pictures(model, x[:8], None if y is None else y[:8], n)
            self.writer.add_image("samples", samples, epoch, dataformats="HWC")
            self.writer.add_image("reconstructions", pairs, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@torch.no_grad()
def _pictures(model: nn.Module, x: Tensor, y: Tensor | None, n: int):
    """(H, W, 3) uint8 grids: ``n`` samples (labels cycling through y's classes), and x (B, C, H, W) above
    their reconstructions at the posterior mean."""
    was_training = model.training
    model.eval()
    ys = None if y is None else y.repeat((n + len(y) - 1) // len(y))[:n]  # (n,) labels for a conditional model
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # the training RNG stream stays as it was: resume stays exact
        torch.manual_seed(0)  # the same codes every epoch, so the sample grids can be compared
        samples = model.generate(n, 1.0, ys).mean
    x_rec = model.decode(model.encode(x, y).mean, y).mean
    model.train(was_training)
    return _rgb(image_grid(_show(samples))), _rgb(image_grid(_show(torch.cat([x, x_rec])), nrow=len(x)))


def _show(x: Tensor) -> Tensor:
    """Keep at most 3 channels (pictures of 2-channel data get a zero third)."""
    return displayable(x.float().cpu())


def _rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 -> (H, W, 3|4) so TensorBoard always gets HWC."""
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
