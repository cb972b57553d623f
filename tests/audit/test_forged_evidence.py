"""Forged evidence without (or beside) the operator's key: added keys, unsigned or
non-canonical objects, replayed and grafted decisions, wrong parents, revoked keys, anchors
a reviewer brings, and nothing to audit. Each check fires by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.anchor import make_anchor, read_anchor_file
from ledger.canonical import canonical_bytes
from ledger.errors import AlreadyFrozen
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.revocation import revoke_key
from ledger.signing import sign_object
from ledger.store import Store
from ledger.trust import trust_from
from stages.decide import decide_stage, derive_decision
from stages.lookup import current_manifest, manifest_decision, manifest_runs
from stages.pipeline import run_campaign
from stages.plan import build_plan, freeze_stage
from tests.audit.conftest import problems, rewrite_journal, signed_run


def _gate(store):
    manifest = current_manifest(store, "t", "gate")
    return manifest, manifest_decision(store, manifest.id)


def test_decision_signed_by_an_added_key_naming_the_real_decider(done, tmp_path, monkeypatch):
    store, key, _camp, _sim = done
    manifest, decision = _gate(store)
    monkeypatch.setenv("LEDGER_KEY_DIR", str(tmp_path / "rogue"))
    rogue = generate_key("rogue")
    store.keyring().add(rogue.public_record())  # the attacker can write keys/
    body = {
        **decision.body.to_dict(),
        "promoted": decision.body.promoted[:1],
        "decided_at": datetime.now(UTC).isoformat(),
        "decider": key.key_id,
    }
    forged = store.put_signed("decision", body, rogue)
    found = problems(store)
    assert any(forged in p and f"decider {key.key_id} did not sign it" in p for p in found), found


def test_a_rogue_key_is_store_trusted_unless_the_reviewer_names_keys(done, tmp_path, monkeypatch):
    store, key, camp, sim = done
    monkeypatch.setenv("LEDGER_KEY_DIR", str(tmp_path / "rogue"))
    rogue = generate_key("rogue")
    store.keyring().add(rogue.public_record())
    run_campaign(store, camp, rogue, sim, progress=False)  # the final gate, signed by rogue
    plain = audit_store(store)
    assert plain.verdict == "clean" and plain.trust == {"trust": "store", "trusted_keys": []}
    # trust is the store's: said as a caveat naming both keys the store holds and used
    (trust,) = [c for c in plain.caveats if c.kind == "store_trust"]
    assert {(k.name, k.key_id) for k in trust.keys} == {
        ("tester", key.key_id),
        ("rogue", rogue.key_id),
    }
    named = audit_store(store, trust=trust_from([key.key_id]))
    found = [str(f) for f in named.problems]
    final = current_manifest(store, "t", "final").id
    assert any(
        final in p and f"signed by key {rogue.key_id}, which the reviewer does not trust" in p
        for p in found
    ), found
    assert named.trust == {"trust": "reviewer", "trusted_keys": [key.key_id]}


def test_trust_file_from_keys_export_is_what_the_reviewer_passes(done, tmp_path):
    store, key, _camp, _sim = done
    runner = CliRunner()
    out = tmp_path / "lab-keys.json"
    res = runner.invoke(cli, ["--store", str(store.root), "keys", "--export", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli, ["--store", str(store.root), "audit", "--trust-file", str(out), "--json"]
    )
    body = json.loads(res.output)
    assert res.exit_code == 0 and body["trust"] == "reviewer"
    assert body["trusted_keys"] == [key.key_id]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"key_id": "00"}]')
    res = runner.invoke(cli, ["--store", str(store.root), "audit", "--trust-file", str(bad)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "key record" in res.output


def test_unsigned_and_non_canonical_decisions_are_never_used(done):
    store, key, camp, _sim = done
    manifest, decision = _gate(store)
    envelope = json.loads(store.get_bytes(decision.id))
    # the same, correctly signed decision, stored with spaces: no longer canonical bytes
    spaced = store.put_bytes(json.dumps(envelope, indent=1).encode())
    unsigned = store.put_json(
        {"kind": "decision", "body": {**decision.body.to_dict(), "promoted": []}}
    )
    for oid in (spaced, unsigned):
        store.journal().append("decision_made", object=oid, manifest=manifest.id)
    found = problems(store)
    assert any(spaced in p and "not stored as canonical JSON" in p for p in found), found
    assert any(unsigned in p and "not signed" in p for p in found), found


def test_replayed_decision_does_not_decide_another_gate(done):
    """Without any key: one appended event claims the screen's decision for the gate."""
    store, key, camp, sim = done
    screen = manifest_decision(store, current_manifest(store, "t", "screen").id)
    # the final gate is frozen and run, then the replay is appended before it is decided
    freeze_stage(store, camp, "final", key, for_simulation=True)
    final = current_manifest(store, "t", "final")
    store.journal().append("decision_made", object=screen.id, manifest=final.id)
    assert manifest_decision(store, final.id) is None  # the lookup does not take it
    found = problems(store)
    assert any(screen.id in p and "journaled twice as decision_made" in p for p in found), found
    assert any(screen.id in p and f"decision of manifest {final.id}" in p for p in found), found


