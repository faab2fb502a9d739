"""An MLflow run beside the run folder, written by a training callback (needs ``pip install vaekit[mlflow]``).

``vaekit.fit(model, x, out="runs/a", callbacks=[MLflow("sqlite:///mlflow.db")])`` or ``vaekit train ...
--mlflow sqlite:///mlflow.db`` logs the resolved config as parameters (``data.spec``, ``train.lr``...), the batch
scalars every ``every`` steps (``step/loss``, ``step/rec``, ``step/kl``, ``step/beta``), every epoch's
metrics.csv row (step = epoch), and when training ends the run folder's pictures, JSON files and metrics.csv as
artifacts. The training loop imports no logger; the MLflow run is a copy of the folder, which training never waits on.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .. import files
from ..config.parse import written_by
from ..data.images import note
from ..errors import VaekitError
from ..training import distributed
from ..training.callbacks import Callback, FitInfo
from ..training.folder import model_class
from ..training.state import recorded_state
from .mlflow_lines import cause
from .mlflow_lines import clip as clip  # said here too, as before

MAX_PARAM = 6000  # MLflow's longest parameter value
FOLDER_TAG = "vaekit.run_folder"
TRAINING_TAG = "vaekit.training"  # which training of the folder (training_id): --overwrite starts another
DISPLAY = ("train.progress", "out")  # a resumed fit picks its display anew; out is matched by FOLDER_TAG: no change
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores: sqlite:///mlflow.db
ARTIFACTS = (
    files.CONFIG,
    files.MODEL,
    files.CLASSES,
    files.COUNTS,
    files.TABLE,
    files.STANDARDIZE,
    files.METRICS,
    files.PRIOR_METRICS,
)
H = "MLFLOW_HTTP_REQUEST_"  # MLflow's HTTP settings, where the user set none (its own wait minutes on a server gone)
PROBE = {H + "MAX_RETRIES": "0", H + "TIMEOUT": "5"}  # the store's first request, and the run's end
CALLS = {H + "MAX_RETRIES": "2", H + "BACKOFF_FACTOR": "1", H + "TIMEOUT": "30"}


def flat(d: dict, prefix: str = "") -> dict[str, str]:
    """{"data": {"spec": "x.csv"}} -> {"data.spec": "x.csv"}: values as MLflow's parameter strings."""
    out: dict[str, str] = {}
    for key, value in d.items():
        out |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: str(value)[:MAX_PARAM]}
    return out


