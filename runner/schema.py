"""JSON schemas of the raw log's four line types, and a dependency-free ``validate_log``.

The schemas are plain JSON-Schema (draft 2020-12) dicts so other tools (and the tests,
with the ``jsonschema`` package) can check logs; ``validate_log`` implements just the
subset used here, keeping the runner free of extra dependencies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config import ABSENT_MEANS, DEFAULTS

NUM = {"type": "number"}
NUM_OR_NULL = {"type": ["number", "null"]}
NONNEG = {"type": "number", "minimum": 0}
COUNT = {"type": "integer", "minimum": 0}
SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
STATUSES = ["ok", "diverged", "crashed", "timeout"]
# A run is `diverged` when a step's loss is non-finite (logged as null) or above this multiple
# of its first step's loss; auditors apply the same rule to the step lines as evidence.
DIVERGE_FACTOR = 3.0

_CONFIG_PROPS: dict[str, Any] = {
    k: (
        {"type": "boolean"}
        if isinstance(v, bool)
        else {"type": "string"}
        if isinstance(v, str)
        else {"type": "array", "items": NUM, "minItems": 2, "maxItems": 2}
        if isinstance(v, list)
        else {"type": "integer"}
        if isinstance(v, int)
        else NUM
    )
    for k, v in DEFAULTS.items()
}

HEADER: dict[str, Any] = {
    "type": "object",
    # keys added later are optional: a log written before one existed ran with ABSENT_MEANS
    # (`effective_seed` and `seed_inputs` too: the ledger requires them where a seed rule does)
    "required": [
        "type",
        *(k for k in DEFAULTS if k not in ABSENT_MEANS),
        "seed",
        "budget_s",
        "device",
        "host",
        "torch",
        "runner",
        "runner_version",
        "code_sha256",
        "data_sha256",
        "manifest",
        "started_at",
        "threads",
        "steps",
    ],
    "properties": {
        "type": {"const": "header"},
        **_CONFIG_PROPS,
        "seed": {"type": "integer"},
        "effective_seed": {"type": "integer"},  # = seed; `seed_inputs` say where it came from
        "seed_inputs": {
            "type": ["object", "null"],
            "required": ["manifest", "condition", "seed"],
            "properties": {
                "manifest": {"type": "string"},
                "condition": {"type": "string"},
                "seed": {"type": "integer"},
            },
        },
        "budget_s": {"type": "number", "exclusiveMinimum": 0},
        "device": {"type": "string"},
        "host": {"type": "string"},
        "machine": {"type": "string"},
        "torch": {"type": "string"},
        "runner": {"type": "string"},
        "runner_version": {"type": "string"},
        "code_sha256": SHA,
        "data_sha256": SHA,
        "manifest": {"type": ["string", "null"]},
        "started_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "threads": {"type": "integer", "minimum": 1},
        "steps": {"type": ["integer", "null"], "minimum": 1},
    },
}

STEP: dict[str, Any] = {
    "type": "object",
    "required": ["type", "step", "train_seconds", "loss", "lr", "tokens"],
    "properties": {
        "type": {"const": "step"},
        "step": {"type": "integer", "minimum": 1},
        "train_seconds": NONNEG,
        "loss": NUM_OR_NULL,
        "lr": NONNEG,
        "tokens": COUNT,
    },
}

EVAL: dict[str, Any] = {
    "type": "object",
    "required": ["type", "val_bpb", "eval_tokens", "eval_bytes"],
    "properties": {
        "type": {"const": "eval"},
        "val_bpb": NONNEG,
        "eval_tokens": COUNT,
        "eval_bytes": COUNT,
    },
}

SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": [
        "type",
        "status",
        "val_bpb",
        "training_seconds",
        "total_seconds",
        "num_steps",
        "total_tokens",
        "num_params",
        "peak_mem_mb",
        "tokens_per_s",
        "mfu",
        "warmup_seconds",
        "eval_seconds",
    ],
    "properties": {
        "type": {"const": "summary"},
        "status": {"enum": STATUSES},
        "val_bpb": {"type": ["number", "null"], "minimum": 0},
        "training_seconds": NONNEG,
        "total_seconds": NONNEG,
        "num_steps": COUNT,
        "total_tokens": COUNT,
        "num_params": COUNT,
        "peak_mem_mb": {"type": ["number", "null"], "minimum": 0},
        "tokens_per_s": {"type": ["number", "null"], "minimum": 0},
        "mfu": {"type": ["number", "null"], "minimum": 0},
        "warmup_seconds": NONNEG,
        "eval_seconds": NONNEG,
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "header": HEADER,
    "step": STEP,
    "eval": EVAL,
    "summary": SUMMARY,
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
_UNSET: Any = object()  # `const` absent (a const may be any value, null included)


@dataclass(frozen=True)
class Node:
    """One schema of the subset used above, compiled once: each keyword `errors` checks, as
    a field (absent keywords keep their defaults, which check nothing)."""

    type: tuple[str, ...] | None = None
    const: Any = _UNSET
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    pattern: str | None = None
    min_items: int = 0
    max_items: int | None = None
    items: Node | None = None
    required: tuple[str, ...] = ()
    properties: dict[str, Node] = field(default_factory=dict)


_KEYWORDS = {
    "type": "type",
    "const": "const",
    "enum": "enum",
    "minimum": "minimum",
    "exclusiveMinimum": "exclusive_minimum",
    "pattern": "pattern",
    "minItems": "min_items",
    "maxItems": "max_items",
    "items": "items",
    "required": "required",
    "properties": "properties",
}


def compile_schema(schema: dict[str, Any]) -> Node:
    """A JSON Schema dict of the subset above as a `Node` (ValueError: another keyword)."""
    fields: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword not in _KEYWORDS:
            raise ValueError(f"schema keyword {keyword!r} is not in the subset `errors` checks")
        if keyword == "items":
            value = compile_schema(value)
        elif keyword == "properties":
            value = {k: compile_schema(v) for k, v in value.items()}
        elif keyword == "type":
            value = (value,) if isinstance(value, str) else tuple(value)
        elif keyword in ("enum", "required"):
            value = tuple(value)
        fields[_KEYWORDS[keyword]] = value
    return Node(**fields)


def errors(value: Any, schema: Node, where: str = "") -> list[str]:
    """Problems of ``value`` against a compiled schema of the subset used above."""
    out: list[str] = []
    if schema.type is not None and not any(_TYPES[t](value) for t in schema.type):
        return [f"{where or 'value'}: expected {'/'.join(schema.type)}, got {json.dumps(value)}"]
    if schema.const is not _UNSET and value != schema.const:
        out.append(f"{where}: expected {schema.const!r}")
    if schema.enum is not None and value not in schema.enum:
        out.append(f"{where}: {value!r} not one of {list(schema.enum)}")
    if _TYPES["number"](value):
        if schema.minimum is not None and value < schema.minimum:
            out.append(f"{where}: {value} < {schema.minimum}")
        if schema.exclusive_minimum is not None and value <= schema.exclusive_minimum:
            out.append(f"{where}: {value} <= {schema.exclusive_minimum}")
    if (
        isinstance(value, str)
        and schema.pattern is not None
        and not re.search(schema.pattern, value)
    ):
        out.append(f"{where}: {value!r} does not match {schema.pattern}")
    if isinstance(value, list):
        too_many = schema.max_items is not None and len(value) > schema.max_items
        if len(value) < schema.min_items or too_many:
            out.append(f"{where}: wrong number of items")
        if schema.items is not None:
            out += [
                e for i, x in enumerate(value) for e in errors(x, schema.items, f"{where}[{i}]")
            ]
    if isinstance(value, dict):
        out += [
            f"{where}.{k}: missing" if where else f"{k}: missing"
            for k in schema.required
            if k not in value
        ]
        for k, sub in schema.properties.items():
            if k in value:
                out += errors(value[k], sub, f"{where}.{k}" if where else k)
    return out


COMPILED: dict[str, Node] = {kind: compile_schema(s) for kind, s in SCHEMAS.items()}


def validate_log(path: str | Path) -> list[dict[str, Any]]:
    """Parse and check a raw log; return its records or raise ValueError naming the line.

    Besides each line's schema it checks the order: one header first, steps, at most one
    eval, one summary last.
    """
    records: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not strict JSON ({e})") from None
        kind = rec.get("type") if isinstance(rec, dict) else None
        if kind not in SCHEMAS:
            raise ValueError(f"{path}:{n}: unknown line type {kind!r}")
        problems = errors(rec, COMPILED[kind])
        if problems:
            raise ValueError(f"{path}:{n}: {kind}: {problems[0]}")
        records.append(rec)
    kinds = [r["type"] for r in records]
    if not kinds or kinds[0] != "header" or kinds.count("header") != 1:
        raise ValueError(f"{path}: the first and only header must be line 1")
    if kinds.count("summary") != 1 or kinds[-1] != "summary":
        raise ValueError(f"{path}: exactly one summary must be the last line")
    if kinds.count("eval") > 1:
        raise ValueError(f"{path}: more than one eval line")
    return records
