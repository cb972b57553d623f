"""Freezing plans, parsing raw logs, ingesting runs."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from ledger.ingest import (
    ingest,
    is_recorded,
    parse_raw_log,
    record_run_start,
    recorded_runs,
)
from ledger.manifest import freeze, load_manifest

from .conftest import C0, C1, make_log, make_plan

AUTORESEARCH = b"""step 00953 (100.0%) | loss: 3.0
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""


def test_freeze_and_load(store, key):
    mid = freeze(store, make_plan(), key)
    body = load_manifest(store, mid)
    assert body.freezer == key.key_id and body.amends is None
    assert store.keyring().has(key.key_id)
    assert store.journal().events()[-1].kind == "manifest_frozen"
    mid2 = freeze(store, make_plan(3), key, amends=mid)
    event = store.journal().events()[-1]
    assert (event.kind, event.object, event.manifest) == ("amended", mid2, mid)


@pytest.mark.parametrize(
    ("edit", "key_named"),
    [
        (lambda p: p.pop("rule"), "rule"),
        (lambda p: p.update(budget_s=0), "budget_s"),
        (lambda p: p.update(runs=[]), "runs"),
        (lambda p: p["runs"].append(dict(p["runs"][0])), "runs"),
        (lambda p: p["runs"].append({"condition": "zz", "seed": 0, "host": "h1"}), "runs"),
        (lambda p: p.update(parent="0" * 64), "parent"),
        (lambda p: p.update(campaign=3), "campaign"),
    ],
)
def test_bad_plans_refused(store, key, edit, key_named):
    plan = make_plan()
    edit(plan)
    with pytest.raises(LedgerError, match=f"plan key '{key_named}'"):
        freeze(store, plan, key)
    assert list(store.iter_objects()) == [] and store.journals() == []


def test_parse_jsonl():
    parsed = parse_raw_log(make_log("a" * 64))
    assert parsed.status == "ok" and parsed.steps == 2 and parsed.runner == "builtin"
    assert parsed.metrics["val_bpb"] == 1.25 and parsed.manifest == "a" * 64
    died = parse_raw_log(make_log(None, summary=False, train_s=3.0) + b"garbage\n")
    assert died.status == "crashed" and died.metrics["val_bpb"] is None
    assert died.metrics["training_seconds"] == 3.0  # the last step's, never a guess
    assert died.garbage == 1 and any("line 4: not valid JSON" in p for p in died.problems)
    torn = parse_raw_log(make_log(None, summary=False) + b'{"type":"st')
    assert torn.torn_tail and torn.garbage == 0 and torn.status == "crashed"


def test_parse_autoresearch():
    parsed = parse_raw_log(AUTORESEARCH, "autoresearch")
    assert parsed.status == "ok" and parsed.metrics["val_bpb"] == 0.9979
    assert parsed.metrics["num_steps"] == 953 and parsed.metrics["total_tokens"] == 499600000
    partial = parse_raw_log(b"---\nval_bpb: 1.0\n", "autoresearch")
    assert partial.status == "crashed" and partial.metrics["val_bpb"] is None
    assert parse_raw_log(b"Traceback...\n", "autoresearch").status == "crashed"


def test_ingest_rules(store, key):
    mid = freeze(store, make_plan(), key)
    record_run_start(store, mid, C0, 0, "h1", key=key)
    rid = ingest(store, make_log(mid), manifest=mid, condition=C0, seed=0, host="h1", key=key)
    body = store.get_json(rid)["body"]
    assert body["run"] == f"{C0}/0/h1" and body["stage"] == "screen"
    assert recorded_runs(store, mid) == {f"{C0}/0/h1": rid}
    assert is_recorded(store, mid, f"{C0}/0/h1") and not is_recorded(store, mid, f"{C1}/0/h1")
    assert not is_recorded(store, "f" * 64, f"{C0}/0/h1")
    with pytest.raises(LedgerError, match="run already recorded"):
        ingest(store, make_log(mid), manifest=mid, condition=C0, seed=0, host="h1", key=key)
    with pytest.raises(LedgerError, match="not declared"):
        ingest(store, make_log(mid), manifest=mid, condition="f" * 64, seed=0, host="h1", key=key)
    before = len(list(store.iter_objects()))
    with pytest.raises(LedgerError, match="header cites manifest 'bbbb"):
        ingest(
            store,
            make_log("b" * 64, depth=3),
            manifest=mid,
            condition=C1,
            seed=0,
            host="h1",
            key=key,
        )
    assert len(list(store.iter_objects())) == before
    free = ingest(store, AUTORESEARCH, fmt="autoresearch", key=key)
    assert store.get_json(free)["body"]["manifest"] is None
