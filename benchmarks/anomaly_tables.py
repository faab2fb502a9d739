"""The headlines of benchmarks/anomaly.py's tables 1-3: the detector's default score (not the best of its scores on
the test set) beside the best, computed from a table's rows, as a run writes them and as ``--rehead`` rewrites them."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import common

from vaekit.evaluation.detector import VAEAnomalyDetector
from vaekit.evaluation.scores import DESCRIPTIONS

DEFAULTS = {k: v.default for k, v in inspect.signature(VAEAnomalyDetector).parameters.items()}  # the detector's
DEFAULT_SCORE = DEFAULTS["method"]  # its own score: neg_elbo of one VAE (scales (1,)), mlp, gaussian


def tabular_phrase(rows: list[list]) -> str:
    """Table 3's headline: vaekit's detector with its default score (not the best of its scores on the test
    set) against the best PyOD row, where PyOD ran. ``rows``: [detector, AUROC, fit s]."""
    ours = next(r for r in rows if r[0] == f"vaekit VAEAnomalyDetector ({DEFAULT_SCORE})")
    peer = max((r for r in rows if r[0].startswith("PyOD")), key=lambda r: r[1], default=None)
    return f"breast cancer AUROC {ours[1]:.3f} (vaekit VAEAnomalyDetector, default score {DEFAULT_SCORE})" + (
        f" vs {peer[1]:.3f} (best PyOD: {peer[0]})" if peer else ""
    )


def best_beside(ours: float | None, aurocs: dict[str, float], what: str) -> str:
    """Beside the default's AUROC ``ours`` (None: not run): the best of ``aurocs`` (name -> AUROC), labelled as
    chosen on the test set, where it is higher; '' otherwise."""
    best = max(aurocs, key=aurocs.get)
    return "" if ours is not None and aurocs[best] <= ours else (
        f" [best of {len(aurocs)} {what} on the test set: {aurocs[best]:.3f} ({best})]")  # fmt: skip


def oneclass_phrase(columns: list[str], rows: list[list], net: str, likelihood: str) -> str:
    """Table 1's headline: the mean AUROC of the flat VAE's default score (where its net and likelihood are the
    detector's defaults), the best's beside it. ``columns``: class, a name per score; ``rows``: classes, mean."""
    means = dict(zip(columns[1:], next(r for r in rows if r[0] == "mean")[1:]))
    ours = means.get(DEFAULT_SCORE) if (net, likelihood) == (DEFAULTS["net"], DEFAULTS["likelihood"]) else None
    what = f"{DEFAULT_SCORE}, one {DEFAULTS['likelihood']} VAE"
    label = f": default score ({what}) not run" if ours is None else f" {ours:.3f} (default score {what})"
    return f"one-class Fashion-MNIST mean AUROC{label}" + best_beside(ours, means, "scores")


def ood_phrase(columns: list[str], rows: list[list], net: str) -> str:
    """Table 2's headline: the AUROC of the default score and likelihood (where the net is the detector's
    default), the best's beside it. ``columns``: score, AUROC (lk), FPR@95%TPR (lk) per lk; ``rows``: scores."""
    auroc = {i: c[len("AUROC (") : -1] for i, c in enumerate(columns) if c.startswith("AUROC (")}  # -> likelihood
    aurocs = {f"{r[0]}, {lk}": r[i] for r in rows for i, lk in auroc.items()}
    key = f"{DEFAULT_SCORE}, {DEFAULTS['likelihood']}"
    ours = aurocs.get(key) if net == DEFAULTS["net"] else None
    label = f": default score ({key}) not run" if ours is None else f" {ours:.3f} (default score {key})"
    return f"Fashion-MNIST vs MNIST AUROC{label}" + best_beside(ours, aurocs, "score-likelihood pairs")


def score_notes(notes: list[str]) -> list[str]:
    """``notes`` with the scores' descriptions of a "Scores (...): name: text; ..." note as vaekit words them
    now (the scores computed alike: a description reworded since the run), its settings kept."""
    out = []
    for note in notes:
        if note.startswith("Scores (") and "): " in note:
            head, said = note.split("): ", 1)
            names = [part.split(": ", 1)[0] for part in said.split("; ")]
            note = f"{head}): " + "; ".join(f"{n}: {DESCRIPTIONS[n]}" if n in DESCRIPTIONS else n for n in names)
        out.append(note)
    return out


def rehead(path: str) -> None:
    """Recompute the phrases of tables 1-3 in a written result's headline from its stored tables, and its scores'
    descriptions (``score_notes``); no run."""
    result = json.loads(Path(path).read_text())
    table = lambda start: next((t for t in result["tables"] if t["caption"].startswith(start)), None)  # noqa: E731
    phrases = []
    for p in result["headline"].split("; "):
        if p.startswith("one-class") and (t := table("Fashion-MNIST one-class")):
            net, likelihood = re.search(r"AUROC \((\w+) VAE, (\w+),", t["caption"]).groups()
            p = oneclass_phrase(t["columns"], t["rows"], net, likelihood)
        elif p.startswith("Fashion-MNIST vs MNIST") and (t := table("Out-of-distribution")):
            p = ood_phrase(t["columns"], t["rows"], re.search(r"images \((\w+), \d+ epochs\)", t["caption"])[1])
        elif p.startswith("breast cancer") and (t := table("Breast cancer")):
            p = tabular_phrase(t["rows"])
        phrases.append(p)
    common.rewrite(path, headline="; ".join(phrases), notes=score_notes(result.get("notes", [])))
