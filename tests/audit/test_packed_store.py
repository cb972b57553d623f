"""Packs: a decided stage's run records and logs in one file, and the attacks on it.

Each attack is a plain file edit of a store whose stages `ledger decide` packed: an altered
byte inside a pack, a swapped index entry, a pack cut short, a pack in another host's
part, a linked packs folder, a loose copy that differs from the packed one, a version-1
marker over packs. `verify` and `audit` must name the object and the pack each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import ledger.store as store_module
from audit.bundle import export_bundle, open_bundle
from audit.rederive import audit_store
from gateledger.cli.main import cli
from gateledger.recording import pack as gl_pack
from ledger.errors import IntegrityError, UnsupportedStore
from ledger.index import reindex
from ledger.status import store_status
from ledger.store import Store
from ledger.verify import verify
from stages.lookup import current_manifest, manifest_runs
from tests.audit.conftest import problems
from tests.objects import pack_entries

SCREEN_RUNS = 17  # the test campaign's screen: 16 design points and the base, 1 seed, 1 host
GATE_RUNS = 20  # its gate: top 3, the base and the added condition, 2 seeds, 2 hosts


def packs(store: Store, host: str = "h1") -> list[Path]:
    return sorted((store.root / "parts" / host / "packs").glob("*.pack"))


def screen(store: Store):
    return manifest_runs(store, current_manifest(store, "t", "screen").id)


def screen_pack(store: Store) -> Path:
    """The pack that holds the screen's run records and logs."""
    log = screen(store)[0].body.raw_log
    (found,) = [p for p in packs(store) if log in dict(pack_entries(p)[1])]
    return found


def located(path: Path, oid: str) -> tuple[int, int]:
    """(offset in the file, length) of `oid`'s bytes, read from the index by hand."""
    data = path.read_bytes()
    start = data.index(b"\n\n") + 2
    for line in data[: start - 2].split(b"\n")[1:]:
        eid, offset, length = line.decode().split(" ")
        if eid == oid:
            return start + int(offset), int(length)
    raise AssertionError(f"{oid} is not in {path}")


def rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def named(found: list, *texts: str) -> bool:
    return any(all(t in str(p) for t in texts) for p in found)


def rel(store: Store, path: Path) -> str:
    return str(path.relative_to(store.root))


def test_decide_packs_the_records_and_logs_of_the_stage_it_decides(done):
    store = done[0]
    runs = screen(store)
    assert len(runs) == SCREEN_RUNS
    cited = {r.id for r in runs} | {r.body.raw_log for r in runs}
    assert all(r.body.stderr is None for r in runs)  # the simulator writes no stderr
    assert len(packs(store)) == 2  # screen and gate, decided on this host
    path = screen_pack(store)
    header, entries = pack_entries(path)
    assert header == b"gateledger-pack 1 h1"
    assert {oid for oid, _ in entries} == cited and len(entries) == 2 * SCREEN_RUNS
    assert all(hashlib.sha256(data).hexdigest() == oid for oid, data in entries)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
    assert not any(
        (store.root / "parts/h1/objects" / oid[:2] / oid).exists() for oid in cited
    )  # moved, not copied
    assert json.loads((store.root / "store.json").read_bytes())["version"] == 2
    assert all(store.get_bytes(oid) == data for oid, data in entries)
    assert verify(store) == []
    reindex(store)  # the index rebuilt from packed objects matches a fresh derivation
    assert verify(store) == []
    assert audit_store(store).ok


def test_storing_new_objects_beside_packs_rebuilds_no_pack_map(done, monkeypatch):
    """An ingest asks the store for every new object it writes; with packs present that
    must not rebuild the map of every packed copy each time (at 78k runs that made a run
    10x slower), nor re-read an index."""
    store = Store.open(done[0].root)
    for warm in (b"one\n", b"two\n"):  # reads the indexes (the first makes this host's part)
        store.put_bytes(warm)
    before = {host: id(packs.copies) for host, packs in store._packs.items()}
    maps = []
    real = store_module._Packs
    monkeypatch.setattr(
        store_module, "_Packs", lambda *args: maps.append(id(args[-1])) or real(*args)
    )
    monkeypatch.setattr(store_module, "read_index", lambda path: 1 / 0)
    new = [store.put_bytes(f"new object {i}\n".encode()) for i in range(20)]
    assert maps and set(maps) <= set(before.values())
    assert {host: id(packs.copies) for host, packs in store._packs.items()} == before
    assert all(store.get_bytes(oid) for oid in new)


