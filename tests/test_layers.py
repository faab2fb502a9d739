"""The architecture stays visible: imports point one way (import-linter), modules stay small, the CLI has one verb
table, and library errors name settings, never command-line flags."""

from __future__ import annotations

import ast
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


def _raised_texts(path: Path) -> list[tuple[int, str]]:
    """Each ``raise`` of a file and the text of every string in its exception, however its lines are split."""
    raises = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Raise) and n.exc is not None]
    strings = [
        [c.value for c in ast.walk(n.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str)] for n in raises
    ]
    return [(n.lineno, " ".join(texts)) for n, texts in zip(raises, strings)]


def test_library_errors_name_settings_not_flags():
    flagged = [
        f"{p.relative_to(PACKAGE)}:{line}"
        for p in PACKAGE.rglob("*.py")
        if "cli" not in p.parts
        for line, text in _raised_texts(p)
        if re.search(r"(^|[\"' (])--[a-z]", text)
    ]
    assert flagged == []
