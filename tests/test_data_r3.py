# ruff: noqa: F811 - the fixtures imported from test_download are named as the tests' arguments
"""Reading data, round three: another photo folder read at a run of arrays' channels; mirrors of another scheme
refused before the network; the offline line's folders and mirror; a short line for checksum mismatches."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import train_argv
from vaekit.cli import main
from vaekit.data import builtin, download, load_dataset
from vaekit.errors import VaekitError

from .test_download import dead_url, fake_mnist, server  # noqa: F401 - fixtures

RNG = np.random.default_rng(0)


def pngs(folder: Path, *shape: int) -> Path:
    """3 PNGs of ``shape`` (H, W) grey or (H, W, 3) colour in ``folder``."""
    folder.mkdir()
    for i in range(3):
        Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def array_runs(tmp_path_factory) -> Path:
    """A grey (1, 8, 8) and a colour (3, 8, 8) run of 8-bit arrays; a folder of RGB and one of grey PNGs."""
    tmp = tmp_path_factory.mktemp("r3")
    for name, c in (("grey", 1), ("colour", 3)):
        np.save(tmp / f"{name}.npy", RNG.integers(0, 256, (24, c, 8, 8)).astype(np.float32) / 255)
        assert main(train_argv(tmp / f"{name}.npy", tmp / f"{name}-run", "--hidden", "8", "--latent-dim", "2")) == 0
    pngs(tmp / "rgb", 10, 12, 3)
    pngs(tmp / "l", 10, 12)
    return tmp


@pytest.mark.parametrize(
    "run, folder, said",
    [
        ("grey-run", "rgb", "mode L: its 3 images stored in colour made grey"),
        ("colour-run", "l", "mode RGB: its 3 images stored grey made RGB (three equal channels)"),
    ],
)
def test_another_photo_folder_is_read_at_an_array_run_s_channels(array_runs, capsys, run, folder, said):
    out = array_runs / "o.csv"
    assert main(["anomaly", str(array_runs / run), "--data", str(array_runs / folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{folder}: 3 images made 8x8: 3 cropped to their aspect ratio; {said}\n" in err
    assert len(out.read_text().splitlines()) == 4  # a header and the 3 items
    # beside the run's own file (--in: its test split), as the usual out-of-distribution check reads them
    assert main(["anomaly-eval", str(array_runs / run), "--ood", str(array_runs / folder), "--score", "kl"]) == 0
    assert "2 in-distribution vs 3 out-of-distribution items" in capsys.readouterr().out


def test_a_mirror_of_another_scheme_fails_before_the_network(server, tmp_path, monkeypatch, capsys):
    base, requests, www = server
    (www / "f.gz").write_bytes(b"bytes")
    looked_up = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: looked_up.append(host) or real(host, *a, **k))
    sha = hashlib.sha256(b"bytes").hexdigest()
    assert download(["ftp://x/f.gz", "gopher://y/f.gz", base + "f.gz"], "f.gz", sha, tmp_path / "c").is_file()
    said = capsys.readouterr().err
    for url in ("ftp://x/f.gz", "gopher://y/f.gz"):
        assert f"{url}: not an http(s):// or file:// URL, nor an absolute folder; trying the next mirror" in said
    assert looked_up == ["127.0.0.1"] and requests == ["/f.gz"]


def offline(host: str):
    """socket.getaddrinfo that finds no ``host``, as without a network."""
    real = socket.getaddrinfo

    def lookup(name, *args, **kwargs):
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(name, *args, **kwargs)

    return lookup


@pytest.mark.parametrize("reachable", [True, False])
def test_the_offline_line_names_no_mirror_that_refused(fake_mnist, dead_url, tmp_path, monkeypatch, reachable):
    monkeypatch.setattr(socket, "getaddrinfo", offline("mirror.test"))
    mirrors = ["ftp://x/", dead_url, *["http://mirror.test/"] * reachable]
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", ",".join(mirrors))
    with pytest.raises(VaekitError) as err:
        load_dataset("mnist", data_dir=str(tmp_path / "empty"))
    cache = tmp_path / "cache" / "mnist"
    said = str(err.value)
    searched = f"{tmp_path / 'empty'}, {tmp_path / 'no-system-copy'}, {cache}"  # the cache's folder too
    assert said.startswith(f"mnist: IDX files not found in {searched}: ")
    files = ", ".join(f"{stem}.gz" for stem in builtin.IDX_NAMES)
    where = " from http://mirror.test/" if reachable else ""
    assert f", or fetch {files}{where} into {cache}; the download failed: ftp://x/train-images" in said


def test_a_checksum_mismatch_on_two_mirrors_is_said_in_a_short_line(fake_mnist, tmp_path, monkeypatch, capsys):
    base, _ = fake_mnist
    www = tmp_path / "www"
    for part in ("a", "b"):  # another copy of the file: its bytes fail the checksum on both mirrors
        (www / part).mkdir()
        (www / part / "train-images-idx3-ubyte.gz").write_bytes(b"a re-compressed copy")
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", f"{base}a/,{base}b/")
    with pytest.raises(VaekitError) as err:
        load_dataset("mnist")
    said, noted = str(err.value), capsys.readouterr().err
    expected = builtin.SHA256["mnist"]["train-images-idx3-ubyte.gz"]
    assert f"checksum mismatch from {base}a/train-images-idx3-ubyte.gz: expected {expected}, got " in noted  # in full
    head, failed = said.split("; the download failed: ")
    assert "put the four IDX files" in head and not re.search("[0-9a-f]{64}", said)
    got = f"got {hashlib.sha256(b'a re-compressed copy').hexdigest()[:12]}..."
    a, b = (f"checksum mismatch from {base}{m}/train-images-idx3-ubyte.gz: " for m in "ab")
    assert failed == f"{a}expected {expected[:12]}..., {got}; {b}{got}"  # the expected checksum once
    assert len(failed) < 300, failed