def test_an_altered_byte_inside_a_pack(done):
    store = done[0]
    run = screen(store)[0]
    path = screen_pack(store)
    offset, length = located(path, run.body.raw_log)
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0x01
    rewrite(path, bytes(data))
    found = [str(p) for p in verify(store)]
    assert named(found, run.body.raw_log, "corrupted", f"in pack {rel(store, path)}"), found
    assert named(found, rel(store, path), "no longer hash to its name"), found
    with pytest.raises(IntegrityError, match=f"{run.body.raw_log}.*in pack {path.name}"):
        Store.open(store.root, host="h1").get_bytes(run.body.raw_log)
    assert any(run.body.raw_log in p for p in problems(store))


def test_a_swapped_index_entry_even_under_a_matching_name(done):
    store = done[0]
    a, b = screen(store)[:2]
    path = screen_pack(store)
    data = path.read_bytes()
    # the two index lines trade ids: each id now points at the other log's bytes, and the
    # pack is renamed to the hash of its new bytes, so only each object's re-hash can tell
    swapped = data.replace(a.body.raw_log.encode(), b"X" * 64, 1)
    swapped = swapped.replace(b.body.raw_log.encode(), a.body.raw_log.encode(), 1)
    swapped = swapped.replace(b"X" * 64, b.body.raw_log.encode(), 1)
    assert len(swapped) == len(data) and swapped != data
    path.unlink()
    forged = path.parent / f"{hashlib.sha256(swapped).hexdigest()}.pack"
    forged.write_bytes(swapped)
    found = [str(p) for p in verify(store)]
    for log in (a.body.raw_log, b.body.raw_log):
        assert named(found, log, "corrupted", f"in pack {rel(store, forged)}"), found
    assert not named(found, "no longer hash to its name"), found
    audited = problems(store)
    assert any(a.body.raw_log in p for p in audited) and any(b.body.raw_log in p for p in audited)


def test_a_pack_cut_short(done):
    store = done[0]
    path = screen_pack(store)
    _header, entries = pack_entries(path)
    ends = {oid: sum(located(path, oid)) for oid, _ in entries}
    last = max(ends, key=lambda oid: ends[oid])
    rewrite(path, path.read_bytes()[:-100])
    found = [str(p) for p in verify(store)]
    assert named(found, last, "cannot read", "ends before", rel(store, path)), found
    assert named(found, rel(store, path), "no longer hash to its name"), found
    assert sum(last in str(p) for p in found) >= 1
    assert any(last in p for p in problems(store))


def test_an_index_line_that_does_not_parse_and_a_file_that_is_no_pack(done):
    store = done[0]
    run = screen(store)[0]
    path = screen_pack(store)
    data = path.read_bytes()
    line = data.index(run.id.encode())
    rewrite(path, data[:line] + b"g" * 64 + data[line + 64 :])  # same length, not an id
    (path.parent / "notes.txt").write_bytes(b"not a pack")
    found = [str(p) for p in verify(store)]
    assert named(found, rel(store, path), "index line", "not read"), found
    assert named(found, run.id, "missing"), found  # what the line listed is not there
    assert named(found, "parts/h1/packs/notes.txt", "no complete index"), found
    assert named(found, "parts/h1/packs/notes.txt", "not named by its id"), found
    assert named(problems(store), run.id)


def test_a_pack_in_another_hosts_part(done):
    store = done[0]
    path = screen_pack(store)
    other = store.root / "parts" / "h2" / "packs"
    other.mkdir(parents=True)
    shutil.copy2(path, other / path.name)  # a copy: every object is still intact
    found = [str(p) for p in verify(store)]
    moved = f"parts/h2/packs/{path.name}"
    assert named(found, moved, "host h1's part", "h2's"), found
    assert named(problems(store), moved, "h1")
    # moved rather than copied, the part it belongs to lacks nothing that is not named
    path.unlink()
    assert named([str(p) for p in verify(store)], moved, "host h1's part")


