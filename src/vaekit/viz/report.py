"""The run's report page: one self-contained report.html (config, metrics, curves, pictures; images inlined)."""

from __future__ import annotations

import base64
import csv
import html
import json
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image

from .. import files
from ..data import Dataset
from ..data.lazy import head_split
from ..data.photos import note
from ..data.prepare import prepare_data, same_spec
from ..data.signals import as_model_items
from ..errors import VaekitError
from ..evaluation.eval_files import data_path, eval_path, saved_eval
from ..evaluation.eval_items import Keys, named_labels, users_items_for
from ..evaluation.features import class_accuracy_line
from ..evaluation.labels import numbered_as_run
from ..evaluation.metrics import check_k, evaluate, pick_split, write_eval
from ..evaluation.outputs import every_item_data
from ..evaluation.quality_run import quality_rows, read_quality
from ..evaluation.table_quality import table_quality_lines, table_quality_rows
from ..io import atomic_write_text
from ..runs import Run
from ..training.folder import write_metrics
from .curves import read_metrics
from .report_pictures import eval_caption, kl_picture, pictures, training_line
from .report_tables import rows_section

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.wide{overflow-x:auto;max-width:100%}
@media print{.wide table{font-size:.6em}.wide td,.wide th{overflow-wrap:anywhere}}"""


def _img(path: Path, caption: str) -> str:
    """A <figure> with the PNG inlined; small pixel grids are shown at twice their size."""
    with Image.open(path) as image:  # closed here, not left to the collector (a ResourceWarning)
        data, width = base64.b64encode(path.read_bytes()).decode("ascii"), image.size[0]
    style = f' style="width:{2 * width}px"' if width < 400 else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}"{style} alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(rows: list[dict]) -> str:
    """An HTML table of dicts with the same keys."""
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


DECIMALS = {"bits_per_dim": 4, "probe_accuracy": 4}  # eval.json's figures; the others (nats, seconds): 2


def _fmt(v, places: int | None = None) -> str:
    """A cell: floats in fixed point, to ``places`` decimals (None: 2 from 1 up, 4 significant digits below);
    from 1e6 up in scientific notation (a diverged run's -9.4919e+29, not 30 digits of which 23 are noise)."""
    if v is None:  # a figure that does not apply (no labels: no probe)
        return "n/a"
    if isinstance(v, float):
        small = places is None and abs(v) < 1
        return f"{v:.4e}" if abs(v) >= 1e6 else f"{v:.4g}" if small else f"{v:.{2 if places is None else places}f}"
    if isinstance(v, list):
        return ", ".join(_fmt(u, places) for u in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(u, places)}" for k, u in v.items())
    return str(v)


EVAL_KEYS: tuple[str, ...] = ("data", "split", "n", "k", "seed", "elbo", "rec", "kl", "kl_per_level", "nll")
EVAL_KEYS += ("bits_per_dim", "active_units", "probe_accuracy", "elbo_passes", "seconds", files.DIGEST)  # in order
ACTIVE_KEYS = ("total", "per_level", "threshold")


def eval_rows(result: dict) -> list[dict]:
    """eval.json's known keys (``EVAL_KEYS``; not kl_per_dim, a figure) as (metric, value) rows; nats to 2 decimals,
    bits per dim and the probe's accuracy to 4, in fixed point, so runs compare digit by digit."""
    au = result.get("active_units")
    known = {**result, "active_units": {a: au[a] for a in ACTIVE_KEYS if a in au}} if isinstance(au, dict) else result
    return [{"metric": k, "value": _fmt(known[k], DECIMALS.get(k, 2))} for k in EVAL_KEYS if k in known]


def quality_html(run: Run) -> list[str]:
    """The sample-quality section from quality.json (``vaekit quality``), when it holds these weights' figures:
    the folder's own, shown as they are (a line says so)."""
    path = None if run.path is None else run.path / files.QUALITY
    q = {} if path is None else read_quality(path, run.digest)
    if q:
        note(f"{path}: the folder's figures for these weights, not recomputed (vaekit quality {run.path} recomputes)")
    try:
        return _quality_parts(q)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:  # these weights', but not whole
        raise VaekitError(
            f"{path}: not a whole vaekit quality.json ({type(e).__name__}: {e}); run vaekit quality again or remove it"
        ) from None


def _quality_parts(q: dict) -> list[str]:
    """The HTML of quality.json's figures ``q`` ({}: none); a part missing raises KeyError or TypeError."""
    if q.get("kind") == "table":  # a table's own measures
        first, *rest = table_quality_lines(q)
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in rest)
        return [f"<h2>Synthetic rows</h2><p>{html.escape(first)}</p>", _table(table_quality_rows(q)), paragraphs]
    if not q:  # none
        return []
    return [
        f"<h2>Sample quality ({html.escape(q['features']['kind'])} features, {html.escape(str(q['n']))} items per "
        "set)</h2>",
        "<p>FID and KID (lower is better), precision and recall (k = 3) against half of the "
        f"{html.escape(q['split'])} split of {html.escape(q['data'])}, the data vaekit quality read; the yardstick "
        "compares its other half.</p>",
        _table(quality_rows(q)),
        *(f"<p>{html.escape(line)}</p>" for line in [class_accuracy_line(q)] if line),  # a conditional run's
    ]


