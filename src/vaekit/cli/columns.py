"""``vaekit anomaly RUN --columns``: each table column's term of an item's score, the column that makes it anomalous
(``evaluation.column_scores``), and which column is worst most often among the most anomalous items."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .. import files
from ..errors import VaekitError
from ..evaluation.score_names import SETTINGS
from ..io import printable
from .verbs import arg

if TYPE_CHECKING:
    import numpy as np

COLUMNS = arg(
    "--columns",
    action="store_true",
    help="a table run: after the scores, each column's term of -E log p(x|z) (col:<name>; they sum to neg_elbo - kl, "
    "of --samples draws) and worst_column, the column of the largest term",
)
TOP_SHARE, TOP_LEAST = 0.01, 10  # the summary's items: the top 1% by the first score, at least 10


def refuse_columns(args: argparse.Namespace) -> None:
    """Refuse --columns, before anything is read, for a multi-scale detector's folder or a run folder without a
    table (``files.TABLE``); a folder that is neither is left to the run's loading to name."""
    from ..evaluation.detector_folder import is_detector

    if not getattr(args, "columns", False):
        return
    if is_detector(args.run):
        raise VaekitError(f"--columns: {args.run} holds a multi-scale detector, whose scores have no columns")
    if Path(args.run).is_dir() and not (Path(args.run) / files.TABLE).is_file():
        raise VaekitError(
            f"--columns splits a table run's scores by its columns; {args.run} was not trained on a table "
            f"(it has no {files.TABLE})"
        )


def column_csv(args: argparse.Namespace, run, x, y, scores: dict[str, np.ndarray]) -> tuple[dict, str]:
    """With --columns, the CSV's columns col:<name> (N,) per table column and worst_column, of the first --limit
    items x (labels y (N,) for a conditional run), and the summary line; else ({}, "")."""
    import numpy as np

    from ..data.lazy import head
    from ..evaluation.column_scores import column_scores

    if not getattr(args, "columns", False):
        return {}, ""
    samples = SETTINGS["samples"].default if args.samples is None else args.samples
    y = None if y is None or not run.model.needs_labels else y[: args.limit]
    terms = column_scores(run, head(x, args.limit), None, samples, args.seed, args.batch_size, y)
    names = list(terms)
    worst = np.stack([terms[k] for k in names], 1).argmax(1) if names else np.zeros(0, int)  # (N,)
    out: dict = {f"col:{k}": v for k, v in terms.items()}
    out["worst_column"] = np.array([names[j] for j in worst], dtype=object)  # text cells
    return out, worst_summary(scores, names, worst)


def worst_summary(scores: dict[str, np.ndarray], names: list[str], worst: np.ndarray) -> str:
    """One line: the column worst most often among the top ``TOP_SHARE`` of items (at least ``TOP_LEAST``) by the
    first score; "" without items."""
    import numpy as np

    main = next(iter(scores))
    n = len(worst)
    if not n:
        return ""
    k = min(n, max(TOP_LEAST, math.ceil(TOP_SHARE * n)))
    top = np.argsort(-scores[main], kind="stable")[:k]  # the k most anomalous items
    counts = np.bincount(worst[top], minlength=len(names))
    j = int(counts.argmax())
    return f"worst column of the {k} items of highest {main}: {printable(names[j])!r} in {counts[j]} of them"
