"""Move a decided stage's loose objects into packs of their part (`ledger.pack`), crash-safe.

Why after the decision: a decided stage's run records and logs are final, and an audit
reads every one of them; in one file per stage they are read sequentially. `ledger decide`
packs the stage it decided (`stages.decide`), `ledger pack` the decided stages of an
existing store (`decided_objects`).

Order of the writes, so that a crash at any point leaves every object readable (loose,
packed or both; two copies are the same bytes, as in two parts):

1. each loose copy is read and re-hashed; a damaged one stays where it is, for `verify`;
2. store.json is marked version 2 (`Store.allow_packs`) before the first pack exists;
3. the pack is written to a temp file, fsynced, renamed to its id, its folder fsynced;
4. the pack is read back and each object checked against its id;
5. only then are the loose copies removed.

A host packs only its own part (or the part it is told to act for): objects never move
between parts, so hosts still merge their stores by union.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledger.canonical import is_object_id, sha256_hex
from ledger.documents import RunRecord
from ledger.errors import IntegrityError, LedgerError, StorageError
from ledger.fsutil import atomic_write
from ledger.pack import MAX_PACK_BYTES, PACK_SUFFIX, ObjectCopy, build_pack, parse_index
from ledger.store import Store, read_document


@dataclass
class Packed:
    """What one packing did: packs written (ids), objects moved into them, loose copies of
    already packed objects removed, and damaged loose copies left where they are."""

    packs: list[str] = field(default_factory=list)
    objects: int = 0
    duplicates: int = 0
    damaged: list[str] = field(default_factory=list)

    def add(self, other: Packed) -> None:
        self.packs += other.packs
        self.objects += other.objects
        self.duplicates += other.duplicates
        self.damaged += other.damaged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pack_objects(store: Store, oids: Iterable[str], host: str | None = None) -> Packed:
    """Move the objects among `oids` that lie loose in `host`'s part (default: the store's
    own) into packs of that part, at most MAX_PACK_BYTES of objects each."""
    host = host or store.host
    done = Packed()
    if host not in store.parts():  # no part, or a linked one (never read)
        return done
    packed = {  # copies in this part's own packs (a pack another part wrote is a problem)
        c.oid: c for index in store.pack_indexes(host) if index.host == host for c in index.entries
    }
    batch: list[tuple[str, bytes, Path]] = []
    size = 0
    for oid in sorted({o for o in oids if is_object_id(o)}):
        path = store.parts_dir / host / "objects" / oid[:2] / oid
        if path.parent.is_symlink() or path.parent.parent.is_symlink():
            continue  # a linked objects folder or fan is never read (`Store.linked_parts`)
        data = _intact(path, oid)
        if data is None:
            if path.is_file() and not path.is_symlink():
                done.damaged.append(oid)
            continue
        if oid in packed and _intact_copy(packed[oid]):
            _remove([path])
            done.duplicates += 1
            continue
        if batch and size + len(data) > MAX_PACK_BYTES:
            done.add(_write(store, host, batch))
            batch, size = [], 0
        batch.append((oid, data, path))
        size += len(data)
    if batch:
        done.add(_write(store, host, batch))
    return done


def _intact(path: Path, oid: str) -> bytes | None:
    """The loose file's bytes when it is a regular file that hashes to `oid`, else None."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if sha256_hex(data) == oid else None


def _intact_copy(copy: ObjectCopy) -> bool:
    try:
        return sha256_hex(copy.read()) == copy.oid
    except (OSError, LedgerError):
        return False


def _write(store: Store, host: str, batch: list[tuple[str, bytes, Path]]) -> Packed:
    """Write one pack of `batch`, check it as read back, then remove the loose copies."""
    data = build_pack(host, [(oid, raw) for oid, raw, _path in batch])
    pack_id = sha256_hex(data)
    target = store.packs_dir(host) / f"{pack_id}{PACK_SUFFIX}"
    store.allow_packs()
    atomic_write(target, data, mode=0o444)
    try:
        back = target.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read back pack {target}: {exc.strerror or exc}") from None
    index = parse_index(back, target)
    found = {c.oid: back[c.offset : c.offset + (c.length or 0)] for c in index.entries}
    for oid, _raw, _path in batch:
        if sha256_hex(found.get(oid, b"")) != oid:
            raise IntegrityError(
                f"pack {target} does not hold object {oid} as written: the loose copies stay"
            )
    _remove([path for _oid, _raw, path in batch])
    return Packed([pack_id], len(batch))


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(
                f"cannot remove {path} after packing it: {exc.strerror or exc}"
            ) from None


def run_objects(store: Store, run_ids: Iterable[str]) -> list[str]:
    """The run records `run_ids` and the raw logs and stderr tails they cite (a record
    that cannot be read or parsed is left out: packing only moves what verifies)."""
    out = []
    for rid in run_ids:
        try:
            record = read_document(store, rid, "run", RunRecord)
        except LedgerError:
            continue
        out += [rid, record.raw_log] + ([record.stderr] if record.stderr else [])
    return out


def decided_objects(store: Store) -> dict[str, list[str]]:
    """Manifest id -> the run records journaled for it and the logs they cite, for every
    manifest a journal records a decision for: what `ledger pack` moves."""
    decided: set[str] = set()
    runs: dict[str, list[str]] = {}
    for journal in store.journals():
        for event in journal.events():
            manifest, oid = event.manifest, event.object
            if manifest is None or oid is None:
                continue
            if event.kind == "decision_made":
                decided.add(manifest)
            elif event.kind == "run_recorded":
                runs.setdefault(manifest, []).append(oid)
    return {m: run_objects(store, runs.get(m, [])) for m in sorted(decided)}


def pack_decided(store: Store, hosts: list[str], *, progress: bool = False) -> Packed:
    """Pack every decided stage's objects that lie loose in each of `hosts`' parts, one
    pack per stage and part (`ledger pack`), with a bar on a terminal when asked."""
    stages = decided_objects(store)
    bar = None
    if progress and sys.stderr.isatty() and stages:
        from tqdm import tqdm  # ~0.1 s, paid only when a bar is drawn

        bar = tqdm(total=len(stages), unit="stage", desc="pack", file=sys.stderr, leave=False)
    done = Packed()
    for oids in stages.values():
        for host in hosts:
            done.add(pack_objects(store, oids, host))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return done


__all__ = ["Packed", "decided_objects", "pack_decided", "pack_objects", "run_objects"]
