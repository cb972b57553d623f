"""Direct tests of the ledger's helper modules: fsutil, rawlog and scan."""

from __future__ import annotations

import json
import os

import pytest

from ledger.errors import LedgerError
from ledger.fsutil import atomic_write
from ledger.rawlog import parse_raw_log
from ledger.scan import scan_objects
from ledger.signing import unsigned_object
from ledger.store import Store
from tests.conftest import umasked


def test_fsutil_atomic_write_is_all_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "f.txt"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first" and path.stat().st_mode & 0o777 == umasked(0o644)

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(LedgerError, match=r"cannot write .*f.txt: No space left on device"):
        atomic_write(path, b"second")
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]  # no temp file left


def test_rawlog_jsonl_without_summary_is_crashed_never_guessed():
    lines = [
        {"type": "header", "manifest": "m", "runner": "builtin"},
        {"type": "step", "step": 1, "train_seconds": 0.5, "loss": 3.0},
        {"type": "step", "step": 2, "train_seconds": 1.25, "loss": 2.9},
    ]
    parsed = parse_raw_log("".join(json.dumps(x) + "\n" for x in lines).encode())
    assert parsed.status == "crashed" and parsed.metrics["val_bpb"] is None
    assert parsed.metrics["training_seconds"] == 1.25 and parsed.steps == 2
    assert parsed.manifest == "m" and parsed.runner == "builtin"


def test_rawlog_autoresearch_reads_the_last_summary_block():
    text = (
        "---\nval_bpb: 1.5\ntraining_seconds: 10\ntotal_seconds: 12\n"
        "step 99\n---\nval_bpb:          0.997900\ntraining_seconds: 300.1\n"
        "total_seconds:    325.9\nmfu_percent:      39.80\nnum_steps:        953\n"
    )
    parsed = parse_raw_log(text.encode(), "autoresearch")
    assert parsed.status == "ok" and parsed.metrics["val_bpb"] == 0.9979
    assert parsed.metrics["training_seconds"] == 300.1 and parsed.metrics["num_steps"] == 953
    assert parsed.metrics["mfu"] == pytest.approx(0.398)
    partial = parse_raw_log(b"---\nval_bpb: 0.99\n", "autoresearch")
    assert partial.status == "crashed" and partial.metrics["val_bpb"] is None


def test_scan_classifies_and_catches_changed_bytes(tmp_path):
    store = Store.init(tmp_path / "s", host="h")
    raw = store.put_bytes(b"not json at all\n")
    run = store.put_json(unsigned_object("run", {"x": 1}))
    scan = scan_objects(store)
    assert scan.raw == {raw} and set(scan.objects) == {run} and not scan.problems
    # an envelope whose body is no run record: kept as read, with why, never typed
    assert scan.unfit[run].envelope is not None and run not in scan.stored
    why = scan.unfit[run].why
    assert why.startswith("run object does not fit its schema: body.manifest: is required")
    assert why.endswith("; body.x: unknown key")
    path = store.path_of(run)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"1", b"2"))
    scan = scan_objects(store)
    assert scan.bad == {run} and run not in scan.ids
    assert [p.object for p in scan.problems] == [run]
