"""report.html: self-contained, and rendered in headless Chromium with every image loaded and no console errors."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.data.prepare import prepare_data
from vaekit.errors import VaekitError
from vaekit.evaluation.metrics import encode_means
from vaekit.viz.figures import decode_mean, top_dims, traversals
from vaekit.viz.report import eval_rows, quality_html

from .conftest import train_argv

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]
CHECK = "JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.alt]))"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """report.html of a tiny labelled run (60 9x11 images, 3-D latents)."""
    tmp = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    np.savez(tmp / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=rng.integers(0, 3, 60))
    run = tmp / "run"
    assert main(train_argv(tmp / "img.npz", run, "--model", "mlp", "--hidden", "16", "--latent-dim", "3")) == 0
    assert main(["report", str(run), "--iw-samples", "20"]) == 0
    return run / "report.html"


def test_report_is_one_self_contained_file(report):
    page = report.read_text()
    srcs = re.findall(r'<img src="([^"]*)"', page)
    assert len(srcs) == 7 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page
    assert json.loads((report.parent / "eval.json").read_text())["k"] == 20
    for needle in ("Evaluation", "Training metrics", "Config", "nll", "active_units", "probe_accuracy"):
        assert needle in page, needle


def test_report_reuses_an_evaluation_only_as_thorough_as_asked(report):
    run, saved = report.parent, lambda: json.loads((report.parent / "eval.json").read_text())["k"]
    assert main(["report", str(run), "--iw-samples", "10"]) == 0 and saved() == 20  # K = 20 is enough
    assert main(["report", str(run), "--iw-samples", "30"]) == 0 and saved() == 30  # it is not: evaluated again
    assert main(["report", str(run), "--seed", "3", "--limit", "5000"]) == 0 and saved() == 30  # no K: the folder's


def test_a_report_on_other_data_keeps_eval_json_and_names_the_data_of_each_section(report, tmp_path):
    run, other = report.parent, tmp_path / "other.npy"
    np.save(other, np.random.default_rng(2).random((60, 9, 11), dtype=np.float32))
    own, digest = (run / "eval.json").read_text(), vaekit.load_run(run).digest
    q = {"vaekit_weights_sha256": digest, "data": "img.npz", "split": "test", "n": 40, "seed": 0}
    q |= {"features": {"kind": "domain"}, "data_vs_data": {"fid": 1.0}, "samples": {"prior": {"fid": 2.0}}}
    (run / "quality.json").write_text(json.dumps(q))
    try:
        argv = ["report", str(run), "--data", str(other), "--iw-samples", "5", "--out", str(tmp_path / "r.html")]
        assert main(argv) == 0
    finally:
        (run / "quality.json").unlink()
    page = " ".join((tmp_path / "r.html").read_text().split())
    assert (run / "eval.json").read_text() == own and (run / "eval-other.npy-all.json").is_file()
    assert "Evaluation (other.npy, all split" in page and "test split of img.npz, the data vaekit quality" in page


@pytest.fixture(scope="module")
def runs(report) -> dict:
    """The report's run (D = 3) and an untrained folderless one of D = 2 on the same (1, 9, 11) items, with
    those items' x (60, 1, 9, 11) and y (60,) as numpy arrays."""
    model = vaekit.build_model(input_shape=[1, 9, 11], hidden=[8], latent_dim=2, likelihood="bernoulli")
    run = vaekit.load_run(report.parent)
    data = np.load(report.parent.parent / "img.npz")
    return {"d3": run, "d2": vaekit.Run(None, run.config, model.eval()), "x": data["x"][:, None], "y": data["y"]}


@pytest.mark.parametrize("kind", [torch.tensor, np.array, list])
def test_traverse_takes_tensors_arrays_and_lists(runs, kind):
    z, values = [0.5, -1.0, 0.0], [-2.0, 0.0, 2.0]
    xs = vaekit.traverse(runs["d3"], kind(z), [0, 2], kind(values))  # (dims, values, 1, 9, 11)
    assert xs.shape == (2, 3, 1, 9, 11)
    assert torch.allclose(xs[1, 2], decode_mean(runs["d3"], torch.tensor([[0.5, -1.0, 2.0]]))[0])  # z[2] = 2


@pytest.mark.parametrize(
    "z, dims, values, match",
    [
        (np.zeros(5), [0], [1.0], r"z has shape \(5,\): expected \(D,\) = \(3,\)"),
        (torch.zeros(1, 3), [1], [1.0], r"z has shape \(1, 3\): expected \(D,\) = \(3,\)"),
        (torch.zeros(3), [0], [[1.0, 2.0]], r"values has shape \(1, 2\): expected \(V,\)"),
        (torch.zeros(3), [3], [1.0], r"dims \[3\]: expected latent dimensions in 0\.\.2"),
    ],
)
def test_traverse_refuses_wrong_shapes_in_one_line(runs, z, dims, values, match):
    with pytest.raises(VaekitError, match=match):
        vaekit.traverse(runs["d3"], z, dims, values)


