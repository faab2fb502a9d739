"""Property-based fuzz of the parsers users feed: the IDX reader and the config / flag parser.

Each either returns something well formed or raises VaekitError (one line at the CLI), never another exception.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
import tracemalloc
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.cli import FLAGS, build_parser, train_config
from vaekit.config import (
    SECTIONS,
    RunConfig,
    load_json_config,
    load_toml,
    set_value,
    validate,
)
from vaekit.data import load_dataset, read_idx
from vaekit.data.idx import IDX_DTYPES
from vaekit.errors import VaekitError

FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
MAX_PEAK = 64 << 20  # a reader that trusts a header would allocate far more than this


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    """One folder per module: hypothesis runs many examples in one test call."""
    return tmp_path_factory.mktemp("fuzz")


def idx_file(shape: tuple[int, ...], code: int, seed: int) -> bytes:
    dtype = np.dtype(IDX_DTYPES[code])
    data = np.random.default_rng(seed).integers(0, 100, size=shape).astype(dtype)
    return b"\x00\x00" + bytes([code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data.tobytes()


@st.composite
def mutated_idx(draw) -> bytes:
    """A valid IDX file (raw or gzipped), then bytes flipped, cut or appended (before or after gzip)."""
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=4)))
    raw = idx_file(shape, draw(st.sampled_from(sorted(IDX_DTYPES))), draw(st.integers(0, 9)))
    gz_first = draw(st.booleans())
    if gz_first and draw(st.booleans()):
        raw = gzip.compress(raw)
    buf = bytearray(raw)
    for _ in range(draw(st.integers(0, 3))):
        op, at = draw(st.sampled_from(["flip", "cut", "append"])), draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del buf[at:]
        else:
            buf += draw(st.binary(max_size=8))
    return gzip.compress(bytes(buf)) if not gz_first and draw(st.booleans()) else bytes(buf)


def read_checked(tmp: Path, blob: bytes) -> None:
    """read_idx (and the load_dataset dispatch) on ``blob``: a well-formed array or a VaekitError, small peak memory."""
    path = tmp / "fuzz-images-idx3-ubyte"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        x = read_idx(path)
    except VaekitError:
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MAX_PEAK, f"{peak} bytes allocated for a {len(blob)}-byte file"
    raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    ndim, dtype = raw[3], np.dtype(IDX_DTYPES[raw[2]])
    assert x.shape == struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim]) and x.dtype == dtype.newbyteorder("=")
    assert len(raw) == 4 + 4 * ndim + x.nbytes
    try:
        data = load_dataset(str(path))
    except VaekitError:
        return
    assert len(data.train) + len(data.val) + len(data.test) > 0


@FUZZ
@given(st.binary(max_size=200))
def test_idx_reader_on_arbitrary_bytes(tmp, blob):
    read_checked(tmp, blob)
    read_checked(tmp, b"\x00\x00" + blob)  # past the magic check, into the header


@FUZZ
@given(mutated_idx())
def test_idx_reader_on_mutated_files(tmp, blob):
    read_checked(tmp, blob)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**400), 10**400)
    | st.integers(-3, 300)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["1", "0.5", "-2", "none", "mlp", "1,2", "nan"])
)


def nest(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)


JSON = st.recursive(JSON_SCALARS, nest, max_leaves=6)
KEYS = {s: [f.name for f in fields(getattr(RunConfig(), s))] for s in SECTIONS}
SECTION = st.dictionaries(
    st.sampled_from(sorted({k for ks in KEYS.values() for k in ks})) | st.text(max_size=4), JSON, max_size=4
)
CONFIG_DICT = (
    st.dictionaries(st.sampled_from([*SECTIONS, "out"]) | st.text(max_size=4), SECTION | JSON, max_size=4) | JSON
)


def check_config(cfg: RunConfig) -> None:
    """validate accepts or refuses; an accepted config saves as config.json and reads back the same."""
    try:
        validate(cfg)
    except VaekitError:
        return
    text = json.dumps(cfg.to_dict(), allow_nan=False)
    assert RunConfig.from_dict(json.loads(text)) == cfg


@FUZZ
@given(CONFIG_DICT)
def test_config_from_dict_accepts_or_refuses(d):
    try:
        cfg = RunConfig.from_dict(d)
    except VaekitError:
        return
    assert isinstance(cfg, RunConfig)
    check_config(cfg)


@FUZZ
@given(st.text(max_size=60) | CONFIG_DICT.map(json.dumps), st.booleans())
def test_config_files_accept_or_refuse(tmp, text, toml):
    path = tmp / ("fuzz.toml" if toml else "config.json")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = RunConfig.from_dict(load_toml(path)) if toml else load_json_config(path)
    except VaekitError:
        return
    check_config(cfg)


SET_KEYS = st.sampled_from([f"{s}.{k}" for s, ks in KEYS.items() for k in ks] + ["out"]) | st.text(max_size=12)
VALUES = st.text(max_size=12) | st.sampled_from(["0", "-1", "1e400", "nan", "inf", "1,2", ",", "none", "true", "3"])


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(sorted(FLAGS)), VALUES), max_size=3),
    st.lists(st.tuples(SET_KEYS, VALUES), max_size=2),
    st.sampled_from([None, "mlp", "conv", "vae", "x"]),
)
def test_flags_and_set_accept_or_refuse(flags, sets, model):
    argv = ["train", *[f"--{f.replace('_', '-')}={v}" for f, v in flags], *[f"--set={k}={v}" for k, v in sets]]
    argv += [f"--model={model}"] if model else []
    try:
        cfg = validate(train_config(build_parser().parse_args(argv)))
    except VaekitError:
        return
    except SystemExit:  # argparse must never exit the process on its own
        pytest.fail(f"argparse exited on {argv}")
    check_config(cfg)
    assert all(math.isfinite(getattr(cfg.train, f.name)) for f in fields(cfg.train) if f.type == "float")


@FUZZ
@given(SET_KEYS, JSON)
def test_set_value_accepts_or_refuses(key, value):
    cfg = RunConfig()
    try:
        set_value(cfg, key, value)
    except VaekitError:
        return
    check_config(cfg)


@pytest.mark.parametrize("value", ["1,2", "[1,2]", " [1, 2] ", [1, 2]])
def test_lists_are_set_with_or_without_brackets(value):
    cfg = RunConfig()
    set_value(cfg, "model.deep_groups", value)
    assert cfg.model.deep_groups == [1, 2]
