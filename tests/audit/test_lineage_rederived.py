"""A campaign stage's plan re-derived from the spec it froze and its parent decision: the key
holder who freezes a plan by hand (`freeze --plan`) under an honest spec cannot change its
budget, its rule or its candidates without the audit naming the field.

The expected values are read off the campaign file (tests/conftest.py: the gate's budget is
"10m", its rule `top_k = 2`), not computed by the audit."""

from __future__ import annotations

import copy

import pytest

from audit.rederive import audit_store
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.plan import build_plan
from stages.surface import SimParams


@pytest.fixture
def screened(tmp_path, sim_campaign):
    """A sim campaign whose screen is decided and whose gate is not frozen yet."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    run_campaign(store, camp, key, sim, until="screen", progress=False)
    return store, key, camp


def _lineage(store, mid: str) -> list[str]:
    result = audit_store(store, allow_undecided=True)
    return [
        f.message for f in result.problems if f.object == mid and f.check == "candidates derived"
    ]


def _gate_plan(screened) -> dict:
    store, _, camp = screened
    return build_plan(store, camp, "gate", for_simulation=True)


def test_the_honest_plan_re_derives(screened):
    store, key, _ = screened
    assert _lineage(store, freeze(store, _gate_plan(screened), key)) == []


def test_a_budget_the_spec_does_not_give_is_named(screened):
    store, key, _ = screened
    plan = _gate_plan(screened)
    assert plan["budget_s"] == 600  # "10m"
    plan["budget_s"] = 300
    (message,) = _lineage(store, freeze(store, plan, key))
    assert message == (
        "budget_s is not what its spec and parent decision give (frozen 300, derived 600.0)"
    )


def test_a_rule_the_spec_does_not_give_is_named_at_its_key(screened):
    store, key, _ = screened
    plan = _gate_plan(screened)
    assert plan["rule"]["top_k"] == 2
    plan["rule"] = {**plan["rule"], "top_k": 3}
    (message,) = _lineage(store, freeze(store, plan, key))
    assert message == (
        "rule is not what its spec and parent decision give (top_k: frozen 3, derived 2)"
    )


def test_a_candidate_added_or_dropped_is_named(screened):
    store, key, _ = screened
    honest = _gate_plan(screened)
    base = next(cid for cid, info in honest["conditions"].items() if info["name"] == "base")
    dropped = copy.deepcopy(honest)
    del dropped["conditions"][base]
    dropped["runs"] = [r for r in dropped["runs"] if r["condition"] != base]
    mid = freeze(store, dropped, key)
    assert _lineage(store, mid) == [
        f"condition 'base' ({base[:12]}) should be a candidate (the spec and parent decision "
        f"give it) but is missing"
    ]
