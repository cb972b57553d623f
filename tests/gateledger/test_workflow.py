"""freeze -> run -> decide through the real ledger, on the simulator's planted truth."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.decide import decide_stage
from stages.execute import run_stage
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest, manifest_runs
from stages.pipeline import run_campaign
from stages.plan import freeze_stage
from stages.sim import SimParams


@pytest.fixture
def env(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    return store, key, camp, sim


def test_planted_effects_come_back_with_signs_and_sizes(env):
    store, key, camp, sim = env
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    report = run_stage(store, camp, "screen", sim, progress=False)
    # 16 design points plus the always-carried anchor, which runs at every gate it is kept
    assert report.executed == 17 and report.statuses == {"ok": 17}
    _, body = decide_stage(store, camp, "screen", key)
    effects = {e["term"]: e for e in body["statistics"]["effects"]["effects"]}
    assert effects["A"]["effect"] == pytest.approx(0.20, abs=0.01)
    assert effects["B"]["effect"] == pytest.approx(-0.10, abs=0.01)
    # C's penalty at the reference budget is 0.04; D and E are null
    assert effects["C"]["effect"] == pytest.approx(0.04, abs=0.01)
    assert abs(effects["D"]["effect"]) < 0.01 and abs(effects["E"]["effect"]) < 0.01
    assert set(body["outcome"]["significant"]) >= {"A", "B"}
    # top 3 are A low, B high points; base is always carried
    names = [body["conditions"][c]["name"] for c in body["promoted"]]
    assert "base" in names and len(names) == 4
    assert len(body["runs"]) == 17
    # the frozen plan: one cell, so the saturated model (5 mains + 10 2FIs) by Lenth
    effects = body["statistics"]["effects"]
    assert effects["method"] == "lenth" and effects["df_resid"] == 0
    assert len(effects["effects"]) == 15 and effects["t_df"] == 5


def test_freeze_refuses_second_freeze_and_drifted_file(env, sim_campaign):
    store, key, camp, sim = env
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    with pytest.raises(LedgerError, match="already frozen"):
        freeze_stage(store, camp, "screen", key, for_simulation=True)
    sim_campaign.write_text(sim_campaign.read_text().replace("top_k = 3", "top_k = 5"))
    edited = load_campaign(sim_campaign)
    with pytest.raises(LedgerError, match=r"key 'rule.top_k' differs from its frozen manifest"):
        run_stage(store, edited, "screen", sim, progress=False)
    with pytest.raises(LedgerError, match=r"rule.top_k"):
        decide_stage(store, edited, "screen", key)
    amended = freeze_stage(store, edited, "screen", key, amend=True, for_simulation=True)
    assert current_manifest(store, "t", "screen").id == amended


def test_run_refuses_unfrozen_and_next_stage_needs_parent_decision(env):
    store, key, camp, sim = env
    with pytest.raises(LedgerError, match="never frozen"):
        run_stage(store, camp, "screen", sim, progress=False)
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    with pytest.raises(LedgerError, match="needs the signed decision of 'screen'"):
        freeze_stage(store, camp, "gate", key, for_simulation=True)


def test_run_is_resumable_and_never_records_twice(env):
    store, key, camp, sim = env
    manifest = freeze_stage(store, camp, "screen", key, for_simulation=True)
    first = run_stage(store, camp, "screen", sim, limit=5, progress=False)
    assert first.executed == 5
    with pytest.raises(LedgerError, match="12 of 17 declared runs not recorded"):
        decide_stage(store, camp, "screen", key)
    second = run_stage(store, camp, "screen", sim, progress=False)
    assert second.executed == 12 and second.already == 5
    third = run_stage(store, camp, "screen", sim, progress=False)
    assert third.executed == 0
    assert len(manifest_runs(store, manifest)) == 17


def test_multi_host_stage_needs_host_block_for_real_executors(env):
    from stages.execute import select_host_block
    from stages.executors.base import RunTask

    tasks = [RunTask("m", "s", "c", "n", {}, {}, 0, h, 1.0) for h in ("a", "b")]
    with pytest.raises(LedgerError, match="pass --host NAME"):
        select_host_block(tasks, None, "local")
    block, skipped = select_host_block(tasks, "a", "local")
    assert [t.host for t in block] == ["a"] and skipped == ["b"]


def test_whole_campaign_promotes_through_gates(env):
    store, key, camp, sim = env
    log = run_campaign(store, camp, key, sim, progress=False)
    decided = [s for s in log.steps if s["action"] == "decided"]
    assert [s["stage"] for s in decided] == ["screen", "gate", "final"]
    gate = current_manifest(store, "t", "gate").body
    # gate candidates: screen's 4 promoted + the added condition, each in 4 cells
    assert len(gate["conditions"]) == 5 and len(gate["runs"]) == 20
    final = decided[-1]["promoted"]
    assert "base" in final