def test_parent_from_another_stage_is_caught(done):
    """The key holder freezes the final stage on the screen's decision instead of the gate's."""
    store, key, camp, _sim = done
    plan = build_plan(store, camp, "final", for_simulation=True)
    plan["parent"] = manifest_decision(store, current_manifest(store, "t", "screen").id).id
    mid = freeze(store, plan, key)
    found = problems(store)
    assert any(mid in p and "decides stage 'screen', not 'gate'" in p for p in found), found


def test_grafted_objects_journaled_long_after_they_were_made(done, tmp_path):
    """A manifest and its decision made elsewhere, journaled here later (rewritten times)."""
    store, key, camp, sim = done
    other = Store.init(tmp_path / "other", host="h1")
    run_campaign(other, camp, key, sim, progress=False)
    final = current_manifest(other, "t", "final")
    for oid in [
        final.id,
        manifest_decision(other, final.id).id,
        *[r.id for r in manifest_runs(other, final.id)],
    ]:
        store.put_bytes(other.get_bytes(oid))
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    grafted = [
        e
        for e in (json.loads(x) for x in other.journal().path.read_text().splitlines())
        if e["manifest"] == final.id or e["object"] == final.id
    ]
    rewrite_journal(journal, events + [{**e, "at": later} for e in grafted])
    found = problems(store)
    assert any(final.id in p and "replayed or grafted" in p for p in found), found


def test_second_plan_beside_the_signed_one(done, tmp_path):
    store, key, camp, _sim = done
    plan = build_plan(store, camp, "final", for_simulation=True)
    first = freeze(store, plan, key)
    plan["rule"] = {"top_k": 3}
    with pytest.raises(AlreadyFrozen, match="already frozen"):
        freeze(store, plan, key)  # the API itself refuses a second plan
    # an adversary without the API signs and journals the second plan by hand
    body = {
        **plan,
        "runs": sorted(plan["runs"], key=lambda r: (r["condition"], r["seed"], r["host"])),
        "frozen_at": datetime.now(UTC).isoformat(),
        "freezer": key.key_id,
        "amends": None,
    }
    second = store.put_signed("manifest", body, key)
    store.journal().append("manifest_frozen", object=second)
    found = problems(store)
    assert any(
        second in p and "frozen a second time without --amend" in p and first[:12] in p
        for p in found
    ), found


def test_signatures_after_a_revocation(done, tmp_path, monkeypatch):
    store, key, camp, sim = done
    monkeypatch.setenv("LEDGER_KEY_DIR", str(tmp_path / "k2"))
    backup = generate_key("backup")
    store.keyring().add(backup.public_record())
    revoke_key(store, key.key_id, backup, "laptop stolen")
    # the store refuses to sign with the revoked key ...
    try:
        freeze_stage(store, camp, "final", key, for_simulation=True)
    except Exception as exc:  # noqa: BLE001 - the refusal is the point
        assert "was revoked" in str(exc)
    else:
        raise AssertionError("signed with a revoked key")
    # ... and a thief who writes the object by hand is caught
    plan = build_plan(store, camp, "final", for_simulation=True)
    body = {
        **plan,
        "runs": sorted(plan["runs"], key=lambda r: (r["condition"], r["seed"], r["host"])),
        "frozen_at": datetime.now(UTC).isoformat(),
        "freezer": key.key_id,
        "amends": None,
    }
    oid = store.put_bytes(canonical_bytes(sign_object("manifest", body, key)))
    store.journal().append("manifest_frozen", object=oid)
    found = problems(store)
    assert any(oid in p and "after its revocation" in p for p in found), found


def test_reviewer_anchor_catches_a_rewrite_the_store_no_longer_shows(done, tmp_path):
    store, key, camp, sim = done
    anchor_id, obj = make_anchor(store, key)
    published = tmp_path / "published.json"
    published.write_text(json.dumps({"anchor": anchor_id, **obj}))
    assert read_anchor_file(published)[0] == anchor_id
    # the operator moves an early start a millisecond later (to make a run look as if it
    # began after its freeze, say), re-chains the journal without the anchor event and
    # deletes the anchor file: every local trace of the publication is gone
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    start = next(i for i, e in enumerate(events) if e["kind"] == "run_started")
    moved = datetime.fromisoformat(events[start]["at"]) + timedelta(milliseconds=1)
    events[start] = {**events[start], "at": moved.isoformat(timespec="microseconds")}
    rewrite_journal(journal, [e for e in events if e["kind"] != "anchor"], key)
    (store.root / "anchors" / f"{anchor_id}.json").unlink()
    store.path_of(anchor_id).unlink()
    assert audit_store(store).verdict == "clean"  # nothing in the store gives it away
    given = dict([read_anchor_file(published)])
    found = [str(f) for f in audit_store(store, anchors=given).problems]
    assert any(anchor_id in p and "no longer extends this anchor" in p for p in found), found


