"""The architecture stays visible: imports point one way (import-linter), modules stay small, the CLI has one verb
table, and library errors name settings, never command-line flags."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

import vaekit

PACKAGE = Path(vaekit.__file__).parent
ROOT = PACKAGE.parents[1]


@pytest.mark.skipif(find_spec("importlinter") is None, reason="needs import-linter (pip install 'vaekit[test]')")
def test_the_layer_contracts_hold():
    lint = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    result = subprocess.run([sys.executable, "-c", lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout[-2000:]


def test_modules_stay_small_and_the_cli_declares_each_verb_once():
    sizes = {p.relative_to(PACKAGE): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 320, max(sizes.items(), key=lambda kv: kv[1])
    cli = "\n".join(p.read_text() for p in (PACKAGE / "cli").glob("*.py"))
    assert "add_parsers" not in cli and "COMMANDS" not in cli and cli.count("VERBS: dict") == 1


def test_library_errors_name_settings_not_flags():
    flagged = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in PACKAGE.rglob("*.py")
        if "cli" not in p.parts
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "Error(" in line and re.search(r"[\"' (]--[a-z]", line)
    ]
    assert flagged == []
