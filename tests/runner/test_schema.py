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
