"""vaekit.data's downloader against an HTTP server on 127.0.0.1: checksums, the cache, mirrors and the one-line
error when offline."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import socket
import threading

import pytest

from vaekit.data import builtin, download, load_dataset
from vaekit.errors import VaekitError

from .test_data import check_pairing, idx_bytes, indexed_images, write


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        if self.path.endswith(".cut"):  # an interrupted download: 5,000 of the 100,000 bytes announced, then closed
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, request log, www)."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    handler = type("Handler", (CountingHandler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler.requests, www
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_caches(server, dead_url, tmp_path):
    base, requests, www = server
    data = b"some bytes" * 100
    sha = hashlib.sha256(data).hexdigest()
    write(www / "f.gz", data)
    cache = tmp_path / "cache"
    path = download([dead_url + "f.gz", base + "f.gz"], "f.gz", sha, cache)
    assert path.read_bytes() == data and requests == ["/f.gz"]
    assert download([base + "f.gz"], "f.gz", sha, cache) == path and len(requests) == 1
    path.write_bytes(b"tampered")
    assert download([base + "f.gz"], "f.gz", sha, cache).read_bytes() == data and len(requests) == 2
    path.unlink()
    with pytest.raises(VaekitError, match=f"f.gz: .*checksum mismatch.*expected {'0' * 64}, got {sha}"):
        download([base + "f.gz"], "f.gz", "0" * 64, cache)
    assert os.listdir(cache) == []
    with pytest.raises(VaekitError, match=r"f.gz: download failed") as err:
        download([dead_url + "f.gz"], "f.gz", sha, cache)
    assert "\n" not in str(err.value) and os.listdir(cache) == []


def test_an_interrupted_download_is_incomplete_not_a_checksum_mismatch(server, tmp_path):
    base, requests, _ = server
    sha = hashlib.sha256(b"x" * 100000).hexdigest()
    match = rf"^f.cut: download failed .*: incomplete download \(5000 of 100000 bytes\) from {re.escape(base)}f.cut$"
    with pytest.raises(VaekitError, match=match):
        download([base + "f.cut"], "f.cut", sha, tmp_path / "cache")
    assert requests == ["/f.cut"] and os.listdir(tmp_path / "cache") == []


@pytest.fixture
def fake_mnist(server, monkeypatch, tmp_path):
    """Tiny gzipped IDX files on the local server, their real hashes, an empty cache and no system copy."""
    base, requests, www = server
    x, y = indexed_images(25, 28, 28)
    hashes = {}
    for stem, arr in (
        ("train-images-idx3-ubyte", x[:20]),
        ("train-labels-idx1-ubyte", y[:20]),
        ("t10k-images-idx3-ubyte", x[20:]),
        ("t10k-labels-idx1-ubyte", y[20:]),
    ):
        path = write(www / (stem + ".gz"), idx_bytes(arr), gz=True)
        hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(builtin.SHA256, "mnist", hashes)
    monkeypatch.setitem(builtin.SYSTEM_DIRS, "mnist", str(tmp_path / "no-system-copy"))
    monkeypatch.delenv("VAEKIT_MNIST_DIR", raising=False)
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    return base, requests


def test_mnist_downloads_into_cache(fake_mnist, dead_url, monkeypatch, tmp_path):
    base, requests = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", f"{dead_url},{base}")
    ds = load_dataset("mnist", data_dir=str(tmp_path / "empty"), val_fraction=0.25)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 5) and ds.shape == (1, 28, 28)
    check_pairing(ds.train)
    assert len(requests) == 4 and len(os.listdir(tmp_path / "cache" / "mnist")) == 4
    load_dataset("mnist")
    assert len(requests) == 4  # found in the cache


def test_mnist_offline_error(fake_mnist, dead_url, monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_MIRRORS", dead_url)
    match = "mnist: IDX files not found in .* download failed .*VAEKIT_MNIST_DIR"
    with pytest.raises(VaekitError, match=match) as err:
        load_dataset("mnist", data_dir=str(tmp_path / "empty"))
    assert "\n" not in str(err.value)
