"""The report page's tables (the evaluation's, the training metrics', the sample quality's, each number to fixed
places) and the evaluation's caption; a table run's rows: rows drawn from the model beside real rows of the split,
as HTML tables in the data's column names, units and categories (a scatter of standardised means shows neither)."""

from __future__ import annotations

import html

import numpy as np
import torch

from .. import files
from ..data import Split
from ..data.photos import note
from ..data.table_schema import Column
from ..data.table_times import time_text
from ..data.table_values import unsaid_clips
from ..errors import VaekitError
from ..evaluation.features import class_accuracy_line
from ..evaluation.quality_run import quality_rows, read_quality
from ..evaluation.table_quality import table_quality_lines, table_quality_rows
from ..runs import Run
from .plots import is_image

ROWS = 10  # rows drawn, and real rows shown beside them


def rows_section(run: Run, split: Split, split_name: str, seed: int = 0, n: int = ROWS) -> list[str]:
    """The HTML of ``n`` rows drawn from a table run (``Run.sample_table``: z from the prior, x drawn from p(x|z) at
    temperature 1, seeded with ``seed``) beside the first ``n`` rows of ``split`` (``Run.table_rows``, with their
    labels for a conditional run), each cell escaped; [] for a run that was not trained on a table."""
    if run.table is None:
        return []
    torch.manual_seed(seed)
    with unsaid_clips():  # shares of values clipped in 10 rows mean nothing (one is 10%): no note
        drawn = run.sample_table(n)  # a conditional run's: of every class in turn, its label column named
    x, y = split.x[:n], None if split.y is None else split.y[:n]
    real = run.table_rows(x, y if run.model.needs_labels else None) if len(x) else {}
    classes = ", of every class in turn" if run.model.needs_labels else ""
    said = (
        f"{n} rows drawn from the model{classes}: z from the prior, then x drawn from p(x|z) (temperature 1; numbers "
        "clipped to each column's training range and rounded to its decimals, as vaekit sample --out rows.csv "
        "writes them)",
        f"The first {len(x)} rows of the {split_name} split, decoded from the items the model reads (a number "
        "beyond the training range clipped to it, as in the drawn rows)",
    )
    cells = [table_html(rows, run.table.columns) for rows in (drawn, real)]
    boxes = "".join(
        f"<div style='flex:1 1 22em;min-width:0;overflow-x:auto'><p>{html.escape(s)}</p>{t}</div>"
        for s, t in zip(said, cells)
    )
    return [
        "<h2>Rows: drawn and real</h2>",
        "<p>In the data's columns, units and categories; the Samples picture below shows only the means of p(x|z) "
        "of two columns, standardised.</p>",
        f"<div style='display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start'>{boxes}</div>",
    ]


def table_html(rows: dict[str, np.ndarray], columns: list[Column]) -> str:
    """Rows {column: (N,) values} as an HTML table, a header cell per column (its unit beside its name), each cell
    as ``cell_texts`` writes it, all escaped."""
    if not rows or not len(next(iter(rows.values()))):
        return "<p>(none)</p>"
    known = {c.name: c for c in columns}
    head = "".join(f"<th>{html.escape(header(name, known.get(name)))}</th>" for name in rows)
    texts = [cell_texts(np.asarray(v), known.get(k)) for k, v in rows.items()]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(t)}</td>" for t in row) + "</tr>" for row in zip(*texts))
    return f"<table><tr>{head}</tr>{body}</table>"


def header(name: str, c: Column | None) -> str:
    """A column's header: its name, with its unit sign ($, %) where its cells carried one."""
    return f"{name} ({c.unit})" if c is not None and c.unit else str(name)


def cell_texts(values: np.ndarray, c: Column | None) -> list[str]:
    """A column's values (N,) as the page shows them: dates and times in the file's format, numbers to the
    column's decimals (whole ones without ".0", others to 6 significant digits), categories by name; a gap empty."""
    if c is not None and c.time and values.dtype.kind == "M":
        return [str(t) for t in time_text(values, c.time)]
    return [cell_text(v, None if c is None else c.decimals) for v in values.tolist()]


def cell_text(v: object, decimals: int | None = None) -> str:
    """One value as a cell: a float to ``decimals`` places (None: whole without ".0", else 6 significant digits),
    a gap (NaN, None) empty, anything else as str writes it."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float):
        if decimals is not None:
            return f"{v:.{decimals}f}"
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else f"{v:.6g}"
    return str(v)


def _table(rows: list[dict], places: dict[str, int] | None = None, default: int | None = None) -> str:
    """An HTML table of dicts with the same keys, a column's floats to its ``places`` (else ``default``) decimals."""
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    cells = ((_fmt(v, (places or {}).get(k, default)) for k, v in r.items()) for r in rows)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><tr>{head}</tr>{body}</table>"


