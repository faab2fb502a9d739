"""Start-up: --help, --version and argument errors answer without importing torch, scikit-learn or matplotlib;
``import vaekit`` loads each public name on first use; a Ctrl-C while a verb imports them is one line, exit 130."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import vaekit

HEAVY = ("torch", "sklearn", "matplotlib")
# runs ``python -m vaekit ARGS`` in this process (argv: STOP OUT ARGS...), a Ctrl-C arriving as module STOP is
# imported, then writes to OUT the exit code and which of HEAVY were imported
PROBE = f"""
import json, runpy, sys
stop, out, sys.argv = sys.argv[1], sys.argv[2], ["vaekit", *sys.argv[3:]]
class Stop:
    def find_spec(self, name, *args):
        if name == stop:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Stop())
try:
    runpy.run_module("vaekit", run_name="__main__")
except SystemExit as e:
    code = e.code
with open(out, "w") as f:
    json.dump({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}, f)
"""


def vaekit_cli(tmp_path, *argv, stop: str = "") -> tuple[int, list[str], str]:
    """(exit code, heavy modules imported, stderr) of ``python -m vaekit *argv`` in a fresh interpreter."""
    out = tmp_path / "probe.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, stop, str(out), *map(str, argv)], capture_output=True, text=True, timeout=120
    )
    assert out.exists(), done.stderr[-2000:]
    result = json.loads(out.read_text())
    return result["code"], result["loaded"], done.stderr


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["train", "--help"], 0),
        (["anomaly", "--help"], 0),  # its flags come from the anomaly scores' settings
        (["train", "--ouut", "x"], 2),
        (["traine"], 2),
        (["train", "--set", "train.lrr=1", "--out", "x"], 2),  # did you mean train.lr?
    ],
    ids=["help", "version", "train-help", "anomaly-help", "wrong-flag", "wrong-verb", "did-you-mean"],
)
def test_help_version_and_argument_errors_import_no_heavy_module(tmp_path, argv, code):
    got, loaded, err = vaekit_cli(tmp_path, *argv)
    assert (got, loaded) == (code, []), err[-2000:]
    assert code == 0 or (err.startswith("vaekit: error:") and len(err.splitlines()) == 1), err


@pytest.mark.parametrize("checkpoint", [False, True], ids=["new", "checkpointed"])
def test_a_ctrl_c_while_the_verb_imports_torch_is_one_line(tmp_path, checkpoint):
    run = tmp_path / "run"
    if checkpoint:  # the hint says how to go on, found without importing what was interrupted
        run.mkdir()
        (run / vaekit.files.CHECKPOINT).write_bytes(b"")
    code, _, err = vaekit_cli(tmp_path, "train", "--data", "digits", "--out", run, stop="torch")
    hint = f"; the last checkpoint is kept (continue with vaekit train --resume {run})" if checkpoint else ""
    assert (code, err) == (130, f"vaekit: interrupted{hint}\n")


def test_import_vaekit_is_light_and_the_api_needs_no_sklearn():
    probe = (
        "import sys, vaekit\n"
        f"first = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "import vaekit.api\n"
        f"print(first, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[] ['torch']"


def test_every_public_name_loads_on_first_use():
    from vaekit import DeepVAE, VAEAnomalyDetector, fit
    from vaekit.api import fit as api_fit
    from vaekit.evaluation.detector import VAEAnomalyDetector as Detector
    from vaekit.models import DeepVAE as Deep

    assert (fit, DeepVAE, VAEAnomalyDetector) == (api_fit, Deep, Detector)
    star: dict = {}
    exec("from vaekit import *", star)
    assert set(vaekit.__all__) <= set(star) and set(vaekit.__all__) <= set(dir(vaekit))
    assert {"data", "models", "__version__"} <= set(dir(vaekit))
    assert vaekit.data.load_dataset is vaekit.load_dataset  # subpackages too, as the eager import gave them
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        vaekit.no_such_name  # noqa: B018


def test_the_static_imports_for_type_checkers_name_each_public_name_from_its_home():
    tree = ast.parse(Path(vaekit.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    assert all(isinstance(node, ast.ImportFrom) and node.level == 1 for node in block.body)
    imports = [(a, node.module) for node in block.body for a in node.names]
    assert sorted(a.name for a, _ in imports) == vaekit.__all__  # every public name, once
    assert all(a.asname == a.name for a, _ in imports)  # ``X as X``: re-exported for a type checker
    assert {a.name: module for a, module in imports} == vaekit._HOME  # each from the module it loads from
