"""What a decision is computed from (`stages.observations`) and the baseline step's rule
(`stages.baseline_rule`), on hand-built manifests and run records with known answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.plan_model import BaselineRule, Plan
from stages.baseline_rule import derive_baseline_decision
from stages.observations import claimed_key, decision_head, observations, select_runs


def plan(runs, conditions, **more) -> Plan:
    """A plan with the keys these tests need, the others at their simplest."""
    return Plan.model_validate(
        {
            "campaign": "c",
            "stage": "s",
            "budget_s": 10,
            "runs": runs,
            "conditions": {c: {"name": n, "config": {}} for c, n in conditions.items()},
            "rule": {},
            "analysis": {},
            "runner": {"kind": "builtin"},
            "data_sha256": None,
            "parent": None,
            **more,
        }
    )


MANIFEST = plan(
    [
        {"condition": "a", "seed": 0, "host": "h"},
        {"condition": "a", "seed": 1, "host": "h"},
        {"condition": "b", "seed": 0, "host": "h"},
    ],
    {"a": "a", "b": "b"},
)


@dataclass(frozen=True)
class Record:
    """A run record as a decision reads it (`stages.observations.RecordedRun`)."""

    manifest: str
    condition: str
    seed: int
    host: str
    status: str
    recorded_at: str
    val_bpb: Any

    def value(self, metric: str) -> Any:
        return self.val_bpb if metric == "val_bpb" else None


def record(condition, seed, at, *, manifest="m1", status="ok", value=1.0, host="h"):
    return Record(manifest, condition, seed, host, status, at, value)


def test_select_runs_keeps_the_first_record_per_cell_and_names_the_rest():
    """A second record of a declared cell is not used (ingest refuses one and verify reports
    "recorded twice"); records of other manifests or undeclared cells are extras."""
    runs = [
        ("r2", record("a", 0, "2026-01-02", value=9.0)),  # a second record of a/0/h
        ("r1", record("a", 0, "2026-01-01")),
        ("r3", record("b", 0, "2026-01-01", manifest="other")),  # another manifest's
        ("r4", record("z", 0, "2026-01-01")),
    ]  # not declared
    used, missing, extra = select_runs("m1", MANIFEST, runs)
    assert {k: rid for k, (rid, _) in used.items()} == {"a/0/h": "r1"}
    assert missing == ["a/1/h", "b/0/h"]
    assert extra == ["r3", "r4"]
    assert claimed_key(runs[0][1]) == "a/0/h"
    head = decision_head("m1", MANIFEST, used, missing, extra)
    assert head == {
        "campaign": "c",
        "stage": "s",
        "manifest": "m1",
        "budget_s": 10,
        "runs": ["r1"],
        "missing": ["a/1/h", "b/0/h"],
        "extra": ["r3", "r4"],
    }


def test_observations_take_a_value_only_from_an_ok_run_with_a_number():
    used = {
        "b/0/h": ("rb", record("b", 0, "t", value=2.5)),
        "a/0/h": ("ra", record("a", 0, "t", status="diverged", value=0.1)),
        "a/1/h": ("rc", record("a", 1, "t", value=True)),
    }  # a bool is not a number
    obs = observations(used)
    assert [(o["condition"], o["seed"], o["status"], o["value"]) for o in obs] == [
        ("a", 0, "diverged", None),
        ("a", 1, "ok", None),
        ("b", 0, "ok", 2.5),
    ]


def baseline_manifest(rule):
    return plan(
        [{"condition": c, "seed": s, "host": "h"} for c in ("x", "y") for s in (0, 1)],
        {"x": "x-name", "y": "y-name", "inc": "old"},
        stage="greedy-1",
        rule=rule,
        cells=[[0, "h"], [1, "h"]],
    )


def derive(manifest_id, manifest, runs):
    assert isinstance(manifest.rule, BaselineRule)
    return derive_baseline_decision(manifest_id, manifest, manifest.rule, runs)


def baseline_runs():
    # x: mean (1.0 + 1.2) / 2 = 1.1; y: mean (0.9 + 1.1) / 2 = 1.0
    values = {("x", 0): 1.0, ("x", 1): 1.2, ("y", 0): 0.9, ("y", 1): 1.1}
    return [(f"r{c}{s}", record(c, s, "t", value=v)) for (c, s), v in values.items()]


def test_random_baseline_promotes_the_lowest_mean():
    decision = derive("m1", baseline_manifest({"baseline": "random"}), baseline_runs())
    assert decision["promoted"] == ["y"]
    assert abs(decision["outcome"]["best_mean"] - 1.0) < 1e-12
    assert decision["trace"][0].startswith("rank 1: y-name mean 1.0000 over 2 cells")


def test_greedy_flip_is_kept_only_when_the_challenger_beats_the_incumbent():
    kept = derive(
        "m1",
        baseline_manifest({"baseline": "greedy", "incumbent": "inc", "incumbent_mean": 1.05}),
        baseline_runs(),
    )
    assert kept["promoted"] == ["y"] and kept["trace"][0].startswith("flip kept")
    rejected = derive(
        "m1",
        baseline_manifest({"baseline": "greedy", "incumbent": "inc", "incumbent_mean": 0.95}),
        baseline_runs(),
    )
    assert rejected["promoted"] == ["inc"] and rejected["outcome"]["best_mean"] == 0.95
    assert rejected["trace"][0].startswith("flip rejected: challenger 1.0000")
