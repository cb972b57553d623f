"""Every audit check not fired elsewhere, made to fire: each test plants one wrong thing a
modified orchestrator or a file edit could leave, and expects the check's finding by name.
(The index in docs/threat-model.md lists every check with the test that fires it.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from audit.rederive import audit_store
from ledger.store import Store
from stages.lookup import current_manifest, manifest_decision, manifest_runs
from stages.surface import SimParams, simulate_log
from tests.audit.conftest import problems, rewrite_journal, signed_run


def _gate_run(store):
    manifest = current_manifest(store, "t", "gate")
    return manifest, manifest_runs(store, manifest.id)[0]


def _replace_record(store: Store, old: str, body: dict, key) -> str:
    """Swap a journaled run record for another body, as the key holder can (signed; a
    rewrite re-chains the journal and signs its head)."""
    new = signed_run(store, body, key)
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    rewrite_journal(
        journal, [{**e, "object": new} if e["object"] == old else e for e in events], key
    )
    return new


def _relog(store: Store, run, key, edit, **record) -> str:
    """The same run re-recorded with a log whose header (or lines) `edit` changes (and the
    record's fields `record` changes)."""
    raw = store.get_bytes(run.body.raw_log)
    lines = [json.loads(x) for x in raw.decode().splitlines()]
    edit(lines)
    new_raw = store.put_bytes("".join(json.dumps(x) + "\n" for x in lines).encode())
    return _replace_record(store, run.id, {**run.body.to_dict(), "raw_log": new_raw, **record}, key)


def test_an_object_no_journal_cites_is_an_orphan_and_not_evidence(done):
    store = done[0]
    manifest, run = _gate_run(store)
    orphan = signed_run(
        store, {**run.body.to_dict(), "recorded_at": datetime.now(UTC).isoformat()}, done[1]
    )
    result = audit_store(store)
    assert result.verdict == "clean"  # an interrupted write is not a failure ...
    assert any("1 orphan object(s)" in n for n in result.notes), result.notes
    assert orphan not in result.runs  # ... and never evidence


def test_a_record_that_lacks_a_metric_key(done):
    store, key = done[0], done[1]
    _, run = _gate_run(store)
    metrics = {k: v for k, v in run.body.metrics.to_dict().items() if k != "tokens_per_s"}
    new = _replace_record(store, run.id, {**run.body.to_dict(), "metrics": metrics}, key)
    assert any(new in p and "metrics lacks 'tokens_per_s'" in p for p in problems(store))


def test_diverged_without_evidence_and_crashed_over_an_ok_log(done):
    store, key = done[0], done[1]
    manifest = current_manifest(store, "t", "gate")
    first, second = manifest_runs(store, manifest.id)[:2]
    a = _replace_record(store, first.id, {**first.body.to_dict(), "status": "diverged"}, key)
    b = _replace_record(store, second.id, {**second.body.to_dict(), "status": "crashed"}, key)
    found = problems(store)
    assert any(a in p and "status diverged but its log reports val_bpb" in p for p in found)
    assert any(
        b in p and "status crashed but its log ends with an ok summary" in p for p in found
    ), found


def test_a_diverged_log_without_an_exploding_loss(done):
    store, key = done[0], done[1]
    _, run = _gate_run(store)

    def calm_divergence(lines):
        lines[-1].update(status="diverged", val_bpb=None)
        lines[:] = [x for x in lines if x["type"] != "eval"]

    metrics = {**run.body.metrics.to_dict(), "val_bpb": None}
    new = _relog(store, run, key, calm_divergence, status="diverged", metrics=metrics)
    found = problems(store)
    assert any(
        new in p and "no step line shows a non-finite or exploding loss" in p for p in found
    ), found


def test_the_runner_kind_and_host_come_from_the_manifest(done):
    """A simulation plan (frozen without data) is answered by the simulator alone: a log
    whose header claims the builtin runner (with any code and data hashes) is a finding,
    and so is another host than the declared one."""
    store, key = done[0], done[1]
    manifest, run = _gate_run(store)

    def real_runner(lines):
        lines[0].update(
            runner="builtin",
            code_sha256="c" * 64,
            runner_version="0.0",
            data_sha256="d" * 64,
            host="elsewhere",
        )

    new = _relog(store, run, key, real_runner)
    found = [p for p in problems(store) if new in p]
    assert any("header runner 'builtin' in a plan frozen without a data set" in p for p in found), (
        found
    )
    assert any("header host 'elsewhere' is not the declared host" in p for p in found), found


def test_a_log_that_starts_before_its_manifest_was_frozen(done):
    store, key = done[0], done[1]
    manifest, run = _gate_run(store)
    old = (datetime.fromisoformat(manifest.body.frozen_at) - timedelta(days=1)).isoformat()
    new = _relog(store, run, key, lambda lines: lines[0].update(started_at=old))
    found = problems(store)
    assert any(new in p and "raw log starts before manifest" in p for p in found), found


def test_one_log_backs_one_run(done):
    store, key = done[0], done[1]
    manifest = current_manifest(store, "t", "gate")
    first, second = manifest_runs(store, manifest.id)[:2]
    copy = _replace_record(
        store, second.id, {**second.body.to_dict(), "raw_log": first.body.raw_log}, key
    )
    found = problems(store)
    assert any(copy in p and "one log backs one run" in p for p in found), found


def test_decision_citing_other_runs_journaled_before_them_and_a_second_decision(done):
    store, key, _camp, _sim = done
    manifest = current_manifest(store, "t", "gate")
    decision = manifest_decision(store, manifest.id)
    body = {
        **decision.body.to_dict(),
        "runs": decision.body.runs[1:],
        "decided_at": datetime.now(UTC).isoformat(),
    }
    second = store.put_signed("decision", body, key)
    store.journal().append("decision_made", object=second, manifest=manifest.id, key=key)
    found = problems(store)
    assert any(second in p and "a second decision of manifest" in p for p in found), found
    # and the counting decision journaled before one of its runs
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    made = next(i for i, e in enumerate(events) if e["object"] == decision.id)
    rec = next(i for i, e in enumerate(events) if e["object"] == decision.body.runs[0])
    events.insert(rec, events.pop(made))
    rewrite_journal(journal, events, key)
    found = problems(store)
    assert any(decision.id in p and "decision was journaled before" in p for p in found), found


def test_decision_that_cites_fewer_runs_than_were_recorded(done):
    store, key, _camp, _sim = done
    manifest = current_manifest(store, "t", "gate")
    decision = manifest_decision(store, manifest.id)
    body = {**decision.body.to_dict(), "runs": decision.body.runs[1:]}
    forged = store.put_signed("decision", body, key)
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    rewrite_journal(
        journal, [{**e, "object": forged} if e["object"] == decision.id else e for e in events], key
    )
    found = problems(store)
    assert any(forged in p and "the manifest's recorded declared runs are" in p for p in found), (
        found
    )


def test_a_manifest_no_journal_cites_is_not_a_stage(done):
    store, key, camp, _sim = done
    from stages.plan import build_plan

    plan = build_plan(store, camp, "final", for_simulation=True)
    body = {
        **plan,
        "frozen_at": datetime.now(UTC).isoformat(),
        "freezer": key.key_id,
        "amends": None,
    }
    hidden = store.put_signed("manifest", body, key)
    raw = simulate_log(
        SimParams.from_table({}, "ABCDE"),
        condition=plan["runs"][0]["condition"],
        name="x",
        config={},
        coded={},
        budget_s=3600,
        seed=0,
        host="h1",
        manifest=hidden,
    )
    result = audit_store(store)
    assert hidden not in {s.manifest for s in result.stages} and result.verdict == "clean"
    assert raw  # the plan was never journaled: runs of it could not be recorded either
