"""Baselines re-derived by the audit like a protocol gate: a random sample must be what its
frozen seed draws, a greedy step must flip the incumbent its parent decision promoted; a
baseline the audit does not find clean is left out of `ledger compare`, said so."""

from __future__ import annotations

import random

import pytest

import gateledger as gl
import stages.baselines as baselines
from audit.rederive import audit_store
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.store import Store
from stages.baselines import greedy_search, protocol_gpu_hours, random_search
from stages.campaign import load_campaign
from stages.conditions import point_condition
from stages.decide import decide_manifest
from stages.designs import full_factorial, point_name
from stages.execute import run_manifest
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest
from stages.pipeline import run_campaign
from stages.surface import SimParams


@pytest.fixture
def env(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    run_campaign(store, camp, key, sim, until="screen", progress=False)  # the protocol's screen
    return store, key, camp, sim


def test_a_random_sample_that_is_not_what_its_seed_draws(env):
    store, key, camp, sim = env
    spent = protocol_gpu_hours(store, camp)
    honest = random_search(
        store, camp, key, sim, budget_s=600, cells=[(0, "h1")], gpu_hours=spent,
        match="campaign", seed=7, progress=False,
    )  # fmt: skip
    entry = current_manifest(store, camp.name, honest["stage"])
    body = store.get_json(entry.id)["body"]  # the signed JSON, as frozen
    # the key holder freezes "seed 0" with the sample seed 7 drew (seed 0 draws others)
    n = honest["affordable"]
    seed0 = random.Random(0).sample(full_factorial(5), n)
    assert sorted(point_name(p) for p in seed0) != sorted(
        info["name"] for info in body["conditions"].values()
    )
    plan = {k: v for k, v in body.items() if k not in ("frozen_at", "freezer", "amends", "records")}
    plan["stage"] = "random-10m-s0"
    plan["spec"] = {**body["spec"], "baseline": {**body["spec"]["baseline"], "seed": 0}}
    mid = freeze(store, plan, key)
    manifest = current_manifest(store, camp.name, "random-10m-s0")
    run_manifest(store, manifest, sim, key=key, progress=False)
    decide_manifest(store, manifest, key)
    result = audit_store(store)
    found = [f for f in result.problems if f.object == mid]
    assert [f.check for f in found] == ["baseline re-derived"], [str(f) for f in found]
    assert "but seed 0's draw of 3 gives" in found[0].message
    drawn = [point_condition(camp.base, camp.factors, p, point_name(p), "x").name for p in seed0]
    assert all(name in found[0].message for name in drawn)
    # compare shows the honest search, and says why the forged one is left out
    comp = gl.compare(store, camp)
    methods = [row["method"] for row in comp["rows"]]
    assert "random search (10m, seed 7)" in methods
    assert "random search (10m, seed 0)" not in methods
    (left,) = comp["not_audited"]
    assert left["method"] == "random search (10m, seed 0)" and "seed 0's draw" in left["why"]


def test_a_greedy_walk_held_at_a_worse_incumbent(env, monkeypatch):
    """A modified orchestrator that keeps the start as incumbent whatever a step decided:
    each step's own decision re-derives (its rule says what incumbent it faced), but the
    audit re-derives the incumbent from the parent decision and names every step."""
    store, key, camp, sim = env

    def stuck(body, incumbent, mean):
        return incumbent, mean if mean is not None else body.outcome.best_mean

    monkeypatch.setattr(baselines, "_next_incumbent", stuck)
    greedy_search(store, camp, key, sim, budget_s=120, cells=[(0, "h1")], progress=False)
    result = audit_store(store)
    named = {f.stage for f in result.problems if f.check == "baseline re-derived"}
    # flipping A hurts on the planted surface, so step 2 faces the start either way;
    # flipping B helps, so step 2's decision promotes b and step 3 should flip C of b
    assert "greedy-2m-03" in named and not named & {"greedy-2m-01", "greedy-2m-02"}, named
    assert any("but step 2's decision gives" in f.message for f in result.problems), [
        str(f) for f in result.problems
    ]
    comp = gl.compare(store, camp)
    assert [row["kind"] for row in comp["rows"]] == ["protocol"]
    assert comp["not_audited"][0]["method"].startswith("greedy search (2m")


def test_a_baseline_steps_config_reads_back_as_its_design_point():
    """`abd`: factors A, B and D at their high levels, the rest low (the design's naming)."""
    from audit.baseline_checks import point_name_of
    from ledger.plan_model import AnalysisPlan

    factors = {
        letter: {"key": key, "levels": [lo, hi]}
        for letter, key, lo, hi in [
            ("A", "lr", 0.01, 0.04),
            ("B", "depth", 2, 4),
            ("C", "width", 32, 64),
            ("D", "warmup", 0.1, 0.3),
        ]
    }
    analysis = AnalysisPlan.model_validate({"factors": factors})
    config = {"lr": 0.04, "depth": 4, "width": 32, "warmup": 0.3}
    assert point_name_of(config, analysis) == "abd"
    assert point_name_of({"lr": 0.01, "depth": 2, "width": 32, "warmup": 0.1}, analysis) == "(1)"


def test_a_baseline_spec_of_the_wrong_shape_is_named_by_its_key(env):
    """The key holder freezes a random step whose seed is the text "7": nothing can draw
    from it, so the audit says which key is wrong and compare leaves the search out."""
    store, key, camp, sim = env
    honest = random_search(
        store, camp, key, sim, budget_s=600, cells=[(0, "h1")],
        gpu_hours=protocol_gpu_hours(store, camp), match="campaign", seed=7, progress=False,
    )  # fmt: skip
    body = store.get_json(current_manifest(store, camp.name, honest["stage"]).id)["body"]
    plan = {k: v for k, v in body.items() if k not in ("frozen_at", "freezer", "amends", "records")}
    plan["stage"] = "random-10m-text-seed"
    plan["spec"] = {**body["spec"], "baseline": {**body["spec"]["baseline"], "seed": "7"}}
    mid = freeze(store, plan, key)
    manifest = current_manifest(store, camp.name, "random-10m-text-seed")
    run_manifest(store, manifest, sim, key=key, progress=False)
    decide_manifest(store, manifest, key)
    found = [f for f in audit_store(store).problems if f.object == mid]
    assert [(f.check, f.stage) for f in found] == [
        ("baseline re-derived", "random-10m-text-seed")
    ], [str(f) for f in found]
    assert found[0].message == (
        "its baseline spec cannot be read: seed: must be an integer, not '7'"
    )
    comp = gl.compare(store, camp)
    assert [row["method"] for row in comp["rows"][1:]] == ["random search (10m, seed 7)"]
    assert [left["stages"] for left in comp["not_audited"]] == [["random-10m-text-seed"]]
