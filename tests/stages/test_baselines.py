"""Baselines go through the ledger: greedy follows the planted surface, random matches cost."""

from __future__ import annotations

import pytest

from audit.rederive import audit_store
from ledger.errors import LedgerError
from ledger.keys import generate_key
from ledger.store import Store
from stages.baselines import greedy_search, protocol_gpu_hours, random_search
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.surface import SimParams


@pytest.fixture
def env(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    return store, key, camp, SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))


def test_greedy_keeps_exactly_the_helpful_flips(env):
    store, key, camp, sim = env
    # planted: A +0.20 (low is better), B -0.10 (high is better), C +0.04 penalty at 2m;
    # from all-low, flipping A hurts, B helps, C hurts, D and E are null (noise decides)
    out = greedy_search(
        store, camp, key, sim, budget_s=120, cells=[(0, "h1"), (1, "h1")], progress=False
    )
    assert [s["flip"] for s in out["steps"]] == [None, "A", "B", "C", "D", "E"]
    incumbents = [s["incumbent"] for s in out["steps"]]
    assert incumbents[:4] == ["(1)", "(1)", "b", "b"]
    assert out["best"].startswith("b") and "a" not in out["best"] and "c" not in out["best"]
    assert out["training_gpu_hours"] == pytest.approx(6 * 2 * 120 / 3600)
    assert audit_store(store).problems == []


def test_random_search_buys_what_the_protocol_spent(env):
    store, key, camp, sim = env
    run_campaign(store, camp, key, sim, until="screen", progress=False)
    spent = protocol_gpu_hours(store, camp)
    assert spent == pytest.approx(17 * 120 / 3600)  # 16 design points + the anchor, 2 min each
    out = random_search(
        store,
        camp,
        key,
        sim,
        budget_s=600,
        cells=[(0, "h1")],
        gpu_hours=spent,
        match="campaign",
        seed=7,
        progress=False,
    )
    # 0.5667 GPU-hours buy floor(0.5667 / (1 cell x 10 min)) = 3 conditions
    assert out["affordable"] == 3 and out["sampled"] == 3
    assert out["training_gpu_hours"] == pytest.approx(3 * 600 / 3600)
    assert audit_store(store).problems == []
    with pytest.raises(LedgerError, match="do not buy one condition"):
        random_search(
            store,
            camp,
            key,
            sim,
            budget_s=3600,
            cells=[(0, "h1")],
            gpu_hours=0.5,
            match="0.5",
            seed=1,
            progress=False,
        )


def test_greedy_whose_start_diverges_finishes_with_a_clear_outcome(tmp_path, sim_campaign):
    """The start condition diverges in every cell: step 0 promotes nothing, the first flip
    with an ok run takes over, the walk finishes and audits clean (no internal error, and
    a resume finds everything decided)."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    params = SimParams.from_table({**camp.sim, "diverge": ["(1)"]}, "ABCDE")
    sim = SimExecutor(params)
    out = greedy_search(store, camp, key, sim, budget_s=120, cells=[(0, "h1")], progress=False)
    first, second = out["steps"][:2]
    assert (first["incumbent"], first["mean"]) == ("(1)", None)  # nothing ok to promote
    assert second["incumbent"] == "a" and second["mean"] is not None  # the flip takes over
    assert out["best"] is not None and out["best_mean"] is not None
    assert audit_store(store).problems == []
    again = greedy_search(store, camp, key, sim, budget_s=120, cells=[(0, "h1")], progress=False)
    assert again["steps"] == out["steps"]  # resumed: every step already decided
