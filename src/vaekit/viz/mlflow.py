"""An MLflow run beside the run folder, written by a training callback (needs ``pip install vaekit[mlflow]``).

``vaekit.fit(model, x, out="runs/a", callbacks=[MLflow("sqlite:///mlflow.db")])`` or ``vaekit train ...
--mlflow sqlite:///mlflow.db`` logs the resolved config as parameters (``data.spec``, ``train.lr``...), the batch
scalars every ``every`` steps (``step/loss``, ``step/rec``, ``step/kl``, ``step/beta``), every epoch's
metrics.csv row (``train_loss``, ``val_loss``...; step = epoch), and when training ends the run folder's pictures
(``*.png``), config.json, table.json and metrics.csv as artifacts. The training loop itself imports no logger.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .. import files
from ..errors import VaekitError
from ..training.callbacks import Callback, FitInfo

MAX_PARAM = 6000  # MLflow's longest parameter value
FOLDER_TAG = "vaekit.run_folder"
DISPLAY = ("train.progress",)  # settings of the display, which a resumed fit picks anew: no change to tag
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores: sqlite:///mlflow.db


def flat(d: dict, prefix: str = "") -> dict[str, str]:
    """{"data": {"spec": "x.csv"}} -> {"data.spec": "x.csv"}: values as MLflow's parameter strings."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:MAX_PARAM]
    return out


def clip(line: str, width: int = 300) -> str:
    """``line`` cut to about ``width`` characters at a word's end, with '...' when cut."""
    if len(line) <= width:
        return line
    cut = line[:width].rsplit(" ", 1)[0] if " " in line[:width] else line[:width]
    return cut.rstrip(" ,;:") + "..."


def database_drivers(uri: str) -> None:
    """A database store (sqlite:///mlflow.db) needs SQLAlchemy and Alembic, which mlflow-skinny lacks: one line."""
    if uri.split(":", 1)[0].split("+", 1)[0].lower() not in DATABASES:
        return
    try:
        for name in ("sqlalchemy", "alembic"):
            importlib.import_module(name)
    except ImportError:
        raise VaekitError(
            f"MLflow tracking store {uri} needs sqlalchemy and alembic: pip install 'vaekit[mlflow]'", key="mlflow"
        ) from None


class MLflow(Callback):
    """Logs a fit to an MLflow tracking store.

    ``tracking_uri``: where the store is (``sqlite:///mlflow.db``, ``http://host:5000``; default: MLflow's
    own, ``MLFLOW_TRACKING_URI``); ``experiment`` is created if it does not exist; ``run_name`` defaults to the
    run folder's name. A resumed fit goes on in the latest MLflow run of the same run folder (a setting changed
    on resume is tagged ``resumed.<key>``; the steps it logged past the checkpoint resumed from are not logged
    again). ``run_id`` is set once the MLflow run has started. A store that cannot be opened or reached is one
    line naming it, before any epoch.
    """

    def __init__(
        self, tracking_uri: str | None = None, experiment: str = "vaekit", run_name: str | None = None, every: int = 10
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
        self.uri = tracking_uri
        database_drivers(tracking_uri or get_tracking_uri())
        with self._store():
            self.client = MlflowClient(tracking_uri)
        self.experiment, self.run_name, self.every = experiment, run_name, every
        self.run_id: str | None = None
        self.logged = -1  # the last step whose scalars the MLflow run holds (a resumed one: from its history)

    @contextmanager
    def _store(self) -> Iterator[None]:
        """MLflow's errors opening or reaching the store, as one line naming it."""
        try:
            yield
        except Exception as e:  # noqa: BLE001 - MLflow raises many kinds (its own, requests', SQLAlchemy's)
            why = clip((str(e).strip().splitlines() or [type(e).__name__])[0])
            raise VaekitError(f"MLflow tracking store {self.uri or '(default)'}: {why}", key="mlflow") from None

    def on_fit_start(self, model: nn.Module, info: FitInfo) -> None:
        with self._store():
            self._start(info)

    def _start(self, info: FitInfo) -> None:
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment, beside(self.uri))
        )
        name = self.run_name or (info.path.name if info.path is not None else None)
        tags = {FOLDER_TAG: str(info.path.resolve())} if info.path is not None else {}
        params = flat(info.config.to_dict())
        earlier = self._earlier(experiment_id, tags) if info.resumed else None
        self.logged = -1
        if earlier is None:
            self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
            self._log(params=params)
            return
        self.run_id = earlier.info.run_id  # a resumed fit goes on in the MLflow run it began
        self.client.update_run(self.run_id, "RUNNING")
        logged = earlier.data.params
        self._log(params={k: v for k, v in params.items() if k not in logged})
        for k, v in params.items():  # MLflow keeps a parameter's first value: a setting changed on resume is a tag
            if k in logged and logged[k] != v and k not in DISPLAY:
                self.client.set_tag(self.run_id, f"resumed.{k}", v)
        # steps logged after the checkpoint resumed from, before a kill, are taken again: logged once
        self.logged = max((m.step for m in self.client.get_metric_history(self.run_id, "step/loss")), default=-1)

    def _earlier(self, experiment_id: str, tags: dict):
        """The latest MLflow run of this experiment that logged the same run folder, or None."""
        if not tags:
            return None
        folder = tags[FOLDER_TAG].replace("'", "\\'")
        found = self.client.search_runs(
            [experiment_id], f"tags.`{FOLDER_TAG}` = '{folder}'", order_by=["attributes.start_time DESC"], max_results=1
        )
        return found[0] if found else None

    def on_step_end(self, step: int, metrics: dict, model: nn.Module) -> None:
        """Batch scalars every ``every`` steps (read then only: each read waits for the device)."""
        if self.run_id is None or step % self.every or step <= self.logged:
            return
        values = torch.stack([metrics["loss"], metrics["rec"], metrics["kl"]]).tolist()
        scalars = {**dict(zip(("loss", "rec", "kl"), values)), "beta": float(metrics["beta"])}
        self._log(metrics={f"step/{k}": v for k, v in scalars.items()}, step=step)

    def on_epoch_end(self, epoch: int, metrics: dict, model: nn.Module) -> None:
        if self.run_id is not None:
            self._log(
                metrics={k: float(v) for k, v in metrics.items() if k != "epoch"},
                step=int(metrics.get("epoch", epoch + 1)),
            )

    def on_fit_end(self, model: nn.Module, info: FitInfo) -> None:
        """The run folder's pictures and JSON as artifacts, then the MLflow run is marked finished."""
        if self.run_id is None:
            return
        if info.path is not None:
            names = (files.CONFIG, files.TABLE, files.METRICS)
            for path in sorted(info.path.glob("*.png")) + [info.path / n for n in names]:
                if Path(path).is_file():
                    self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id)

    def on_fit_error(self, error: BaseException, info: FitInfo) -> None:
        """The MLflow run ends KILLED (an interruption: resume it) or FAILED (anything else), not left RUNNING."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    def _log(self, params: dict | None = None, metrics: dict | None = None, step: int = 0) -> None:
        from mlflow.entities import Metric, Param

        assert self.run_id is not None  # called once the MLflow run has started
        now = int(time.time() * 1000)
        rows = [Param(k, v) for k, v in (params or {}).items()]
        for i in range(0, len(rows), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=rows[i : i + 100])
        if metrics:
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])


def beside(uri: str | None) -> str | None:
    """Where a new experiment of a SQLite store ``sqlite:///DIR/x.db`` keeps its artifacts: DIR/mlruns (MLflow's
    own default is ./mlruns of whatever directory it runs in); None (MLflow's default) for any other store."""
    if not uri or not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
