"""Resuming with another number of processes sets the best validation loss aside; the stop lines name the
resume that goes on (--nproc N under torchrun, a full disk's, the one that draws a stopped run's pictures)."""

from __future__ import annotations

import argparse
import errno
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vaekit
from vaekit import files
from vaekit.cli import main
from vaekit.cli.stops import interrupted, room_hint
from vaekit.io import WriteError
from vaekit.training import trainer as trainer_module
from vaekit.training.checkpoint import read_tensors, tensor_digest
from vaekit.training.signals import Interrupted
from vaekit.viz import callbacks as figures_callbacks

from .conftest import tiny_config, train_argv
from .test_compat_draws import aged, checkpoint_state

BY_TWO = "its validation loss was measured by 2 processes, now by 1, each drawing its own validation noise"


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    """A two-epoch run on 60 random items (9, 11), trained by one process."""
    root = tmp_path_factory.mktemp("trust")
    np.save(root / "x.npy", np.random.default_rng(0).random((60, 9, 11)).astype(np.float32))
    return vaekit.train(tiny_config(str(root / "x.npy"), root / "run", epochs=2), pictures=False).path


def with_rank_states(run: Path) -> Path:
    """``run``'s checkpoint as a two-process run from before ``world`` wrote it: rank 1's RNG state beside."""
    tensors, meta = read_tensors(run / files.CHECKPOINT)
    tensors["extra.rng.rank.1"] = torch.get_rng_state()
    save_file(tensors, str(run / files.CHECKPOINT), metadata=meta | {"sha256": tensor_digest(tensors)})
    return run


@pytest.mark.parametrize(
    "recorded, ranks, patience, said",
    [
        (2, False, 0, True),
        (None, True, 0, True),  # an earlier vaekit's: rank 1's RNG state tells
        (None, False, 0, False),  # one process, before world was recorded
        (1, False, 0, False),
        (2, False, 2, False),  # stopped early: it stays stopped
    ],
)
def test_a_resume_by_another_number_of_processes_sets_the_best_aside(
    recorded, ranks, patience, said, two_epochs, tmp_path, capsys
):
    run = aged(two_epochs, tmp_path, best_val=1.0, bad_epochs=5, world=recorded)
    run = with_rank_states(run) if ranks else run
    cfg = tiny_config(str(two_epochs.parent / "x.npy"), run, epochs=3, patience=patience)
    capsys.readouterr()
    rows = vaekit.train(cfg, resume=True, pictures=False).history
    err = capsys.readouterr().err
    assert (f"best validation loss 1 set aside: {BY_TWO};" in err) == said, err
    assert len(rows) == (2 if patience else 3) and err.count("\n") == said
    state = checkpoint_state(run)  # stopped early: trained nothing, wrote none
    assert state["world"] == (2 if patience else 1) and (state["best_val"] == 1.0) != said


@pytest.mark.parametrize("local, hint", [("2", " --nproc 2"), ("1", ", under torchrun as before (2 processes)")])
def test_a_stop_under_torchrun_names_its_processes(local, hint, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    monkeypatch.setenv("RANK", "0")
    stop = Interrupted(signal.SIGTERM, "epoch 2, batch 3", "r/dk")
    assert interrupted(stop, None) == stop.code
    assert capsys.readouterr().err.endswith(f"(continue with vaekit train --resume r/dk{hint})\n")


def test_a_full_disk_at_a_checkpoint_names_the_resume_that_heals_it(two_epochs, tmp_path, monkeypatch, capsys):
    """Epoch 3's metrics row stands ahead of the checkpoint (epoch 2's, written last): the resume trains it again."""
    run, save = aged(two_epochs, tmp_path), trainer_module.save_checkpoint
    full = OSError(errno.ENOSPC, "No space left on device")

    def no_room(path, *args):
        raise WriteError(path, full)

    monkeypatch.setattr(trainer_module, "save_checkpoint", no_room)
    cfg = tiny_config(str(two_epochs.parent / "x.npy"), run, epochs=3)
    with pytest.raises(WriteError) as e:
        vaekit.train(cfg, resume=True, pictures=False)
    args = argparse.Namespace(command="train", out=str(run), resume=None)
    assert room_hint(e.value, args) == f"; continue with vaekit train --resume {run} once there is room"
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 1  # the command line says it
    assert capsys.readouterr().err.rstrip().endswith(f"; continue with vaekit train --resume {run} once there is room")
    assert room_hint(WriteError(run, OSError(errno.EROFS, "read-only")), args) == ""  # room would not help
    assert len((run / files.METRICS).read_text().splitlines()) == 4 and checkpoint_state(run)["epoch"] == 2
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    assert len(vaekit.train(cfg, resume=True, pictures=False).history) == 3
    assert checkpoint_state(run)["epoch"] == 3 and len((run / files.METRICS).read_text().splitlines()) == 4


def test_a_run_stopped_while_drawing_its_pictures_names_the_resume_that_draws_them(
    tiny_images, tmp_path, capsys, monkeypatch
):
    plot = figures_callbacks.plot_losses
    monkeypatch.setattr(figures_callbacks, "plot_losses", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    run = tmp_path / "run"
    assert main(train_argv(tiny_images, run, "--hidden", "8", "--latent-dim", "2")) == 130
    hint = f"its epochs are all trained, its pictures not all drawn (vaekit train --resume {run} draws them)"
    assert capsys.readouterr().err == f"vaekit: interrupted; {hint}\n"
    assert not (run / files.LOSS).exists()
    monkeypatch.setattr(figures_callbacks, "plot_losses", plot)
    assert main(["train", "--resume", str(run)]) == 0
    assert "nothing to train" in capsys.readouterr().out and (run / files.LOSS).is_file()
    assert json.loads((run / files.CONFIG).read_text())  # the folder stays a run
