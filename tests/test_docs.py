"""The docs stay true: every Python block of the README, the tutorial and the guides runs (one epoch per
training), the site builds with --strict and references no network address, the benchmark pages are their JSON,
and the built tutorial page renders in headless Chromium with its images and no console errors."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image

import vaekit
from tools.docs import PAGES, ROOT, python_blocks, run_page

from .test_report import CHROMIUM, DevTools

NETWORK = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import\s+["']?https?:"""
)


IMPORT = re.compile(r"^\s*(?:from|import)\s+(\w+)", re.M)
STORE = re.compile(r"""["']sqlite:///([\w./-]+\.db)["']""")  # an MLflow SQLite store a page makes


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_the_code_of_every_page_runs(page, tmp_path, request):
    blocks = python_blocks(page)
    assert blocks, f"{page.name} has no Python blocks"
    missing = sorted({name for block in blocks for name in IMPORT.findall(block) if find_spec(name) is None})
    if missing:  # make test installs every extra; a machine with fewer (a lent GPU's) skips the page
        pytest.skip(f"{page.name} needs {', '.join(missing)}")
    for db in {db for block in blocks for db in STORE.findall(block)}:  # its migrations (seconds) made once
        (tmp_path / db).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(request.getfixturevalue("empty_store"), tmp_path / db)
    done = run_page(page, tmp_path, quick=True)
    assert done.returncode == 0, done.stderr[-4000:]


def test_the_benchmark_pages_are_the_benchmarks_json():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark_pages.py"), "--check"], cwd=ROOT)
    assert done.returncode == 0, "a page of docs/benchmarks differs from benchmarks/results: run make docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if find_spec("mkdocs") is None or find_spec("material") is None:
        pytest.skip("needs the docs extras (make docs installs them)")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_the_site_builds_strict_and_offline(site):
    files = [p for p in site.rglob("*") if p.suffix in (".html", ".css", ".js")]
    assert (site / "tutorial" / "index.html").is_file() and (site / "api" / "index.html").is_file()
    online = [
        f"{p.relative_to(site)}: {m.group(0)}" for p in files for m in NETWORK.finditer(p.read_text(errors="replace"))
    ]
    assert online == []
    assert "katex" in (site / "tutorial" / "index.html").read_text()  # the maths renders from local files


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_the_tutorial_page_renders_with_its_images(site, tmp_path):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = DevTools(tmp_path / "profile")
    try:
        images = browser.load(f"http://127.0.0.1:{server.server_address[1]}/tutorial/")
        errors = browser.errors()
        shot = browser.screenshot(tmp_path / "tutorial.png")
    finally:
        browser.close()
        server.shutdown()
    assert len(images) >= 5 and all(complete and width > 0 for complete, width, _ in images), images
    assert errors == []
    assert Image.open(shot).size[1] > 3000  # the whole page
    (ROOT / "runs").mkdir(exist_ok=True)
    shot.replace(ROOT / "runs" / "tutorial-screenshot.png")


def test_a_smoke_run_leaves_the_published_results_alone(tmp_path, monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "ROOT", tmp_path)
    for argv, where in ((["bench.py", "--quick"], tmp_path / "runs" / "quick"), (["bench.py"], tmp_path / "results")):
        monkeypatch.setattr(sys, "argv", argv)
        assert common.write("x", "X", "a headline", [{"rows": [[1]]}]) == where / "x.json"
    assert json.loads((tmp_path / "results" / "x.json").read_text())["command"] == "python bench.py"


def test_the_api_page_names_every_public_name():
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"::: vaekit\.[\w.]*\.(\w+)", page)) | set(re.findall(r"`vaekit\.(\w+)`", page))
    assert set(vaekit.__all__) - listed == set()


def test_the_api_page_says_which_entries_are_not_in_vaekit_itself():
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    said = set(re.findall(r"`([\w.]+)`", page.split("\n## ")[0]))  # the names its opening lists
    entries = re.findall(r"^::: vaekit\.([\w.]+)$", page, re.M)
    nested = {e for e in entries if e.rsplit(".", 1)[-1] not in vaekit.__all__}
    assert {e for e in nested if not any(e == n or e.endswith("." + n) for n in said)} == set()
    assert {n for n in said if n in vaekit.__all__} == set()  # none of those it lists is top-level after all
    for name in ("image_grid", "save_png", "save_samples", "save_reconstructions", "decode_mean", "save_traversal"):
        assert any(e.endswith("." + name) for e in entries), name  # the pictures the tutorial draws with