def render(
    run: Run,
    result: dict,
    figures: list[tuple[str, Path | None]],
    metrics_csv: Path,
    quality: list[str],
    rows: Sequence[str] = (),
) -> str:
    """The report page as one HTML string (``quality``: ``quality_html``'s section; ``rows``: a table run's drawn
    and real rows, ``rows_section``'s; a figure of path None: its caption as a line, saying why pictures are left
    out)."""
    with open(metrics_csv, newline="") as f:
        metrics = list(csv.DictReader(f))
    name = run.path.resolve().name if run.path else None  # its name only: a shared page keeps where it was private
    title = html.escape(f"vaekit run {name or '(fitted without a folder)'}")
    where = f"run folder {name}" if name else "vaekit.fit without out: no run folder"
    config = {**run.config.to_dict(), **({"out": name} if name else {})}
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>",
        f'<meta name="{files.DIGEST}" content="{run.digest}">',
        f"<style>{CSS}</style></head><body><h1>{title}</h1>",
        f"<p>{html.escape(where)}</p>",
        f"<p>{html.escape(training_line(read_metrics(metrics_csv), run.config.to_dict()['train']))}</p>",
        f"<h2>Evaluation ({html.escape(str(result['data']))}, {html.escape(str(result['split']))} split, K = "
        f"{html.escape(str(result['k']))}, seed "
        f"{html.escape(str(result['seed']))})</h2>",
        f"<p>{html.escape(eval_caption(run, result))}</p>",
        _table(eval_rows(result)),
        *quality,
        "<h2>Training metrics</h2>",
        f"<div class='wide'>{_table(metrics)}</div>",  # as wide as its columns: scrolled, not cut off
        *rows,
        "<h2>Pictures</h2>",
        "".join(_img(p, c) if p is not None else f"<p>{html.escape(c)}</p>" for c, p in figures),
        "<h2>Config</h2>",
        f"<pre>{html.escape(json.dumps(config, indent=2))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(
    run: Run,
    data: object = None,
    split: str = "test",
    k: int = 100,
    limit: int | None = 1000,
    out: str | Path | None = None,
    seed: int = 0,
    x_key: str | None = None,
    y_key: str | None = None,
) -> Path:
    """Write report.html (default: in the run folder; a run from ``fit`` without ``out`` needs ``out``).

    ``data`` is what ``vaekit.evaluate`` takes: a data spec (default: the run's data), a vaekit Dataset, or the
    user's items (an array, tensor, (x, y) pair, torch Dataset or DataLoader; a dict item's entries ``x_key``
    and ``y_key``, as ``fit`` takes them) evaluated whole: their first ``limit``, recorded as split all, as
    ``evaluate`` records items given (``split`` test or all).
    A data spec's eval.json (eval-DATA-SPLIT.json for data other than the run's own: eval.json keeps the run's
    figures) is reused when it holds this split of these data for these weights, computed with
    ``seed``, with at least ``k`` samples and the first ``limit`` items (or all), and computed again (and
    rewritten) otherwise: an evaluation of earlier weights, another seed's, or a thinner one, is never shown.
    ``seed`` seeds the evaluation and the pictures' draws. A run without a folder is evaluated afresh (nothing
    is written but ``out``) and its curves come from ``run.history``."""
    path = report_path(run, out)
    check_k(k)  # before an eval.json is reused
    with run.writing(), tempfile.TemporaryDirectory() as tmp:  # a folder being written is refused first
        metrics = metrics_file(run, Path(tmp))
        read_metrics(metrics)  # refused before eval.json is written: a metrics.csv that is not vaekit's,
        quality = quality_html(run)  # or a quality.json
        prepared, mode = report_data(run, data, split, limit, (x_key, y_key))
        split = "all" if mode is None and not isinstance(data, Dataset) else split  # the user's items: every one
        own = data is None or (isinstance(data, (str, Path)) and same_spec(str(data), run.config.data.spec))
        where = None if own or mode is None else data_path(str(data))  # whose figures: eval-DATA-SPLIT.json's "path"
        result = evaluation(run, prepared, split, k, limit, mode, seed, spec=mode is not None, own=own, where=where)
        items = getattr(prepared, "test" if split == "all" else split)  # all: every_item_data's test split
        figs = pictures(run, prepared, items, Path(tmp), metrics, seed=seed)
        figs.insert(1, kl_picture(result, Path(tmp) / "kl.png", run.config.model.family))
        rows = rows_section(run, items, split, seed)  # a table's: [] for the others
        page = render(run, result, figs, metrics, quality, rows)
        return atomic_write_text(path, page)


