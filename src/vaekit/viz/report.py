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
from ..evaluation.eval_files import data_path, data_stamp, eval_path, saved_eval
from ..evaluation.eval_items import Keys, named_labels, users_items_for
from ..evaluation.labels import numbered_as_run
from ..evaluation.metrics import check_k, evaluate, pick_split, write_eval
from ..evaluation.outputs import every_item_data, note_changed_data, seeded_subset
from ..io import atomic_write_text
from ..runs import Run
from ..training.metrics_file import write_metrics
from .curves import read_metrics
from .report_pictures import eval_caption, kl_picture, pictures, training_line
from .report_tables import _table, metrics_rows, quality_html, rows_section
from .report_tables import eval_rows as eval_rows

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
        f"<div class='wide'>{_table(metrics_rows(metrics))}</div>",  # as wide as its columns: scrolled, not cut off
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
    k: int | None = None,
    limit: int | None = 1000,
    out: str | Path | None = None,
    seed: int = 0,
    x_key: str | None = None,
    y_key: str | None = None,
) -> Path:
    """Write report.html (default: in the run folder; a run from ``fit`` without ``out`` needs ``out``); of data
    other than the run's own, report-DATA-SPLIT.html there, named as its eval-DATA-SPLIT.json (``eval_path``).

    ``data`` is what ``vaekit.evaluate`` takes: a data spec (default: the run's data), a vaekit Dataset, or the
    user's items (an array, tensor, (x, y) pair, torch Dataset or DataLoader; a dict item's entries ``x_key``
    and ``y_key``, as ``fit`` takes them) evaluated whole: their first ``limit``, recorded as split all, as
    ``evaluate`` records items given (``split`` test or all).
    A data spec's eval.json (eval-DATA-SPLIT.json for data other than the run's own: eval.json keeps the run's
    figures) is shown as it is when it holds this split of these data for these weights (the user's figures, of
    their K, items and seed, which the page states); with ``k`` given, only where it holds at least ``k`` samples,
    the first ``limit`` items (or all) and ``seed``. Else it is computed (with ``k`` samples, default
    ``REPORT_K``, the first ``limit`` items or all, and ``seed``) and written: earlier weights' are never shown.
    ``seed`` seeds that evaluation and the pictures' draws; split all of a data file draws the pictures' items at
    random from every item (``seeded_subset``, at most ``limit``), not its first in file order. A run without a
    folder is evaluated afresh (nothing is written but ``out``) and its curves come from ``run.history``."""
    path = report_path(run, out)
    check_k(REPORT_K if k is None else k)  # before an eval.json is reused
    with run.writing(), tempfile.TemporaryDirectory() as tmp:  # a folder being written is refused first
        metrics = metrics_file(run, Path(tmp))
        read_metrics(metrics)  # refused before eval.json is written: a metrics.csv that is not vaekit's,
        quality = quality_html(run)  # or a quality.json
        on_file = split == "all" and (data is None or isinstance(data, (str, Path)))  # every item of a file
        prepared, mode = report_data(run, data, split, None if on_file else limit, (x_key, y_key))
        every = prepared.test  # a file's every item: pictures of a seeded subset, not the first in file order
        prepared = replace(prepared, test=head_split(every, limit)) if on_file else prepared
        split = "all" if mode is None and not isinstance(data, Dataset) else split  # the user's items: every one
        own = data is None or (isinstance(data, (str, Path)) and same_spec(str(data), run.config.data.spec))
        where = None if own or mode is None else data_path(str(data))  # whose figures: eval-DATA-SPLIT.json's "path"
        if out is None and not own:  # other data's page beside its figures: report-DATA-SPLIT.html
            named = eval_path(run.folder, prepared.name, split, False, where).name
            path = run.folder / f"report-{named.removeprefix('eval-').removesuffix('.json')}.html"
        result = evaluation(run, prepared, split, k, limit, mode, seed, spec=mode is not None, own=own, where=where)
        items = getattr(prepared, "test" if split == "all" else split)  # all: every_item_data's test split
        rows = rows_section(run, items, split, seed)  # a table's first rows: [] for the others
        shown = seeded_subset(every, min(limit or PICTURED, PICTURED), seed) if on_file else items
        figs = pictures(run, prepared, shown, Path(tmp), metrics, seed=seed)
        figs.insert(1, kl_picture(result, Path(tmp) / "kl.png", run.config.model.family))
        said = f"The pictures draw on {len(shown)} of the {len(every)} items, picked at random (seed {seed}), not"
        figs[:0] = [(said + " the first in file order", None)] if on_file and len(shown) < len(every) else []
        page = render(run, result, figs, metrics, quality, rows)
        return atomic_write_text(path, page)


