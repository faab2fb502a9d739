"""What a pip user gets: every data file of the package is package data (presets, the explorer's page, the
py.typed marker), the version has one source, the licence and the sdist's contents are declared, and a
feature behind an extra names the extra."""

from __future__ import annotations

import fnmatch
import importlib.util
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest
import torch

from vaekit.errors import VaekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE = ROOT / "src" / "vaekit"


def test_every_data_file_of_the_package_is_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["vaekit"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".pyc"]
    left_out = [f for f in data if not f.endswith(".py") and not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert left_out == []
    assert {"configs/demo.toml", "configs/deep-mnist.toml", "py.typed"} <= set(data)


def test_the_package_says_it_is_typed():
    marker = resources.files("vaekit") / "py.typed"
    assert marker.is_file() and marker.read_text() == ""  # PEP 561: an empty marker, for the whole package


def test_the_version_has_one_source_read_without_importing_torch():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vaekit.__version__"}
    read = (
        "import sys; sys.modules['torch'] = None; from setuptools.config.expand import read_attr; "
        "print(read_attr('vaekit.__version__', {'': 'src'}, '.'))"
    )  # as setuptools builds the wheel: the assignment read from the source, torch unimportable
    done = subprocess.run([sys.executable, "-c", read], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == metadata.version("vaekit") == "0.1.0", done.stderr[-2000:]


def test_the_licence_is_an_spdx_expression_with_its_file_and_the_sdist_is_whole():
    assert PYPROJECT["project"]["license"] == "MIT" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the vaekit authors" in text
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
    assert {"graft tests", "graft examples", "graft src/vaekit"} <= set(manifest)
    assert {"LICENSE", "constraints.txt"} <= {
        w for line in manifest if line.startswith("include ") for w in line.split()
    }
    assert "quality" in PYPROJECT["project"]["optional-dependencies"]


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity is installed")
def test_inception_features_without_torch_fidelity_name_the_extra(tmp_path):
    from vaekit.evaluation.features import InceptionFeatures

    torch.save({}, tmp_path / "pt_inception.pth")  # a weights file; what builds the network is missing
    with pytest.raises(VaekitError, match=r"^Inception features need torch-fidelity: pip install 'vaekit\[quality\]'$"):
        InceptionFeatures(tmp_path / "pt_inception.pth")
