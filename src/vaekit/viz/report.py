"""The run's report page: one self-contained report.html (config, metrics, curves, pictures; images inlined)."""

from __future__ import annotations

import base64
import csv
import html
import json
import tempfile
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from .. import files
from ..data import Dataset, Split
from ..data.prepare import prepare_data
from ..data.user import users_items
from ..errors import VaekitError
from ..evaluation.labels import numbered_as_run
from ..evaluation.metrics import check_k, evaluate, pick_split, write_eval
from ..evaluation.quality_run import quality_rows, read_quality
from ..evaluation.table_quality import table_quality_lines, table_quality_rows
from ..io import atomic_write_text
from ..runs import Run
from ..training.folder import write_metrics
from .figures import encode_means, interpolate, latent_map, save_interpolation, save_traversal, top_dims, traverse
from .plots import _figure, _save_figure, is_image, plot_losses, save_reconstructions, save_samples, table_columns

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}"""


def two_items(split: Split, same_label: bool = False) -> list[int]:
    """Two items to interpolate between: the first two with different labels (the same, for a conditional
    model, which decodes the path under one label), else 0 and 1."""
    if split.y is not None:
        other = ((split.y == split.y[0]) if same_label else (split.y != split.y[0]))[1:].nonzero() + 1
        if len(other):
            return [0, int(other[0])]
    return [0, 1]


def pictures(
    run: Run, data: Dataset, split: Split, folder: Path, metrics: Path, n_dims: int = 8, seed: int = 0
) -> list[tuple[str, Path]]:
    """Write every picture of the run (its curves from the CSV ``metrics``) into ``folder``, the random draws
    seeded with ``seed``; returns (caption, path) pairs in page order."""
    torch.manual_seed(seed)
    x, y = split.x[:2000], None if split.y is None else split.y[:2000]
    y_in = y if run.model.needs_labels else None
    out = [("Loss, reconstruction and KL per epoch", plot_losses(metrics, folder / "curves.png"))]
    label = 0 if run.model.needs_labels else None
    images = is_image(tuple(x.shape[1:]))
    out.append(
        (
            "Samples from the prior (temperature 1)" + ("" if images else ": the first two columns"),
            save_samples(run.sample(64, 1.0, label), folder / "s.png", columns=table_columns(run)),
        )
    )
    xr = run.reconstruct(x[:32], None if y_in is None else y_in[:32])
    out.append(
        (
            "Inputs (odd rows) above their reconstructions"
            if images
            else "Each value of 32 items against its reconstruction, in standardised units (dashed: equal)",
            save_reconstructions(x[:32], xr, folder / "r.png", columns=table_columns(run)),
        )
    )
    out.append(interpolation_picture(run, split, x, y_in, folder))
    out.append(traversal_picture(run, x, y_in, n_dims, folder))
    out.append(
        (
            "Latent map of the posterior means" + ("" if y is None else ", coloured by label"),
            latent_map(run, x, y, folder / "m.png", classes=data.classes),
        )
    )
    return out


def interpolation_picture(run: Run, split: Split, x: Tensor, y: Tensor | None, folder: Path) -> tuple[str, Path]:
    """(caption, path) of the lerp and slerp paths between two items of x (N, *shape); y (N,) for a conditional
    model, else None."""
    ab = two_items(split, run.model.needs_labels)
    yab = None if y is None else y[ab]
    paths = interpolate(run, x[ab], 10, yab)
    images = is_image(tuple(x.shape[1:]))
    return (
        f"Interpolation between items {ab[0]} and {ab[1]}: lerp (top), slerp (bottom)"
        + (", inputs at the ends" if images else ": each column along the path"),
        save_interpolation(x[ab], paths, folder / "i.png"),
    )


def traversal_picture(run: Run, x: Tensor, y: Tensor | None, n_dims: int, folder: Path) -> tuple[str, Path]:
    """(caption, path) of the traversals of the ``n_dims`` most active dims around item 0's posterior mean; x
    (N, *shape), y (N,) for a conditional model, else None."""
    loc = encode_means(run, x, y)  # (N, D)
    dims = top_dims(loc.var(0), n_dims)
    values = torch.linspace(-3, 3, 9)
    xs = traverse(run, loc[0], dims, values, None if y is None else y[:1])  # (dims, values, *shape)
    images = is_image(tuple(x.shape[1:]))
    return (
        f"Traversals of the most active dims {dims} from -3 to 3 around item 0's posterior mean"
        + (": a row per dim" if images else ": each column as the dim moves"),
        save_traversal(xs, dims, values, folder / "t.png"),
    )


def kl_figure(result: dict, path: Path) -> Path:
    """Bar chart of the KL per latent dimension, one panel per level."""
    levels = result["kl_per_dim"]
    fig, axes = _figure(len(levels), width=max(4.5, 0.25 * max(len(d or ()) for d in levels)), height=3)
    for i, (ax, kl) in enumerate(zip(axes, levels)):
        if kl is None:  # not factorised: the KL of this level is one total (kl_per_level)
            ax.text(0.5, 0.5, "one total KL:\nq(z|x) or p(z) not factorised", ha="center", va="center")
        else:
            ax.bar(range(len(kl)), kl)
        ax.set(title=f"KL per dimension, level {i} (nats)", xlabel="dimension")
    return _save_figure(fig, path)


def _img(path: Path, caption: str) -> str:
    """A <figure> with the PNG inlined; small pixel grids are shown at twice their size."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    width = Image.open(path).size[0]
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