def test_the_manifold_decodes_the_prior_quantiles_of_2d_codes_only(runs):
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.05, 0.95]))
    xs = vaekit.manifold(runs["d2"], grid=3)  # top left: low z[0], high z[1]
    assert xs.shape == (9, 1, 9, 11) and torch.allclose(xs[0], decode_mean(runs["d2"], q[None])[0])
    with pytest.raises(VaekitError, match="the manifold decodes 2-D codes; this run's latent size is 3"):
        vaekit.manifold(runs["d3"], grid=3)


@pytest.mark.parametrize("d", ["d2", "d3"])
@pytest.mark.parametrize(
    "name, grid, match",
    [("m.png", 3, None), ("m.png", 1, r"grid must be a whole number >= 2"), ("m.txt", 3, r"m.txt: expected a .png")],
)
def test_latent_map_takes_numpy_labels_and_refuses_what_the_cli_refuses(runs, tmp_path, d, name, grid, match):
    grid = grid if d == "d2" or grid != 3 else 15  # a changed grid is refused for codes not 2-D (its own line)
    with pytest.raises(VaekitError, match=match) if match else contextlib.nullcontext():
        vaekit.latent_map(runs[d], runs["x"][:20], runs["y"][:20], tmp_path / name, grid=grid)
    assert (tmp_path / name).exists() == (match is None)
    assert match or Image.open(tmp_path / name).format == "PNG"


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"split": "bogus"}, r"split 'bogus': expected train, val or test"),
        ({"k": 0}, r"k must be > 0, got 0"),  # eval.json (K = 20 or more) would serve a report of any K
        ({"out": "r.txt"}, r"r.txt: expected a .html file name"),
    ],
)
def test_write_report_refuses_bad_settings_in_one_line(runs, settings, match):
    assert (runs["d3"].folder / "eval.json").is_file()
    with pytest.raises(VaekitError, match=match):
        vaekit.write_report(runs["d3"], **settings)


def test_a_run_fitted_without_a_folder_writes_its_report_to_out_only(runs, report, tmp_path):
    model = copy.deepcopy(runs["d2"].model)
    run = vaekit.fit(model, (runs["x"], runs["y"]), epochs=2, pictures=False, progress=False)
    spec = str(report.parent.parent / "img.npz")
    with pytest.raises(VaekitError, match=r"this run has no folder: pass out="):
        vaekit.write_report(run, spec, k=5)
    page = vaekit.write_report(run, spec, k=5, limit=20, out=tmp_path / "r.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 7 and "K = 5" in page
    assert "<th>epoch</th>" in page and "<tr><td>2</td>" in page  # the training metrics of both epochs
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_curves_record_the_weights_digest_and_refuse_an_empty_out(report, capsys):
    assert main(["curves", str(report.parent)]) == 0
    assert main(["curves", str(report.parent), "--out", " "]) == 2  # it wrote RUN/curves.png
    assert "--out is empty: name a file, or leave --out out for RUN/curves.png" in capsys.readouterr().err
    assert "curves.png" not in vaekit.load_run(report.parent).stale_files()


def test_report_seed_reaches_its_evaluation_and_pictures(report, tmp_path):
    run, saved = str(report.parent), lambda: json.loads((report.parent / "eval.json").read_text())
    seven = vaekit.evaluate(vaekit.load_run(run), k=20, seed=7)

    def report_with(seed: int) -> tuple[dict, str]:  # eval.json after the report, and the samples picture
        assert main(["report", run, "--seed", str(seed), "--iw-samples", "20", "--out", str(tmp_path / "r.html")]) == 0
        return saved(), re.findall(r'<img src="([^"]*)"', (tmp_path / "r.html").read_text())[2]

    zero, samples0 = report_with(0)
    again, samples7 = report_with(7)  # seed 0's eval.json is not reused
    assert (zero["seed"], again["seed"]) == (0, 7) and zero["nll"] != again["nll"]
    assert (again["nll"], again["elbo"]) == (seven["nll"], seven["elbo"])
    assert samples7 != samples0 and report_with(7) == (again, samples7)  # reused as it is; the same draws


@pytest.mark.parametrize("content", [{}, {"data_vs_data": 3}, {"kind": "table"}])
def test_a_quality_json_of_these_weights_not_whole_is_refused_in_one_line(runs, content):
    run = runs["d3"]
    (run.folder / "quality.json").write_text(json.dumps({"vaekit_weights_sha256": run.digest, **content}))
    try:
        with pytest.raises(VaekitError, match=r"quality.json: not a whole vaekit quality.json \(\w+: .*\); run"):
            quality_html(run)
    finally:
        (run.folder / "quality.json").unlink()


def test_traversals_rank_the_first_items_and_start_from_any_item(runs):
    run, x = runs["d3"], torch.as_tensor(runs["x"][:10])
    xs, dims, values = traversals(run, x, n_dims=2, item=7, rank_on=4)
    assert dims == top_dims(encode_means(run, x[:4]).var(0), 2)
    assert torch.allclose(xs, vaekit.traverse(run, encode_means(run, x[7:8])[0], dims, values))


def test_traverse_takes_any_item_of_a_split_beyond_the_2000_ranked(report, tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.random.default_rng(1).random((2600, 9, 11), dtype=np.float32))
    argv = ["traverse", str(report.parent), "--data", str(tmp_path / "big.npy"), "--split", "train", "--n-dims", "2"]
    assert main([*argv, "--item", "2070", "--out", str(tmp_path / "t.png")]) == 0
    assert main([*argv, "--item", "2600"]) == 2 and "expected an index in 0..2079 (--item)" in capsys.readouterr().err


def test_report_help_says_when_eval_json_is_reused_without_pointing_elsewhere(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "above" not in out and "when it holds these weights, data and split: of any K, items and" in out


@pytest.mark.parametrize(
    "metric, value, shown",
    [
        ("elbo", -17883.2, "-17883.20"),
        ("nll", 1705.66, "1705.66"),
        ("kl", 0.117597, "0.12"),
        ("bits_per_dim", 3.01891, "3.0189"),
    ],
)
def test_eval_figures_are_fixed_point_to_compare_runs(metric, value, shown):
    assert eval_rows({metric: value}) == [{"metric": metric, "value": shown}]  # not -1.788e+04, 1706


def test_a_conditional_reports_captions_name_the_class_drawn(tmp_path):
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "eel"])
    np.savez(tmp_path / "img.npz", x=rng.random((60, 9, 11)).astype(np.float32), y=names[rng.integers(0, 3, 60)])
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "img.npz", run, "--model", "cvae", "--hidden", "8", "--latent-dim", "2")) == 0
    loaded = vaekit.load_run(run)
    page = vaekit.write_report(loaded, k=2, limit=20).read_text()
    caps = dict(re.findall(r"<figcaption>(\w+)(.*?)</figcaption>", page))
    label = int(prepare_data(loaded.config, None)[0].test.y[0])  # item 0 of the test split
    assert "a row per class, top to bottom: class &#x27;cat&#x27;, class &#x27;dog&#x27;" in caps["Samples"]
    assert f"decoded for item 0&#x27;s class &#x27;{['cat', 'dog', 'eel'][label]}&#x27;" in caps["Traversals"]


