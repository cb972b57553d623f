"""The typed documents over signed bytes: one run identity, and a decision body's model.

Independent answers: the `condition/seed/host` text journals store, the order manifests list
runs in (condition, then seed as a number, then host), and a decision body written by hand.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ledger.decision_model import Decision
from ledger.run_key import Cell, RunKey, key_text


def test_a_run_key_prints_parses_and_sorts_as_manifests_list_runs():
    keys = [RunKey("b", 0, "h1"), RunKey("a", 10, "h1"), RunKey("a", 9, "h2")]
    assert [str(k) for k in sorted(keys)] == ["a/9/h2", "a/10/h1", "b/0/h1"]  # 9 < 10
    assert RunKey.parse("a/10/h1") == RunKey("a", 10, "h1")
    assert RunKey.parse("a/ten/h1") is None and RunKey.parse("a/10") is None
    assert RunKey("a", 3, "h2").cell == Cell(3, "h2") and str(Cell(3, "h2")) == "h2/3"
    assert key_text(None, "x", "h") == "None/x/h"  # a malformed record shows what it holds


DECISION = {
    "campaign": "c",
    "stage": "screen",
    "manifest": "m" * 64,
    "budget_s": 60,
    "runs": ["r1"],
    "missing": [],
    "extra": [],
    "statistics": {"conditions": [], "effects": None, "effects_note": "too few points"},
    "rule": {"top_k": 1},
    "outcome": {"promoted": ["c1"]},
    "promoted": ["c1"],
    "conditions": {"c1": {"name": "base", "config": {"lr": 0.01}}},
    "trace": ["promoted base [c1]: rank 1"],
    "verdicts": [{"name": "close", "pass": True, "detail": "0.01 <= 0.02"}],
    "decided_at": "2026-01-01T00:00:00+00:00",
    "decider": "k",
}


def test_a_decision_body_reads_by_attribute_and_refuses_unknown_keys():
    decision = Decision.model_validate(DECISION)
    assert decision.name("c1") == "base" and decision.name("zz") == "zz"
    assert decision.verdicts[0].passed is True  # stored as `pass`
    assert decision.statistics.effects is None and decision.outcome.best_mean is None
    assert decision.to_dict()["verdicts"] == [
        {"name": "close", "pass": True, "detail": "0.01 <= 0.02"}
    ]
    with pytest.raises(ValidationError, match="promotd"):
        Decision.model_validate({**DECISION, "promotd": []})
