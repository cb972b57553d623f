"""Run an autoresearch-shaped training script unchanged, its constants set for one run.

autoresearch's ``train.py`` takes no flags: its hyperparameters are module-level constants
(``DEPTH = 8``, ``MATRIX_LR = 0.04``), its budget is ``TIME_BUDGET`` (imported from
``prepare.py``), its seed a literal (``torch.manual_seed(42)``), and it ends by printing a
``---`` summary block. This launcher never edits the file: it parses the source, replaces
the constants named by the run's config (``matrix_lr`` -> ``MATRIX_LR`` unless a mapping
says otherwise), binds ``TIME_BUDGET`` to the run's budget, replaces the integer literal of
every seeding call (``manual_seed``, ``seed``, ``default_rng``, ...) and a ``SEED`` constant
with the run's effective seed, and executes the result as ``__main__`` in the script's
folder. Before the script prints anything it writes one JSON header line to stdout: the
script's SHA-256, the overrides, the config, seed, budget, manifest and host, so the log
binds the run the way the builtin runner's header does.

Standalone (standard library only): the ledger runs it by path, with the interpreter the
campaign names (the script's own environment), e.g.
``python runner/autoresearch.py --script train.py --config c.json --budget 300 --seed 7``.
Exit 2 (one ``error:`` line) when the script cannot be adapted; otherwise the script's own.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import types
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ADAPTER = "autoresearch-adapter"
ADAPTER_VERSION = "1"
BUDGET_CONSTANT = "TIME_BUDGET"
SEED_CONSTANT = "SEED"
# Calls whose first argument, an integer literal, is a seed: torch, numpy, random, JAX, MLX.
SEED_CALLS = ("manual_seed", "manual_seed_all", "seed", "set_seed", "default_rng", "PRNGKey")
# Header fields the launcher writes itself: a config key may not be one of them.
HEADER_FIELDS = (
    "type",
    "runner",
    "adapter_version",
    "script",
    "script_sha256",
    "overrides",
    "seed_sites",
    "seed",
    "effective_seed",
    "seed_inputs",
    "budget_s",
    "manifest",
    "host",
    "started_at",
    "python",
)


class AdapterError(Exception):
    """The script cannot be adapted as asked (exit 2)."""


@dataclass(frozen=True)
class ScriptShape:
    """What of a script the adapter can set: its module-level names and its seed sites."""

    constants: dict[str, int] = field(default_factory=dict)  # assigned at module level: line
    imported: dict[str, int] = field(default_factory=dict)  # bound by a module-level import
    seed_sites: tuple[str, ...] = ()  # "line 12: torch.manual_seed(42)"

    @property
    def binds_budget(self) -> bool:
        return BUDGET_CONSTANT in self.constants or BUDGET_CONSTANT in self.imported


def constant_name(key: str, mapping: dict[str, str] | None = None) -> str:
    """The module constant a config key sets: the mapping's, else the key in upper case."""
    return (mapping or {}).get(key, key.upper())


def script_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _call_name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def _is_seed_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    name = _call_name(node.func).rsplit(".", 1)[-1]
    first = node.args[0]
    return name in SEED_CALLS and isinstance(first, ast.Constant) and type(first.value) is int


def _bound_names(stmt: ast.stmt) -> list[str]:
    """Names a module-level statement assigns as constants (`X = ...`, `X: int = ...`)."""
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return [stmt.target.id]
    return []


def _imported_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.ImportFrom | ast.Import):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    return []


def parse_script(source: str, filename: str) -> ast.Module:
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise AdapterError(f"{filename}: not valid Python: {exc.msg} (line {exc.lineno})") from None


