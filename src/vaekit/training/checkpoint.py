"""Weights and training state in safetensors (tensors) + JSON (everything else): no pickles anywhere."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from torch import nn

from .. import files
from ..errors import VaekitError
from ..io import atomic_write
from . import distributed
from .resume_checks import metadata, optimizer_state
from .tensor_files import open_tensors


def save_weights(model: nn.Module, path: str | Path, prior_fitted: bool = False) -> None:
    """Write the model's state dict to ``path`` (safetensors, atomically), with its checksum and whether a
    second-stage prior was fitted to these weights' codes (``prior_fitted``)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"sha256": tensor_digest(tensors)} | ({"prior": "fitted"} if prior_fitted else {})
    atomic_write(path, lambda tmp: _save(tensors, tmp, meta))


def prior_fitted(path: str | Path) -> bool:
    """Whether the weights at ``path`` hold a second-stage prior fitted to their codes (False when unreadable)."""
    found = header(path)
    return found is not None and found[1].get("prior") == "fitted"


def header(path: str | Path) -> tuple[frozenset[str], dict[str, str]] | None:
    """The tensor names and metadata of the safetensors file at ``path``, from its header alone (no tensor is
    read); None where it is missing or not a safetensors file."""
    try:
        return _header(Path(path))
    except (SafetensorError, OSError, ValueError):
        return None


def unreadable(path: str | Path) -> str:
    """Why the safetensors file at ``path`` cannot be read (truncated, empty, a header of another size), from its
    header alone; "" where it can."""
    try:
        _header(Path(path))
    except (SafetensorError, OSError, ValueError) as e:
        return str(e) or type(e).__name__
    return ""


def _header(path: Path) -> tuple[frozenset[str], dict[str, str]]:
    """``header``, its faults raised (SafetensorError, OSError, ValueError); a FIFO or a device is never opened."""
    if not path.is_file():  # safetensors would wait on a FIFO for ever
        raise FileNotFoundError(errno.ENOENT, "not a plain file" if path.exists() else "not found", str(path))
    with open_tensors(path) as f:
        return frozenset(f.keys()), f.metadata() or {}


def _save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, its I/O failures raised as OSError (it reports them as 'os error N')."""
    try:
        save_file(apart(tensors), str(path), metadata=metadata)
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from None


def apart(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors``, each that shares memory with one before it copied: a layer or weight tied between encoder and
    decoder is one parameter under two names, which safetensors refuses; ``load_state_dict`` ties them again."""
    first: dict[int, str] = {}  # a storage's address -> the first name holding it
    for k, v in tensors.items():
        first.setdefault(v.untyped_storage().data_ptr(), k)
    return {
        k: v if first[v.untyped_storage().data_ptr()] == k or not v.numel() else v.clone() for k, v in tensors.items()
    }


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a missing or corrupt file, or one whose tensors do not match
    the SHA-256 its metadata records, is a VaekitError."""
    path = Path(path)
    if not path.is_file():  # or a FIFO, a device: never opened
        raise VaekitError(f"{path}: " + ("not a plain file" if path.exists() else "not found"))
    try:  # one open: a file replaced meanwhile (a run being written) is read whole, its tensors with its own digest
        with open_tensors(path) as f:
            meta, tensors = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"{path}: not a valid safetensors file ({e})") from None
    if "sha256" in meta and tensor_digest(tensors) != meta["sha256"]:
        raise VaekitError(f"{path}: checksum mismatch (the file is damaged)")
    return tensors, meta


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights written by ``save_weights``; a mismatch with the model names the first bad key, and a damaged
    file (its checksum, when it has one), a tensor of another dtype than the model's or one that is not finite
    (a parameter or a buffer) is refused in one line."""
    tensors, _ = read_tensors(path)  # its checksum verified
    check_state(model, tensors, path)
    model.load_state_dict(tensors)


class OtherModel(VaekitError):
    """Weights whose names or shapes are not the model's: written for another model, not damaged. ``detail``
    names the first difference."""

    def __init__(self, path: str | Path, detail: str):
        super().__init__(f"{path}: {detail}")
        self.detail = detail


