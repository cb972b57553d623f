"""A writer with the store but not the key (a shared file system, a DVC remote) cannot change
a decision's inputs: run records and interruptions are signed at ingest, journal heads are
signed, and a signing writer refuses to append to a journal rewritten since it last signed
it. Old stores, whose records are unsigned, keep verifying and say so."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.ingest import ingest, record_run_start
from ledger.keys import generate_key
from ledger.rawlog import parse_raw_log
from ledger.store import Store
from stages.lookup import current_manifest, manifest_runs
from tests.audit.conftest import rewrite_journal
from tests.ledger.conftest import C0, C1, freeze_as_before, make_log, make_plan


@pytest.fixture
def ran(tmp_path, sim_campaign):
    """The screen frozen and run on the simulator, not decided yet."""
    root = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--store", str(root), "--host", "h1", *args])

    assert invoke("init").exit_code == 0 and invoke("keygen", "--name", "op").exit_code == 0
    assert invoke("freeze", "screen", "--campaign", str(sim_campaign), "--sim-only").exit_code == 0
    assert (
        invoke("run", "screen", "--campaign", str(sim_campaign), "--executor", "sim").exit_code == 0
    )
    return invoke, Store.open(root, host="h1"), sim_campaign


def _events(store):
    return [json.loads(x) for x in store.journal().path.read_text().splitlines()]


def test_a_replaced_record_and_log_never_reach_a_decision(ran):
    """The run that lost is given a winning log and record, the journal re-chained to cite
    it: without the key the record is unsigned, so `decide` refuses and verify names it."""
    invoke, store, camp = ran
    manifest = current_manifest(store, "t", "screen")
    victim = manifest_runs(store, manifest.id)[-1]
    lines = [json.loads(x) for x in store.get_bytes(victim.body.raw_log).splitlines()]
    for line in lines:
        if line["type"] in ("eval", "summary"):
            line["val_bpb"] = 0.1
    raw = "".join(json.dumps(x) + "\n" for x in lines).encode()
    body = {
        **victim.body.to_dict(),
        "raw_log": store.put_bytes(raw),
        "metrics": parse_raw_log(raw).metrics,
    }
    del body["recorder"]
    forged = store.put_unsigned("run", body)
    events = [{**e, "object": forged} if e["object"] == victim.id else e for e in _events(store)]
    rewrite_journal(store.journal(), events)  # consistent chain, unsigned head
    res = invoke("decide", "screen", "--campaign", str(camp))
    assert res.exit_code == 1 and f"run record {forged} is not signed" in res.output, res.output
    res = invoke("verify", "--json")
    problems = {p["object"]: p for p in json.loads(res.output)["problems"]}
    assert res.exit_code == 1
    assert problems[forged]["check"] == "signed records"
    assert (problems[forged]["condition"], problems[forged]["seed"], problems[forged]["host"]) == (
        victim.body.condition,
        0,
        "h1",
    )
    assert problems["parts/h1/journal.head"]["check"] == "signed journal head"


def test_a_rewritten_journal_is_not_signed_over(ran):
    """Only the journal is edited (a start moved, hours earlier): the owner's next signed
    append refuses to vouch for it, so the edit stays visible to verify."""
    invoke, store, camp = ran
    events = _events(store)
    start = next(e for e in events if e["kind"] == "run_started")
    start["at"] = "2000-01-01T00:00:00+00:00"
    rewrite_journal(store.journal(), events)
    res = invoke("decide", "screen", "--campaign", str(camp))
    assert res.exit_code == 1 and "it was rewritten since; nothing appended" in res.output
    assert not [e for e in _events(store) if e["kind"] == "decision_made"]
    res = invoke("verify")
    assert res.exit_code == 1 and "journal head is not signed" in res.output


def test_an_old_store_with_unsigned_records_keeps_verifying_and_says_so(tmp_path):
    store, key = Store.init(tmp_path / "old", host="h1"), generate_key("old")
    mid = freeze_as_before(store, make_plan(), key)  # frozen before records were signed
    for i, cond in enumerate((C0, C1)):
        record_run_start(store, mid, cond, 0, "h1")
        log = make_log(mid, 1.2 + i / 10, depth=2 + i).replace(
            b"2026-01-01T00:00:00Z", datetime.now(UTC).isoformat().encode()
        )
        ingest(
            store,
            log,
            manifest=mid,
            condition=cond,
            seed=0,
            host="h1",
        )
    result = audit_store(store, allow_undecided=True)
    assert result.problems == []
    assert any("2 run record(s) are unsigned" in n for n in result.notes), result.notes
    (stage,) = result.stages
    assert (
        stage.attempts is not None and stage.attempts.max is None
    )  # no bound was frozen: attempts only listed
    assert stage.seeds is not None and stage.seeds.binding == "unbound"
    assert "before seed rules" in stage.seeds.detail
