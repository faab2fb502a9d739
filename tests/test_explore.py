"""The explorer: its JSON API, refusals with a 4xx while it keeps serving, a bounded load test, and the page
driven in headless Chromium (slider, class picker, interpolation, samples) with a screenshot."""

from __future__ import annotations

import base64
import copy
import http.client
import importlib.util
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from vaekit.errors import VaekitError
from vaekit.runs import Run
from vaekit.viz import explore
from vaekit.viz.explore import Handler, load_explorer, make_server, open_explorer

from .test_export import runs  # noqa: F401  (the module's tiny vae and cvae runs)
from .test_report import CHROMIUM, DevTools

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serving(run_path: Path, token: str | None = ""):
    """The explorer of a run on 127.0.0.1, a free port, in a thread; yields its URL (with the token, if any).
    Without a token (the default here) the API tests send none; the page test serves with one."""
    server = make_server(load_explorer(str(run_path)), 0, token=token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def urls(runs):  # noqa: F811
    """Each run served with a token, as `vaekit explore` serves it: {name: the URL it prints}."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(serving(run.path, token=None)) for name, run in runs.items()}


@pytest.fixture(scope="module")
def ports(runs):  # noqa: F811
    with ExitStack() as stack:
        yield {name: urlsplit(stack.enter_context(serving(run.path))).port for name, run in runs.items()}


def request(port: int, method: str, path: str, body: bytes | dict | int | None = None) -> tuple[int, dict]:
    """(status, JSON payload) of one request; an int ``body`` is a bare Content-Length header of that value."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json", **({"Content-Length": str(body)} if isinstance(body, int) else {})}
    data = json.dumps(body).encode() if isinstance(body, dict) else None if isinstance(body, int) else body
    conn.request(method, path, data, headers)
    resp = conn.getresponse()
    status, payload = resp.status, json.loads(resp.read())
    conn.close()
    return status, payload


