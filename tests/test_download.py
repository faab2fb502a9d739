"""vaekit.data's downloader against an HTTP server on 127.0.0.1: checksums, the cache, mirrors and the one-line
error when offline."""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import http.server
import importlib
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from vaekit.data import builtin, download, load_dataset
from vaekit.errors import VaekitError
from vaekit.io import WriteError

from .test_data import check_pairing, idx_bytes, indexed_images, write

downloader = importlib.import_module("vaekit.data.download")  # the module; vaekit.data.download is its function


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
        if self.path.endswith(".slow"):  # 100 bytes every 0.05 s: each read is quick, the whole never done
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
                time.sleep(0.05)
            return
        if self.path.endswith(".gzenc"):  # a server that gzips the file on the fly (Content-Encoding: gzip)
            body = gzip.compress((Path(self.directory) / self.path[1:].removesuffix(".gzenc")).read_bytes())
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
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


def test_download_verifies_and_caches(server, dead_url, tmp_path, capsys):
    base, requests, www = server
    data = b"some bytes" * 100
    sha = hashlib.sha256(data).hexdigest()
    write(www / "f.gz", data)
    cache = tmp_path / "cache"
    path = download([dead_url + "f.gz", base + "f.gz"], "f.gz", sha, cache)
    assert path.read_bytes() == data and requests == ["/f.gz"]
    dead, fetched = capsys.readouterr().err.splitlines()  # the dead mirror said, then the one that answered
    assert dead.endswith("; trying the next mirror") and fetched == f"vaekit: downloading f.gz (1 kB) from {base}f.gz"
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
    with pytest.raises(VaekitError, match=r"checksum mismatch .*; the server compressed the file on the fly \(Cont"):
        download([base + "f.gz.gzenc"], "f.gz", sha, cache)


def test_a_download_failing_on_every_mirror_gives_each_mirror_s_reason(server, dead_url, tmp_path):
    base, _, www = server
    write(www / "f.gz", b"other bytes")
    with pytest.raises(VaekitError) as err:
        download([dead_url + "f.gz", base + "none.gz", base + "f.gz"], "f.gz", "0" * 64, tmp_path / "cache")
    head, reasons = str(err.value).split(": download failed from every mirror: ")
    dead, missing, wrong = reasons.split("; ")
    assert (
        head == "f.gz" and dead.startswith(f"{dead_url}f.gz: ") and missing.startswith(f"{base}none.gz: HTTP Error 404")
    )
    assert wrong.startswith(f"checksum mismatch from {base}f.gz: expected {'0' * 64}")


@pytest.fixture
def sha_of_f(server) -> str:
    """www/f.gz on the server (100 kB); its SHA-256."""
    data = os.urandom(100_000)
    write(server[2] / "f.gz", data)
    return hashlib.sha256(data).hexdigest()