def script_shape(source: str, filename: str = "train.py") -> ScriptShape:
    """The module-level constants, imports and seed sites of a script's source."""
    tree = parse_script(source, filename)
    constants: dict[str, int] = {}
    imported: dict[str, int] = {}
    for stmt in tree.body:
        for name in _bound_names(stmt):
            constants.setdefault(name, stmt.lineno)
        for name in _imported_names(stmt):
            imported.setdefault(name, stmt.lineno)
    sites = [
        f"line {node.lineno}: {_call_name(node.func)}({node.args[0].value})"  # type: ignore[attr-defined]
        for node in ast.walk(tree)
        if _is_seed_call(node)
    ]
    if SEED_CONSTANT in constants:
        sites.append(f"line {constants[SEED_CONSTANT]}: {SEED_CONSTANT} constant")
    return ScriptShape(constants, imported, tuple(sorted(sites, key=_line_of)))


def _line_of(site: str) -> int:
    return int(site.split(":", 1)[0].removeprefix("line "))


def shape_problems(shape: ScriptShape, constants: list[str], filename: str) -> list[str]:
    """Why a script cannot take these constants, its budget and a seed (empty: it can)."""
    out = []
    known = ", ".join(sorted(n for n in shape.constants if n.isupper())) or "none"
    for name in constants:
        if name not in shape.constants:
            out.append(
                f"{filename} has no module-level constant {name} to set "
                f"(its upper-case constants: {known})"
            )
    if not shape.binds_budget:
        out.append(
            f"{filename} binds no {BUDGET_CONSTANT} at module level (neither assigned nor "
            f"imported), so the run's budget cannot be set"
        )
    if not shape.seed_sites:
        out.append(
            f"{filename} seeds nothing the adapter can set: no {SEED_CONSTANT} constant and "
            f"no call like torch.manual_seed(42) with an integer literal"
        )
    return out


def _literal(value: Any, like: ast.expr | None = None) -> ast.expr:
    """A JSON value as an expression; a list becomes a tuple where the script had one."""
    if isinstance(value, list):
        elts = [_literal(v) for v in value]
        if isinstance(like, ast.Tuple):
            return ast.Tuple(elts=elts, ctx=ast.Load())
        return ast.List(elts=elts, ctx=ast.Load())
    if isinstance(value, dict):
        return ast.Dict(
            keys=[ast.Constant(k) for k in value], values=[_literal(v) for v in value.values()]
        )
    return ast.Constant(value)


class _SeedSetter(ast.NodeTransformer):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _is_seed_call(node):
            node.args[0] = ast.copy_location(ast.Constant(self.seed), node.args[0])
        return node


def adapt(source: str, filename: str, overrides: dict[str, Any], seed: int) -> ast.Module:
    """The script's module with `overrides` (constant -> value, `TIME_BUDGET` included)
    assigned where the script binds them, and every seed site set to `seed`."""
    tree = parse_script(source, filename)
    body: list[ast.stmt] = []
    for stmt in tree.body:
        names = _bound_names(stmt)
        value = getattr(stmt, "value", None)
        for name in names:
            if name in overrides:
                stmt.value = ast.copy_location(_literal(overrides[name], value), value)  # type: ignore[attr-defined]
        if SEED_CONSTANT in names and SEED_CONSTANT not in overrides:
            stmt.value = ast.copy_location(ast.Constant(seed), value)  # type: ignore[attr-defined]
        body.append(stmt)
        for name in _imported_names(stmt):
            if name in overrides:
                assign = ast.Assign(
                    targets=[ast.Name(id=name, ctx=ast.Store())],
                    value=_literal(overrides[name]),
                )
                body.append(ast.copy_location(assign, stmt))
    tree.body = body
    tree = _SeedSetter(seed).visit(tree)
    return ast.fix_missing_locations(tree)


