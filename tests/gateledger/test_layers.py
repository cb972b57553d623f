"""What the import-linter contracts (pyproject.toml) do not say: the front door imports at
module top only, and the command line lives in gateledger alone.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


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