def refuse(error: int):
    def fail(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    return fail


def test_a_disk_that_refuses_is_said_at_once_not_tried_on_every_mirror(server, sha_of_f, tmp_path, monkeypatch):
    base, requests, _ = server
    cache = tmp_path / "cache"
    monkeypatch.setattr(os, "fsync", refuse(errno.ENOSPC))  # the disk fills up during the download
    with pytest.raises(WriteError, match=r"f.gz.*: cannot write \(No space left"):
        download([base + "f.gz", base + "f.gz"], "f.gz", sha_of_f, cache)
    assert len(requests) == 1 and not list(cache.glob(".f.gz.*"))


def test_a_killed_downloads_temporary_file_is_removed_once_stale(server, sha_of_f, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    killed, running = cache / ".f.gz.k1ll3d.tmp", cache / ".f.gz.runn1n.tmp"  # as atomic_write names them
    for tmp, age in ((killed, downloader.STALE_S + 60), (running, 0)):
        write(tmp, b"part")
        os.utime(tmp, (time.time() - age, time.time() - age))
    download([server[0] + "f.gz"], "f.gz", sha_of_f, cache)
    assert sorted(os.listdir(cache)) == [running.name, "f.gz"]


def test_a_slow_server_is_given_up(server, sha_of_f, tmp_path, monkeypatch):
    monkeypatch.setattr(downloader, "TIMEOUT", 0.3)
    monkeypatch.setenv("VAEKIT_DOWNLOAD_MIN_RATE", "1000")  # kB/s; the server sends 2
    start = time.monotonic()
    with pytest.raises(VaekitError, match=r"too slow \(\d+ bytes in 0 s, under VAEKIT_DOWNLOAD_MIN_RATE=1000 kB/s\)"):
        download([server[0] + "f.slow"], "f.gz", sha_of_f, tmp_path / "cache")
    assert time.monotonic() - start < 1.5
    monkeypatch.setenv("VAEKIT_DOWNLOAD_MIN_RATE", "fast")
    with pytest.raises(VaekitError, match=r"^VAEKIT_DOWNLOAD_MIN_RATE='fast': expected a rate in kB/s"):
        download([server[0] + "f.gz"], "f.gz", sha_of_f, tmp_path / "cache")


def test_an_interrupted_download_is_incomplete_not_a_checksum_mismatch(server, tmp_path):
    base, requests, _ = server
    sha = hashlib.sha256(b"x" * 100000).hexdigest()
    match = rf"^f.cut: download failed .*: incomplete download \(5000 of 100000 bytes\) from {re.escape(base)}f.cut$"
    with pytest.raises(VaekitError, match=match):
        download([base + "f.cut"], "f.cut", sha, tmp_path / "cache")
    assert requests == ["/f.cut"] and not (tmp_path / "cache").exists()  # nor a folder made for it


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


@pytest.mark.parametrize("held", [0, 3])
def test_mnist_downloads_into_cache(fake_mnist, dead_url, monkeypatch, tmp_path, capsys, held):
    base, requests = fake_mnist
    for stem in builtin.IDX_NAMES[:held]:  # some of the four: those it lacks are named
        (tmp_path / "empty" / stem).write_bytes(b"")
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", f"{dead_url},{base}")
    monkeypatch.setenv("VAEKIT_MIRRORS", dead_url)  # the set's own variable comes first
    ds = load_dataset("mnist", data_dir=str(tmp_path / "empty"), val_fraction=0.25)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 5) and ds.shape == (1, 28, 28)
    check_pairing(ds.train)
    assert len(requests) == 4 and len(os.listdir(tmp_path / "cache" / "mnist")) == 4
    cache = tmp_path / "cache" / "mnist"
    held_none = f"no IDX files in {tmp_path / 'empty'} (data.data_dir)"
    held_some = f"{tmp_path / 'empty'} (data.data_dir) lacks t10k-labels-idx1-ubyte"
    said = f"vaekit: mnist: {held_some if held else held_none}; reading those in {cache}\n"
    assert said in capsys.readouterr().err
    load_dataset("mnist")
    assert len(requests) == 4 and capsys.readouterr().err == ""  # found in the cache


@pytest.mark.parametrize("damage", ["truncated", "flipped", "another set's"])
def test_a_damaged_file_in_the_cache_is_fetched_again(fake_mnist, monkeypatch, tmp_path, damage):
    base, requests = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", base)
    ds = load_dataset("mnist")
    path = tmp_path / "cache" / "mnist" / "train-labels-idx1-ubyte.gz"
    good = path.read_bytes()
    other = gzip.compress(idx_bytes(indexed_images(20, 28, 28)[1][::-1].copy()))  # a valid file of other labels
    flipped = good[:-9] + bytes([good[-9] ^ 1]) + good[-8:]
    path.write_bytes({"truncated": good[:30], "flipped": flipped, "another set's": other}[damage])
    again = load_dataset("mnist")
    assert requests[4:] == ["/train-labels-idx1-ubyte.gz"] and path.read_bytes() == good
    assert torch.equal(again.train.y, ds.train.y)


@pytest.mark.parametrize("held", [0, 2])
def test_mnist_offline_error(fake_mnist, dead_url, monkeypatch, tmp_path, held):
    monkeypatch.setenv("VAEKIT_MIRRORS", dead_url)
    for stem in builtin.IDX_NAMES[:held]:
        (tmp_path / "empty" / (stem + ".gz")).write_bytes(b"")
    lacking = " (lacking t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)" if held else ""
    searched = re.escape(str(tmp_path / "empty") + lacking)
    match = f"mnist: IDX files not found in {searched}, .*VAEKIT_MNIST_DIR.*; the download failed: "
    with pytest.raises(VaekitError, match=match) as err:
        load_dataset("mnist", data_dir=str(tmp_path / "empty"))
    files = ", ".join(f"{stem}.gz" for stem in builtin.IDX_NAMES)  # not from the mirror that refused
    assert f", or fetch {files} into {tmp_path / 'cache' / 'mnist'}; the download failed: {dead_url}" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "cache").exists()  # no empty folder left


@pytest.mark.parametrize(
    "env, mnist, fashion",
    [
        ({}, builtin.MIRRORS["mnist"][0], builtin.MIRRORS["fashion-mnist"][0]),
        ({"VAEKIT_MIRRORS": "http://m/{name}"}, "http://m/mnist/", "http://m/fashion-mnist/"),
        ({"VAEKIT_MIRRORS": "http://old"}, "http://old/", "http://old/"),  # as before: one folder for both
        (
            {"VAEKIT_MIRRORS": "http://m/{name}", "VAEKIT_FASHION_MNIST_MIRRORS": "http://f"},
            "http://m/mnist/",
            "http://f/",
        ),
        ({"VAEKIT_MNIST_MIRRORS": " http://a/, http://b"}, "http://a/", builtin.MIRRORS["fashion-mnist"][0]),
    ],
)
def test_each_set_has_its_own_mirrors(monkeypatch, env, mnist, fashion):
    for var in ("VAEKIT_MIRRORS", *builtin.ENV_MIRRORS.values()):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert builtin.mirrors("mnist")[0] == mnist and builtin.mirrors("fashion-mnist")[0] == fashion