WHOLE = ("epoch", "skipped_steps", "best_epoch")  # metrics.csv's counts; lr to 4 significant digits; beta to 4


def metrics_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """metrics.csv's rows (text, as the CSV holds them) as the page shows them: counts whole, lr to 4 significant
    digits, beta to 4 decimals, the rest (nats, seconds, items per second) to 2; a cell that is no number as it is."""
    return [{k: _metric_cell(k, v) for k, v in r.items()} for r in rows]


def _metric_cell(key: str, text: str | None) -> str:
    try:
        v = float(text or "")
    except ValueError:
        return text or ""
    if key in WHOLE and v.is_integer():
        return str(int(v))
    return f"{v:.4g}" if key == "lr" else _fmt(v, 4 if key == "beta" else 2)


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
EVAL_KEYS += ("bits_per_dim", "active_units", "codes_used", "codebook_size", "codebook_perplexity")  # in order
EVAL_KEYS += ("probe_accuracy", "elbo_passes", "seconds", files.DIGEST)  # codes_used...: a codebook's (VQ) only
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
    elif files.QUALITY in run.stale_files():  # of earlier weights: left out, and said so
        said = f"of earlier weights than these, left out: vaekit quality {run.path} measures these"
        note(f"{path}: {said}")
        return [f"<h2>Sample quality</h2><p>{html.escape(files.QUALITY)}: {html.escape(said)}</p>"]
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
        f"<p>{html.escape(drawn_line(q))}</p>",
        _table(quality_rows(q), {"fid": 2}, 4),  # KID, precision and recall: 4 decimals
        *(f"<p>{html.escape(line)}</p>" for line in [q.get("fid_caveat"), class_accuracy_line(q)] if line),
    ]


def drawn_line(q: dict) -> str:
    """How quality.json ``q``'s samples were drawn: the prior's temperature, each sampler's settings."""
    t = q.get("temperature", 1.0)  # a file from before it was recorded: 1
    said = f"The prior's samples are drawn at temperature {_fmt(t, 2)}"
    for name, stamp in (q.get("samplers") or {}).items():
        settings = stamp.get("settings") if isinstance(stamp, dict) else None
        said += f"; sampler {name}'s settings: {_fmt(settings) if isinstance(settings, dict) else 'not recorded'}"
    return said + "."


def eval_caption(run: Run, result: dict) -> str:
    """The evaluation table's caption: what its figures mean for this run's family, posterior, prior, likelihood
    and data (``result``: its eval.json)."""
    m, levels = run.config.model, result.get("kl_per_dim") or []
    said = ["elbo, rec and kl in nats per item, one pass"]
    if m.family == "vq":
        said.append(
            "kl is -log p(codes) under the PixelCNN prior fitted after training (the curves' KL is training's, under"
            " a uniform prior: log K per code position), and nll equals -elbo for every K (q(z|x) is one point)"
        )
    elif m.family == "gumbel":
        said.append("kl is the analytic KL of the categorical q(z|x) to the uniform p(z)")
    else:
        one = None in levels  # a level with no closed-form KL: kl_term's one-sample estimate
        said.append("kl is a one-sample estimate log q(z|x) - log p(z) (" if one else "kl is analytic")
        said[-1] += "no closed form for a flow posterior, a mixture, VampPrior or flow prior)" if one else ""
    if m.family != "vq":
        said.append("nll is the negative importance-weighted bound with K samples")
    if run.model.needs_labels:
        said.append("nll is -log p(x|y), the labels given; probe_accuracy reads codes encoded with the labels")
    if m.likelihood == "bernoulli" and result.get("grey", run.config.data.binarize == "none"):  # some not 0/1
        said.append(
            "a Bernoulli p(x|z) scores items that are not 0 or 1 by cross-entropy: nll and bits_per_dim "
            "are then no negative log-likelihood"
        )
    if not is_image(tuple(m.input_shape)):
        said.append(
            "a table's bits_per_dim is a density's nll per column: not comparable with images', and it can be negative"
        )
    elif m.likelihood in ("gaussian", "cbernoulli"):  # a density on [0, 1]: beside 8-bit data's discrete bits/dim
        said.append(
            f"a {m.likelihood} p(x|z) is a density of values in [0, 1], so nll and bits_per_dim can be negative; "
            "beside the discrete bits/dim of 8-bit data add 8 bits per dimension (and dequantise the data)"
        )
    if len(levels) > 1:
        said.append(
            "kl_per_level and active_units' per_level run from the top level z_L down to z_1 next to the data "
            "(metrics.csv's val_kl_1 is z_1)"
        )
    return "; ".join(said) + "."
