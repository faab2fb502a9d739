"""Opening a safetensors file by any name: safetensors refuses a path that is not UTF-8 (a name holding a surrogate,
as a byte-named folder is decoded), so such a file is read whole here and parsed by safetensors alone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from safetensors import safe_open
from safetensors.torch import load


@contextmanager
def open_tensors(path: Path) -> Iterator[SimpleNamespace]:
    """safe_open on ``path``; one it refuses (a name not UTF-8: a surrogate) is read whole here, parsed by safetensors
    alone (never a pickle), behind the same keys(), metadata() and get_tensor()."""
    if not re.search("[\ud800-\udfff]", str(path)):
        with safe_open(str(path), framework="pt") as f:
            yield f
        return
    data = path.read_bytes()
    tensors, n = load(data), int.from_bytes(data[:8], "little")  # a damaged file: load's SafetensorError
    meta = json.loads(data[8 : 8 + n]).get("__metadata__")  # the header, checked by load: a JSON object
    yield SimpleNamespace(keys=tensors.keys, metadata=lambda: meta, get_tensor=tensors.get)
