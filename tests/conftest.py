"""Shared fixtures: tiny data sets and configs so every test stays fast on 2 CPU cores."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import RunConfig
from vaekit.core.contract import VAEOutput


def cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cores a cgroup's CPU quota allows (v2 cpu.max, else v1 cpu.cfs_quota_us / cpu.cfs_period_us), or None
    without a quota."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota, period = ((root / "cpu" / f"cpu.cfs_{k}_us").read_text().strip() for k in ("quota", "period"))
    except (OSError, ValueError):
        return None
    return None if quota in ("max", "-1") else int(quota) / int(period)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (make test): a worker per core this process may run on, within a container's CPU quota, which
    the affinity mask does not show (``docker --cpus 2`` on a 64-core host would otherwise start 64 workers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, math.floor(quota) if quota else cores))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_images(tmp_path):
    """A .npy of 60 random 'images' (60, 9, 11) in [0, 1]: odd sizes exercise the conv crop path."""
    rng = np.random.default_rng(0)
    x = (rng.random((60, 9, 11)) > 0.6).astype(np.float32) * rng.random((60, 9, 11)).astype(np.float32)
    path = tmp_path / "tiny.npy"
    np.save(path, x)
    return path


def tiny_config(spec: str, out, **train) -> RunConfig:
    """A config that trains in well under a second."""
    cfg = RunConfig(out=str(out))
    cfg.data.spec = spec
    cfg.model.hidden, cfg.model.latent_dim = [32], 3
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress = 3, 16, False
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def train_argv(data, out, *flags: str) -> list[str]:
    """``vaekit train`` arguments for a quiet one-epoch run of ``data`` into ``out``, with ``flags`` besides."""
    return ["train", "--data", str(data), *flags, "--epochs", "1", "--quiet", "--out", str(out)]


def train_run(cfg: RunConfig, **kwargs) -> Path:
    """Train ``cfg`` as ``vaekit train`` does (pictures included) and return its run folder."""
    return vaekit.train(cfg, **kwargs).path


class OwnModel(torch.nn.Module):
    """A user's own model written as the contract asks: subclasses give encode, decode and prior; forward and
    generate are the plain ones every such model writes."""

    def forward(self, x, y=None):
        qz = self.encode(x)
        z = qz.rsample()
        return VAEOutput(self.decode(z), [qz], [self.prior()], [z])

    def generate(self, n, temperature=1.0, y=None):
        return self.decode(self.prior().sample((n,)) * temperature)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with MLflow's tables and nothing in them, made once per process: its migrations take
    seconds, a copy (``sqlite_store``) none. Made from its own folder, where its Default experiment's files go."""
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra")
    folder, here = tmp_path_factory.mktemp("store"), Path.cwd()
    os.chdir(folder)
    try:
        mlflow.tracking.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    finally:
        os.chdir(here)
    return folder / "mlflow.db"


@pytest.fixture
def sqlite_store(empty_store, tmp_path) -> str:
    """The URI of a fresh MLflow SQLite store, tmp_path / mlflow.db (a copy of ``empty_store``)."""
    return f"sqlite:///{shutil.copy(empty_store, tmp_path / 'mlflow.db')}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """$VAEKIT_CACHE pointed at a fresh folder for a module's tests (the domain feature networks it caches)."""
    old = os.environ.get("VAEKIT_CACHE")
    os.environ["VAEKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield os.environ["VAEKIT_CACHE"]
    os.environ.pop("VAEKIT_CACHE") if old is None else os.environ.update(VAEKIT_CACHE=old)
