"""The packages import at module top, so a cycle shows up as an error instead of hiding.

Why: a function-level import of one of our modules usually papers over an import cycle
(`stages.decide` and `stages.baselines` once imported each other that way). The exceptions are
heavy or optional third-party modules whose start-up cost was measured; each says why in a
comment on its line or the line above. The direction of the layers and the absence of cycles
are import-linter contracts in pyproject.toml (`lint-imports`, run by .ci/check); the test
here shows they refuse what they should.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runner", "ledger", "stages", "audit", "gateledger")
HEAVY = (
    "torch",
    "ray",
    "matplotlib",
    "optuna",
    "statsmodels",
    "pandas",
    "tqdm",
    "duckdb",
    "scipy.stats",
    "jsonschema",  # 80 ms (python -X importtime), only for campaigns with a config_schema
    "audit.plots",
    "runner.train",
)


def _sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Full module names an import statement loads (`from audit import plots` -> audit.plots)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.module in PACKAGES:
        return [f"{node.module}.{alias.name}" for alias in node.names]
    return [node.module or ""]


def _is_heavy(name: str) -> bool:
    return any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)


def function_level_imports(path: Path) -> list[tuple[int, list[str], bool]]:
    """(line, modules, commented) of every import inside a function of `path`."""
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import | ast.ImportFrom):
                line, above = lines[sub.lineno - 1], lines[sub.lineno - 2].strip()
                commented = "#" in line or above.startswith("#")
                found.append((sub.lineno, _imported(sub), commented))
    return found


def test_function_level_imports_are_heavy_modules_with_a_reason():
    bad = []
    for path in _sources():
        for line, modules, commented in function_level_imports(path):
            if not all(_is_heavy(m) for m in modules) or not commented:
                bad.append(
                    f"{path.relative_to(ROOT)}:{line} {', '.join(modules)}"
                    + ("" if commented else " (no comment saying why)")
                )
    assert not bad, "function-level imports to hoist or justify:\n" + "\n".join(bad)


def test_the_scan_sees_a_hidden_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from stages.decide import derive_decision\n\n\n"
        "def g():\n    # statsmodels: slow\n    import statsmodels.api\n"
    )
    found = function_level_imports(source)
    assert found == [(2, ["stages.decide"], False), (7, ["statsmodels.api"], True)]


def _import_contracts() -> str:
    """The `[tool.importlinter]` tables of pyproject.toml, as written there."""
    text = (ROOT / "pyproject.toml").read_text()
    return text[text.index("[tool.importlinter]") :]


def _tree(root: Path, modules: dict[str, str]) -> None:
    """Packages `runner` ... `gateledger` under `root`, with the given module sources."""
    for package in PACKAGES:
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for name, source in modules.items():
        (root / (name.replace(".", "/") + ".py")).write_text(source)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    (root / "pyproject.toml").write_text(_import_contracts())
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_layer_contracts_refuse_an_arrow_up_and_a_cycle(tmp_path):
    """pyproject.toml's contracts (what `lint-imports` checks in .ci/check) against a toy
    tree: clean, then a ledger module importing stages, then two stages modules importing
    each other (inside a function, where no hand-written scan of module tops looked)."""
    clean = tmp_path / "clean"
    clean.mkdir()
    _tree(clean, {"ledger.a": "import runner\n", "stages.a": "import ledger.a\n"})
    assert lint_imports(clean).returncode == 0
    up = tmp_path / "up"
    up.mkdir()
    _tree(up, {"ledger.a": "def f():\n    import stages.a\n", "stages.a": ""})
    result = lint_imports(up)
    assert result.returncode == 1 and "ledger.a -> stages.a" in result.stdout, result.stdout
    cycle = tmp_path / "cycle"
    cycle.mkdir()
    _tree(cycle, {"stages.a": "import stages.b\n", "stages.b": "def f():\n    import stages.a\n"})
    result = lint_imports(cycle)
    assert result.returncode == 1 and "No cycles are allowed in stages" in result.stdout
