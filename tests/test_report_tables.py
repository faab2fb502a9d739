"""The report of a table run shows rows drawn from the model beside real rows, as tables in the data's columns;
a conditional run's samples are a row per class, the classes named in order."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.data.prepare import prepare_data
from vaekit.viz import report_pictures
from vaekit.viz.report_tables import cell_text, cell_texts, table_html

from .conftest import tiny_config, train_argv

CATEGORIES = ["x<y", "p&q", "plain"]  # names the page must escape


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> vaekit.Run:
    """A run of 120 rows: rooms (whole), colour (a category), when (a date), price (two decimals)."""
    tmp = tmp_path_factory.mktemp("rows")
    rng = np.random.default_rng(0)
    rooms, price, day = rng.integers(1, 8, 120), rng.uniform(1.2, 9, 120).round(2), rng.integers(1, 28, 120)
    cells = (f"{rooms[i]},{CATEGORIES[i % 3]},2020-03-{day[i]:02d},{price[i]}\n" for i in range(120))
    (tmp / "t.csv").write_text("rooms,colour,when,price\n" + "".join(cells))
    return vaekit.load_run(vaekit.train(tiny_config(str(tmp / "t.csv"), tmp / "run", epochs=1), pictures=False).path)


def section_tables(page: str) -> list[list[list[str]]]:
    """The rows section's tables, each as its rows of cells (the header row first)."""
    section = page[page.index("<h2>Rows: drawn and real</h2>") : page.index("<h2>Pictures</h2>")]
    tables = re.findall(r"<table>(.*?)</table>", section)
    return [[re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", t)] for t in tables]


def test_a_table_reports_drawn_rows_beside_real_ones_in_the_datas_columns(table_run, tmp_path):
    page = vaekit.write_report(table_run, k=2, limit=20, seed=3, out=tmp_path / "r.html").read_text()
    drawn, real = section_tables(page)
    assert drawn[0] == real[0] == ["rooms", "colour", "when", "price"] and len(drawn) == len(real) == 11
    torch.manual_seed(3)
    rows = table_run.sample_table(10)  # draws from p(x|z), not its means: the page's rows are these
    assert [r[0] for r in drawn[1:]] == [str(v) for v in rows["rooms"]]
    assert [r[3] for r in drawn[1:]] == [f"{v:.2f}" for v in rows["price"]]
    assert all(re.fullmatch(r"2020-03-\d\d", r[2]) for r in drawn[1:] + real[1:])
    escaped = {"x&lt;y", "p&amp;q", "plain"}
    assert {r[1] for r in drawn[1:] + real[1:]} <= escaped and "<td>x<y" not in page
    x = prepare_data(table_run.config, None)[0].test.x[:10]
    assert [r[3] for r in real[1:]] == [f"{v:.2f}" for v in table_run.table_rows(x)["price"]]
    caption = re.search(r"<figcaption>(Decoded means of p\(x\|z\), standardised.*?)</figcaption>", page)
    assert caption and "not draws" in caption.group(1)


def test_cells_keep_the_columns_decimals_units_and_gaps(table_run):
    assert [cell_text(v, 2) for v in (3.0, 2.5, np.nan)] == ["3.00", "2.50", ""]
    assert [cell_text(v) for v in (4.0, 1 / 3, None, "a")] == ["4", "0.333333", "", "a"]
    price = next(c for c in table_run.table.columns if c.name == "price")
    price.unit = "$"
    assert "<th>price ($)</th>" in table_html({"price": np.array([1.5])}, [price])
    assert cell_texts(np.array([1.5, 2.0]), price) == ["1.50", "2.00"]
    assert table_html({"a": np.array([])}, []) == "<p>(none)</p>"


def test_a_conditional_reports_samples_a_row_per_class_capped_and_named(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 60)]  # the run's class names
    np.savez(tmp_path / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=y)
    argv = train_argv(tmp_path / "img.npz", tmp_path / "run", "--model", "cvae", "--hidden", "8", "--latent-dim", "2")
    assert main(argv) == 0
    run = vaekit.load_run(tmp_path / "run")
    page = vaekit.write_report(run, k=2, limit=20).read_text()
    said = "a row per class, top to bottom: class &#x27;cat&#x27;, class &#x27;dog&#x27;, class &#x27;eel&#x27;"
    assert said in page and "all drawn for" not in page
    data, sample, asked = prepare_data(run.config, None)[0], vaekit.Run.sample, []
    monkeypatch.setattr(vaekit.Run, "sample", lambda run, n, t, y: asked.append(y) or sample(run, n, t, y))
    for rows, end in ((3, "'dog', class 'eel'"), (2, "'dog' (the first 2 of 3 classes)")):
        monkeypatch.setattr(report_pictures, "CLASS_ROWS", rows)  # 2: fewer rows than classes
        caption, path = report_pictures.samples_picture(run, data, True, tmp_path)
        assert caption.endswith(": class 'cat', class " + end)
        width, height = Image.open(path).size
        zoom = ((width - 2) / 8 - 2) / 11  # 8 tiles of 11 * zoom pixels a row, 2 pixels apart
        assert (height - 2) / (9 * zoom + 2) == rows
        assert asked.pop().tolist() == [k for k in range(rows) for _ in range(8)]  # 8 of each class in turn