def test_a_symlinked_packs_folder_or_pack_is_never_read(done, tmp_path):
    store = done[0]
    run = screen(store)[0]
    folder = store.root / "parts" / "h1" / "packs"
    away = tmp_path / "elsewhere"
    shutil.move(folder, away)
    folder.symlink_to(away, target_is_directory=True)
    found = [str(p) for p in verify(store)]
    assert named(found, "parts/h1/packs", "symbolic link"), found
    assert not Store.open(store.root, host="h1").exists(run.id)
    assert named(problems(store), run.id, "missing")
    # one pack as a link in a real folder: named, and not read either
    folder.unlink()
    folder.mkdir()
    target = sorted(away.glob("*.pack"))[0]
    for pack in away.glob("*.pack"):
        if pack != target:
            shutil.copy2(pack, folder / pack.name)
    (folder / target.name).symlink_to(target)
    found = [str(p) for p in verify(store)]
    assert named(found, f"parts/h1/packs/{target.name}", "symbolic link"), found


def test_a_loose_copy_that_differs_from_the_packed_one(done):
    store = done[0]
    run = screen(store)[0]
    log = run.body.raw_log
    original = store.get_bytes(log)
    value = f"{run.body.metrics.val_bpb}".encode()
    assert original.count(value) >= 1
    forged = original.replace(value, b"0.5", 1)  # a far better loss, same id claimed
    loose = store.root / "parts/h1/objects" / log[:2] / log
    loose.parent.mkdir(parents=True, exist_ok=True)
    loose.write_bytes(forged)
    found = [str(p) for p in verify(store)]
    assert named(found, log, "corrupted"), found
    assert not named(found, log, "in pack"), found  # the pack's copy is intact
    result = audit_store(store)
    seen = result.runs[run.id].observed.metrics.val_bpb
    assert seen in (None, run.body.metrics.val_bpb), seen  # never the forged bytes
    assert any(log in str(p) for p in result.problems)


def test_a_version_1_marker_over_packs(done):
    store = done[0]
    rewrite(store.root / "store.json", b'{"format":"gateledger-store","version":1}')
    found = [str(p) for p in verify(store)]
    assert named(found, "store.json", "version 1", "packs"), found


def test_store_versions_read_and_refused(tmp_path):
    root = tmp_path / "s"
    store = Store.init(root, host="h1")
    assert json.loads((root / "store.json").read_bytes())["version"] == 1  # no packs yet
    store.allow_packs()
    assert json.loads((root / "store.json").read_bytes()) == {
        "format": "gateledger-store",
        "version": 2,
    }
    assert Store.open(root).version() == 2
    (root / "store.json").write_bytes(b'{"format":"gateledger-store","version":3}')
    with pytest.raises(UnsupportedStore, match="unsupported store version 3"):
        Store.open(root)


def unpack(store: Store) -> None:
    """The store as a version without packs wrote it: every object loose, marker 1."""
    for path in packs(store):
        for oid, data in pack_entries(path)[1]:
            loose = store.root / "parts/h1/objects" / oid[:2] / oid
            loose.parent.mkdir(parents=True, exist_ok=True)
            loose.write_bytes(data)
        path.unlink()
    rewrite(store.root / "store.json", b'{"format":"gateledger-store","version":1}')


