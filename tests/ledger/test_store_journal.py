"""Object store and journal: atomic writes, lookups across parts, chain checks, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import pytest

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.errors import IntegrityError, LedgerError
from ledger.store import Store, default_host


def test_init_idempotent_and_open(tmp_path):
    root = tmp_path / "s"
    with pytest.raises(LedgerError, match=r"no ledger store at .* \(run `ledger init`\)"):
        Store.open(root)
    Store.init(root, host="h1")
    Store.init(root, host="h1")
    assert json.loads((root / "store.json").read_bytes()) == {
        "format": "gateledger-store",
        "version": 1,
    }
    assert {p.name for p in root.iterdir()} == {"store.json", "keys", "parts", "anchors"}
    assert Store.open(root, host="weird host/1").host == "weird-host-1"


def test_default_host(monkeypatch):
    monkeypatch.setenv("LEDGER_HOST", "a b")
    assert default_host() == "a-b"


def test_put_get_and_parts(store, tmp_path):
    oid = store.put_bytes(b"hello")
    assert oid == sha256_hex(b"hello")
    assert store.get_bytes(oid) == b"hello" and store.exists(oid)
    assert store.path_of(oid) == store.root / "parts/h1/objects" / oid[:2] / oid
    other = Store.open(store.root, host="h2")
    assert other.put_bytes(b"hello") == oid  # found in h1's part: not rewritten
    assert not (store.root / "parts/h2/objects").exists()
    oid2 = other.put_json({"kind": "run", "body": {"a": 1.5}})
    assert store.get_json(oid2)["body"] == {"a": 1.5}
    assert [i for i, _ in store.iter_objects()] == sorted([oid, oid2])
    assert store.parts() == ["h1", "h2"]


def test_get_errors(store):
    with pytest.raises(LedgerError, match="not an object id"):
        store.get_bytes("abc")
    with pytest.raises(LedgerError, match="unknown object ID"):
        store.get_bytes("0" * 64)
    oid = store.put_bytes(b"data")
    path = store.path_of(oid)
    path.chmod(0o644)
    path.write_bytes(b"datb")
    with pytest.raises(IntegrityError, match=f"object {oid} is corrupted"):
        store.get_bytes(oid)
    raw = store.put_bytes(b"[1]")
    with pytest.raises(IntegrityError, match="not a JSON object"):
        store.get_json(raw)


def test_unwritable_folder(store):
    """A folder the store cannot write to is one error naming it, as any user, root included.

    Permission bits do not stop root, so where ``chmod`` leaves the folder writable a file
    is put where the host's object folder must go: no user can create a folder there.
    """
    parts = store.root / "parts"
    parts.chmod(0o500)
    try:
        if os.access(parts, os.W_OK):  # root, or a file system that ignores modes
            parts.chmod(0o755)
            shutil.rmtree(parts / "h1", ignore_errors=True)
            (parts / "h1").write_bytes(b"in the way")
        with pytest.raises(LedgerError, match="parts"):
            store.put_bytes(b"x")
    finally:
        parts.chmod(0o755)


def test_journal_chain(store):
    journal = store.journal()
    a = journal.append("manifest_frozen", object="a" * 64)
    b = journal.append("run_started", run="c/0/h1", manifest="a" * 64)
    assert (a.seq, a.prev) == (0, "0" * 64)
    lines = journal.path.read_bytes().splitlines()
    assert b.prev == sha256_hex(lines[0]) and lines[1] == canonical_bytes(b.to_dict())
    head = journal.head()
    assert head is not None and head.to_dict() == {
        "host": "h1",
        "seq": 1,
        "hash": sha256_hex(lines[1]),
    }
    assert journal.events() == [a, b]
    assert journal.verify() == []
    with pytest.raises(LedgerError, match="unknown journal event kind"):
        journal.append("bogus")


def _rewrite(journal, lines):
    journal.path.write_bytes(b"".join(x + b"\n" for x in lines))


@pytest.mark.parametrize("change", ["delete", "reorder", "insert", "edit"])
def test_journal_tampering_detected(store, change):
    journal = store.journal()
    for i in range(5):
        journal.append("run_started", run=f"c/{i}/h1", manifest="a" * 64)
    lines = journal.path.read_bytes().splitlines()
    if change == "delete":
        del lines[2]
    elif change == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif change == "insert":
        lines.insert(2, lines[2])
    else:
        lines[4] = lines[4].replace(b"c/4/h1", b"c/9/h1")
    _rewrite(journal, lines)
    problems = journal.verify()
    assert problems and all(p.object == "parts/h1/journal.jsonl" for p in problems)


def test_torn_last_line_is_dropped(store):
    journal = store.journal()
    journal.append("run_started", run="c/0/h1", manifest="a" * 64)
    with open(journal.path, "ab") as fh:
        fh.write(b'{"at":"2026')  # a crash mid-write: never acknowledged
    assert len(journal.events()) == 1 and journal.verify() == []
    event = journal.append("run_started", run="c/1/h1", manifest="a" * 64)
    assert event.seq == 1 and journal.verify() == []
    assert journal.path.read_bytes().count(b"\n") == 2


def _appender(root: str, n: int, tag: int) -> None:
    journal = Store.open(root, host="h1").journal()
    for i in range(n):
        journal.append("run_started", run=f"p{tag}/{i}/h1", manifest="a" * 64)


def test_concurrent_appends(store):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(str(store.root), 50, t)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    journal = store.journal()
    events = journal.events()
    assert len(events) == 200 and [e.seq for e in events] == list(range(200))
    assert len({e.run for e in events}) == 200
    assert journal.verify() == []


GOOD_EVENT = {
    "seq": 0,
    "prev": "0" * 64,
    "kind": "run_started",
    "object": None,
    "run": "c/0/h1",
    "manifest": "a" * 64,
    "at": "2026-01-01T00:00:00+00:00",
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"extra": 1},
        {"seq": "0"},
        {"seq": True},
        {"kind": "bogus"},
        {"kind": 5},
        {"object": "not-an-id"},
        {"manifest": "A" * 64},
        {"run": 3},
        {"at": None},
    ],
)
def test_readers_take_exactly_the_lines_the_chain_check_calls_events(change):
    """`parse_event` (one validation, where readers meet every line) and `malformed` (the
    chain check's words) agree on which lines are events of the ledger's shape."""
    from ledger.journal import malformed, parse_event

    event = {**GOOD_EVENT, **change}
    line = json.dumps(event).encode()
    assert (parse_event(line) is None) == (malformed(event) is not None)
    assert parse_event(b"{not json") is None and parse_event(b"[1, 2]") is None


def test_a_line_missing_a_field_is_no_event_for_readers_either():
    from ledger.journal import malformed, parse_event

    for name in GOOD_EVENT:
        event = {k: v for k, v in GOOD_EVENT.items() if k != name}
        assert parse_event(json.dumps(event).encode()) is None and malformed(event) is not None
