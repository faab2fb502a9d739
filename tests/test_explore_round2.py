"""The explorer, second round: its token, a body limit sized by the latent, escaped logs, the served weights' age,
the listen backlog, unknown body keys, the Host refusal's way forward, and 405 answers."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from vaekit.viz.curves import read_metrics
from vaekit.viz.explore import load_explorer, make_server
from vaekit.viz.report_pictures import best_epoch

from .test_export import runs  # noqa: F401  (the module's tiny vae and cvae runs)

JS = Path(__file__).resolve().parents[1] / "src" / "vaekit" / "viz" / "static" / "explore.js"


@contextmanager
def serving(explorer, token: str | None = None):
    """``explorer`` served on 127.0.0.1, a free port, in a thread; yields the server."""
    server = make_server(explorer, 0, token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(runs):  # noqa: F811
    with serving(load_explorer(str(runs["vae"].path))) as server:
        yield server


def ask(port: int, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None):
    """(status, headers, payload) of one request; payload is the JSON answer, or b"" for none."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    payload = json.loads(raw) if raw and resp.getheader("Content-Type", "").startswith("application/json") else raw
    return resp.status, resp.headers, payload


def cookie(server) -> dict:
    return {"Cookie": f"{server.cookie}={server.token}"}


def test_every_request_needs_the_token(served):
    port = served.server_address[1]
    assert len(served.token) >= 32 and served.url == f"http://127.0.0.1:{port}/?token={served.token}"
    for method, path in [("GET", "/"), ("GET", "/explore.js"), ("GET", "/api/items"), ("POST", "/api/decode")]:
        for headers in [{}, {"Cookie": f"{served.cookie}=wrong"}, {"Cookie": "x=é; =="}]:
            status, _, payload = ask(port, method, path, {"z": [0, 0]}, headers)
            assert status == 403 and "open the URL it printed" in payload["error"], (method, path, headers)
        assert ask(port, method, path + "?token=wrong", {"z": [0, 0]})[0] == 403
    status, headers, page = ask(port, "GET", f"/?token={served.token}")
    assert status == 200 and b"explore.js" in page
    set_cookie = headers["Set-Cookie"]
    assert set_cookie.startswith(f"{served.cookie}={served.token};")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    assert ask(port, "GET", "/api/items", headers=cookie(served))[0] == 200
    assert ask(port, "POST", "/api/decode", {"z": [0.5] * served.explorer.d}, cookie(served))[0] == 200
    assert ask(port, "GET", "/explore.js", headers={"Cookie": f"other=1; {served.cookie}={served.token}"})[0] == 200


def test_an_empty_token_serves_without_one(runs):  # noqa: F811
    with serving(load_explorer(str(runs["vae"].path)), token="") as server:
        assert server.url == f"http://127.0.0.1:{server.server_address[1]}/"
        assert ask(server.server_address[1], "GET", "/api/items")[0] == 200


def stub(d: int) -> SimpleNamespace:
    """An explorer of a ``d``-dim latent that answers the length of the code it is sent."""
    answer = lambda body: {"n": len(body.get("z", []))}  # noqa: E731
    return SimpleNamespace(d=d, decode=answer, interpolate=answer, sample=answer, info=dict, items=dict)


def test_the_body_limit_grows_with_the_latent():
    d = 4096
    with serving(stub(d), token="") as server:
        port = server.server_address[1]
        code = json.dumps({"z": [-0.1234567890123456] * d}).encode()  # full-precision doubles: 80 KB
        assert len(code) > 64 * 1024
        status, _, payload = ask(port, "POST", "/api/decode", code)
        assert (status, payload) == (200, {"n": d})
        status, _, payload = ask(port, "POST", "/api/decode", b" " * (24 * d + 1024 + 1))
        assert status == 413 and str(24 * d + 1024) in payload["error"]
    with serving(stub(3), token="") as server:  # a small latent keeps 64 KiB
        assert ask(server.server_address[1], "POST", "/api/decode", b" " * (64 * 1024 + 1))[0] == 413


