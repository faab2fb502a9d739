"""The pictures a run folder gets when training ends (samples.png, reconstructions.png, loss.png), as a training
callback, and the callbacks every run with a folder gets by default."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from .. import files, logs
from ..config import RunConfig
from ..core.contract import VAEModule
from ..errors import NotFinite
from ..runs import Run
from ..training.callbacks import Callback, FitInfo
from .curves import plot_losses
from .plots import save_reconstructions, save_samples, stamped, table_columns
from .tensorboard import TensorBoard


class Pictures(Callback):
    """samples.png (a row per class for a conditional model), reconstructions.png of 32 test items (validation
    items when there is no test split) and loss.png, from the best weights, into the run folder."""

    def __init__(self, n: int = 64, per_class: int = 8):
        self.n, self.per_class = n, per_class

    @torch.no_grad()
    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        if info.path is None:
            return
        run = Run(info.path, info.config, cast(VAEModule, model))  # fit checked the contract
        with stamped(run.digest):
            try:
                self.draw(run, model, info)
            except NotFinite as e:  # the weights and metrics are kept: they show the divergence
                logs.warning(f"{info.path}: no pictures drawn: {e}", bare=True)

    def on_nothing_to_train(self, model: nn.Module, info: FitInfo) -> None:
        """A resume with nothing left to train draws the pictures again only where a kill after the last
        checkpoint left one undrawn: missing, older than that checkpoint, or drawn from other weights."""
        if info.path is not None and undrawn(info.path, Run(info.path, info.config, cast(VAEModule, model)).digest):
            self.on_fit_end(model, info)

    def draw(self, run: Run, model: nn.Module, info: FitInfo) -> None:
        path, columns = info.path, table_columns(run)  # a table's: named and standardised as in training
        assert path is not None  # on_fit_end draws only for a run with a folder
        if model.needs_labels:
            save_samples(run.sample_classes(self.per_class), path / files.SAMPLES, self.per_class, columns)
        else:
            save_samples(run.sample(self.n), path / files.SAMPLES, columns=columns)
        split = info.data.test if len(info.data.test) else info.data.val
        xs, ys = split.x[:32], None if split.y is None or not model.needs_labels else split.y[:32]
        save_reconstructions(xs.cpu(), run.reconstruct(xs, ys), path / files.RECONSTRUCTIONS, columns=columns)
        plot_losses(path / files.METRICS, path / files.LOSS)


def undrawn(folder: Path, digest: str) -> bool:
    """Whether a picture of the end of training in ``folder`` is missing, older than its checkpoint (the last file
    an epoch writes) or stamped with other weights than ``digest``'s."""
    checkpoint = folder / files.CHECKPOINT
    after = checkpoint.stat().st_mtime_ns if checkpoint.is_file() else 0
    paths = [folder / n for n in (files.SAMPLES, files.RECONSTRUCTIONS, files.LOSS)]
    return any(not p.is_file() or p.stat().st_mtime_ns < after or files.stamp(p) != digest for p in paths)


def default_callbacks(cfg: RunConfig, pictures: bool = True) -> list[Callback]:
    """What a run with a folder gets: TensorBoard event files (with tensorboard installed; train.tensorboard false:
    none) and its pictures."""
    if not cfg.out:
        return []
    return [*([TensorBoard()] if cfg.train.tensorboard else []), *([Pictures()] if pictures else [])]
