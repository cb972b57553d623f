"""The one-way flow of imports: runner <- ledger <- stages <- audit <- gateledger.

Every `import` of every module (at any depth, function-level ones too) is read from the
source, so a forbidden arrow cannot hide inside a function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runner", "ledger", "stages", "audit", "gateledger")
FORBIDDEN = {
    "runner": {"ledger", "stages", "audit", "gateledger"},
    "ledger": {"stages", "audit", "gateledger"},
    "stages": {"audit", "gateledger"},
    "audit": {"gateledger"},
    "gateledger": set(),
}


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_points_up_the_layers(package):
    bad = []
    for path in modules(package):
        tree = ast.parse(path.read_text(), str(path))
        bad += [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for line, name in imported_packages(tree)
            if name in FORBIDDEN[package]
        ]
    assert modules(package) and not bad, bad


def test_gateledger_imports_at_module_level_only():
    """The front door and the CLI import what they use at the top (they are loaded lazily
    as a whole instead: `gateledger.__getattr__`)."""
    nested = []
    for path in modules("gateledger"):
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                nested += [
                    f"{path.relative_to(ROOT)}:{node.lineno} in {func.name}"
                    for node in ast.walk(func)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                ]
    assert not nested, nested


def test_no_ledger_cli_and_no_python_dash_m_ledger_left():
    assert not (ROOT / "ledger" / "cli").exists() and not (ROOT / "ledger" / "__main__.py").exists()
    texts = [
        ROOT / "README.md",
        ROOT / "dvc.yaml",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / ".ci").glob("*")),
    ]
    old = re.compile(r"python -m ledger\b|(?<![\w/])ledger/cli\b|ledger\.cli\b")
    stale = [str(p.relative_to(ROOT)) for p in texts if p.is_file() and old.search(p.read_text())]
    assert not stale, stale
