"""The MLflow callback when things go wrong around it: a store that fails mid-run is one line and training goes
on, an unreachable server is refused in seconds, a resume goes on only in the MLflow run of its own training, and
the user's own MLflow setup (an active run, MLFLOW_EXPERIMENT_NAME) is honoured."""

from __future__ import annotations

import os
import shutil
import socket
import threading

import pytest
import torch
from torch import nn

import vaekit
from vaekit import files
from vaekit.errors import VaekitError

from .conftest import tiny_config, train_argv

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra")
from vaekit.viz.mlflow import MLflow, clip  # noqa: E402 (needs mlflow)

STOPPED = "MLflow logging stopped: "


@pytest.fixture
def store(empty_store, tmp_path, monkeypatch):
    """A fresh SQLite store's URI and a client of it; none of the user's MLflow settings in the environment. The
    test runs in ``tmp_path``: a SQLite store's artifacts go to ./mlruns."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in list(os.environ):
        if name.startswith("MLFLOW_") and name != "MLFLOW_DISABLE_TELEMETRY":
            monkeypatch.delenv(name)
    uri = f"sqlite:///{shutil.copy(empty_store, tmp_path / 'mlflow.db')}"
    return uri, mlflow.tracking.MlflowClient(uri)


def runs(client, experiment: str = "vaekit") -> list:
    """The experiment's MLflow runs, oldest first."""
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return sorted(found, key=lambda r: r.info.start_time)


def epochs(client, run) -> list[int]:
    return [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]


class Breaks(vaekit.Callback):
    """From epoch ``at`` on, the MLflow client's ``methods`` raise what a store gone away raises."""

    def __init__(self, mlflow_callback: MLflow, methods: tuple[str, ...], at: int = 1):
        self.cb, self.methods, self.at = mlflow_callback, methods, at

    def on_fit_start(self, model, info):
        self.on_epoch_end(0, {}, model)

    def on_epoch_end(self, epoch, metrics, model):
        def down(*args, **kwargs):
            raise mlflow.exceptions.MlflowException("API request to http://mlflow:5000 failed: Max retries exceeded")

        for name in self.methods if epoch == self.at else ():
            setattr(self.cb.client, name, down)


@pytest.mark.parametrize("method, at, logged", [("log_batch", 2, [1]), ("log_artifact", 0, [1, 2])])
def test_mid_run_a_failing_store_is_one_line_and_training_goes_on(method, at, logged, tiny_images, tmp_path, store):
    """A tracking server gone after epoch 1, or an artifact store not writable: one line, every epoch trained and
    written, the MLflow run FAILED (not RUNNING) where the store still answers."""
    uri, client = store
    cb = MLflow(uri)
    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=2)
    run = vaekit.train(cfg, pictures=False, callbacks=[Breaks(cb, (method,), at), cb])
    assert len(run.history) == 2 and (tmp_path / "run" / files.WEIGHTS).is_file()
    (found,) = runs(client)
    assert found.info.status == "FAILED" and epochs(client, found) == logged


def test_the_stop_line_is_said_once(tiny_images, tmp_path, store, capfd):
    uri, _ = store
    cb, cfg = MLflow(uri, every=1), tiny_config(str(tiny_images), tmp_path / "run", epochs=2)
    vaekit.train(cfg, pictures=False, callbacks=[Breaks(cb, ("log_batch",)), cb])
    err = capfd.readouterr().err
    assert err.count(STOPPED) == 1 and "Traceback" not in err
    assert f"training goes on, the run folder {tmp_path / 'run'} has everything" in err


def test_a_store_gone_when_the_fit_fails_leaves_the_fit_s_own_error_to_every_callback(tiny_images, tmp_path, store):
    uri, _ = store
    cb = MLflow(uri)

    class Fails(vaekit.Callback):
        heard = None

        def on_epoch_end(self, epoch, metrics, model):
            raise OSError("no space left on device")

        def on_fit_error(self, error, info):
            Fails.heard = error

    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=1)
    with pytest.raises(OSError, match="no space"):
        vaekit.train(cfg, pictures=False, callbacks=[Breaks(cb, ("log_batch", "set_terminated")), cb, Fails()])
    assert isinstance(Fails.heard, OSError)


def test_an_unreachable_server_is_refused_in_seconds_naming_it(store):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    said: list[BaseException] = []

    def start() -> None:
        try:
            MLflow(uri)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            said.append(e)

    thread = threading.Thread(target=start, daemon=True)  # MLflow's own retries would wait about 4 minutes
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "MLflow(unreachable URI) still waiting after 30 s"
    assert isinstance(said[0], VaekitError) and str(said[0]).startswith(f"MLflow tracking store {uri}: no answer")
    assert "Connection refused" in str(said[0])
    assert not [k for k in os.environ if k.startswith("MLFLOW_HTTP_REQUEST")]  # the user's environment as it was


