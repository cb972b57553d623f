"""The log validator rejects what the contract forbids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import schema
from runner.logio import finite


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_finite_replaces_nan_and_inf() -> None:
    assert finite({"a": float("nan"), "b": [float("inf"), 1.0]}) == {"a": None, "b": [None, 1.0]}


def test_rejects_nan_missing_keys_and_bad_order(
    tmp_path: Path, corpus: Path, tiny_cfg: dict
) -> None:
    from runner import train

    log = tmp_path / "ok.jsonl"
    train.run(
        train.RunOptions(
            cfg=tiny_cfg, budget_s=60, seed=0, log=log, steps=2, device="cpu", data=str(corpus)
        )
    )
    lines = log.read_text().splitlines()
    assert [r["type"] for r in schema.validate_log(log)] == [
        "header",
        "step",
        "step",
        "eval",
        "summary",
    ]
    bad_nan = lines[:-1] + [lines[-1].replace('"status":"ok"', '"status":"ok","x":NaN')]
    with pytest.raises(ValueError, match="strict JSON"):
        schema.validate_log(_write(tmp_path, bad_nan))
    summary = json.loads(lines[-1])
    del summary["mfu"]
    with pytest.raises(ValueError, match="mfu: missing"):
        schema.validate_log(_write(tmp_path, [*lines[:-1], json.dumps(summary)]))
    with pytest.raises(ValueError, match="header"):
        schema.validate_log(_write(tmp_path, lines[1:]))
    with pytest.raises(ValueError, match="status"):
        schema.validate_log(_write(tmp_path, [*lines[:-1], lines[-1].replace('"ok"', '"great"')]))


def test_compiled_schema_checks_each_keyword_with_its_message() -> None:
    """Hand-written cases of the subset `errors` checks, on a schema compiled once."""
    node = schema.compile_schema(
        {
            "type": "object",
            "required": ["kind", "n"],
            "properties": {
                "kind": {"const": "step"},
                "n": {"type": "integer", "minimum": 1},
                "rate": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "tag": {"type": "string", "pattern": "^[a-z]+$"},
                "pair": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "status": {"enum": ["ok", "crashed"]},
            },
        }
    )
    assert schema.errors({"kind": "step", "n": 1}, node) == []
    assert schema.errors([], node) == ["value: expected object, got []"]
    assert schema.errors({"n": 0, "kind": "eval"}, node) == [
        "kind: expected 'step'",
        "n: 0 < 1",
    ]
    assert schema.errors({"kind": "step"}, node) == ["n: missing"]
    assert schema.errors({"kind": "step", "n": 1, "rate": 0, "tag": "A1"}, node) == [
        "rate: 0 <= 0",
        "tag: 'A1' does not match ^[a-z]+$",
    ]
    assert schema.errors({"kind": "step", "n": 1, "rate": None, "pair": [1, "x", 3]}, node) == [
        "pair: wrong number of items",
        'pair[1]: expected number, got "x"',
    ]
    assert schema.errors({"kind": "step", "n": True, "status": "lost"}, node) == [
        "n: expected integer, got true",
        "status: 'lost' not one of ['ok', 'crashed']",
    ]


def test_a_schema_keyword_outside_the_subset_is_refused() -> None:
    with pytest.raises(ValueError, match="schema keyword 'oneOf' is not in the subset"):
        schema.compile_schema({"type": "object", "properties": {"x": {"oneOf": []}}})
