"""The per-stage statements the audit prints: binding levels summed up, seed bindings and
attempts as typed results whose JSON is what `ledger audit --json` has always said."""

from __future__ import annotations

from audit.attempt_checks import AttemptSummary, RetriedRun
from audit.binding_summary import binding_summary
from audit.gates import CheckResult, StageAudit
from audit.seed_checks import GRINDABLE, SeedBinding
from ledger.binding_level import binding_level


def _stage(name: str, runner: dict, superseded: bool = False) -> StageAudit:
    stage = StageAudit("c", name, name * 8, None, 60.0, None, superseded)
    stage.binding = binding_level({"runner": runner, "data_sha256": "d" * 64})
    return stage


def test_the_weakest_live_stage_names_the_campaigns_binding():
    stages = [
        _stage("screen", {"kind": "builtin"}),
        _stage("gate", {"kind": "adapter", "format": "autoresearch"}),
        _stage("old", {"kind": "command", "format": "autoresearch"}, superseded=True),
    ]
    out = binding_summary(stages)
    # the superseded stage's status-only logs no longer count; the adapter's header does
    assert out.weakest == "header"
    assert [r["stage"] for r in out.to_dict()["stages"]] == ["screen", "gate"]
    assert out.to_dict()["stages"][1] == {
        "stage": "gate",
        "campaign": "c",
        "manifest": "gate" * 8,
        "level": "header",
        "bound": ["script", "config", "seed", "budget", "manifest", "host"],
        "unbound": ["data", "imported files"],
    }
    assert binding_summary([]).to_dict() == {"weakest": None, "stages": []}


def test_typed_stage_statements_keep_their_json():
    stage = _stage("screen", {"kind": "builtin"})
    stage.checks = [CheckResult("decided", True), CheckResult("seeds bound", False, "x")]
    stage.seeds = SeedBinding("sha256-v2", "manifest-bound", GRINDABLE)
    stage.attempts = AttemptSummary(2, 3, 2, 1, 0, [RetriedRun("a/0/h", "base", 2, 1, 1)])
    out = stage.to_dict()
    assert out["checks"][1] == {"name": "seeds bound", "ok": False, "detail": "x"}
    assert out["seeds"] == {
        "rule": "sha256-v2",
        "binding": "manifest-bound",
        "detail": GRINDABLE,
        "token": None,
    }
    assert out["attempts"]["retried"] == [
        {"run": "a/0/h", "name": "base", "attempts": 2, "interrupted": 1, "recorded": 1}
    ]
    assert stage.verdict == "problems"  # a failed check other than `decided`