def test_ledger_pack_converts_an_old_store(done):
    store = done[0]
    unpack(store)
    assert verify(store) == [] and audit_store(store).ok
    counts = store_status(store).by_kind
    runner = CliRunner()
    res = runner.invoke(cli, ["--store", str(store.root), "--host", "h1", "pack", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["objects"] == 2 * (SCREEN_RUNS + GATE_RUNS) and len(out["packs"]) == 2
    assert sorted(p.stem for p in packs(store)) == sorted(out["packs"])
    assert json.loads((store.root / "store.json").read_bytes())["version"] == 2
    assert verify(store) == [] and audit_store(store).ok
    assert store_status(store).by_kind == counts
    again = runner.invoke(cli, ["--store", str(store.root), "--host", "h1", "pack", "--json"])
    assert json.loads(again.stdout)["objects"] == 0 and json.loads(again.stdout)["packs"] == []
    res = runner.invoke(cli, ["--store", str(store.root), "pack", "--part", "nosuch"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "'nosuch'" in res.stderr
    res = runner.invoke(cli, ["--store", str(store.root), "pack", "--part", "x", "--json"])
    assert res.exit_code == 2 and "'x'" in json.loads(res.stdout)["error"]


def test_a_damaged_loose_object_is_left_where_verify_names_it(done):
    store = done[0]
    unpack(store)
    log = screen(store)[0].body.raw_log
    loose = store.root / "parts/h1/objects" / log[:2] / log
    data = bytearray(loose.read_bytes())
    data[len(data) // 2] ^= 0x01
    rewrite(loose, bytes(data))
    packed = gl_pack(store)
    assert packed.damaged == [log] and packed.objects == 2 * (SCREEN_RUNS + GATE_RUNS) - 1
    assert loose.read_bytes() == bytes(data)  # not moved, not removed
    assert all(log not in dict(pack_entries(p)[1]) for p in packs(store))
    found = [str(p) for p in verify(store)]
    assert named(found, log, "corrupted") and not named(found, log, "in pack"), found


def test_a_stage_over_the_pack_size_is_split(done, monkeypatch):
    store = done[0]
    unpack(store)
    cited = [oid for run in screen(store) for oid in (run.id, run.body.raw_log)]
    limit = 3 * max(len(store.get_bytes(oid)) for oid in cited)  # a few objects per pack
    monkeypatch.setattr("ledger.packing.MAX_PACK_BYTES", limit)
    packed = gl_pack(store)
    assert packed.objects == 2 * (SCREEN_RUNS + GATE_RUNS)
    made = packs(store)
    assert len(made) == len(packed.packs) > 2
    for path in made:
        entries = pack_entries(path)[1]
        assert sum(len(d) for _, d in entries) <= limit
    assert sum(len(pack_entries(p)[1]) for p in made) == packed.objects
    assert verify(store) == [] and audit_store(store).ok


def test_a_packed_store_bundles_and_audits_elsewhere(done, tmp_path):
    store = done[0]
    bundle = export_bundle(store.root, tmp_path / "b.tar.gz")
    root, found = open_bundle(bundle, tmp_path / "opened")
    assert found == []
    assert sorted(p.name for p in (root / "parts/h1/packs").glob("*.pack")) == sorted(
        p.name for p in packs(store)
    )
    assert audit_store(Store.open(root, host="reviewer")).ok


CRASH = """
import os, signal, sys
import ledger.fsutil, ledger.packing
import ledger.store as store_module
from ledger.store import Store
point = sys.argv[2]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "marker":  # store.json says 2, no pack written yet
    ledger.packing.atomic_write = die
elif point == "temp":  # the pack's temp file written and synced, not renamed
    real = ledger.fsutil.os.replace
    def replace(src, dst):
        if str(dst).endswith(".pack"):
            die()
        real(src, dst)
    ledger.fsutil.os.replace = replace
elif point == "renamed":  # the pack in place, no loose copy removed
    ledger.packing.parse_index = die
elif point == "half":  # some loose copies removed
    real_unlink, count = os.unlink, [0]
    def unlink(path):
        count[0] += 1
        if count[0] > 5:
            die()
        real_unlink(path)
    ledger.packing.os.unlink = unlink
from gateledger.recording import pack
pack(Store.open(sys.argv[1], host="h1"))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("point", ["marker", "temp", "renamed", "half"])
def test_a_pack_killed_at_any_step_leaves_every_object_readable(done, point):
    store = done[0]
    unpack(store)
    ids = [oid for oid, _ in store.iter_objects()]
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(store.root), point],
        env=os.environ.copy(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    fresh = Store.open(store.root, host="h1")
    assert all(hashlib.sha256(fresh.get_bytes(oid)).hexdigest() == oid for oid in ids)
    assert verify(fresh) == [] and audit_store(fresh).ok
    assert fresh.version() == 2  # marked before any pack was written
    CliRunner().invoke(cli, ["--store", str(store.root), "--host", "h1", "pack"])
    loose = {oid for oid, _ in fresh.loose_objects()}
    assert all(oid not in loose for _p in packs(fresh) for oid, _ in pack_entries(_p)[1])
    assert verify(fresh) == [] and audit_store(fresh).ok
