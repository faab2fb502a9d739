"""A killed run resumed: its resumed epoch's rate counts only the items trained after the resume, and every step
is logged once (TensorBoard, MLflow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

import vaekit
from vaekit.training.checkpoint import read_tensors

from .conftest import tiny_config


class Crash(vaekit.Callback):
    """Fails the fit after step ``at`` has been logged: a run killed between two checkpoints."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, step, metrics, model):
        if step == self.at:
            raise RuntimeError("killed")


def crash(cfg, *callbacks) -> dict:
    """Train ``cfg`` and kill it at step 22 (``Crash``), after ``callbacks``; the loop state of its last
    checkpoint, at step 20 with ``checkpoint_every`` 5."""
    with pytest.raises(RuntimeError, match="killed"):
        vaekit.train(cfg, pictures=False, callbacks=[*callbacks, Crash(22)])
    _, meta = read_tensors(Path(cfg.out) / "checkpoint.safetensors")
    return json.loads(meta["state"])


@pytest.fixture
def crashable(tiny_images, tmp_path):
    """3 epochs of 4-item batches (12 a epoch), checkpointed every 5 steps."""
    return tiny_config(str(tiny_images), tmp_path / "run", batch_size=4, checkpoint_every=5)


def test_a_resumed_epoch_s_rate_counts_the_items_trained_after_the_resume(crashable):
    cfg, state = crashable, crash(crashable)
    assert state["epoch"] == 1 and state["batch"] > 0  # resumed within epoch 2
    rows = vaekit.train(cfg, resume=True, pictures=False).history
    n = len(vaekit.load_dataset(cfg.data.spec).train.x)
    trained = [n, n - 4 * state["batch"], n]  # the resumed epoch: only its batches after the checkpoint
    assert [r["samples_per_s"] * r["seconds"] for r in rows] == pytest.approx(trained, rel=1e-6)


def test_a_resumed_run_logs_each_step_once_and_its_display_setting_as_no_change(
    crashable, capsys, tmp_path, monkeypatch, sqlite_store
):
    """Steps logged between the last checkpoint and a kill are not logged again (TensorBoard, MLflow); a CLI
    resume that shows progress records no change of train.progress (config.json, MLflow's tags); a SQLite
    store's artifacts lie beside it, not in ./mlruns."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra")
    from vaekit.cli import main
    from vaekit.viz.mlflow import MLflow
    from vaekit.viz.tensorboard import last_step

    run, uri = Path(crashable.out), sqlite_store  # the store beside the run folder: tmp_path / mlflow.db
    assert crash(crashable, MLflow(uri, every=1))["batch"] == 8 and last_step(run) == 20  # step 20: logged, lost
    assert main(["train", "--resume", str(run), "--mlflow", uri]) == 0  # not --quiet: progress shown
    steps = [e.step for p in sorted(run.glob("events.out.tfevents.*")) for e in events(p)]
    assert steps == sorted(set(steps)) and steps[-1] == last_step(run)
    client = mlflow.tracking.MlflowClient(uri)
    (found,) = client.search_runs([client.get_experiment_by_name("vaekit").experiment_id])
    logged = [m.step for m in client.get_metric_history(found.info.run_id, "step/loss")]
    assert sorted(logged) == sorted(set(logged)) and max(logged) > 22  # every step once (every=1, then 10)
    assert not [k for k in found.data.tags if k.startswith("resumed.")]
    assert json.loads((run / "config.json").read_text())["train"]["progress"] is False
    assert (run.parent / "mlruns").is_dir() and not (tmp_path / "elsewhere" / "mlruns").exists()


def events(path):
    """The step scalars' events of a TensorBoard event file."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return [e for e in EventFileLoader(str(path)).Load() if any(v.tag == "step/loss" for v in e.summary.value)]


@pytest.mark.parametrize(
    "key, value", [("model.likelihood", "cbernoulli"), ("train.batch_size", 8), ("data.binarize", "fixed"), (None, 0)]
)
def test_a_config_json_edited_against_its_checkpoint_is_refused_on_resume(key, value, tiny_images, tmp_path, capsys):
    """config.json changed where the checkpoint rests on it (its model, batch size, data) is one line naming the
    setting, nothing written; a checkpoint from before the record (``key`` None) resumes, and records from then."""
    from vaekit.cli import main

    run = tmp_path / "run"
    assert (
        main(["train", "--data", str(tiny_images), "--batch-size", "16", "--epochs", "1", "--quiet", "--out", str(run)])
        == 0
    )
    _, meta = read_tensors(run / "checkpoint.safetensors")
    saved = json.loads((run / "config.json").read_text())
    if key is None:  # as an earlier vaekit wrote it: no record of the settings
        tensors, _ = read_tensors(run / "checkpoint.safetensors")
        state = {k: v for k, v in json.loads(meta["state"]).items() if k != "settings"}
        save_file(tensors, run / "checkpoint.safetensors", metadata={**meta, "state": json.dumps(state)})
        assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
        assert (
            json.loads(read_tensors(run / "checkpoint.safetensors")[1]["state"])["settings"]["train.batch_size"] == 16
        )
        return
    section, name = key.split(".")
    assert json.loads(meta["state"])["settings"][key] == saved[section][name] != value
    saved[section][name] = value
    (run / "config.json").write_text(json.dumps(saved))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key}: config.json differs from what the checkpoint was trained with" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
