"""freeze -> run -> decide through the front door alone (`import gateledger as gl`), on the
simulator's planted truth."""

from __future__ import annotations

import pytest

import gateledger as gl


@pytest.fixture
def env(tmp_path, sim_campaign):
    store = gl.init(tmp_path / ".ledger", host="h1")
    key = gl.keygen("tester", store=store)
    return store, key, gl.load_campaign(sim_campaign)


def manifest_of(store, camp, stage):
    """The id of the stage's manifest in force, as `gl.status` reports it."""
    rows = {row.stage: row.to_dict() for row in gl.status(store, camp).progress}
    return rows[stage]["manifest"]


def test_planted_effects_come_back_with_signs_and_sizes(env):
    store, key, camp = env
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    report = gl.run(store, camp, "screen", executor="sim")
    # 16 design points plus the always-carried anchor, which runs at every gate it is kept
    assert report.executed == 17 and report.statuses == {"ok": 17}
    body = gl.decide(store, camp, "screen", key=key).body
    table = body.statistics.effects
    assert table is not None
    effects = {e.term: e.effect for e in table.effects}
    assert effects["A"] == pytest.approx(0.20, abs=0.01)
    assert effects["B"] == pytest.approx(-0.10, abs=0.01)
    # C's penalty at the reference budget is 0.04; D and E are null
    assert effects["C"] == pytest.approx(0.04, abs=0.01)
    assert abs(effects["D"] or 0) < 0.01 and abs(effects["E"] or 0) < 0.01
    assert set(body.outcome.significant) >= {"A", "B"}
    # top 3 are A low, B high points; base is always carried
    names = [body.name(c) for c in body.promoted]
    assert "base" in names and len(names) == 4
    assert len(body.runs) == 17
    # the frozen plan: one cell, so the saturated model (5 mains + 10 2FIs) by Lenth
    assert table.method == "lenth" and table.df_resid == 0
    assert len(table.effects) == 15 and table.t_df == 5


def test_freeze_refuses_second_freeze_and_drifted_file(env, sim_campaign):
    store, key, camp = env
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    with pytest.raises(gl.AlreadyFrozen, match="already frozen"):
        gl.freeze(store, camp, "screen", key=key, sim_only=True)
    sim_campaign.write_text(sim_campaign.read_text().replace("top_k = 3", "top_k = 5"))
    edited = gl.load_campaign(sim_campaign)
    with pytest.raises(gl.LedgerError, match=r"key 'rule.top_k' differs from its frozen manifest"):
        gl.run(store, edited, "screen", executor="sim")
    with pytest.raises(gl.LedgerError, match=r"rule.top_k"):
        gl.decide(store, edited, "screen", key=key)
    amended = gl.freeze(store, edited, "screen", key=key, amend=True, sim_only=True)
    assert amended.body.amends is not None
    assert manifest_of(store, edited, "screen") == amended.id


def test_run_refuses_unfrozen_and_next_stage_needs_parent_decision(env):
    store, key, camp = env
    with pytest.raises(gl.LedgerError, match="never frozen"):
        gl.run(store, camp, "screen", executor="sim")
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    with pytest.raises(gl.LedgerError, match="needs the signed decision of 'screen'"):
        gl.freeze(store, camp, "gate", key=key, sim_only=True)


def test_run_is_resumable_and_never_records_twice(env):
    store, key, camp = env
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    first = gl.run(store, camp, "screen", executor="sim", limit=5)
    assert first.executed == 5
    with pytest.raises(gl.MissingRuns, match="12 of 17 declared runs not recorded"):
        gl.decide(store, camp, "screen", key=key)
    second = gl.run(store, camp, "screen", executor="sim")
    assert second.executed == 12 and second.already == 5
    third = gl.run(store, camp, "screen", executor="sim")
    assert third.executed == 0
    assert len(gl.runs(store, stages=["screen"])) == 17


def test_multi_host_stage_needs_a_host_block_for_real_executors(env):
    store, key, camp = env
    gl.walk(store, camp, key=key, executor="sim", until="screen")
    gl.freeze(store, camp, "gate", key=key, sim_only=True)
    with pytest.raises(gl.LedgerError, match="pass --host NAME"):
        gl.run(store, camp, "gate", executor="local")
    assert gl.status(store, camp).store.by_kind["run"] == 17  # the screen's runs, no gate run


def test_whole_campaign_promotes_through_gates(env):
    store, key, camp = env
    walked = gl.walk(store, camp, key=key, executor="sim")
    log, stamps = walked.log, walked.stamps
    decided = [s for s in log.steps if s["action"] == "decided"]
    assert [s["stage"] for s in decided] == ["screen", "gate", "final"] and stamps == []
    gate = {row.stage: row for row in gl.status(store, camp).progress}["gate"]
    # gate candidates: screen's 4 promoted + the added condition, each in 4 cells
    assert gate.declared == 20 and gate.recorded == 20
    final = decided[-1]["promoted"]
    assert "base" in final
