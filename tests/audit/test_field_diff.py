"""`audit.field_diff`: a re-derived decision against the signed one, compared as models.

The expected paths and values are read off the hand-built decision below, not computed by
the module under test."""

from __future__ import annotations

import copy

from audit.field_diff import equal, field_diffs
from ledger.decision_model import Decision, DecisionBody
from ledger.plan_model import Plan
from stages.decide import SIGNING_FIELDS, derive_decision
from tests.stages.test_derive_decision import MANIFEST_ID, manifest_body, records


def _body() -> dict:
    return derive_decision(MANIFEST_ID, Plan.model_validate(manifest_body()), records())


def _signed(body: dict) -> Decision:
    return Decision.model_validate({**body, "decided_at": "2024-01-01T00:00:00Z", "decider": "k"})


def test_numbers_compare_by_value_but_true_is_not_one():
    assert equal(1, 1.0) and equal({"a": [1, 2.5]}, {"a": [1.0, 2.5]})
    assert not equal(True, 1) and not equal(1, True) and not equal(0, False)
    assert not equal([1, 2], [2, 1]) and not equal({"a": 1}, {"a": 1, "b": None})


def test_the_same_body_signed_has_no_difference_whatever_its_signer():
    body = _body()
    assert field_diffs(DecisionBody.model_validate(body), _signed(body)) == []


def test_a_left_out_default_reads_as_the_default():
    # `new_points` and `significant` default to []: a decision that omits them says the same
    body = _body()
    signed = copy.deepcopy(body)
    assert signed["outcome"]["new_points"] == [] and signed["outcome"]["significant"] == []
    del signed["outcome"]["new_points"], signed["outcome"]["significant"]
    assert field_diffs(DecisionBody.model_validate(body), _signed(signed)) == []


def test_each_changed_field_is_named_with_both_values_as_json():
    body = _body()
    assert body["promoted"] == ["c-mid", "c-small"]  # means 0.92 and 1.01 of top_k 2
    signed = copy.deepcopy(body)
    signed["promoted"] = ["c-mid", "c-big"]
    signed["conditions"]["c-mid"]["config"]["depth"] = 30
    signed["statistics"]["conditions"][0]["wins"] += 1
    found = field_diffs(DecisionBody.model_validate(body), _signed(signed))
    by_path = {path: (rec, der) for path, rec, der in found}
    assert set(by_path) == {"promoted", "conditions.c-mid.config.depth", "statistics.conditions"}
    assert by_path["promoted"] == (["c-mid", "c-big"], ["c-mid", "c-small"])
    assert by_path["conditions.c-mid.config.depth"] == (30, 3)
    # a list of entries is one value: both sides as the JSON holds them
    recorded, derived = by_path["statistics.conditions"]
    assert recorded == signed["statistics"]["conditions"]
    assert derived == body["statistics"]["conditions"]
    assert not any(path in SIGNING_FIELDS for path in by_path)


def test_a_rule_of_another_kind_is_one_differing_value():
    body = _body()
    signed = {**copy.deepcopy(body), "rule": {"baseline": "random", "top_k": 1}}
    found = field_diffs(DecisionBody.model_validate(body), _signed(signed))
    assert found == [("rule", {"baseline": "random", "top_k": 1}, {"top_k": 2})]