STUBS = """
const handlers = {}, els = {}, bodies = [];
const el = (id) => els[id] || (els[id] = { id, textContent: "", value: "0", hidden: true, dataset: {},
  addEventListener: (t, f) => { handlers[id + ":" + t] = f; }, appendChild() {}, add() {} });
globalThis.document = { getElementById: el, querySelectorAll: () => [], body: { dataset: {} },
  createElement: () => el("x" + Math.random()) };
let failDecode = true;
globalThis.fetch = async (path, opts) => {
  const body = opts && opts.body;
  if (body) bodies.push([path, body.length]);
  const reply = (status, data) => ({ ok: status === 200, status, json: async () => data });
  if (path === "/api/info") return reply(200, { latent_dim: D, order: [], spread: [], num_classes: 0,
    shape: [1, 8, 8], run: "r", weights_epoch: 7, weights_mtime: "2024-01-02T03:04:05+00:00",
    weights_changed: true });
  if (path === "/api/items") return reply(200, { items: [] });
  if (path === "/api/decode" && body.length > 65536) return reply(413, { error: "too big" });
  if (path === "/api/decode" && failDecode) { failDecode = false; return reply(500, { error: "boom" }); }
  return reply(200, { image: "data:,", ms: 1 });
};
"""

DRIVE = """
const wait = () => new Promise((r) => setTimeout(r, 60));
(async () => {
  await wait();
  const afterError = els.status.textContent;
  handlers["random:click"]();
  await wait();
  console.log(JSON.stringify({ bodies, afterError, status: els.status.textContent, run: els.run.textContent }));
})();
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_random_button_fits_a_large_latent_and_a_success_clears_the_status(tmp_path):
    script = tmp_path / "page.js"
    script.write_text("const D = 4096;\n" + STUBS + JS.read_text() + DRIVE)  # a fake page and server
    out = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout)
    assert out["afterError"] == "500: boom"  # the first decode failed ...
    assert out["status"] == ""  # ... and the random code's success cleared it
    path, size = out["bodies"][-1]
    assert path == "/api/decode" and size < 6 * 4096 + 100  # "-2.53," a number: to the sliders' 0.01 step
    assert "weights of epoch 7" in out["run"] and "2024-01-02T03:04:05" in out["run"] and "restart" in out["run"]


def test_the_log_escapes_the_request_path_and_leaves_out_the_token(served, capfd):
    port = served.server_address[1]
    for request in [
        b"GET /\x1b[2J\x1b]0;pwned\x07 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        b"GET /api/items?token=\x1b[31mnope HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port,
    ]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            assert s.recv(65536).startswith(b"HTTP/1.1 403 ")
    err = capfd.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b[2J" in err and "token=..." in err, err


def test_info_gives_the_weights_epoch_and_says_when_they_change(runs, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(runs["vae"].path, run)
    explorer = load_explorer(str(run))
    info = explorer.info()
    assert info["weights_epoch"] == best_epoch(read_metrics(run / "metrics.csv")) is not None
    assert info["weights_mtime"].startswith("20") and info["weights_changed"] is False
    stat = (run / "model.safetensors").stat()
    os.utime(run / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))  # trained further
    assert explorer.info()["weights_changed"] is True


def test_a_burst_of_connections_is_not_held_back():
    server = make_server(stub(3), 0, "")  # not serving: connections wait in the listen backlog
    try:
        with ExitStack() as stack:  # a full backlog drops the SYN: connect would wait 1 s for the resend
            for _ in range(40):
                stack.enter_context(socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=0.5))
    finally:
        server.server_close()


def test_unknown_body_keys_are_refused(served):
    port = served.server_address[1]
    for path, body, allowed, unknown in [
        ("/api/sample", {"n": 4, "temperature": 1e9}, "n, y", "temperature"),
        ("/api/interpolate", {"a": 0, "b": 1, "step": 3}, "a, b, steps, y", "step"),
        ("/api/decode", {"z": [0, 0, 0], "Z": 1}, "z, y", "Z"),
    ]:
        status, _, payload = ask(port, "POST", path, body, cookie(served))
        assert status == 422 and allowed in payload["error"] and repr(unknown) in payload["error"], payload
    assert ask(port, "POST", "/api/sample", {"n": 4}, cookie(served))[0] == 200


def test_the_host_refusal_says_which_address_to_open(served):
    port = served.server_address[1]
    status, _, payload = ask(port, "GET", "/api/info", headers={"Host": "127.0.0.1:9999", **cookie(served)})
    assert status == 403 and f"open http://127.0.0.1:{port}/" in payload["error"] and "tunnel" in payload["error"]


def test_a_405_names_the_allowed_methods_and_head_gets_no_body(served):
    port = served.server_address[1]
    status, headers, payload = ask(port, "PUT", "/api/info", b"{}", cookie(served))
    assert status == 405 and headers["Allow"] == "GET, POST" and payload["status"] == 405
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, POST" in head and body == b""
