"""The latent-space explorer: a local web page (stdlib ``http.server`` on 127.0.0.1) that decodes codes server-side.

JSON API (bad input gets a 4xx and the server keeps serving):
  GET  /api/info         latent size, dims ordered most active first, their spread, num_classes (and the class
                         names), image shape
  GET  /api/items        a few data items (PNG, label) to pick for interpolation
  POST /api/decode       {"z": [D floats], "y"?: int}        -> {"image": data URL, "ms": decode time}
  POST /api/interpolate  {"a": item, "b": item, "steps": T}  -> {"frames": [T data URLs]}
  POST /api/sample       {"n": N, "y"?: int}                 -> {"image": data URL of an N-image grid}

It answers only its own page, as Jupyter does: a request whose Host is not 127.0.0.1:PORT or localhost:PORT
(another site's name rebound to 127.0.0.1: DNS rebinding) and a POST whose Origin is another site's get a 403,
each logged on stderr with the running counts. Every request must also carry the server's token (another user of
the machine can reach 127.0.0.1 too): ``?token=...`` in the printed URL, which sets an HttpOnly cookie, or that
cookie; ``token=""`` turns this off (for tests, or behind an authenticating proxy of your own).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import secrets
import sys
import threading
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..data.prepare import prepare_data
from ..errors import VaekitError
from ..evaluation.outputs import default_split, every_item_data
from ..io import printable
from ..runs import Run
from .explore_api import N_ENCODED, ApiError, Explorer, check_images

__all__ = ["ApiError", "Explorer", "ExplorerServer", "Handler", "load_explorer", "make_server", "open_explorer"]

MAX_BODY = 64 * 1024  # bytes; more for a large latent: 24 per number of z (its longest JSON form) + 1 KiB
STATIC_DIR = Path(__file__).parent / "static"
STATIC = {
    "/": ("explore.html", "text/html"),
    "/explore.js": ("explore.js", "text/javascript"),
    "/explore.css": ("explore.css", "text/css"),
}


class Handler(BaseHTTPRequestHandler):
    """Routes GET (page, static files, info, items) and POST (decode, interpolate, sample) to ``server.explorer``."""

    server_version = "vaekit-explore"
    protocol_version = "HTTP/1.1"  # keep-alive: the page sends many small requests
    timeout = 60  # seconds an idle connection may hold its thread
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall
    _set_cookie = False  # this request brought the right ?token=: its answer sets the cookie

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away (a tab closed) or its socket timed out: nothing to answer
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a bad request line, 414, 431, 501) as the API's JSON error."""
        self.close_connection = True  # the stream is out of step: what follows is not read as a request
        if self.request_version == "HTTP/0.9":  # the request line was not read: answer with a status line
            self.request_version = "HTTP/1.0"
        self._error(code, message or self.responses.get(code, ("refused",))[0])

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (quiet: one line per request is noise)
        pass

    def do_GET(self) -> None:
        ex: Explorer = self.server.explorer  # type: ignore[attr-defined]
        if self._foreign() or not self._authorized():
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
        if self._foreign() or not self._authorized():
            return
        path = self.path.split("?", 1)[0]
        try:
            body = self._body()  # read (or refuse) the body first, so a keep-alive stream stays in step
            if path not in routes:
                raise ApiError(404, f"no such endpoint: {path}")
            self._json(200, routes[path](body))
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
        self._set_cookie = False
        host = self.headers.get("Host", "").strip().lower()
        origin = self.headers.get("Origin")
        if host not in server.hosts:
            what, value = "Host", host
        elif self.command == "POST" and origin is not None and origin.strip().lower() not in server.origins:
            what, value = "Origin", origin
        else:
            return False
        self.close_connection = True  # a POST's body is not read
        server.refuse(what, self._request_line(), value)  # logged before answering: in order
        port = server.server_address[1]
        way = f": open http://127.0.0.1:{port}/ (its own port), or keep port {port} at both ends of a tunnel"
        self._error(403, f"{what} {value[:100]!r} is not this explorer's" + (way if what == "Host" else ""))
        return True

    def _authorized(self) -> bool:
        """True for a request with the server's token (``?token=`` or its cookie); else answer 403 (False).
        The right ``?token=`` sets the cookie, so the page's own requests carry it."""
        server: ExplorerServer = self.server  # type: ignore[assignment]
        self._set_cookie = False
        if not server.token:
            return True
        if _same(parse_qs(urlsplit(self.path).query).get("token", [""])[0], server.token):
            self._set_cookie = True
            return True
        cookies: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):  # a malformed Cookie header: no cookie
            cookies.load(self.headers.get("Cookie", ""))
        if (morsel := cookies.get(server.cookie)) is not None and _same(morsel.value, server.token):
            return True
        self.close_connection = True  # a POST's body is not read
        server.refuse("token", self._request_line(), "")
        port = server.server_address[1]
        self._error(403, f"this explorer needs its token: open the URL it printed (http://127.0.0.1:{port}/?token=...)")
        return False

    def _request_line(self) -> str:
        """The method and path as they may be logged: control characters escaped, the token left out."""
        path = re.sub(r"(?i)token=[^&#]*", "token=...", self.path[:100])
        return f"{self.command} {printable(repr(path))}"

    def _not_allowed(self) -> None:
        self.close_connection = True  # a body we do not read would put the stream out of step
        self._error(405, f"{self.command} is not supported here: GET and POST are")  # with Allow (_send)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _body(self) -> dict:
        """The request's JSON object; any refusal closes the connection after answering, so bytes left unread
        are never taken for the next request."""
        try:
            return self._read_body()
        except ApiError:
            self.close_connection = True
            raise

    def _read_body(self) -> dict:
        text = self.headers.get("Content-Length")
        if text is None:
            raise ApiError(411, "a Content-Length header is required")
        if not re.fullmatch(r"-?[0-9]+", text.strip()):
            raise ApiError(400, f"Content-Length {text[:40]!r} is not a whole number of bytes")
        length = int(text)
        if length < 0:
            raise ApiError(400, f"Content-Length {length}: a body has 0 or more bytes")
        ex: Explorer | None = self.server.explorer  # type: ignore[attr-defined]
        limit = MAX_BODY if ex is None else max(MAX_BODY, 24 * ex.d + 1024)  # a code of D numbers fits
        if length > limit:  # the body is not read
            raise ApiError(413, f"request bodies are limited to {limit} bytes")
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            raise ApiError(408, f"the body did not arrive within {self.timeout} s") from None
        if len(data) < length:
            raise ApiError(400, f"the body ended after {len(data)} of its {length} bytes (Content-Length)")
        try:
            body = json.loads(data or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
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
        if status == 405:
            self.send_header("Allow", "GET, POST")
        if self._set_cookie:  # HttpOnly: the page's scripts never see it; per port
            server: ExplorerServer = self.server  # type: ignore[assignment]
            self.send_header("Set-Cookie", f"{server.cookie}={server.token}; Path=/; HttpOnly; SameSite=Strict")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body
            self.wfile.write(data)


def _same(given: str, token: str) -> bool:
    """``given`` is ``token``, compared in constant time (any text: bytes, so non-ASCII is no TypeError)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode())


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server: its own Host names, Origins and token (""; none), and the requests refused by
    Host, by Origin (``refused``) and for want of the token (``refused_token``)."""

    daemon_threads = True
    request_queue_size = 64  # the listen backlog: a page's burst of connections is not held back 1 s (default 5)

    def __init__(self, port: int, token: str | None = None):
        super().__init__(("127.0.0.1", port), Handler)
        self.token = secrets.token_urlsafe(32) if token is None else token
        port = self.server_address[1]
        names = ["127.0.0.1", "localhost"]
        self.hosts = {f"{n}:{port}" for n in names} | (set(names) if port == 80 else set())  # 80: no port sent
        self.origins = {f"http://{h}" for h in self.hosts}
        self.refused = {"Host": 0, "Origin": 0}
        self.refused_token = 0
        self.cookie = f"vaekit-explore-{port}"  # cookies are not told apart by port: the name is
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The page's address, with the token (which the page then keeps in a cookie)."""
        return f"http://127.0.0.1:{self.server_address[1]}/" + (f"?token={self.token}" if self.token else "")

    def refuse(self, what: str, request: str, value: str) -> None:
        """Count a request refused for its ``what`` (Host, Origin or token) and log it in one line on stderr."""
        with self._lock:
            if what == "token":
                self.refused_token += 1
                line = f"no token or a wrong one (refused so far without it: {self.refused_token})"
            else:
                self.refused[what] += 1
                counts = ", ".join(f"{n} by {k}" for k, n in self.refused.items())
                line = f"{what} {printable(repr(value[:100]))} is not this explorer's (refused so far: {counts})"
        print(f"explore: 403 {request}: {line}", file=sys.stderr, flush=True)


def make_server(explorer: Explorer | None, port: int = 0, token: str | None = None) -> ExplorerServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) for ``explorer`` (None: set ``server.explorer``
    before serving); call ``serve_forever()``. ``token``: None draws a fresh random one (``server.url`` holds it);
    "" serves without one, for tests or behind your own authentication."""
    try:
        server = ExplorerServer(port, token)
    except OSError as e:
        raise VaekitError(f"port {port}: {e.strerror or e}", key="port") from None
    server.explorer = explorer  # type: ignore[attr-defined]
    return server


def load_explorer(run_path: str | Run, data: str | None = None, split: str | None = None) -> Explorer:
    """The run and a split of ``data`` (default: its own) prepared as in training: all (every item in file order) or
    a seeded split; None as ``vaekit report``: all of a file not the run's own data, else test (``default_split``)."""
    run = run_path if isinstance(run_path, Run) else Run.load(run_path)
    check_images(run)  # before the data is loaded
    split = split or default_split(run.config, data)
    if split == "all":  # binarised as in training; the first N_ENCODED are all the explorer encodes
        part = every_item_data(run, data, N_ENCODED).test
    elif split in ("train", "val", "test"):
        prepared, _ = prepare_data(run.config, data, stream=True)
        part = getattr(prepared, split) if len(getattr(prepared, split).x) > 1 else prepared.train
    else:
        raise VaekitError(f"split {split!r}: expected all, train, val or test", key="split")
    return Explorer(run, part.x[:N_ENCODED], part.y)


def open_explorer(
    run_path: str | Run,
    port: int,
    data: str | None = None,
    split: str | None = None,
    token: str | None = None,
    device: str = "cpu",
) -> ExplorerServer:
    """The explorer's server of a run (a folder, opened on ``device``, or a loaded Run), ready to serve at
    ``server.url`` (``token`` as for ``make_server``): a busy port is refused before the run is opened, a run not of
    images before its data is loaded and encoded (seconds)."""
    server = make_server(None, port, token)
    try:
        run = run_path if isinstance(run_path, Run) else Run.load(run_path, device)
        server.explorer = load_explorer(run, data, split)  # type: ignore[attr-defined]
    except BaseException:
        server.server_close()
        raise
    return server