# why a run's weights may not fit the model its config.json builds today
ANOTHER_MODEL = (
    "the model given in Python may have other layers or sizes than the one that wrote it, the run may come from an "
    "older vaekit, or its config.json was edited"
)


CASTABLE = {torch.float16, torch.bfloat16, torch.float32, torch.float64}  # float widths cast into one another


def check_state(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse, in one line, ``tensors`` that are not a state of ``model``: other names or shapes (``OtherModel``),
    another kind of dtype than the model's tensor of that name (float8, complex, integer or bool for float weights:
    only float16, bfloat16, float32 and float64 are cast among themselves, as load_state_dict casts them), or a
    value that is not finite, once cast, in any floating tensor, buffers included (1e300 as float32 is inf)."""
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise OtherModel(path, f"weights do not match the model ({what})")
    for k, v in tensors.items():
        if v.shape != own[k].shape:
            raise OtherModel(path, f"{k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
        if v.dtype != own[k].dtype and not {v.dtype, own[k].dtype} <= CASTABLE:
            raise VaekitError(f"{path}: {k} holds {_name(v.dtype)} values, and the model's are {_name(own[k].dtype)}")
        if (v.is_floating_point() or v.is_complex()) and not v.to(own[k].dtype).isfinite().all():
            raise VaekitError(f"{path}: {k} holds NaN or infinite values")


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32}  # an element's bits as one whole number (else int64 words)
BLOCK = 4096  # a tensor's words are summed as rows of BLOCK (the last row short) and as columns
RAMP = np.arange(1, BLOCK + 1, dtype=np.int64)  # the columns' weights
WORD = 2**64  # the weighted sums are modulo this


def bit_sums(tensors: Iterable[torch.Tensor]) -> tuple[tuple[int, int, int], ...]:
    """Each tensor's elements' bit patterns as w-bit words b_i (w = 8, 16, 32 or 64; i = q * BLOCK + r) summed by
    row, S_q, and by column, T_r, each modulo 2^w: (sum S_q mod 2^w, sum (q + 1) S_q mod 2^64, sum (r + 1) T_r
    mod 2^64). A change of one element moves the first, and a swap of two unlike ones (rows swapped through
    ``.data``) one of the others. Each word is summed twice in its own width: less time than one int64 sum of
    them on a CPU (2.7 ms against 3.8 ms for 7.2M float32 numbers; hashing them takes 17-21 ms), though some 6 us
    a tensor against 1 us for tensors of up to BLOCK elements."""
    bits = [t.detach().reshape(-1).view(BITS.get(t.element_size(), torch.int64)) for t in tensors]
    return tuple(word_sums(b.numpy() if b.device.type == "cpu" else b) for b in bits)


def word_sums(x: np.ndarray | torch.Tensor) -> tuple[int, int, int]:
    """``bit_sums`` of one tensor's words x (n,): numpy's on a CPU (torch's integer sums there take some 20 times
    as long), torch's on its device."""
    rows, width = len(x) // BLOCK, 8 * x.dtype.itemsize
    mask = -1 if width == 64 else (1 << width) - 1  # the sums as residues 0 .. 2^w - 1 (64 bits: as int64)
    if len(x) > BLOCK:
        block, tail = x[: rows * BLOCK].reshape(rows, BLOCK), x[rows * BLOCK :]
        by_row = [_wrapped_sum(block, 1), _wrapped_sum(tail, 0).reshape(1)]  # (rows,), (1,)
        s = np.concatenate([_on_host(v) for v in by_row]).astype(np.int64) & mask  # (rows + 1,)
        t = _on_host(_wrapped_sum(block, 0)).astype(np.int64)  # (BLOCK,): the columns, the tail's added
        t[: len(tail)] += _on_host(tail).astype(np.int64)
        t &= mask
    else:  # one row (and an empty one after it where n = BLOCK), whose words are the column sums
        t = _on_host(x).astype(np.int64) & mask  # (n,)
        s = t.sum(keepdims=True) & mask  # (1,)
    weighted = np.dot(s, np.arange(1, len(s) + 1, dtype=np.int64)), np.dot(t, RAMP[: len(t)])  # wrapping
    return int(s.sum()) % (1 << width), int(weighted[0]) % WORD, int(weighted[1]) % WORD


