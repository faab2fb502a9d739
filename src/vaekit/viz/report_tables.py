"""A table run's rows on the report page: rows drawn from the model beside real rows of the split, as HTML tables
in the data's column names, units and categories (a scatter of standardised means shows neither)."""

from __future__ import annotations

import html

import numpy as np
import torch

from ..data import Split
from ..data.table_schema import Column
from ..data.table_times import time_text
from ..data.table_values import unsaid_clips
from ..runs import Run

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