REPORT_K = 100  # importance samples of a report's own evaluation where no eval.json is shown
PICTURED = 2000  # items the pictures draw on at most (a latent map's points)


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
        prepared = prepare_data(run.config, None if data is None else str(data), stream=True)
        if data is None or same_spec(str(data), run.config.data.spec):  # its own: changed since training?
            note_changed_data(run, prepared[0])
        return prepared
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
    k: int | None,
    limit: int | None,
    mode: str | None,
    seed: int = 0,
    spec: bool = True,
    own: bool = True,
    where: str | None = None,
) -> dict:
    """eval.json when it holds these weights' figures (see ``write_report``), else ``evaluate`` afresh with ``seed``
    (recorded as "seed"), written to eval.json for a run with a folder; split all is every item (``report_data``),
    another split than all, train, val or test is refused. A data spec other than the run's own (``own`` False)
    has eval-DATA-SPLIT.json instead, as ``vaekit evaluate --data`` writes it: the file of the data at the
    absolute path ``where`` (``eval_path``), reused only where it records that path or none. Data that is no
    data spec (``spec`` False: in memory, named only "data") is evaluated afresh and kept out of both. An
    eval.json reused is the folder's claim, shown as it is: a line says so. A file of data on disk is reused only
    while it records the data's ``data_stamp`` as it is now; one rewritten that held these weights' figures says
    what it held (``note_replaced``)."""
    items = "test" if split == "all" else split  # all: every_item_data's test split, its limit applied already
    limit = None if split == "all" else limit
    n = len(pick_split(data, items, limit))  # refuses a bad split or limit in one line
    path = None if run.path is None or not spec else eval_path(run.path, data.name, split, own, where)
    saved = {} if path is None else saved_eval(path)  # missing or damaged: computed again
    stamp = data_stamp(run.config.data.spec if own else where) if spec else None  # the data as it is now
    asked = (split, data.name, run.digest, where, stamp)  # a file of no "path": older, or the run's own
    keys = ("split", "data", files.DIGEST)  # a file with no "data_stamp" (older) is taken as of this data
    same = (*map(saved.get, keys), saved.get("path") or where, saved.get("data_stamp", stamp)) == asked
    dated = not same or "seed" not in saved  # no "seed": an older file, computed again
    if not dated and (k is None or (saved["k"] >= k and saved["n"] >= n and saved["seed"] == seed)):  # page: which
        what = f"K = {saved['k']}, {saved['n']} items, seed {saved['seed']}"  # the user's, maybe not k, n and seed
        note(
            f"{path}: the folder's figures for these weights ({what}), shown as they are, not recomputed "
            f"(vaekit evaluate {run.path}{'' if own and split == 'test' else f' of {data.name}, split {split},'} "
            "recomputes)"
        )
        return saved
    k = REPORT_K if k is None else k
    result = {**evaluate(run, data, items, k, limit, seed, mode), "split": split, "seed": seed}
    result |= ({} if own else {"path": where}) | {"data_stamp": stamp}
    if run.path is not None and spec:
        note_replaced(path, saved, run.digest, stamp)
        write_eval(run, result, own)
    return result


def note_replaced(path: Path | None, saved: dict, digest: str, stamp: list[int] | None) -> None:
    """One line on stderr where the evaluation file at ``path`` that is about to be rewritten held figures of
    these weights (``saved``: of another split, seed, fewer K or items, or of the data before it changed): what it
    held."""
    if path is None or saved.get(files.DIGEST) != digest:  # none, or of earlier weights: nothing of these lost
        return
    held = f"split {saved.get('split')}, K = {saved.get('k')}, n = {saved.get('n')}, seed {saved.get('seed')}"
    changed = ", of the data as it was before it changed" if saved.get("data_stamp", stamp) != stamp else ""
    note(f"{path}: replacing its figures of these weights ({held}{changed}) with this evaluation's")
