"""A resume with nothing left to train does the end-of-fit work a kill after the last checkpoint left undone (the
pictures, the MLflow run's end), without training or writing a training file; with nothing undone, nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vaekit
from vaekit import files
from vaekit.training.callbacks import HOOKS

from .conftest import tiny_config
from .test_resume_done import listing

PICTURES = (files.SAMPLES, files.RECONSTRUCTIONS, files.LOSS)
KEPT = (files.METRICS, files.CHECKPOINT, files.WEIGHTS, files.CONFIG)  # what a resume with nothing to train keeps


class Recorder(vaekit.Callback):
    """Every hook called, by name, in order (each hook set below)."""

    def __init__(self) -> None:
        self.calls: list[str] = []


for _hook in HOOKS:
    setattr(Recorder, _hook, lambda self, *args, _hook=_hook: self.calls.append(_hook))


def trained(tmp_path: Path, spec: Path, callbacks=()) -> Path:
    return vaekit.train(tiny_config(str(spec), tmp_path / "run", epochs=1), callbacks=list(callbacks)).path


def kill_before_the_end(run: Path, how: str) -> None:
    """The pictures as a kill between the last checkpoint and the end of training leaves them."""
    for name in PICTURES:
        if how == "missing":
            (run / name).unlink()
        else:  # drawn by an earlier fit, before the last checkpoint was written
            then = (run / files.CHECKPOINT).stat().st_mtime_ns - 10**9
            os.utime(run / name, ns=(then, then))


@pytest.mark.parametrize("how", ["missing", "older"])
def test_a_resume_with_nothing_to_train_draws_the_pictures_a_kill_left_undone(tiny_images, tmp_path, how):
    run = trained(tmp_path, tiny_images)
    kill_before_the_end(run, how)
    kept, rec = {n: (run / n).read_bytes() for n in KEPT}, Recorder()
    again = vaekit.train(resume=True, out=str(run), callbacks=[rec])
    assert rec.calls == ["on_nothing_to_train"] and len(again.history) == 1  # nothing trained
    assert all((run / n).is_file() for n in PICTURES) and vaekit.load_run(run).stale_files() == []
    assert all((run / n).stat().st_mtime_ns >= (run / files.CHECKPOINT).stat().st_mtime_ns for n in PICTURES)
    assert {n: (run / n).read_bytes() for n in KEPT} == kept  # metrics, checkpoint, weights, config as they were


def test_a_resume_with_nothing_undone_writes_nothing_and_calls_no_other_hook(tiny_images, tmp_path):
    run = trained(tmp_path, tiny_images)
    before, rec = listing(run), Recorder()
    vaekit.train(resume=True, out=str(run), callbacks=[rec])
    assert listing(run) == before and rec.calls == ["on_nothing_to_train"]


def test_a_resume_with_nothing_to_train_ends_the_mlflow_run_a_kill_left_running(
    tiny_images, tmp_path, monkeypatch, sqlite_store
):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra")
    from vaekit.viz.mlflow import MLflow

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = sqlite_store
    first = MLflow(uri)
    run = trained(tmp_path, tiny_images, [first])
    client = mlflow.tracking.MlflowClient(uri)
    client.update_run(first.run_id, "RUNNING")  # the kill: its on_fit_end never came
    kill_before_the_end(run, "missing")
    kept = {n: (run / n).read_bytes() for n in KEPT}
    vaekit.train(resume=True, out=str(run), callbacks=[MLflow(uri)])
    ended = client.get_run(first.run_id)
    assert ended.info.status == "FINISHED" and all((run / n).is_file() for n in PICTURES)
    assert {a.path for a in client.list_artifacts(first.run_id)} >= {*PICTURES, files.METRICS}
    assert [m.step for m in client.get_metric_history(first.run_id, "val_loss")] == [1]  # logged once
    assert {n: (run / n).read_bytes() for n in KEPT} == kept
    experiment = client.get_experiment_by_name("vaekit").experiment_id
    vaekit.train(resume=True, out=str(run), callbacks=[MLflow(uri)])  # nothing undone: the run as it was
    assert client.get_run(first.run_id).info.end_time == ended.info.end_time
    assert len(client.search_runs([experiment])) == 1  # no MLflow run started