def _wrapped_sum(v: np.ndarray | torch.Tensor, axis: int) -> np.ndarray | torch.Tensor:
    """v's sums over ``axis`` in v's own integer width, wrapping (numpy's or torch's, as v is)."""
    return v.sum(dim=axis, dtype=v.dtype) if isinstance(v, torch.Tensor) else v.sum(axis=axis, dtype=v.dtype)


def _on_host(v: np.ndarray | torch.Tensor) -> np.ndarray:
    return v.cpu().numpy() if torch.is_tensor(v) else np.asarray(v)


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k]
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict,
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Weights, optimiser moments, torch RNG states, ``extra`` tensors and the loop's ``state`` (JSON-able).

    One safetensors file with a SHA-256 of its tensors in the metadata. The file it replaces is kept as
    ``*.prev.safetensors`` once the new one is whole, so a damaged newest checkpoint, or a write the disk
    refused, still leaves one to resume from.
    """
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for i, s in opt["state"].items():
        for k, v in s.items():
            if torch.is_tensor(v):
                tensors[f"optim.{i}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(i), {})[k] = v
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    meta = {
        "state": json.dumps(state),
        "param_groups": json.dumps(opt["param_groups"]),
        "optim_scalars": json.dumps(scalars),
        "sha256": tensor_digest(tensors),
    }
    atomic_write(path, lambda tmp: _save(tensors, tmp, meta), backup=previous(path))  # rotated once whole


def previous(path: str | Path) -> Path:
    """Where the checkpoint before ``path`` is kept: checkpoint.safetensors -> checkpoint.prev.safetensors."""
    path = Path(path)
    prev = path.name.replace(".safetensors", ".prev.safetensors")
    return path.with_name(files.PREVIOUS_CHECKPOINT if path.name == files.CHECKPOINT else prev)


def load_checkpoint(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, check: Callable[[dict], str] | None = None
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore what ``save_checkpoint`` wrote (RNG states included); returns (the loop's state, extra tensors).

    Everything is checked before anything is restored (``resume_checks``; ``check`` says what is wrong
    with the loop's state, "" where nothing is): a damaged file, or one that is not a vaekit checkpoint, changes
    nothing.
    """
    tensors, meta = read_tensors(path)  # its checksum verified; a checkpoint without one is not vaekit's
    state, groups, scalars = metadata(path, meta, check)
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    check_state(model, weights, path)  # another model's weights: OtherModel, before its optimiser is looked at
    groups, opt_state = optimizer_state(path, tensors, groups, scalars, optimizer)
    model.load_state_dict(weights)
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return state, {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}


def load_latest_checkpoint(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, check: Callable[[dict], str] | None = None
) -> tuple[dict, dict[str, torch.Tensor]]:
    """``load_checkpoint`` of ``path``, or of the previous checkpoint when ``path`` is missing or damaged. A
    newest checkpoint of another model (``OtherModel``) that leaves none to resume is refused as that: the model
    resumed is not the one it was written for (an older vaekit's run), rather than as damage. ``check``: as
    ``load_checkpoint``'s."""
    errors: list[VaekitError] = []
    for candidate in (Path(path), previous(path)):
        try:
            loaded = load_checkpoint(candidate, model, optimizer, check)
        except VaekitError as e:
            errors.append(e)
            continue
        if errors:
            distributed.warn(f"{errors[0]}; resuming from {candidate.name}")  # every rank reads the same files
        return loaded
    if isinstance(errors[0], OtherModel):
        raise VaekitError(
            f"{path}: the checkpoint's model differs from the one config.json (or the model given) builds "
            f"({errors[0].detail}): {ANOTHER_MODEL}; resume it with the vaekit and model that wrote it, or train a new "
            "run (another out folder)"
        )
    raise VaekitError(f"no usable checkpoint: {'; '.join(map(str, errors))}")
