"""How well anomaly scores (higher = more anomalous) tell anomalous items from normal ones: AUROC, AUPRC and the
false-positive rate at 95% true positives (``scores`` re-exports ``detection_metrics``)."""

from __future__ import annotations

import numpy as np

from ..errors import VaekitError


def detection_metrics(normal: np.ndarray, anomalous: np.ndarray) -> dict[str, float]:
    """AUROC, AUPRC and FPR at 95% TPR of anomaly scores (higher = more anomalous; anomalies positive)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    if len(normal) == 0 or len(anomalous) == 0:
        raise VaekitError("detection metrics need at least one normal and one anomalous item")
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    s = np.r_[normal, anomalous]
    if not np.isfinite(s).all():
        raise VaekitError("scores hold NaN or infinite values")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)  # every threshold: the first with TPR >= 0.95 is kept
    return {
        "auroc": float(roc_auc_score(y, s)),
        "auprc": float(average_precision_score(y, s)),
        "fpr95": float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
    }
