"""Every after-the-fact scenario the brief lists is caught by `audit`, naming the object."""

from __future__ import annotations

import json
from pathlib import Path

from audit.rederive import audit_store
from ledger.anchor import make_anchor
from ledger.canonical import canonical_bytes
from ledger.ingest import record_run_start
from ledger.keys import generate_key
from ledger.signing import sign_object
from ledger.store import Store
from stages.campaign import load_campaign
from stages.lookup import current_manifest, manifest_decision, manifest_runs
from stages.plan import freeze_stage
from stages.surface import SimParams, simulate_log
from tests.audit.conftest import problems, rewrite_journal, signed_run
from tests.objects import edit_object, flip_byte


def object_path(store: Store, oid: str) -> Path:
    path = store.path_of(oid)
    assert path is not None
    return path


def test_clean_campaign_audits_clean(done):
    store = done[0]
    result = audit_store(store)
    assert result.problems == []
    assert [s.stage for s in result.stages] == ["screen", "gate"]
    assert all(s.ok for s in result.stages)


def test_one_changed_byte_in_a_raw_log(done):
    store = done[0]
    run = manifest_runs(store, current_manifest(store, "t", "screen").id)[0]
    edit_object(store, run.body.raw_log, flip_byte(-5))  # in the stage's pack, since decided
    found = problems(store)
    assert any(run.body.raw_log in p for p in found), found


def test_rule_edited_after_runs_began(done, sim_campaign):
    store, key, _camp, _sim = done
    sim_campaign.write_text(sim_campaign.read_text().replace("top_k = 1", "top_k = 2"))
    camp = load_campaign(sim_campaign)
    old = freeze_stage(store, camp, "final", key, for_simulation=True)
    # runs begin under the first manifest, then the rule is amended
    first = current_manifest(store, "t", "final").body.runs[0]
    record_run_start(store, old, first.condition, first.seed, first.host)
    sim_campaign.write_text(sim_campaign.read_text().replace("top_k = 2", "top_k = 3"))
    freeze_stage(store, load_campaign(sim_campaign), "final", key, amend=True, for_simulation=True)
    found = problems(store)
    assert any(old in p and "replaced" in p and "after" in p for p in found), found


def test_decision_promoted_list_edited_and_resigned(done):
    """Even re-signed by a trusted key, a decision the frozen rule does not give is caught."""
    store, key, _camp, _sim = done
    manifest = current_manifest(store, "t", "gate")
    decision = manifest_decision(store, manifest.id)
    body = decision.body.to_dict()
    body["promoted"] = list(reversed(body["promoted"]))[:1]
    forged = store.put_signed("decision", body, key)
    # replace the recorded decision by the forgery in the journal's eyes: remove the original
    object_path(store, decision.id).unlink()
    store.journal().append("decision_made", object=forged, manifest=manifest.id)
    found = problems(store)
    assert any(forged in p and "promoted" in p for p in found), found


def test_decision_bytes_edited_in_place(done):
    store = done[0]
    decision = manifest_decision(store, current_manifest(store, "t", "screen").id)
    path = object_path(store, decision.id)
    obj = json.loads(path.read_bytes())
    obj["body"]["promoted"] = obj["body"]["promoted"][:1]
    path.chmod(0o644)
    path.write_bytes(canonical_bytes(obj))
    found = problems(store)
    assert any(decision.id in p for p in found), found


def test_run_record_deleted(done):
    store = done[0]
    manifest = current_manifest(store, "t", "gate")
    victim = manifest_runs(store, manifest.id)[0]
    object_path(store, victim.id).unlink()
    found = problems(store)
    assert any(victim.id in p for p in found), found


def test_undeclared_extra_run(done):
    store = done[0]
    manifest = current_manifest(store, "t", "gate")
    raw = simulate_log(
        SimParams.from_table({}, "ABCDE"),
        condition="x" * 64,
        name="x",
        config={},
        coded={},
        budget_s=600,
        seed=9,
        host="h1",
        manifest=manifest.id,
    )
    raw_id = store.put_bytes(raw)
    record = {
        "manifest": manifest.id,
        "stage": "gate",
        "condition": "x" * 64,
        "seed": 9,
        "host": "h1",
        "run": f"{'x' * 64}/9/h1",
        "raw_log": raw_id,
        "format": "jsonl",
        "runner": "sim",
        "status": "ok",
        "metrics": {"val_bpb": 1.5, "training_seconds": 600, "total_seconds": 615, "num_steps": 1},
        "gpus": 1,
        "recorded_at": "2030-01-01T00:00:00+00:00",
    }
    rid = signed_run(store, record, done[1])  # the key holder's modified orchestrator
    store.journal().append(
        "run_recorded", object=rid, run=record["run"], manifest=manifest.id, key=done[1]
    )
    found = problems(store)
    assert any(rid in p and "not declared" in p for p in found), found


def test_manifest_frozen_after_its_first_run_started(done):
    store, key, camp, _sim = done
    decision = manifest_decision(store, current_manifest(store, "t", "gate").id)
    cond = decision.body.promoted[0]
    # a run of the (not yet frozen) final stage starts, then the manifest is frozen
    journal = store.journal()
    manifest_id = freeze_stage(store, camp, "final", key, for_simulation=True)
    # rewrite history: put a run_started for this manifest *before* its freeze event
    lines = journal.path.read_text().splitlines()
    events = [json.loads(x) for x in lines]
    freeze_event = events[-1]
    early = {
        "kind": "run_started",
        "object": None,
        "run": f"{cond}/0/h1",
        "manifest": manifest_id,
        "at": "2000-01-01T00:00:00+00:00",
    }
    rewrite_journal(journal, events[:-1] + [early, freeze_event], key)
    found = problems(store)
    assert any(manifest_id in p and "before" in p for p in found), found


def test_signature_by_key_outside_keyring(done, tmp_path, monkeypatch):
    store = done[0]
    monkeypatch.setenv("LEDGER_KEY_DIR", str(tmp_path / "intruder"))
    intruder = generate_key("intruder")
    obj = sign_object(
        "decision", {"manifest": None, "stage": "x", "runs": [], "promoted": []}, intruder
    )
    oid = store.put_json(obj)
    found = problems(store)
    assert any(oid in p and intruder.key_id in p for p in found), found


def test_journal_rewritten_after_anchor_published(done):
    store, key, _camp, _sim = done
    anchor_id, _ = make_anchor(store, key)
    journal = store.journal()
    lines = journal.path.read_bytes().splitlines()
    # drop an early event and re-chain everything after it, so the chain itself verifies
    events = [json.loads(x) for x in lines]
    del events[3]
    rewrite_journal(journal, events, key)  # the key holder re-signs the head
    found = problems(store)
    # the chain and its head are consistent again; only the published anchor gives it away
    assert any(anchor_id in p and "no longer extends this anchor" in p for p in found), found
    assert not any("journal.head" in p or "prev" in p for p in found), found