def report_data(
    run: Run, data: object, split: str, limit: int | None = None, keys: Keys = (None, None)
) -> tuple[Dataset, str | None]:
    """(the data, its binarisation mode): a data spec (None: the run's) prepared as in training (split all: its
    first ``limit`` items in file order, binarised once, as the test split of ``every_item_data``, as ``vaekit
    evaluate`` takes them); a vaekit Dataset numbered as the run numbers labels, or the user's items as one test
    split, its first ``limit`` items (``keys``: x_key and y_key of dict items), with mode None (as ``evaluate``)."""
    if keys != (None, None) and (data is None or isinstance(data, (str, Path, Dataset))):
        what = (
            "the run's own data" if data is None else "a vaekit Dataset" if isinstance(data, Dataset) else "a data spec"
        )
        raise VaekitError(f"x_key and y_key name the entries of the dict items of data given; {what} has none")
    if split == "all" and (data is None or isinstance(data, (str, Path))):
        return every_item_data(run, None if data is None else str(data), limit), "none"
    if data is None or isinstance(data, (str, Path)):
        return prepare_data(run.config, None if data is None else str(data), stream=True)
    if isinstance(data, Dataset):  # a signal run's 3-D array, read as grey images (N, 1, C, L): its items (N, C, L)
        shape = tuple(run.config.model.input_shape)
        return as_model_items(numbered_as_run(run, named_labels(run, data)), shape), None
    if split not in ("test", "all"):
        raise VaekitError(f"split {split!r} names one of the run's own splits; items given are evaluated whole")
    given = users_items_for(run, data, keys)  # labels as evaluate reads them; a frame held to the run's columns
    return replace(given, test=head_split(given.test, limit)), None  # split all's first limit items, as a spec's


def report_path(run: Run, out: str | Path | None) -> Path:
    """``out``, or report.html in the run folder; a run without a folder needs ``out``, an .html name."""
    if out is None and run.path is None:
        raise VaekitError("this run has no folder: pass out=... (an .html file) to write its report", key="out")
    path = Path(out) if out is not None else run.folder / files.REPORT
    if path.suffix.lower() != ".html":
        raise VaekitError(f"{path}: expected a .html file name", key="out")
    return path


def metrics_file(run: Run, tmp: Path) -> Path:
    """The run's metrics.csv, or for a run without a folder its ``history`` written as one into ``tmp``."""
    if run.path is None:
        if not run.history:
            raise VaekitError("this run has no folder and no history: its training has no metrics to report")
        write_metrics(tmp, run.history)
        return tmp / files.METRICS
    if not (run.path / files.METRICS).is_file():
        raise VaekitError(f"{run.path}: no {files.METRICS} (was the run trained?)")
    return run.path / files.METRICS


def evaluation(
    run: Run,
    data: Dataset,
    split: str,
    k: int,
    limit: int | None,
    mode: str | None,
    seed: int = 0,
    spec: bool = True,
    own: bool = True,
    where: str | None = None,
) -> dict:
    """eval.json when it is as thorough as asked (see ``write_report``), else ``evaluate`` afresh with ``seed``
    (recorded as "seed"), written to eval.json for a run with a folder; split all is every item (``report_data``),
    another split than all, train, val or test is refused. A data spec other than the run's own (``own`` False)
    has eval-DATA-SPLIT.json instead, as ``vaekit evaluate --data`` writes it: the file of the data at the
    absolute path ``where`` (``eval_path``), reused only where it records that path or none. Data that is no
    data spec (``spec`` False: in memory, named only "data") is evaluated afresh and kept out of both. An
    eval.json reused is the folder's claim, shown as it is: a line says so."""
    items = "test" if split == "all" else split  # all: every_item_data's test split, its limit applied already
    limit = None if split == "all" else limit
    n = len(pick_split(data, items, limit))  # refuses a bad split or limit in one line
    path = None if run.path is None or not spec else eval_path(run.path, data.name, split, own, where)
    saved = {} if path is None else saved_eval(path)  # missing or damaged: computed again
    asked = (split, data.name, run.digest, seed, where)  # a file of no "path": an older vaekit's, or the run's own
    same = (*map(saved.get, ("split", "data", files.DIGEST, "seed")), saved.get("path") or where) == asked
    if same and saved["k"] >= k and saved["n"] >= n:  # no "seed" (an older file): computed again
        note(f"{path}: the folder's figures for these weights, not recomputed (vaekit evaluate {run.path} recomputes)")
        return saved
    result = {**evaluate(run, data, items, k, limit, seed, mode), "split": split, "seed": seed}
    result |= {} if own else {"path": where}
    if run.path is not None and spec:
        write_eval(run, result, own)
    return result
