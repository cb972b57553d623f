"""The packages import at module top, so a cycle shows up as an error instead of hiding.

Why: a function-level import of one of our modules usually papers over an import cycle
(`stages.decide` and `stages.baselines` once imported each other that way). The exceptions are
heavy or optional third-party modules whose start-up cost was measured; each says why in a
comment on its line or the line above. (The direction of the layers is
tests/gateledger/test_layers.py.)
"""

from __future__ import annotations

import ast
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


def _module_names() -> dict[str, Path]:
    names = {}
    for path in _sources():
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def module_graph() -> dict[str, set[str]]:
    """Our modules and those of ours each imports at module top (a package counts as its
    `__init__`)."""
    modules = _module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for imported in _imported(node):
                    while imported and imported not in modules:
                        imported = imported.rpartition(".")[0]
                    if imported and imported != name:
                        targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle found by depth-first search, each as the path that closes it."""
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycles_between_our_modules():
    assert cycles(module_graph()) == []


def test_the_cycle_check_sees_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
