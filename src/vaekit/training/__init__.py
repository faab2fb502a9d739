"""Training: the loop, its steps, checkpoints, signals, DDP, callbacks and the run folder it writes.

It knows nothing of evaluation, pictures or reports: those plug in as callbacks.
"""

from .callbacks import Callback, FitInfo
from .first_step import TrainingStopped
from .fit import Fitted, fit_config, probe, train_model

__all__ = ["Callback", "FitInfo", "Fitted", "TrainingStopped", "fit_config", "probe", "train_model"]
