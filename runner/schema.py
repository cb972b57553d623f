"""JSON schemas of the raw log's four line types, and a dependency-free ``validate_log``.

The schemas are plain JSON-Schema (draft 2020-12) dicts so other tools (and the tests,
with the ``jsonschema`` package) can check logs; ``validate_log`` implements just the
subset used here, keeping the runner free of extra dependencies.
"""

from __future__ import annotations

import json
import re
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


def errors(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Problems of ``value`` against the subset of JSON Schema used above."""
    out: list[str] = []
    types = schema.get("type")
    if types is not None:
        tlist = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in tlist):
            return [f"{where or 'value'}: expected {'/'.join(tlist)}, got {json.dumps(value)}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not one of {schema['enum']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: {value} < {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{where}: {value} <= {schema['exclusiveMinimum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get(
            "maxItems", len(value)
        ):
            out.append(f"{where}: wrong number of items")
        for i, item in enumerate(value):
            out += errors(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        out += [
            f"{where}.{k}: missing" if where else f"{k}: missing"
            for k in schema.get("required", [])
            if k not in value
        ]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                out += errors(value[k], sub, f"{where}.{k}" if where else k)
    return out


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
        problems = errors(rec, SCHEMAS[kind])
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
