"""`verify` names every damaged or tampered file; a clean store verifies clean."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.index import reindex
from ledger.verify import verify


def flip(path: Path, offset: int, xor: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= xor
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def named(problems, text: str) -> bool:
    return any(text in str(p) for p in problems)


def test_clean(filled):
    assert verify(filled.store) == []
    reindex(filled.store)
    assert verify(filled.store) == []


def test_flip_each_kind(filled):
    store = filled.store
    raw_log = store.get_json(filled.runs[0])["body"]["raw_log"]
    cases = {
        "raw": (store.path_of(raw_log), raw_log),
        "run record": (store.path_of(filled.runs[1]), filled.runs[1]),
        "manifest": (store.path_of(filled.manifest), filled.manifest),
        "decision": (store.path_of(filled.decision), filled.decision),
        "key file": (store.root / "keys" / f"{filled.key.key_id}.json", "keys/"),
        "journal": (store.journal().path, "journal.jsonl"),
        "anchor": (store.root / "anchors" / f"{filled.anchor}.json", "anchors/"),
    }
    for name, (path, expected) in cases.items():
        original = path.read_bytes()
        flip(path, len(original) // 2)
        problems = verify(store)
        assert named(problems, expected), (name, problems)
        path.write_bytes(original)
    assert verify(store) == []


def test_last_journal_line_edit_detected(filled):
    path = filled.store.journal().path
    data = path.read_bytes()
    flip(path, len(data) - 10)
    assert named(verify(filled.store), "journal.head")


def test_anchor_catches_rechained_journal(filled):
    from ledger.canonical import canonical_bytes, sha256_hex

    journal = filled.store.journal()
    import json

    events = [json.loads(x) for x in journal.path.read_bytes().splitlines()]
    del events[1]
    lines, prev = [], "0" * 64
    for i, ev in enumerate(events):
        line = canonical_bytes({**ev, "seq": i, "prev": prev})
        lines.append(line)
        prev = sha256_hex(line)
    journal.path.write_bytes(b"".join(x + b"\n" for x in lines))
    journal.head_path.write_bytes(
        canonical_bytes({"host": "h1", "seq": len(lines) - 1, "hash": prev})
    )
    problems = verify(filled.store)
    assert named(problems, f"{filled.anchor}: journal 'h1' no longer extends this anchor"), problems


def test_cross_references(filled):
    store = filled.store
    store.path_of(filled.manifest).unlink()
    problems = verify(store)
    assert named(problems, f"{filled.runs[0]}: manifest {filled.manifest} is missing")
    assert named(problems, f"{filled.decision}: manifest {filled.manifest} is missing")
    assert named(problems, f"cites missing object {filled.manifest}")


def test_unknown_signer_and_unsigned(filled, tmp_path, monkeypatch):
    from ledger.keys import generate_key
    from ledger.signing import sign_object

    monkeypatch.setenv("LEDGER_KEY_DIR", str(tmp_path / "other"))
    intruder = generate_key("intruder")
    oid = filled.store.put_json(
        sign_object("decision", {"manifest": filled.manifest, "runs": []}, intruder)
    )
    bare = filled.store.put_json({"kind": "manifest", "body": {}})
    problems = verify(filled.store)
    assert named(problems, f"{oid}: decision signed by unknown key {intruder.key_id}")
    assert named(problems, f"{bare}: manifest is not signed")


def test_a_signed_body_that_fits_no_model_is_named_and_never_evidence(filled):
    """A record signed by the store's own key and journaled, whose seed is a string: its
    signature verifies, but it is no run record, so verify names every bad key in one line
    and the object is not evidence (nothing downstream reads it)."""
    from ledger.verify import verify_with_evidence

    store, key = filled.store, filled.key
    good = store.get_json(filled.runs[0])["body"]
    body = {**good, "seed": "0", "run": f"{good['condition']}/1/h1", "shoe": 1}
    rid = store.put_signed("run", body, key)
    store.journal().append("run_recorded", object=rid, run=body["run"], manifest=filled.manifest)
    found = verify_with_evidence(store)
    (problem,) = [p for p in found.problems if p.object == rid]
    assert problem.check == "schema"
    assert problem.message == (
        "run object does not fit its schema: body.seed: must be an integer, not '0'; "
        "body.shoe: unknown key: not used"
    )
    assert rid not in found.evidence and rid in found.scan.unfit


def test_index_disagreement(filled):
    import duckdb

    path = reindex(filled.store)
    con = duckdb.connect(str(path))
    con.execute("UPDATE runs SET val_bpb = 0.5")
    con.close()
    assert named(verify(filled.store), "index.duckdb")
    reindex(filled.store)
    assert verify(filled.store) == []


def _stored_files(store) -> list[Path]:
    skip = {"index.duckdb", "journal.jsonl.lock"}
    return sorted(p for p in store.root.rglob("*") if p.is_file() and p.name not in skip)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_byte_mutation_detected(filled, data):
    store = filled.store
    files = _stored_files(store)
    path = data.draw(st.sampled_from(files), label="file")
    original = path.read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != original[offset]), label="byte")
    mutated = bytearray(original)
    mutated[offset] = value
    mode = path.stat().st_mode
    path.chmod(0o644)
    path.write_bytes(bytes(mutated))
    try:
        assert verify(store), (path, offset, value)
    finally:
        path.write_bytes(original)
        path.chmod(mode)


def test_parallel_scan_finds_exactly_what_a_single_pass_finds(filled, monkeypatch):
    import ledger.scan as scan_mod

    store = filled.store
    path = store.path_of(filled.runs[0])
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b" ")
    spaced = store.put_bytes(b'{"kind": "run", "body": {}}')
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_OBJECTS", 10**9)
    single = [str(p) for p in verify(store)]
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_OBJECTS", 1)
    monkeypatch.setattr("ledger.parallel.usable_cpus", lambda: 2)
    assert [str(p) for p in verify(store)] == single
    assert any(filled.runs[0] in p and "corrupted" in p for p in single)
    assert any(spaced in p and "not stored as canonical JSON" in p for p in single)
