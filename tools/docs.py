"""The docs' code runs: every ```python block of a page, in order, in one fresh process.

``quick`` (the test suite's budget, tests/test_docs.py) caps what the pages train and score: every training at
one epoch on at most 600 items of an array or tensor (``fit``) or 300 of a built-in set or file (``train``'s
limit); ``evaluate`` at 200 items, K = 10 and a probe fitted on 600 train items; ``anomaly_scores`` at an
input's first 100 items. A set a page loads itself (``load_dataset``) comes whole. Without it the code runs as
written and makes the pictures the pages show (``make pictures``, or ``python tools/docs.py pictures [PAGE ...]``
for some pages, which copies ``runs/<page>/*.png`` into ``docs/img/<page>/``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", DOCS / "getting-started.md", DOCS / "tutorial.md", *sorted((DOCS / "guides").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# one epoch, a few hundred items trained and scored: what the docs' code does is checked, not how well it trains
QUICK = """
import functools, numpy as _np, vaekit, vaekit.api, vaekit.evaluation.metrics as _metrics
import vaekit.evaluation.scores as _scores
_fit, _train, _detector_fit = vaekit.api.fit, vaekit.api.train, vaekit.VAEAnomalyDetector.fit
def fit(model, data=None, **kw):
    kw["epochs"] = min(kw.get("epochs", 20), 1)
    if hasattr(data, "shape") and len(data) > 600:  # arrays and tensors: a few hundred items, as train's limit
        data = data[:600]
    return _fit(model, data, **kw)
def train(config=None, **kw):
    kw["epochs"] = 1
    kw.setdefault("limit", 300)
    return _train(config, **kw)
def detector_fit(self, X, y=None):
    if self.run is None:  # a wrapped run trains nothing (and refuses epochs)
        self.epochs = min(self.epochs, 2)
    return _detector_fit(self, X, y)
_evaluate = vaekit.evaluate
def evaluate(run, *args, **kw):
    kw["k"] = min(kw.get("k", 1000), 10)
    kw.setdefault("limit", 200)
    return _evaluate(run, *args, **kw)
# its probe fits on 600 train items, not up to 10,000 (the tutorial's 4,000 for each of six models)
_metrics.probe_accuracy = functools.partial(_metrics.probe_accuracy, limit=600)
_anomaly_scores = _scores.anomaly_scores
def anomaly_scores(model, x, names, **kw):
    if hasattr(x, "shape") and len(x) > 100:  # the first 100 items: score i is still item i's
        x = x[:100]
        if _np.ndim(kw.get("y")) > 0:  # one label per item (not one for all)
            kw["y"] = kw["y"][:100]
    return _anomaly_scores(model, x, names, **kw)
_scores.anomaly_scores = anomaly_scores
vaekit.evaluate = evaluate
vaekit.fit = vaekit.api.fit = fit
vaekit.train = vaekit.api.train = train
vaekit.VAEAnomalyDetector.fit = detector_fit
"""


def python_blocks(page: Path) -> list[str]:
    """The ```python blocks of a markdown page, in order."""
    return FENCE.findall(page.read_text(encoding="utf-8"))


def run_page(page: Path, workdir: Path, quick: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a page's blocks as one script in ``workdir`` (the blocks share their names, as in a notebook)."""
    script = (QUICK if quick else "") + "\n".join(python_blocks(page))
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}  # the caller's path kept: packages may live there
    return subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
    )


def pictures(names: list[str]) -> None:
    """Run every page (or those ``names`` name, by file stem) in full from the repository root and copy the
    pictures it made into docs/img/<page>/."""
    unknown = set(names) - {page.stem for page in PAGES}
    if unknown:
        raise SystemExit(f"no such page: {', '.join(sorted(unknown))}; pages: {', '.join(p.stem for p in PAGES)}")
    for page in [p for p in PAGES if not names or p.stem in names]:
        done = run_page(page, ROOT, quick=False, timeout=3600)
        if done.returncode:
            raise SystemExit(f"{page.name} failed:\n{done.stderr[-3000:]}")
        made = sorted((ROOT / "runs" / page.stem).glob("*.png"))  # the README's code makes none of its own
        target = DOCS / "img" / page.stem
        if made:
            target.mkdir(parents=True, exist_ok=True)
        for png in made:
            shutil.copy(png, target / png.name)
        print(f"{page.name}: {len(made)} pictures -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["pictures"]:
        pictures(sys.argv[2:])
    else:
        raise SystemExit("usage: python tools/docs.py pictures [PAGE ...]  (PAGE: a page's file stem, e.g. tutorial)")
