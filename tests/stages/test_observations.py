"""What a decision is computed from (`stages.observations`) and the baseline step's rule
(`stages.baseline_rule`), on hand-built manifests and run records with known answers."""

from __future__ import annotations

from stages.baseline_rule import derive_baseline_decision
from stages.observations import decision_head, observations, run_key, select_runs

MANIFEST = {
    "campaign": "c",
    "stage": "s",
    "budget_s": 10,
    "runs": [
        {"condition": "a", "seed": 0, "host": "h"},
        {"condition": "a", "seed": 1, "host": "h"},
        {"condition": "b", "seed": 0, "host": "h"},
    ],
}


def record(condition, seed, at, *, manifest="m1", status="ok", value=1.0, host="h"):
    return {
        "manifest": manifest,
        "condition": condition,
        "seed": seed,
        "host": host,
        "status": status,
        "recorded_at": at,
        "metrics": {"val_bpb": value},
    }


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
    assert run_key(runs[0][1]) == "a/0/h"
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
    return {
        "campaign": "c",
        "stage": "greedy-1",
        "budget_s": 10,
        "rule": rule,
        "runs": [{"condition": c, "seed": s, "host": "h"} for c in ("x", "y") for s in (0, 1)],
        "cells": [[0, "h"], [1, "h"]],
        "conditions": {"x": {"name": "x-name"}, "y": {"name": "y-name"}, "inc": {"name": "old"}},
    }


def baseline_runs():
    # x: mean (1.0 + 1.2) / 2 = 1.1; y: mean (0.9 + 1.1) / 2 = 1.0
    values = {("x", 0): 1.0, ("x", 1): 1.2, ("y", 0): 0.9, ("y", 1): 1.1}
    return [(f"r{c}{s}", record(c, s, "t", value=v)) for (c, s), v in values.items()]


def test_random_baseline_promotes_the_lowest_mean():
    decision = derive_baseline_decision(
        "m1", baseline_manifest({"baseline": "random"}), baseline_runs()
    )
    assert decision["promoted"] == ["y"]
    assert abs(decision["outcome"]["best_mean"] - 1.0) < 1e-12
    assert decision["trace"][0].startswith("rank 1: y-name mean 1.0000 over 2 cells")


def test_greedy_flip_is_kept_only_when_the_challenger_beats_the_incumbent():
    kept = derive_baseline_decision(
        "m1",
        baseline_manifest({"baseline": "greedy", "incumbent": "inc", "incumbent_mean": 1.05}),
        baseline_runs(),
    )
    assert kept["promoted"] == ["y"] and kept["trace"][0].startswith("flip kept")
    rejected = derive_baseline_decision(
        "m1",
        baseline_manifest({"baseline": "greedy", "incumbent": "inc", "incumbent_mean": 0.95}),
        baseline_runs(),
    )
    assert rejected["promoted"] == ["inc"] and rejected["outcome"]["best_mean"] == 0.95
    assert rejected["trace"][0].startswith("flip rejected: challenger 1.0000")
