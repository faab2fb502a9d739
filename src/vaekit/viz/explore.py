"""The latent-space explorer: a local web page (stdlib ``http.server`` on 127.0.0.1) that decodes codes server-side.

JSON API (bad input gets a 4xx and the server keeps serving):
  GET  /api/info         latent size, dims ordered most active first, their spread, num_classes, image shape
  GET  /api/items        a few data items (PNG, label) to pick for interpolation
  POST /api/decode       {"z": [D floats], "y"?: int}        -> {"image": data URL, "ms": decode time}
  POST /api/interpolate  {"a": item, "b": item, "steps": T}  -> {"frames": [T data URLs]}
  POST /api/sample       {"n": N, "y"?: int}                 -> {"image": data URL of an N-image grid}

It answers only its own page, as Jupyter does: a request whose Host is not 127.0.0.1:PORT or localhost:PORT
(another site's name rebound to 127.0.0.1: DNS rebinding) and a POST whose Origin is another site's get a 403,
each logged on stderr with the running counts.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from ..core.contract import latent_size
from ..data.prepare import prepare_data
from ..errors import VaekitError
from ..evaluation.metrics import encode_means
from ..runs import Run
from .figures import decode_mean, lerp
from .plots import image_grid, is_image

MAX_BODY = 64 * 1024  # bytes
Z_LIMIT = 10.0  # |z| accepted per dimension
MAX_STEPS, MAX_SAMPLES, N_ITEMS = 32, 64, 16
STATIC_DIR = Path(__file__).parent / "static"
STATIC = {
    "/": ("explore.html", "text/html"),
    "/explore.js": ("explore.js", "text/javascript"),
    "/explore.css": ("explore.css", "text/css"),
}


class ApiError(Exception):
    """A refused request: HTTP ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def png_url(x: Tensor, nrow: int | None = None, pad: int = 2) -> str:
    """(N, C, H, W) in [0, 1] -> a data: URL of their grid as PNG."""
    buf = io.BytesIO()
    Image.fromarray(image_grid(x, nrow, pad)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Explorer:
    """What the page asks of a run: codes in, pictures out. ``items`` (N, *shape) with labels (N,) or None."""

    def __init__(self, run: Run, x: Tensor, y: Tensor | None, n_items: int = N_ITEMS):
        if not is_image(tuple(run.config.model.input_shape)):
            raise VaekitError("explore needs a run trained on images (C, H, W)")
        self.run, self.d, self.k = run, latent_size(run.model), run.config.model.num_classes
        self.conditional = bool(run.model.needs_labels)
        y = y if self.conditional else None
        means = encode_means(run, x[:1000], None if y is None else y[:1000])  # (N, D)
        spread = means.std(0) if len(means) > 1 else torch.ones(self.d)
        self.order = spread.argsort(descending=True).tolist()  # most active first
        self.spread = spread.tolist()
        self.items_x, self.items_y = x[:n_items], None if y is None else y[:n_items]
        self.items_z = means[:n_items]  # (n_items, D) posterior means

    def info(self) -> dict:
        return {
            "latent_dim": self.d,
            "order": self.order,
            "spread": self.spread,
            "z_limit": Z_LIMIT,
            "num_classes": self.k if self.conditional else 0,
            "shape": self.run.config.model.input_shape,
            "run": self.run.folder.name,
            "max_steps": MAX_STEPS,
            "max_samples": MAX_SAMPLES,
        }

    def items(self) -> dict:
        ys = [None] * len(self.items_x) if self.items_y is None else self.items_y.tolist()
        return {
            "items": [
                {"index": i, "image": png_url(self.items_x[i : i + 1], pad=0), "y": ys[i]}
                for i in range(len(self.items_x))
            ]
        }

    def decode(self, body: dict) -> dict:
        z, y = self._z(body.get("z")), self._label(body.get("y"))
        start = time.perf_counter()
        image = png_url(decode_mean(self.run, z[None], y), pad=0)
        return {"image": image, "ms": round((time.perf_counter() - start) * 1000, 2)}

    def interpolate(self, body: dict) -> dict:
        a, b = (_int(body.get(key), key, 0, len(self.items_x) - 1) for key in ("a", "b"))
        steps = _int(body.get("steps", 10), "steps", 2, MAX_STEPS)
        codes = lerp(self.items_z[a], self.items_z[b], torch.linspace(0, 1, steps))  # (steps, D)
        y = None if self.items_y is None else self.items_y[a : a + 1]  # the path keeps a's class
        y = self._label(body["y"]) if body.get("y") is not None else y
        frames = decode_mean(self.run, codes, y)
        return {"frames": [png_url(f[None], pad=0) for f in frames], "codes": codes.tolist()}

    def sample(self, body: dict) -> dict:
        n, y = _int(body.get("n", 16), "n", 1, MAX_SAMPLES), self._label(body.get("y"))
        with torch.no_grad():
            x = self.run.model.generate(n, 1.0, None if y is None else y.repeat(n)).mean.cpu()
        return {"image": png_url(x, nrow=math.ceil(math.sqrt(n)))}

    def _z(self, z: object) -> Tensor:
        """A code: a list of ``d`` finite numbers within +-Z_LIMIT -> (D,)."""
        if not isinstance(z, list) or len(z) != self.d:
            raise ApiError(422, f"z must be a list of {self.d} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
            raise ApiError(422, "z must hold numbers only")
        if not all(abs(v) <= Z_LIMIT for v in z):  # False for NaN and inf; safe for huge ints
            raise ApiError(422, f"z values must be finite and within +-{Z_LIMIT:g}")
        return torch.tensor(z, dtype=torch.float32)

    def _label(self, y: object) -> Tensor | None:
        """(1,) int64 for a conditional model (required), None otherwise (a label is then refused)."""
        if not self.conditional:
            if y is not None:
                raise ApiError(422, "this model is not conditional: leave out y")
            return None
        return torch.tensor([_int(y, "y", 0, self.k - 1)])


def _int(v: object, name: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(422, f"{name} must be an integer in {lo}..{hi}")
    return v


class Handler(BaseHTTPRequestHandler):
    """Routes GET (page, static files, info, items) and POST (decode, interpolate, sample) to ``server.explorer``."""

    server_version = "vaekit-explore"
    protocol_version = "HTTP/1.1"  # keep-alive: the page sends many small requests
    timeout = 60  # seconds an idle connection may hold its thread
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):  # the client went away (a tab closed): nothing to answer
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (quiet: one line per request is noise)
        pass

    def do_GET(self) -> None:
        ex: Explorer = self.server.explorer  # type: ignore[attr-defined]
        if self._foreign():
            return
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, kind = STATIC[path]
            return self._send(200, (STATIC_DIR / name).read_bytes(), kind)
        routes = {"/api/info": ex.info, "/api/items": ex.items}
        if path not in routes:
            return self._error(404, f"no such page: {path}")
        self._json(200, routes[path]())

    def do_POST(self) -> None:
        ex: Explorer = self.server.explorer  # type: ignore[attr-defined]
        routes = {"/api/decode": ex.decode, "/api/interpolate": ex.interpolate, "/api/sample": ex.sample}
        if self._foreign():
            return
        try:
            body = self._body()  # read (or refuse) the body first, so a keep-alive stream stays in step
            if self.path not in routes:
                raise ApiError(404, f"no such endpoint: {self.path}")
            self._json(200, routes[self.path](body))
        except ApiError as e:
            self._error(e.status, str(e))
        except VaekitError as e:  # the model refused the input
            self._error(422, str(e))
        except Exception as e:  # noqa: BLE001  (a bug: answer it, keep serving)
            self._error(500, f"{type(e).__name__}: {e}")

    def _foreign(self) -> bool:
        """Answer 403 (True) to a request from outside the explorer's own page: another Host, or a POST from
        another Origin (browsers send Origin with every POST, same-origin ones included)."""
        server: ExplorerServer = self.server  # type: ignore[assignment]
        host = self.headers.get("Host", "").strip().lower()
        origin = self.headers.get("Origin")
        if host not in server.hosts:
            what, value = "Host", host
        elif self.command == "POST" and origin is not None and origin.strip().lower() not in server.origins:
            what, value = "Origin", origin
        else:
            return False
        self.close_connection = True  # a POST's body is not read
        server.refuse(what, f"{self.command} {self.path[:100]}", value)  # logged before answering: in order
        self._error(403, f"{what} {value[:100]!r} is not this explorer's")
        return True

    def _not_allowed(self) -> None:
        self.close_connection = True  # a body we do not read would put the stream out of step
        self._error(405, f"{self.command} is not supported here")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise ApiError(411, "a Content-Length header is required") from None
        if length < 0:
            self.close_connection = True
            raise ApiError(400, f"Content-Length {length}: a body has 0 or more bytes")
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: drop the connection after answering
            raise ApiError(413, f"request bodies are limited to {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message, "status": status})

    def _send(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind + ("; charset=utf-8" if kind.startswith("text") else ""))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server: its own Host names and Origins, and the requests refused by each."""

    daemon_threads = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), Handler)
        port = self.server_address[1]
        names = ["127.0.0.1", "localhost"]
        self.hosts = {f"{n}:{port}" for n in names} | (set(names) if port == 80 else set())  # 80: no port sent
        self.origins = {f"http://{h}" for h in self.hosts}
        self.refused = {"Host": 0, "Origin": 0}
        self._lock = threading.Lock()

    def refuse(self, what: str, request: str, value: str) -> None:
        """Count a request refused for its ``what`` (Host or Origin) and log it in one line on stderr."""
        with self._lock:
            self.refused[what] += 1
            counts = ", ".join(f"{n} by {k}" for k, n in self.refused.items())
        print(
            f"explore: 403 {request}: {what} {value[:100]!r} is not this explorer's (refused so far: {counts})",
            file=sys.stderr,
            flush=True,
        )


def make_server(explorer: Explorer, port: int = 0) -> ExplorerServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) for ``explorer``; call ``serve_forever()``."""
    try:
        server = ExplorerServer(port)
    except OSError as e:
        raise VaekitError(f"port {port}: {e.strerror or e}", key="port") from None
    server.explorer = explorer  # type: ignore[attr-defined]
    return server


def load_explorer(run_path: str, data: str | None = None, split: str = "test") -> Explorer:
    """The run and a split of its data (its own by default), prepared as in training."""
    run = Run.load(run_path)
    prepared, _ = prepare_data(run.config, data, stream=True)
    part = getattr(prepared, split)
    if len(part.x) < 2:
        part = prepared.train
    return Explorer(run, part.x, part.y)