def test_unanchored_tail_is_reported_by_count_and_kind(done, tmp_path):
    store, key, camp, sim = done
    anchor_id, obj = make_anchor(store, key)
    run_campaign(store, camp, key, sim, progress=False)  # the final gate, after the anchor
    given = {anchor_id: obj}
    result = audit_store(store, anchors=given)
    assert result.verdict == "clean"
    n_runs = len(current_manifest(store, "t", "final").body.runs)
    tail = [n for n in result.notes if "after the newest given anchor" in n]
    # anchor event + freeze + a start and a record per run + the decision
    assert tail and tail[0].startswith(f"{1 + 1 + 2 * n_runs + 1} event(s)"), result.notes
    assert f"{n_runs} run_recorded" in tail[0] and "1 decision_made" in tail[0]


def test_nothing_to_audit_is_not_clean(tmp_path):
    runner = CliRunner()
    store = str(tmp_path / ".ledger")
    assert runner.invoke(cli, ["--store", store, "init"]).exit_code == 0
    res = runner.invoke(cli, ["--store", store, "audit", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["verdict"] == "empty"
    bundle = tmp_path / "empty.tar.gz"
    assert runner.invoke(cli, ["--store", store, "export", str(bundle)]).exit_code == 0
    res = runner.invoke(cli, ["audit", "--bundle", str(bundle), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["verdict"] == "empty"


def test_a_fully_run_plan_never_decided_is_not_clean(done):
    """An abandoned plan (frozen, every run recorded, the results not liked, never decided)
    fails the audit by name; a campaign in progress says so with allow_undecided."""
    store, key, camp, sim = done
    from stages.execute import run_stage

    final = freeze_stage(store, camp, "final", key, for_simulation=True)
    run_stage(store, camp, "final", sim, key=key, progress=False)
    declared = len(current_manifest(store, "t", "final").body.runs)
    result = audit_store(store)
    assert [s.verdict for s in result.stages] == ["clean", "clean", "undecided"]
    assert result.verdict == "problems"
    assert [(f.object, f.check, f.stage) for f in result.problems] == [(final, "decided", "final")]
    assert f"frozen, {declared} of {declared} runs recorded, never decided" in str(
        result.problems[0]
    )
    assert audit_store(store, allow_undecided=True).verdict == "clean"
    decide_stage(store, camp, "final", key)
    assert [s.verdict for s in audit_store(store).stages] == ["clean"] * 3


def test_decision_with_allowed_missing_runs_says_how_many(done):
    store, key, camp, sim = done
    from stages.execute import run_stage

    freeze_stage(store, camp, "final", key, for_simulation=True)
    run_stage(store, camp, "final", sim, key=key, progress=False, limit=2)
    decide_stage(store, camp, "final", key, allow_missing=True)
    final = audit_store(store).stages[-1]
    declared = len(current_manifest(store, "t", "final").body.runs)
    assert final.verdict == "clean" and final.missing_runs == declared - 2
    assert any(
        f"decided with {declared - 2} declared run(s) missing" in c.detail for c in final.checks
    )


def test_rederiving_needs_the_raw_logs_not_the_records(done):
    """A record whose stored metric was edited (and re-hashed under a new id, re-journaled
    by a rewrite) is caught by comparing with its log, and the decision no longer fits."""
    store, key, camp, sim = done
    manifest, decision = _gate(store)
    runs = manifest_runs(store, manifest.id)
    victim = runs[0]
    body = {**victim.body.to_dict(), "metrics": {**victim.body.metrics.to_dict(), "val_bpb": 0.5}}
    forged = signed_run(store, body, key)  # the key holder can re-sign a record
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    events = [{**e, "object": forged} if e["object"] == victim.id else e for e in events]
    rewrite_journal(journal, events, key)
    found = problems(store)
    assert any(forged in p and "the record says val_bpb 0.5000, raw log" in p for p in found), found
    # and the recorded decision still matches what the logs say (re-derived from them)
    assert derive_decision(manifest.id, manifest.body, [(r.id, r.body) for r in runs])


def test_parallel_run_checks_find_exactly_what_serial_ones_find(done, monkeypatch):
    import audit.rederive as rederive

    store, key = done[0], done[1]
    manifest, _ = _gate(store)
    victim = manifest_runs(store, manifest.id)[0]
    forged = signed_run(store, {**victim.body.to_dict(), "status": "timeout"}, key)
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    rewrite_journal(
        journal, [{**e, "object": forged} if e["object"] == victim.id else e for e in events], key
    )
    monkeypatch.setattr(rederive, "PARALLEL_MIN_RUNS", 10**9)
    serial = audit_store(store)
    monkeypatch.setattr(rederive, "PARALLEL_MIN_RUNS", 1)
    monkeypatch.setattr("ledger.parallel.usable_cpus", lambda: 2)
    parallel = audit_store(store)
    assert any(forged in str(f) and "status timeout" in str(f) for f in serial.problems)
    assert parallel.to_dict() == serial.to_dict()