class DevTools:
    """Headless Chromium driven over --remote-debugging-pipe (NUL-separated JSON on fds 3 and 4): stdlib only."""

    def __init__(self, user_dir: Path):
        self.to_chrome, theirs_in = os.pipe()[::-1]
        self.from_chrome, theirs_out = os.pipe()

        def fds() -> None:  # chromium reads commands from fd 3 and writes replies to fd 4
            os.dup2(theirs_in, 3)
            os.dup2(theirs_out, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={user_dir}", "about:blank"],
            preexec_fn=fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(theirs_in), os.close(theirs_out)
        self.ids, self.buf, self.events, self.session = 0, b"", [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            if not select.select([self.from_chrome], [], [], max(0.0, deadline - time.time()))[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        """Send one command and wait for its reply, keeping the events that arrive meanwhile."""
        self.ids += 1
        msg = {"id": self.ids, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while (reply := self._read(deadline)).get("id") != self.ids:
            self.events.append(reply)
        assert "error" not in reply, reply
        return reply["result"]

    def load(self, url: str, timeout: float = 30) -> list[list]:
        """Open ``url``, wait for its load event; returns [complete, naturalWidth, alt] for every <img>."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read(deadline))
        return json.loads(self.call("Runtime.evaluate", expression=CHECK, returnByValue=True)["result"]["value"])

    def errors(self) -> list[dict]:
        """Console errors, uncaught exceptions and failed loads seen since the last ``load``."""
        bad = {"Runtime.exceptionThrown"}
        return [
            e
            for e in self.events
            if e.get("method") in bad
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the viewport) as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)["data"]
        import base64

        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, EOFError, AssertionError):
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.to_chrome), os.close(self.from_chrome)


def check_page(html: Path, screenshot: Path, user_dir: Path) -> tuple[list, list]:
    """Render ``html`` in headless Chromium: (images as [complete, naturalWidth, alt], console errors)."""
    browser = DevTools(user_dir)
    try:
        images = browser.load(html.resolve().as_uri())
        errors = browser.errors()
        browser.screenshot(screenshot)
    finally:
        browser.close()
    return images, errors


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_chromium_with_every_image_and_no_errors(report, tmp_path):
    shot = tmp_path / "report.png"
    images, errors = check_page(report, shot, tmp_path / "profile")
    assert len(images) == 7 and all(complete and width > 0 for complete, width, _ in images), images
    assert errors == []
    w, h = Image.open(shot).size
    assert w >= 700 and h > 2000  # the whole page, not one screen (its tables scroll within it)
    runs = Path(__file__).resolve().parents[1] / "runs"
    runs.mkdir(exist_ok=True)
    shutil.copy(shot, runs / "report-screenshot.png")
    # the checker is not vacuous: a page with a missing image fails it
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><img src="missing.png" alt="x"></body></html>')
    images, errors = check_page(broken, tmp_path / "broken.png", tmp_path / "profile2")
    assert images == [[True, 0, "x"]] and errors
