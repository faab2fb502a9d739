"""A run as an object: its folder (or none), its config, its model, and what users ask of it (samples,
reconstructions, codes). ``Run.load`` opens a folder; ``vaekit.fit`` returns one."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeAlias, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from . import files
from .config import RunConfig
from .core.contract import VAEModule
from .core.likelihoods import LIKELIHOODS, check_support
from .data.containers import is_frame
from .data.core import check_finite
from .data.labels import label_numbers
from .data.lazy import LazyArray
from .data.run_json import read_class_counts, read_classes
from .data.tables import TableSchema
from .data.user import run_items
from .errors import VaekitError, whole
from .io import run_lock
from .models.deep import DeepVAE
from .models.temperature import Temperature, temperatures
from .models.trust import trusting
from .run_chunks import encoded, reconstructed
from .run_compat import earlier_classes
from .run_history import loaded, read_history, stale_files
from .run_reads import finite, reading, trained
from .samplers import prior_draws, sample_with, sampler_for
from .samplers.table_draws import joined, table_draws
from .training.checkpoint import bit_sums, tensor_digest
from .training.step import run_device

T = TypeVar("T", bound=Tensor | LazyArray)  # items: a tensor or lazily read data
ArrayLike: TypeAlias = Tensor | np.ndarray | list  # items (B, *shape): a tensor, a numpy array or nested lists
LabelsLike: TypeAlias = Tensor | np.ndarray | list | tuple | int | np.integer | str  # one label (number, name), or (B,)


@dataclass
class Run:
    """A trained model with its config: ``vaekit.load_run("runs/demo").sample(16)``.

    ``path`` is the run folder (None for a fit without ``out``); ``history`` its metrics rows, one per epoch (a
    loaded run's read from its metrics.csv). Inputs may be tensors, numpy arrays or lists, read as
    ``fit`` reads them (uint8 images divided by 255).
    """

    path: Path | None
    config: RunConfig
    model: VAEModule  # an nn.Module that meets vaekit.VAEModel
    history: list[dict] = field(default_factory=list)
    kept: dict = field(default_factory=dict, repr=False)  # a run without a folder: "table", "classes", "counts"

    def __post_init__(self) -> None:
        if self.path is not None:  # absolute: the run keeps its folder after os.chdir (a notebook's %cd)
            self.path = Path(os.path.abspath(self.path))  # no symlink resolved, '..' folded
            self.config.out = str(self.path)

    def __repr__(self) -> str:
        """One line: the folder, the model, its p(x|z), latent and item shapes, and its training (``run_reads.trained``:
        epochs trained of those planned, the kept weights' epoch and validation loss, how it ended)."""
        m = self.config.model
        model = m.family if m.family == "deep" else f"{m.family}/{m.net}"  # deep's networks are its own (no net)
        rows = self.history or (read_history(self.path) if self.path is not None else [])
        return (
            f"Run(path={self.path and str(self.path)!r}, model={model!r}, likelihood={m.likelihood!r}, "
            f"latent_dims={list(getattr(self.model, 'latent_dims', []))}, input_shape={tuple(m.input_shape)}, "
            f"{trained(self.path, rows, self.config.train)})"
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        weights: str = files.WEIGHTS,
        model: nn.Module | None = None,
        trust_code: bool = False,
    ) -> Run:
        """Rebuild the model (or take ``model``, a skeleton of the same architecture) and load its weights: the
        kept ones (model.safetensors), or the file ``weights`` names in the folder, which may be a training
        checkpoint (checkpoint.safetensors: the last step's weights, not their EMA average, after early stopping
        too). ``trust_code=True`` lets model.json name any class, whose module is then imported (its code runs):
        only for folders you trust. Without it, only vaekit's, torch.nn's and registered classes are imported."""
        if ((path := Path(path).expanduser()) / files.SCALES).is_file():  # '~/runs/a': in the home folder
            raise VaekitError(
                f"{path}: holds a multi-scale anomaly detector ({files.SCALES}), not a run: vaekit anomaly and "
                "anomaly-eval score it (VAEAnomalyDetector.from_run in Python), and each scale-<i> in it is a run"
            )
        where = run_device(str(device))  # before the weights are read; torch.device("cuda:0") as "cuda:0"
        with trusting(trust_code):  # a folder of an earlier vaekit read as today's (run_compat)
            cfg, model = loaded(path, weights, model, where)
        return cls(path, cfg, model, read_history(path))  # cfg.out: where the run is now (its table.json)

    @property
    def digest(self) -> str:
        """SHA-256 of the model's weights: what files derived from them record (``vaekit.files.DIGEST``). Hashed
        again only when the weights change: kept with a key of each tensor's storage, in-place version (which a
        fused optimiser step and an edit through ``.data`` leave as it was) and weighted sums of bits (``bit_sums``)."""
        state = self.model.state_dict(keep_vars=True)
        key = (tuple((k, id(v), v.data_ptr(), v._version) for k, v in state.items()), bit_sums(state.values()))
        kept = self.__dict__.get("_digest")
        if kept is None or kept[0] != key:
            kept = self.__dict__["_digest"] = (key, tensor_digest({k: v.detach().cpu() for k, v in state.items()}))
        return kept[1]

    @cached_property
    def table(self) -> TableSchema | None:
        """A table run's columns (names, kinds, categories, loc and scale) from its table.json, else None."""
        if self.path is None:
            return self.kept.get("table")
        path = self.path / files.TABLE
        return TableSchema.load(path) if path.is_file() else None

    @cached_property
    def classes(self) -> list[str] | None:
        """The class names of the run's labels, label 0 first (its classes.json; a conditional run of vaekit before
        classes.json, format 1: those its own data's labels were numbered by), else None."""
        if self.path is None:
            return self.kept.get("classes")
        path = self.path / files.CLASSES
        if not path.is_file():
            return earlier_classes(self.config) if self.model.needs_labels and self.config.stored.format == 1 else None
        return read_classes(path, self.config.model.num_classes if self.model.needs_labels else None)  # else 1 line

    @cached_property
    def class_counts(self) -> list[int] | None:
        """A conditional run's training items of each class, label 0 first (its class_counts.json, or those of its
        data for a fit without ``out``); None for an unconditional run, or one of vaekit before counts."""
        if not self.model.needs_labels:
            return None
        if self.path is None:
            return self.kept.get("counts")
        path = self.path / files.COUNTS
        return read_class_counts(path, self.config.model.num_classes) if path.is_file() else None

    def label_of(self, name: str) -> int:
        """The label number of the class named ``name`` (classes.json; a run without it: "0".."K-1")."""
        return int(label_numbers(str(name), self.classes, self.config.model.num_classes)[0])

    @reading
    def sample_table(self, n: int, temperature: Temperature = 1.0, label: int | str | Tensor | None = None) -> dict:
        """n synthetic rows of a table run, {column: (n,) values} in file order: z from the prior (scaled by
        ``temperature``), then x drawn from p(x|z), ``DECODE_BATCH`` rows at a time: numbers in the table's units,
        clipped to each column's training range and rounded to its decimals (dates and times to their step);
        categories by name; one note names columns with over 1% of their values clipped. A conditional run draws
        rows of ``label``, by default each row's class drawn at its frequency in the training split (a run of
        vaekit before classes.json held counts: every class in turn), and gives the label column back, its values
        the class names."""
        n = whole(n, "n")  # (within draw_bound at a table's bytes a row)
        return joined(table_draws(self, n, temperature, label), n)

    def table_rows(self, x: Tensor, y: Tensor | None = None) -> dict:
        """Items x (N, D) of a table run as its rows, {column: (N,) values}: in the table's units, bounded as
        ``sample_table`` says, with the label column of labels y (N,) for a conditional run."""
        table = cast(TableSchema, self.table)
        rows, name = table.bounded(table.decode(x)), self.config.data.label_column or "label"
        if y is None or not self.model.needs_labels:
            return rows
        return table.with_labels(rows, y.cpu().numpy(), self.classes, name)

    def stale_files(self) -> list[str]:
        """Files derived from weights (eval.json, pictures, report.html, exports) in the run folder that record
        other weights than these, or none; a picture of another name counts when it records weights (latent_map's)."""
        return [] if self.path is None else stale_files(self.path, self.digest)

    @property
    def folder(self) -> Path:
        """``path`` for a run that has a folder; one line for a fit without ``out``."""
        if self.path is None:
            raise VaekitError("this run has no folder: fit it with out=... to write files beside it")
        return self.path

    def writing(self) -> AbstractContextManager:
        """Hold the run folder's lock (``with run.writing(): ...``) over work whose answer is written there: a
        folder another process is writing is refused before the work, not after it; one deleted since the run was
        loaded is said, not made again by the lock. No folder: nothing."""
        if self.path is not None and not self.path.is_dir():
            raise VaekitError(f"{self.path}: the run folder no longer exists (deleted or moved since it was loaded)")
        return nullcontext() if self.path is None else run_lock(self.path)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, x: ArrayLike) -> Tensor:
        """Items (B, *shape) on the model's device, of its weights' float dtype (float32 as a run keeps them; a
        model moved by ``run.model.double()`` float64), read as ``fit`` reads them (``data.user.as_items``:
        uint8 images divided by 255, channels-last images moved; ``data.user.run_items``: a frame's columns must be
        the run's); another item shape, values outside the support of the run's likelihood (as ``evaluate``
        refuses them), or what cannot be read, is one clear error."""
        x = run_items(x, tuple(self.config.model.input_shape), self.table if is_frame(x) else None)
        x = self.check_items(x).to(self.device, torch.float32)
        check_finite(x, "data items")
        name = self.config.model.likelihood  # of the registry; not one of the user's own, whose name tells none
        if name in LIKELIHOODS:
            check_support(name, x, "data items")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        return x.to(dtype)

    def check_items(self, x: T, where: str = "data") -> T:
        """``x`` (a tensor or lazily read data, (N, *shape)) if its items have the model's shape, else one line
        naming ``where`` they come from."""
        shape = tuple(self.config.model.input_shape)
        if tuple(x.shape[1:]) != shape:
            raise VaekitError(f"{where} items have shape {tuple(x.shape[1:])}, the run's model expects {shape}")
        return x

    def labels(self, y: LabelsLike | None, n: int, name: str = "label") -> Tensor | None:
        """(n,) int64 labels on the model's device for a conditional model, None for the others.

        ``y`` is one label (repeated n times) or n labels (another count: one line naming the argument ``name``):
        integers (ints, arrays, tensors) are label numbers 0..K-1, text a class name (``data.labels.label_numbers``).
        """
        if not self.model.needs_labels:
            return None
        if y is None:
            how = "label=K, or data with labels" if name == "label" else f"{name}=K, or {name} with one label per item"
            raise VaekitError(f"this model is conditional: it needs labels ({how})", key=name)
        y = torch.from_numpy(label_numbers(y, self.classes, self.config.model.num_classes))
        if len(y) not in (1, n):
            raise VaekitError(f"{name} has {len(y)} labels for {n} items: give one label, or one per item", key=name)
        return (y.repeat(n) if len(y) == 1 else y).to(self.device, torch.long)

    def check_temperature(self, t: object) -> float | list[float]:
        """``t`` as a float, or one per resolution of a deep run (``models.temperature``), none over float32's max."""
        t = temperatures(t, "deep" if isinstance(self.model, DeepVAE) else self.config.model.family)  # a subclass
        if max(t if isinstance(t, list) else [t], default=0) > (top := float(torch.finfo(torch.float32).max)):
            raise VaekitError(f"temperature {t}: over float32's largest number ({top:.4g})", key="temperature")
        return t

    def sampler_alone(self, temperature: object, label: object) -> None:
        """Refuse, in one line, a temperature or label with a post-hoc sampler (before it is fitted)."""
        if temperature != 1.0 or label is not None:
            raise VaekitError("a post-hoc sampler draws its own codes: it takes no temperature or label", key="sampler")

    def unconditional_label(self, label: object, what: str = "its samples", name: str = "label") -> None:
        """Refuse, in one line, a label (the argument ``name``) for ``what`` of a model that takes none."""
        if label is not None and not self.model.needs_labels:
            leave = "" if name == "label" else f": leave {name} None"
            raise VaekitError(f"this model is not conditional: {what} take no label{leave}", key=name)

    @reading
    def sample(
        self, n: int, temperature: Temperature = 1.0, label: LabelsLike | None = None, sampler: str | None = None
    ) -> Tensor:
        """(n, *shape) means of p(x|z) for z drawn from the prior (scaled by ``temperature``), or from the
        post-hoc ``sampler`` (a name in ``vaekit.SAMPLERS``, fitted on the aggregate posterior if need be)."""
        whole(n, "n")
        temperature = self.check_temperature(temperature)
        self.unconditional_label(label)
        if sampler is not None:
            sampler_for(self, sampler)  # a conditional run is named as such, before its label is refused
            self.sampler_alone(temperature, label)
            return finite(sample_with(self, sampler, n), "samples")
        return finite(prior_draws(self, n, temperature, self.labels(label, n)), "samples", temperature)

    @reading
    def sample_classes(self, per_class: int, temperature: Temperature = 1.0) -> Tensor:
        """(K * per_class, *shape) samples of a conditional run, class by class (K = model.num_classes)."""
        whole(per_class, "per_class")
        temperature = self.check_temperature(temperature)
        if not self.model.needs_labels:
            raise VaekitError("this model is not conditional: it has no classes to sample (sample(n) draws from it)")
        y = torch.arange(self.config.model.num_classes, device=self.device).repeat_interleave(per_class)  # (K * per,)
        return finite(prior_draws(self, len(y), temperature, y), "samples", temperature)

    @reading
    def encode(self, x: ArrayLike, y: LabelsLike | None = None) -> Distribution:
        """q(z|x) for (B, *shape) inputs: ``.mean`` (B, D) are the embeddings, ``.stddev`` their scales. Encoded
        ``run_chunks.ENCODE_BATCH`` items at a time; on the run's device (``load_run(device=...)``), where
        ``reconstruct`` and ``sample`` give CPU tensors. Labels ``y`` for a model not conditional: one line."""
        self.unconditional_label(y, "its codes", "y")
        return encoded(self.model, self._check(x), self.labels(y, len(x), "y"))

    @reading
    def reconstruct(self, x: ArrayLike, y: LabelsLike | None = None) -> Tensor:
        """(B, *shape) means of p(x|z) at z = the posterior mean of each input (labels ``y`` (B,) if conditional);
        ``core.contract.mean_of``: of 64 seeded draws where a distribution has no mean (a flow's); on the CPU,
        ``run_chunks.ENCODE_BATCH`` items at a time."""
        self.unconditional_label(y, "its reconstructions", "y")
        return finite(reconstructed(self.model, self._check(x), self.labels(y, len(x), "y")), "reconstructions")


def load_run(
    path: str | Path,
    *,
    model: nn.Module | None = None,
    device: str | torch.device = "cpu",
    trust_code: bool = False,
    weights: str = files.WEIGHTS,
) -> Run:
    """Open a run folder written by ``vaekit train`` or ``vaekit.fit(..., out=path)``, with its kept weights or
    those ``weights`` names (``Run.load``: a training checkpoint's too).

    A run of built-in networks, or of modules whose classes import and keep their init arguments, rebuilds
    its model itself; otherwise pass ``model``, an instance of the same architecture, to load the weights into.
    Loading imports only vaekit's model classes, torch.nn's and registered ones (``vaekit.register_module``);
    ``trust_code=True`` imports whatever model.json names, running that code: only for folders you trust."""
    return Run.load(path, device, weights, model=model, trust_code=trust_code)