def _fmt(v) -> str:
    if v is None:  # a figure that does not apply (no labels: no probe)
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_fmt(u) for u in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(u)}" for k, u in v.items())
    return str(v)


def eval_rows(result: dict) -> list[dict]:
    """eval.json as (metric, value) rows, without the per-dimension list (it is a figure)."""
    return [{"metric": k, "value": v} for k, v in result.items() if k != "kl_per_dim"]


def quality_html(run: Run) -> list[str]:
    """The sample-quality section from quality.json (``vaekit quality``), when it holds these weights' figures."""
    path = None if run.path is None else run.path / files.QUALITY
    q = {} if path is None else read_quality(path, run.digest)
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
        f"<h2>Sample quality ({html.escape(q['features']['kind'])} features, {q['n']} items per set)</h2>",
        "<p>FID and KID (lower is better), precision and recall (k = 3) against half of the "
        f"{html.escape(q['split'])} split; the yardstick compares its other half.</p>",
        _table(quality_rows(q)),
    ]


def render(run: Run, result: dict, figures: list[tuple[str, Path]], metrics_csv: Path) -> str:
    """The report page as one HTML string."""
    with open(metrics_csv, newline="") as f:
        metrics = list(csv.DictReader(f))
    title = html.escape(f"vaekit run {run.path.name if run.path else '(fitted without a folder)'}")
    where = str(run.path.resolve()) if run.path else "vaekit.fit without out: no run folder"
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>",
        f'<meta name="{files.DIGEST}" content="{run.digest}">',
        f"<style>{CSS}</style></head><body><h1>{title}</h1>",
        f"<p>{html.escape(where)}</p>",
        f"<h2>Evaluation ({html.escape(str(result['split']))} split, K = {result['k']}, seed {result['seed']})</h2>",
        "<p>elbo, rec and kl in nats per item (one pass, analytic KL); nll is the negative "
        "importance-weighted bound with K samples.</p>",
        _table(eval_rows(result)),
        *quality_html(run),
        "<h2>Training metrics</h2>",
        _table(metrics),
        "<h2>Pictures</h2>",
        "".join(_img(p, c) for c, p in figures),
        "<h2>Config</h2>",
        f"<pre>{html.escape(json.dumps(run.config.to_dict(), indent=2))}</pre>",
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
) -> Path:
    """Write report.html (default: in the run folder; a run from ``fit`` without ``out`` needs ``out``).

    ``data`` is what ``vaekit.evaluate`` takes: a data spec (default: the run's data), a vaekit Dataset, or the
    user's items (an array, tensor, (x, y) pair, torch Dataset or DataLoader) evaluated whole (split test).
    A data spec's eval.json is reused when it holds this split of these data for these weights, computed with
    ``seed``, with at least ``k`` samples and the first ``limit`` items (or all), and computed again (and
    rewritten) otherwise: an evaluation of earlier weights, another seed's, or a thinner one, is never shown.
    ``seed`` seeds the evaluation and the pictures' draws. A run without a folder is evaluated afresh (nothing
    is written but ``out``) and its curves come from ``run.history``."""
    path = report_path(run, out)
    check_k(k)  # before an eval.json is reused
    with run.writing(), tempfile.TemporaryDirectory() as tmp:  # a folder being written is refused first
        metrics = metrics_file(run, Path(tmp))
        prepared, mode = report_data(run, data, split)
        result = evaluation(run, prepared, split, k, limit, mode, seed, spec=mode is not None)
        figs = pictures(run, prepared, getattr(prepared, split), Path(tmp), metrics, seed=seed)
        figs.insert(1, ("KL per latent dimension (evaluated split)", kl_figure(result, Path(tmp) / "kl.png")))
        page = render(run, result, figs, metrics)
        return atomic_write_text(path, page)


def report_data(run: Run, data: object, split: str) -> tuple[Dataset, str | None]:
    """(the data, its binarisation mode): a data spec (None: the run's) prepared as in training; a vaekit Dataset
    numbered as the run numbers labels, or the user's items as one test split, with mode None (as ``evaluate``)."""
    if data is None or isinstance(data, (str, Path)):
        return prepare_data(run.config, None if data is None else str(data), stream=True)
    if isinstance(data, Dataset):
        return numbered_as_run(run, data), None
    if split != "test":
        raise VaekitError(f"split {split!r} names one of the run's own splits; items given are evaluated whole")
    return users_items(data, run.model.needs_labels, tuple(run.config.model.input_shape) or None, run.classes), None


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
    run: Run, data: Dataset, split: str, k: int, limit: int | None, mode: str | None, seed: int = 0, spec: bool = True
) -> dict:
    """eval.json when it is as thorough as asked (see ``write_report``), else ``evaluate`` afresh with ``seed``
    (recorded as "seed"), written to eval.json for a run with a folder; a split other than train, val or test
    is refused. Data that is no data spec (``spec`` False: in memory, named only "data") is evaluated afresh and
    kept out of eval.json."""
    n = len(pick_split(data, split, limit))  # refuses a bad split or limit in one line
    saved = {} if run.path is None or not spec else read_json(run.path / files.EVAL)  # missing or damaged: again
    asked = (split, data.name, run.digest, seed)
    same = (saved.get("split"), saved.get("data"), saved.get(files.DIGEST), saved.get("seed")) == asked
    if same and saved.get("k", 0) >= k and saved.get("n", 0) >= n:  # no "seed" (an older file): computed again
        return saved
    result = {**evaluate(run, data, split, k, limit, seed, mode), "seed": seed}
    if run.path is not None and spec:
        write_eval(run, result)
    return result


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or {} when the file is missing, damaged or holds something else."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}