def test_a_file_store_refusal_keeps_the_setting_that_allows_one(tmp_path, store):
    with pytest.raises(VaekitError) as e:
        MLflow((tmp_path / "mlruns").as_uri())
    assert "MLFLOW_ALLOW_FILE_STORE=true" in str(e.value) and len(str(e.value)) < 420
    long = "What is wrong, said at length " + "and at length " * 30 + "here. Then what to do about it."
    assert clip(long, 100).endswith("... Then what to do about it.") and len(clip(long, 100)) <= 100


def test_a_resume_goes_on_only_in_the_mlflow_run_of_its_own_training(tiny_images, tmp_path, store, capfd):
    """A folder trained again with --overwrite (without MLflow) and resumed with it: a new MLflow run, said so,
    holding every epoch; the first folder's MLflow run is left as it was."""
    uri, client = store

    def train(epochs: int, **how) -> None:
        cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=epochs)
        vaekit.train(cfg, pictures=False, **how)

    train(1, callbacks=[MLflow(uri)])
    train(1, overwrite=True)
    capfd.readouterr()
    train(2, resume=True, callbacks=[MLflow(uri)])
    assert "a new one, as it logged none of this training" in capfd.readouterr().err
    train(3, resume=True, callbacks=[MLflow(uri)])
    assert ", continued at epoch 3" in capfd.readouterr().err
    first, again = runs(client)
    assert epochs(client, first) == [1] and epochs(client, again) == [1, 2, 3]
    assert first.info.status == again.info.status == "FINISHED"


def test_a_resume_logs_the_epoch_a_kill_kept_from_mlflow(tiny_images, tmp_path, store):
    """Killed after epoch 2's checkpoint, before MLflow heard of the epoch: the resume logs it from the checkpoint."""
    uri, client = store

    class Kill(vaekit.Callback):
        def on_epoch_end(self, epoch, metrics, model):
            if epoch == 2:
                raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=2)
        vaekit.train(cfg, pictures=False, callbacks=[Kill(), MLflow(uri)])
    vaekit.train(tiny_config(str(tiny_images), tmp_path / "run"), resume=True, pictures=False, callbacks=[MLflow(uri)])
    (found,) = runs(client)
    assert epochs(client, found) == [1, 2, 3] and found.info.status == "FINISHED"


def test_a_model_from_python_logs_its_files_versions_and_folder(tmp_path, store, monkeypatch):
    """model.json among the artifacts, the versions as tags, ``out`` as config.json has it (absolute): a resume
    from another directory records no change."""
    uri, client = store
    monkeypatch.chdir(tmp_path)
    x = (torch.rand(60, 16) > 0.5).float()

    def fit(out: str, **how) -> None:
        torch.manual_seed(0)
        model = vaekit.VAE(nn.Linear(16, 4), nn.Linear(2, 16), latent_dim=2)  # networks of its own: model.json
        vaekit.fit(model, x, out=out, progress=False, pictures=False, callbacks=[MLflow(uri)], **how)

    fit("runs/a", epochs=1)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    fit("../runs/a", epochs=2, resume=True)
    (found,) = runs(client)
    assert found.data.params["out"] == str(tmp_path / "runs" / "a")
    assert "resumed.out" not in found.data.tags
    assert {"vaekit.version", "torch.version"} <= found.data.tags.keys()
    assert files.MODEL in {a.path for a in client.list_artifacts(found.info.run_id)}


def test_the_user_s_active_run_and_experiment_are_honoured(tiny_images, tmp_path, store, monkeypatch, capfd):
    uri, client = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = tiny_config(str(tiny_images), tmp_path / "a", epochs=1)
    with mlflow.start_run(experiment_id=client.create_experiment("mine")) as parent:
        vaekit.train(cfg, pictures=False, callbacks=[cb := MLflow()])
    child = client.get_run(cb.run_id)
    assert child.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    assert child.info.experiment_id == parent.info.experiment_id
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    vaekit.train(tiny_config(str(tiny_images), tmp_path / "b", epochs=1), pictures=False, callbacks=[MLflow()])
    assert len(runs(client, "from-env")) == 1
    from vaekit.cli import main

    capfd.readouterr()
    assert main(train_argv(tiny_images, tmp_path / "c", "--mlflow", uri, "--mlflow-experiment", "cli")) == 0
    (found,) = runs(client, "cli")
    assert f"MLflow run {found.info.run_id} in experiment 'cli'" in capfd.readouterr().err
    assert main(train_argv(tiny_images, tmp_path / "d", "--mlflow-experiment", "cli")) != 0
    assert "--mlflow-experiment names the experiment of --mlflow URI" in capfd.readouterr().err


def test_a_vq_runs_prior_stage_is_logged_among_its_artifacts(tmp_path, store):
    from .test_records import tiny_vq

    uri, client = store
    model, x = tiny_vq()
    vaekit.fit(model, x, epochs=1, prior_epochs=1, batch_size=8, out="vq", progress=False, callbacks=[MLflow(uri)])
    (found,) = runs(client)
    assert files.PRIOR_METRICS in {a.path for a in client.list_artifacts(found.info.run_id)}
