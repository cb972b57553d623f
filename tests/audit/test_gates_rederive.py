"""The audit's re-derivation on hand-built inputs: the same manifest and runs give the
decision that was signed; one changed run value makes the check fail, naming the decision."""

from __future__ import annotations

import copy

from audit.field_diff import diff
from audit.gates import StageAudit, _check_reproduces
from ledger.decision_model import Decision
from stages.decide import SIGNING_FIELDS, derive_decision
from tests.stages.test_derive_decision import MANIFEST_ID, VALUES, manifest, records


def _audit() -> StageAudit:
    return StageAudit(
        campaign="hand",
        stage="screen",
        manifest=MANIFEST_ID,
        decision=None,
        budget_s=60.0,
        amends=None,
        superseded=False,
    )


def _signed(body: dict) -> dict:
    return {**copy.deepcopy(body), **{f: "signer or time" for f in SIGNING_FIELDS}}


def test_the_audit_re_derives_the_same_decision_from_the_same_runs():
    recorded = _signed(derive_decision(MANIFEST_ID, manifest(), records()))
    audit = _audit()
    signed = Decision.model_validate(recorded)
    _check_reproduces(audit, MANIFEST_ID, manifest(), "d" * 64, signed, records())
    assert [c.to_dict() for c in audit.checks] == [
        {"name": "decision reproduces from raw logs", "ok": True, "detail": ""}
    ]
    assert audit.problems == []


def test_a_changed_run_value_makes_the_re_derived_decision_differ():
    recorded = _signed(derive_decision(MANIFEST_ID, manifest(), records()))
    # c-big's seed 0 was 1.10; at 0.50 its mean (0.85) beats c-mid's 0.92
    changed = records({**VALUES, ("c-big", 0): 0.50})
    rederived = derive_decision(MANIFEST_ID, manifest(), changed)
    assert rederived["promoted"] == ["c-big", "c-mid"]
    differences = diff(rederived, {k: v for k, v in recorded.items() if k not in SIGNING_FIELDS})
    assert any(d.startswith("promoted:") for d in differences)
    audit = _audit()
    signed = Decision.model_validate(recorded)
    _check_reproduces(audit, MANIFEST_ID, manifest(), "d" * 64, signed, changed)
    assert audit.checks[0].ok is False
    assert audit.problems and audit.problems[0].object == "d" * 64
    finding = audit.problems[0]
    assert "does not match the frozen rule applied to the raw logs" in finding.message
    # said with the manifest's names, not ids; the values differ as the rule gives them
    assert "promoted: recorded mid, small, re-derived big, mid" in finding.message
    assert finding.check == "decision reproduces from raw logs"
    assert finding.recorded["promoted"] == recorded["promoted"]
    assert finding.found["promoted"] == ["c-big", "c-mid"]
