"""Direct tests of the audit's parts: `audit.evidence`, `audit.runs`, `audit.gates`."""

from __future__ import annotations

from audit.evidence import Evidence
from audit.field_diff import diff
from audit.gates import counting_decision
from audit.runs import check_run
from ledger.verify import verify_with_evidence
from stages.lookup import current_manifest, manifest_decision


def test_evidence_indexes_timing_and_the_counting_decision(done):
    store = done[0]
    ev = Evidence(store, verify_with_evidence(store))
    manifest = current_manifest(store, "t", "gate")
    runs = {rid: b for rid, b in ev.of_kind("run").items() if b["manifest"] == manifest.id}
    assert len(runs) == len(manifest.body.runs)
    for rid in runs:
        timing = ev.timing[rid]
        assert timing.started is not None and timing.interval_s >= 0
        assert timing.started.run == runs[rid]["run"]
    assert counting_decision(ev, manifest.id) == manifest_decision(store, manifest.id).id


def test_check_run_observes_what_the_log_says_not_the_record(done):
    store = done[0]
    ev = Evidence(store, verify_with_evidence(store))
    rid, record = sorted(ev.runs.items())[0]
    honest = check_run(ev, rid, record, ev.manifests)
    assert honest.problems == [] and honest.observed.metrics == record.metrics
    manifest = ev.manifests[str(record.manifest)]
    assert (honest.observed.stage, honest.observed.gpus) == (manifest.stage, manifest.gpus)
    # a simulated run's wall seconds are the simulator's own figure (no real interval)
    assert honest.simulated and honest.observed.wall_seconds == record.metrics.total_seconds
    val = record.metrics.val_bpb
    edited = record.model_copy(
        update={
            "metrics": record.metrics.model_copy(update={"val_bpb": 0.123}),
            "status": "diverged",
        }
    )
    lying = check_run(ev, rid, edited, ev.manifests)
    assert lying.observed.metrics.val_bpb == val
    assert lying.observed.value("val_bpb") == val
    assert lying.observed.status == "ok"  # the status its log supports
    messages = [p.message for p in lying.problems]
    assert any("the record says val_bpb 0.1230, raw log" in m for m in messages), messages
    (mismatch,) = [p for p in lying.problems if p.check == "metrics match the raw log"]
    assert (mismatch.recorded, mismatch.found) == (0.123, val)
    assert any("status diverged but its log reports val_bpb" in m for m in messages), messages


def test_diff_names_each_differing_field():
    assert diff({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 2]}}) == []
    found = diff({"a": 1, "b": {"c": [1, 2]}, "d": 1}, {"a": 1.0, "b": {"c": [2, 1]}})
    assert found == ["b.c: recorded [2, 1], re-derived [1, 2]", "d: recorded None, re-derived 1"]