@contextmanager
def http_settings(values: dict[str, str]) -> Iterator[None]:
    """MLflow's HTTP ``values`` (environment variables it reads at each request) for the calls inside, where the
    user set none; the environment as it was afterwards."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def training_id(row: dict) -> str:
    """Which training of a run folder: a digest of its first metrics.csv row (the checkpoint keeps it), whose
    seconds differ between trainings even of one seed: the same on resume, another after an --overwrite."""
    values = json.dumps([float(row.get(k, 0.0)) for k in ("train_loss", "val_loss", "seconds")])
    return hashlib.sha1(values.encode()).hexdigest()[:16]


def as_metrics(values: dict, step: int, prefix: str = "") -> list:
    """``values`` ({name: number}; a metrics.csv row's epoch left out) as MLflow metrics at ``step``."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(prefix + k, float(v), now, step) for k, v in values.items() if k != "epoch"]


def database_drivers(uri: str) -> None:
    """A database store (sqlite:///mlflow.db) needs SQLAlchemy and Alembic, which mlflow-skinny lacks: one line."""
    try:
        for name in ("sqlalchemy", "alembic") if uri.split(":", 1)[0].split("+", 1)[0].lower() in DATABASES else ():
            importlib.import_module(name)
    except ImportError:
        need = "needs sqlalchemy and alembic: pip install 'vaekit[mlflow]'"
        raise VaekitError(f"MLflow tracking store {uri} {need}", key="mlflow") from None


class MLflow(Callback):
    """Logs a fit to an MLflow tracking store.

    ``tracking_uri``: ``sqlite:///mlflow.db``, ``http://host:5000``... (default: MLflow's own); ``experiment``
    (default: an active MLflow run's, nested under it, else ``MLFLOW_EXPERIMENT_NAME``, else "vaekit"); ``run_name``
    (default: the folder's name). A resume goes on in the MLflow run of the same training of its folder (none from
    before an --overwrite; the epochs it lacks logged from the checkpoint, a changed setting as a tag
    ``resumed.<key>``), else in a new one, said so; a resume with nothing left to train ends its MLflow run where a
    kill after the last checkpoint left it RUNNING. ``run_id`` is set, and said in a line, at the start. A store
    that cannot be reached is one line, in seconds; one that fails later, one line, then training goes on.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        every: int = 10,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise VaekitError(
                f"MLflow: every must be a positive integer (steps between logs), got {every!r}", key="every"
            )
        try:
            from mlflow.tracking import MlflowClient, get_tracking_uri
        except ImportError:
            raise VaekitError("the MLflow callback needs mlflow: pip install 'vaekit[mlflow]'") from None
        for name in ("mlflow", "alembic"):  # their INFO lines (a new sqlite store's tables) are no output of vaekit's
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri, self.experiment, self.run_name, self.every = tracking_uri, experiment, run_name, every
        database_drivers(tracking_uri or get_tracking_uri())
        with self._store(), http_settings(PROBE):  # reached once now: an unreachable server said in seconds
            self.client = MlflowClient(tracking_uri)
            self.client.get_experiment_by_name(experiment or "vaekit")
        self.run_id: str | None = None
        self.logged = -1  # the last step whose scalars the MLflow run holds (a resumed one: from its history)
        self.on = False  # logging, from the MLflow run's start to the end of the fit or the store's first failure
        self.folder: Path | None = None

    @contextmanager
    def _store(self) -> Iterator[None]:
        """MLflow's errors opening or reaching the store, as one line naming it (before any epoch)."""
        try:
            yield
        except Exception as e:  # noqa: BLE001 - MLflow raises many kinds (its own, requests', SQLAlchemy's)
            raise VaekitError(f"MLflow tracking store {self.uri or '(default)'}: {cause(e)}", key="mlflow") from None

    def _guarded(self, log: Callable[[], object]) -> None:
        """``log()`` while logging is on. Its first failure (a server gone, an artifact store not writable) is one
        line, and logging stops for the rest of the fit: training and the run folder go on as without MLflow."""
        if not self.on:
            return
        try:
            with http_settings(CALLS):
                log()
        except Exception as e:  # noqa: BLE001 - as in _store
            self.on = False
            kept = f", the run folder {self.folder} has everything" if self.folder is not None else ""
            distributed.warn(f"MLflow logging stopped: {cause(e)}; training goes on{kept}")

    def _end(self, status: str) -> None:
        """The MLflow run marked ``status`` (FAILED where logging stopped), quietly: a store gone says no more."""
        if self.run_id is not None:
            with suppress(Exception), http_settings(PROBE):
                self.client.set_terminated(self.run_id, status if self.on else "FAILED")
        self.on = False

    def on_fit_start(self, model: nn.Module, info: FitInfo) -> None:
        self.run_id, self.folder, self.on = None, info.path, False
        try:
            with self._store(), http_settings(CALLS):
                line = self._start(model, info)
        except BaseException:
            self._end("FAILED")  # an MLflow run created before the store failed
            raise
        self.on = True
        note(line)

    def _start(self, model: nn.Module, info: FitInfo) -> str:
        """Start or continue the MLflow run; the line that says which."""
        experiment_id, name, parent = self._experiment()
        tags = {f"{k}.version": v for k, v in written_by().items()} | {"vaekit.model_class": model_class(model)}
        params, folder = flat(info.config.to_dict()), info.path
        state = recorded_state(folder) if info.resumed and folder is not None else None
        rows = (state or {}).get("rows") or []
        tags |= {TRAINING_TAG: training_id(rows[0])} if rows else {}
        if folder is not None:  # as config.json records it: a resume from elsewhere is no change
            params["out"] = tags[FOLDER_TAG] = str(folder.resolve())
        earlier = self._earlier(experiment_id, params["out"], tags.get(TRAINING_TAG)) if state is not None else None
        self.logged, done = -1, 0
        if earlier is None:
            run_name = self.run_name or (folder.name if folder is not None else None)
            own = {"mlflow.parentRunId": parent} if parent else {}  # nested
            self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags | own).info.run_id
            self._log(params=params)
        else:
            self.run_id = earlier.info.run_id  # a resumed fit goes on in the MLflow run it began
            self.client.update_run(self.run_id, "RUNNING")
            done = self._continue(earlier, params, tags)
        self._log(metrics=[m for row in rows if int(row["epoch"]) > done for m in as_metrics(row, int(row["epoch"]))])
        said = f"MLflow run {self.run_id} in experiment {name!r}" + (f", nested under run {parent}" if parent else "")
        if state is None or earlier is not None:
            return said + (f", continued at epoch {len(rows) + 1}" if earlier is not None else "")
        why = "it logged none of this training of the folder (first trained without MLflow, or again since)"
        return f"{said}: a new one, as {why}" + (
            f"; epoch{'s 1-' if len(rows) > 1 else ' '}{len(rows)} logged from the checkpoint" if rows else ""
        )

    def _experiment(self) -> tuple[str, str, str | None]:
        """The experiment's id and name, and the user's active MLflow run of this store to nest under (or None)."""
        import mlflow

        active = mlflow.active_run()
        parent = active.info.run_id if active and self.client.tracking_uri == mlflow.get_tracking_uri() else None
        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if name is None and active and parent:
            return active.info.experiment_id, self.client.get_experiment(active.info.experiment_id).name, parent
        name = name or "vaekit"
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found else self.client.create_experiment(name, beside(self.uri)), name, parent

    def _earlier(self, experiment_id: str, folder: str, training: str | None):
        """The latest MLflow run of this experiment that logged this training of the run folder (tagged with its
        ``training_id``, or untagged and killed before it logged an epoch), or None."""
        query = "tags.`{}` = '{}'".format(FOLDER_TAG, folder.replace("'", "\\'"))
        found = self.client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=50)
        tagged = (r.data.tags[TRAINING_TAG] == training if TRAINING_TAG in r.data.tags else None for r in found)
        same = (r for r, t in zip(found, tagged) if t or (t is None and "train_loss" not in r.data.metrics))
        return next(same, None)

    def _continue(self, earlier, params: dict, tags: dict) -> int:
        """Parameters the earlier MLflow run lacks, a setting changed on resume as a tag (MLflow keeps a parameter's
        first value); the last epoch it holds. Steps it logged after the checkpoint, before a kill, are not again."""
        logged = earlier.data.params
        self._log(params={k: v for k, v in params.items() if k not in logged})
        changed = {f"resumed.{k}": v for k, v in params.items() if k in logged and logged[k] != v and k not in DISPLAY}
        self._log(tags=tags | changed)
        history = partial(self.client.get_metric_history, earlier.info.run_id)
        self.logged = max((m.step for m in history("step/loss")), default=-1)
        return max((m.step for m in history("train_loss")), default=0)

    def on_step_end(self, step: int, metrics: dict, model: nn.Module) -> None:
        """Batch scalars every ``every`` steps (read then only: each read waits for the device)."""
        if self.on and not step % self.every and step > self.logged:
            loss, rec, kl = torch.stack([metrics["loss"], metrics["rec"], metrics["kl"]]).tolist()  # one sync
            scalars = {"loss": loss, "rec": rec, "kl": kl, "beta": metrics["beta"]}
            self._guarded(lambda: self._log(metrics=as_metrics(scalars, step, "step/")))

    def on_epoch_end(self, epoch: int, metrics: dict, model: nn.Module) -> None:
        first = {TRAINING_TAG: training_id(metrics)} if epoch == 1 else None  # which training: tagged once
        self._guarded(lambda: self._log(metrics=as_metrics(metrics, int(metrics.get("epoch", epoch))), tags=first))

    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        """The run folder's pictures and files as artifacts, then the MLflow run is marked finished."""
        folder = info.path
        paths = sorted(folder.glob("*.png")) + [folder / n for n in ARTIFACTS] if folder is not None else []
        self._guarded(lambda: self._log(artifacts=[p for p in paths if p.is_file()]))
        self._end("FINISHED")

    def on_fit_error(self, error: BaseException, info: FitInfo) -> None:
        """The MLflow run ends KILLED (an interruption: resume it) or FAILED (anything else), not left RUNNING; a
        store that fails here too says nothing more: the fit's own error goes on up, to the other callbacks."""
        self._end("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    def on_nothing_to_train(self, model: nn.Module, info: FitInfo) -> None:
        """The MLflow run of this training a kill after its last checkpoint left unended: ended (``end_unended``)."""
        from .mlflow_end import end_unended

        end_unended(self, model, info)

    def _log(self, params: dict | None = None, metrics: Sequence = (), tags: dict | None = None, artifacts=()) -> None:
        """Parameters, metrics and tags in batches of MLflow's sizes (100 parameters, 1000 metrics), then files."""
        from mlflow.entities import Param, RunTag

        assert self.run_id is not None  # called once the MLflow run has started
        rows = [Param(k, v) for k, v in (params or {}).items()]
        for i in range(0, len(rows), 100):
            self.client.log_batch(self.run_id, params=rows[i : i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=list(metrics)[i : i + 1000])
        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        for path in artifacts:
            self.client.log_artifact(self.run_id, str(path))


def beside(uri: str | None) -> str | None:
    """Where a new experiment of a SQLite store ``sqlite:///DIR/x.db`` keeps its artifacts: DIR/mlruns (MLflow's
    own default is ./mlruns of whatever directory it runs in); None (MLflow's default) for any other store."""
    if not uri or not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
