"""The end of an MLflow run that a fit stopped after its last checkpoint never reached, done by a resume with
nothing left to train (``MLflow.on_nothing_to_train``): no MLflow run created, no other touched."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from torch import nn

from ..data.images import note
from ..training.callbacks import FitInfo
from ..training.state import recorded_state
from .mlflow import CALLS, FOLDER_TAG, TRAINING_TAG, as_metrics, http_settings, training_id

if TYPE_CHECKING:
    from .mlflow import MLflow

UNENDED = ("RUNNING", "KILLED")  # a kill after the last checkpoint; an interruption then (its second Ctrl-C)


def experiment_id(cb: MLflow) -> str | None:
    """The experiment ``cb`` logs to, as ``MLflow._experiment`` picks it, or None where it does not exist (none
    is created)."""
    import mlflow

    active = mlflow.active_run()
    name = cb.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name is None and active and cb.client.tracking_uri == mlflow.get_tracking_uri():
        return active.info.experiment_id
    found = cb.client.get_experiment_by_name(name or "vaekit")
    return found.experiment_id if found else None


def end_unended(cb: MLflow, model: nn.Module, info: FitInfo) -> None:
    """The MLflow run of this training of ``info.path`` left RUNNING or KILLED with all its epochs trained gets
    the epochs it lacks (from the checkpoint), the artifacts, and ends FINISHED (``MLflow.on_fit_end``)."""
    folder = info.path
    rows = ((recorded_state(folder) or {}).get("rows") or []) if folder is not None else []
    if folder is None or not rows:
        return
    tags = {FOLDER_TAG: str(folder.resolve()), TRAINING_TAG: training_id(rows[0])}
    with cb._store(), http_settings(CALLS):  # a store that fails: one line, as at a fit's start
        found = experiment_id(cb)
        earlier = None if found is None else cb._earlier(found, tags[FOLDER_TAG], tags[TRAINING_TAG])
        if earlier is None or earlier.info.status not in UNENDED:
            return
        cb.run_id, cb.folder, cb.on = earlier.info.run_id, folder, True
        done = cb._continue(earlier, {}, tags)  # the last epoch it holds
        cb._log(metrics=[m for row in rows if int(row["epoch"]) > done for m in as_metrics(row, int(row["epoch"]))])
    note(f"MLflow run {cb.run_id}: ended, as the fit that logged it stopped after its last checkpoint")
    cb.on_fit_end(model, info)