def budget_value(seconds: float) -> int | float:
    """What `TIME_BUDGET` is set to: an integer when the budget is whole seconds."""
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def header(
    *,
    script: str,
    sha256: str,
    config: dict[str, Any],
    overrides: dict[str, Any],
    seed_sites: tuple[str, ...],
    seed: int,
    seed_inputs: dict[str, Any] | None,
    budget_s: float,
    manifest: str | None,
    host: str,
) -> dict[str, Any]:
    """The header line: what this run was given, written before the script runs."""
    return {
        "type": "header",
        **config,
        "runner": ADAPTER,
        "adapter_version": ADAPTER_VERSION,
        "script": script,
        "script_sha256": sha256,
        "overrides": overrides,
        "seed_sites": list(seed_sites),
        "seed": seed,
        "effective_seed": seed,
        "seed_inputs": seed_inputs,
        "budget_s": float(budget_s),
        "manifest": manifest,
        "host": host,
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # noqa: UP017 (any Python 3)
        "python": sys.version.split()[0],
    }


def _seed_from(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(
            f"--seed-from must be MANIFEST:CONDITION:SEED, not {text!r}"
        )
    return {"manifest": parts[0], "condition": parts[1], "seed": int(parts[2])}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="autoresearch-adapter", description=__doc__.splitlines()[0])
    p.add_argument("--script", required=True, help="the training script, run unchanged")
    p.add_argument("--config", required=True, help="JSON file: config key -> value")
    p.add_argument("--budget", required=True, type=float, help="training seconds")
    p.add_argument("--seed", required=True, type=int, help="the run's (effective) seed")
    p.add_argument("--seed-from", type=_seed_from, default=None, help="MANIFEST:CONDITION:SEED")
    p.add_argument("--manifest", default=None, help="the manifest id the header cites")
    p.add_argument("--host", default="local", help="the cell's host name")
    p.add_argument("--constants", default=None, help="JSON: config key -> constant name")
    p.add_argument("--expect-sha256", default=None, help="refuse a script with another hash")
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[dict[str, Any], ast.Module, Path]:
    """Check the script against what the run asks; return the header, the adapted module
    and the script's path (AdapterError, one line, when it cannot be done)."""
    script = Path(args.script)
    try:
        source = script.read_bytes()
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        mapping = json.loads(args.constants) if args.constants else {}
    except (OSError, ValueError) as exc:
        raise AdapterError(f"cannot read the run's inputs: {exc}") from None
    digest = hashlib.sha256(source).hexdigest()
    if args.expect_sha256 and digest != args.expect_sha256:
        raise AdapterError(
            f"{script} changed since the manifest was frozen (SHA-256 {digest[:12]}, "
            f"frozen {args.expect_sha256[:12]}): restore it, or freeze a new plan"
        )
    if not 0 <= args.seed <= 2**32 - 1:
        raise AdapterError(f"--seed {args.seed} is outside [0, 2**32-1]")
    text = source.decode("utf-8")
    shape = script_shape(text, str(script))
    overrides = {constant_name(k, mapping): v for k, v in sorted(config.items())}
    problems = shape_problems(shape, list(overrides), str(script))
    if problems:
        raise AdapterError("; ".join(problems))
    overrides[BUDGET_CONSTANT] = budget_value(args.budget)
    tree = adapt(text, str(script), overrides, args.seed)
    head = header(
        script=str(args.script),
        sha256=digest,
        config=config,
        overrides=overrides,
        seed_sites=shape.seed_sites,
        seed=args.seed,
        seed_inputs=args.seed_from,
        budget_s=args.budget,
        manifest=args.manifest,
        host=args.host,
    )
    return head, tree, script.resolve()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        head, tree, script = prepare(args)
        code = compile(tree, str(script), "exec")
    except AdapterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(head, sort_keys=True) + "\n")
    sys.stdout.flush()
    _run_as_main(code, script)
    return 0


def _run_as_main(code: Any, script: Path) -> None:
    """Execute as `python script` would, in the script's folder: a fresh `__main__` module,
    the script's folder first on sys.path (never this launcher's, whose modules would shadow
    the script's own `model` or `data`)."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    sys.path.insert(0, str(script.parent))
    os.chdir(script.parent)
    sys.argv = [str(script)]
    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


if __name__ == "__main__":
    sys.exit(main())