def png(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_api_answers(ports):
    port = ports["cvae"]
    status, info = request(port, "GET", "/api/info")
    assert status == 200 and sorted(info["order"]) == [0, 1, 2] and info["num_classes"] == 3
    assert info["spread"][info["order"][0]] >= info["spread"][info["order"][-1]]  # most active first
    status, r = request(port, "POST", "/api/decode", {"z": [0.5, -1, 2], "y": 2})
    assert status == 200 and png(r["image"]).size == (33, 27) and r["ms"] < 100  # 9x11 shown 3x
    items = request(port, "GET", "/api/items")[1]["items"]
    assert len(items) == 6 and all(it["y"] in (0, 1, 2) for it in items)  # the test split holds 6
    status, r = request(port, "POST", "/api/interpolate", {"a": 0, "b": 5, "steps": 6})
    assert status == 200 and len(r["frames"]) == 6
    first = request(port, "POST", "/api/decode", {"z": r["codes"][0], "y": items[0]["y"]})[1]["image"]
    assert png(first).tobytes() == png(r["frames"][0]).tobytes()  # the path starts at item a's code
    status, r = request(port, "POST", "/api/sample", {"n": 4, "y": 1})
    assert status == 200 and png(r["image"]).size[0] > 60
    assert request(ports["vae"], "GET", "/api/info")[1]["num_classes"] == 0
    assert request(ports["vae"], "POST", "/api/sample", {"n": 3})[0] == 200


BAD = [
    ("POST", "/api/decode", b"not json", 400),
    ("POST", "/api/decode", b"[1, 2]", 400),
    ("POST", "/api/decode", {"z": [0, 0], "y": 0}, 422),  # wrong length
    ("POST", "/api/decode", {"z": [0, 0, 11], "y": 0}, 422),  # |z| > 10
    ("POST", "/api/decode", b'{"z": [0, 0, NaN], "y": 0}', 422),
    ("POST", "/api/decode", {"z": [0, 0, "1"], "y": 0}, 422),
    ("POST", "/api/decode", b'{"z": [0, 0, 1' + b"0" * 400 + b'], "y": 0}', 422),  # a huge integer
    ("POST", "/api/decode", {"z": [0, 0, 0], "y": 3}, 422),  # class outside 0..2
    ("POST", "/api/decode", {"z": [0, 0, 0]}, 422),  # a conditional model needs y
    ("POST", "/api/interpolate", {"a": 0, "b": 99}, 422),
    ("POST", "/api/interpolate", {"a": 0, "b": 1, "steps": 10_000}, 422),
    ("POST", "/api/sample", {"n": 100_000, "y": 0}, 422),
    ("POST", "/api/decode", b"[" + b"0," * 40_000 + b"0]", 413),  # > 64 KiB
    ("POST", "/api/nothing", {}, 404),
    ("GET", "/etc/passwd", None, 404),
    ("PUT", "/api/decode", {}, 405),
    ("OPTIONS", "/api/decode", None, 405),
    ("POST", "/api/decode", -5, 400),  # a negative Content-Length
]


@pytest.mark.parametrize("method,path,body,status", BAD, ids=[f"{m} {p} {s}" for m, p, _, s in BAD])
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(ports, method, path, body, status):
    got, payload = request(ports["cvae"], method, path, body)
    assert got == status and payload["error"]
    assert request(ports["cvae"], "POST", "/api/decode", {"z": [0, 0, 0], "y": 1})[0] == 200


def test_sigterm_stops_the_explorer_as_ctrl_c_does(runs):  # noqa: F811
    argv = [sys.executable, "-m", "vaekit", "explore", str(runs["vae"].path), "--port", "0"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert "explorer on http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "explorer stopped (refused 0 requests by Host, 0 by Origin)" in out, err


def test_a_label_for_an_unconditional_model_is_refused(ports):
    assert request(ports["vae"], "POST", "/api/decode", {"z": [0, 0, 0], "y": 1})[0] == 422


def test_bounded_load(ports, runs):  # noqa: F811
    spec = importlib.util.spec_from_file_location("explore_load", ROOT / "benchmarks" / "explore_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.load_test(ports["cvae"], d=3, num_classes=3, requests=400, clients=8)
    assert r["n"] == 400 and r["errors"] == []
    assert r["p99_ms"] < 1000
    print(f"400 requests, 8 clients: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")


def js(browser: DevTools, expression: str):
    reply = browser.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    assert "exceptionDetails" not in reply, reply
    return reply["result"].get("value")


def wait_for(browser: DevTools, expression: str, timeout: float = 10):
    deadline = time.time() + timeout
    while not (value := js(browser, expression)):
        assert time.time() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)
    return value


SLIDE = (
    "(() => { const s = document.querySelector('#sliders input'); s.value = 2.5;"
    " s.dispatchEvent(new Event('input')); })()"
)
SRC = "document.getElementById('{}').src"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_page_in_chromium(urls, tmp_path):
    browser = DevTools(tmp_path / "profile")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1, mobile=False)
        browser.load(urls["cvae"])  # its token sets the cookie the page's own requests then carry
        wait_for(browser, "document.body.dataset.ready === '1'")
        before = js(browser, SRC.format("image"))
        js(browser, SLIDE)  # a slider moves: the image changes
        moved = wait_for(browser, f"{SRC.format('image')} !== {json.dumps(before)} && {SRC.format('image')}")
        assert js(browser, "document.querySelector('#sliders output').textContent") == "2.50"
        assert not js(browser, "document.getElementById('class-row').hidden")
        js(
            browser,
            "(() => { const c = document.getElementById('class'); c.value = '2';"
            " c.dispatchEvent(new Event('change')); })()",
        )  # a class is picked: the image changes
        wait_for(browser, f"{SRC.format('image')} !== {json.dumps(moved)}")
        js(
            browser,
            "document.querySelectorAll('#items img')[0].click();"
            "document.querySelectorAll('#items img')[5].click();"
            "document.getElementById('interpolate').click()",
        )
        wait_for(browser, "document.getElementById('scrub').max === '11'")
        start = js(browser, SRC.format("frame"))
        js(
            browser,
            "(() => { const s = document.getElementById('scrub'); s.value = 11;"
            " s.dispatchEvent(new Event('input')); })()",
        )
        assert js(browser, SRC.format("frame")) != start
        js(browser, "document.getElementById('samples').click()")
        wait_for(browser, "document.getElementById('samples-img').naturalWidth > 0")
        assert browser.errors() == []
        shot = browser.screenshot(tmp_path / "explore.png")
        browser.load(urls["vae"])  # an unconditional run: no class picker
        wait_for(browser, "document.body.dataset.ready === '1'")
        assert js(browser, "document.getElementById('class-row').hidden") and browser.errors() == []
    finally:
        browser.close()
    assert Image.open(shot).size[0] >= 1000  # three panels side by side
    (ROOT / "runs").mkdir(exist_ok=True)
    shutil.copy(shot, ROOT / "runs" / "explore-screenshot.png")


def raw(port: int, data: bytes, wait: float = 10) -> bytes:
    """Everything the server sends back to ``data`` sent on one connection, until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def host(port: int) -> bytes:
    return f"Host: 127.0.0.1:{port}\r\n".encode()


PROTOCOL = {  # name -> (request bytes past the request line's start, given the Host header; status; error text)
    "nested JSON": (
        lambda h: (
            b"POST /api/decode HTTP/1.1\r\n"
            + h
            + b"Content-Length: 40001\r\n\r\n"
            + b'{"z":'
            + b"[" * 19_998
            + b"]" * 19_998
        ),
        400,
        "the body is not valid JSON",
    ),
    "Content-Length 1e3": (
        lambda h: b"POST /api/sample HTTP/1.1\r\n" + h + b"Content-Length: 1e3\r\n\r\n{}",
        400,
        "'1e3' is not a whole number",
    ),
    "no Content-Length": (lambda h: b"POST /api/sample HTTP/1.1\r\n" + h + b"\r\n", 411, "Content-Length"),
    "long URL": (lambda h: b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + h + b"\r\n", 414, "URI"),
    "too many headers": (lambda h: b"GET / HTTP/1.1\r\n" + h + b"X-A: b\r\n" * 120 + b"\r\n", 431, "headers"),
    "a bad request line": (lambda h: b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
    "a body longer than its Content-Length": (
        lambda h: (
            b"POST /api/sample HTTP/1.1\r\n"
            + h
            + b'Content-Length: 5\r\n\r\n{"n": 2}GET /api/info HTTP/1.1\r\n'
            + h
            + b"\r\n"
        ),
        400,
        "the body is not valid JSON",
    ),
}


@pytest.mark.parametrize("name", PROTOCOL)
def test_protocol_errors_get_one_json_error_and_the_connection_closes(ports, name):
    make, status, text = PROTOCOL[name]
    port = ports["vae"]
    head, _, body = raw(port, make(host(port))).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"Connection: close" in head and b"application/json" in head
    error = json.loads(body)  # one answer: what followed the refused part was not read as another request
    assert error["status"] == status and text in error["error"]
    assert request(port, "GET", "/api/info")[0] == 200


def test_a_body_that_never_arrives_gets_408_and_no_traceback(ports, monkeypatch, capfd):
    monkeypatch.setattr(Handler, "timeout", 0.5)  # read by each new connection
    port = ports["vae"]
    start = time.perf_counter()
    reply = raw(port, b"POST /api/sample HTTP/1.1\r\n" + host(port) + b"Content-Length: 100\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.1 408 ") and b'"status": 408' in reply and time.perf_counter() - start < 5
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err
    assert request(port, "GET", "/api/info")[0] == 200


def test_a_busy_port_and_a_table_run_are_refused_before_the_data_is_loaded(runs, monkeypatch):  # noqa: F811
    monkeypatch.setattr(explore, "prepare_data", lambda *a, **k: pytest.fail("the data was loaded"))
    with monkeypatch.context() as m, socket.socket() as busy:
        m.setattr(Run, "load", lambda *a, **k: pytest.fail("the run was opened (seconds of imports)"))
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(VaekitError, match=rf"port {busy.getsockname()[1]}: "):
            open_explorer(runs["vae"].path, busy.getsockname()[1])
    table = copy.copy(runs["vae"])
    table.config = copy.deepcopy(runs["vae"].config)
    table.config.model.input_shape = [5]
    with pytest.raises(VaekitError, match=r"explore needs a run trained on images"):
        open_explorer(table, 0)


def test_info_names_the_classes_of_a_conditional_run(runs, monkeypatch):  # noqa: F811
    monkeypatch.setattr(Run, "classes", property(lambda run: ["cat", "dog", "eel"]))
    assert load_explorer(runs["cvae"]).info()["classes"] == ["cat", "dog", "eel"]  # the page's class picker
    assert load_explorer(runs["vae"]).info()["classes"] is None


@pytest.mark.parametrize(
    "y, label, error",
    [
        ("dog", 1, None),  # a class name, as the command line takes it
        (2, 2, None),  # an integer stays a label number
        ("zebra", None, r"y 'zebra': expected a label number in 0..2 or a class name \(cat, dog, eel\)"),
        (3, None, r"y must be a label number in 0..2 or a class name \(cat, dog, eel\)"),
        (True, None, r"y must be a label number in 0..2"),
        (2**70, None, r"y must be a label number in 0..2"),  # no OverflowError (a 500)
    ],
)
def test_the_api_takes_a_class_by_name_or_by_label_number(runs, monkeypatch, y, label, error):  # noqa: F811
    from vaekit.viz.explore_api import ApiError

    monkeypatch.setattr(Run, "classes", property(lambda run: ["cat", "dog", "eel"]))
    explorer = load_explorer(runs["cvae"])
    if error is not None:
        with pytest.raises(ApiError, match=error) as e:
            explorer.decode({"z": [0, 0, 0], "y": y})
        assert e.value.status == 422
        return
    named = explorer.decode({"z": [0.5, -1, 2], "y": y})["image"]
    assert named == explorer.decode({"z": [0.5, -1, 2], "y": label})["image"]
    assert named != explorer.decode({"z": [0.5, -1, 2], "y": (label + 1) % 3})["image"]


def test_the_label_range_is_the_one_the_run_reads_labels_in(runs, monkeypatch):  # noqa: F811
    """A run of 3 label numbers but 2 class names reads labels 0..1 (run.labels): so does the explorer, a 422."""
    import torch

    from vaekit.viz.explore_api import ApiError, Explorer

    monkeypatch.setattr(Run, "classes", property(lambda run: ["cat", "dog"]))
    run = runs["cvae"]
    explorer = Explorer(run, torch.rand(4, *run.config.model.input_shape), torch.tensor([0, 1, 0, 1]))
    assert explorer.info()["num_classes"] == 2 and explorer.run.config.model.num_classes == 3
    with pytest.raises(ApiError, match=r"y must be a label number in 0..1 or a class name \(cat, dog\)") as e:
        explorer.sample({"n": 2, "y": 2})
    assert e.value.status == 422 and explorer.sample({"n": 2, "y": "dog"})["image"]
