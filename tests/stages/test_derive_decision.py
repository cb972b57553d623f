"""`derive_decision` on a hand-built manifest body and run records: the pure core that
`ledger decide` signs and `ledger audit` re-runs. Every expected number is worked out here."""

from __future__ import annotations

import statistics

import pytest

from audit.field_diff import diff
from ledger.documents import RunRecord
from ledger.plan_model import Plan
from stages.decide import derive_decision

MANIFEST_ID = "m" * 64
CONDITIONS = {"c-small": 2, "c-mid": 3, "c-big": 4}  # condition id -> depth
CELLS = [[0, "h1"], [1, "h1"]]
# val_bpb per (condition, seed): means c-mid 0.92, c-small 1.01, c-big 1.15
VALUES = {
    ("c-small", 0): 1.00,
    ("c-small", 1): 1.02,
    ("c-mid", 0): 0.90,
    ("c-mid", 1): 0.94,
    ("c-big", 0): 1.10,
    ("c-big", 1): 1.20,
}


def manifest(rule: dict | None = None) -> Plan:
    return Plan.model_validate(manifest_body(rule))


def manifest_body(rule: dict | None = None) -> dict:
    """The plan as JSON (what a manifest signs), every expected key written out."""
    return {
        "campaign": "hand",
        "stage": "screen",
        "budget_s": 60.0,
        "cells": CELLS,
        "runs": [{"condition": c, "seed": s, "host": h} for c in CONDITIONS for s, h in CELLS],
        "conditions": {
            c: {
                "name": c.removeprefix("c-"),
                "config": {"depth": d},
                "coded": {},
                "origin": "named",
            }
            for c, d in CONDITIONS.items()
        },
        "rule": rule or {"top_k": 2},
        "checks": [],
        "analysis": {"metric": "val_bpb", "factors": {}, "points": {}, "terms": []},
        "spec": {"base": {}},
        "runner": {"kind": "builtin"},
        "data_sha256": None,
        "parent": None,
    }


def record(
    condition: str,
    seed: int,
    value: float | None,
    *,
    status: str = "ok",
    manifest_id: str = MANIFEST_ID,
) -> tuple[str, RunRecord]:
    rid = f"run-{condition}-{seed}-{manifest_id[:1]}"
    body = {
        "manifest": manifest_id,
        "stage": "screen",
        "condition": condition,
        "seed": seed,
        "host": "h1",
        "run": f"{condition}/{seed}/h1",
        "raw_log": "l" * 64,
        "format": "jsonl",
        "runner": "builtin",
        "status": status,
        "metrics": {"val_bpb": value},
        "gpus": 1,
        "recorded_at": f"2026-01-01T00:00:0{seed}Z",
    }
    return rid, RunRecord.model_validate(body)


def records(values: dict[tuple[str, int], float] = VALUES) -> list[tuple[str, RunRecord]]:
    return [record(c, s, v) for (c, s), v in values.items()]


def test_top_k_promotes_the_two_lowest_means_in_order():
    decision = derive_decision(MANIFEST_ID, manifest(), records())
    assert decision["promoted"] == ["c-mid", "c-small"]
    assert decision["outcome"]["best"] == "c-mid"
    assert set(decision["conditions"]) == {"c-mid", "c-small"}
    assert decision["conditions"]["c-mid"]["config"] == {"depth": 3}
    means = {s["condition"]: s["mean"] for s in decision["statistics"]["conditions"]}
    assert means == pytest.approx({"c-small": 1.01, "c-mid": 0.92, "c-big": 1.15})
    sds = {s["condition"]: s["sd"] for s in decision["statistics"]["conditions"]}
    assert sds["c-big"] == pytest.approx(statistics.stdev([1.10, 1.20]))
    ranks = {s["condition"]: s["rank"] for s in decision["statistics"]["conditions"]}
    assert ranks == {"c-mid": 1, "c-small": 2, "c-big": 3}
    assert decision["runs"] == sorted(rid for rid, _ in records())
    assert decision["missing"] == [] and decision["extra"] == []
    assert decision["statistics"]["effects"] is None
    assert decision["statistics"]["effects_note"] == "no factors"


def test_top_1_and_a_within_band():
    assert derive_decision(MANIFEST_ID, manifest({"top_k": 1}), records())["promoted"] == ["c-mid"]
    # within 0.10 of the best mean 0.92: c-small (1.01) is in, c-big (1.15) is not
    within = derive_decision(MANIFEST_ID, manifest({"within": 0.10}), records())
    assert within["promoted"] == ["c-mid", "c-small"]


def test_missing_and_extra_runs_are_named_and_a_failed_run_has_no_value():
    runs = [r for r in records() if r[1].condition != "c-big" or r[1].seed != 1]
    runs.append(record("c-big", 0, 0.5, manifest_id="x" * 64))  # another manifest's run
    runs[0] = record("c-small", 0, None, status="crashed")
    decision = derive_decision(MANIFEST_ID, manifest(), runs)
    assert decision["missing"] == ["c-big/1/h1"]
    assert decision["extra"] == ["run-c-big-0-x"]
    small = next(s for s in decision["statistics"]["conditions"] if s["condition"] == "c-small")
    assert small["n"] == 1 and small["n_failed"] == 1 and small["mean"] == pytest.approx(1.02)


def test_the_same_inputs_give_the_same_bytes_whatever_the_order():
    forward = derive_decision(MANIFEST_ID, manifest(), records())
    backward = derive_decision(MANIFEST_ID, manifest(), list(reversed(records())))
    assert diff(forward, backward) == []
