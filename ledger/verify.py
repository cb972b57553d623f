"""`verify`: every byte, signature, key, journal chain, cross-reference and anchor.

Why one pass: each file is read once and each JSON object parsed once (see `scan`), so a
store of 100k runs verifies in seconds. Every finding is a `Problem` naming the object.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ledger.anchor import check_anchors
from ledger.errors import LedgerError
from ledger.index import fresh_digest, index_digest, index_path, index_stale
from ledger.journal import Journal
from ledger.manifest import declared_run_keys
from ledger.problems import Problem
from ledger.scan import ENVELOPE_FIELDS, KNOWN_KINDS, Scan, scan_objects
from ledger.signing import SIGNED_KINDS, stored_payload, verify_signature
from ledger.store import STORE_FORMAT, Store

EVENT_OBJECT_KIND = {
    "manifest_frozen": "manifest",
    "amended": "manifest",
    "run_recorded": "run",
    "decision_made": "decision",
    "anchor": "anchor",
}

__all__ = ["Problem", "verify"]


def _progress(store: Store, enabled: bool):
    """A tqdm bar on stderr when asked, stderr is a terminal and the store is big."""
    if not enabled or not sys.stderr.isatty():
        return None
    total = sum(1 for _ in store.iter_objects())
    if total < 5000:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="obj", desc="verify", file=sys.stderr, leave=False)


def verify(store: Store, *, check_index: bool = True, progress: bool = False) -> list[Problem]:
    """All integrity problems of the store (empty list = clean)."""
    return verify_with_evidence(store, check_index=check_index, progress=progress).problems


@dataclass
class Verified:
    """What one verify pass found, and what it read: the audit reuses the scan and lines
    so every byte is read and hashed once."""

    problems: list[Problem]
    scan: Scan
    journal_lines: dict[str, list[bytes]]


def verify_with_evidence(
    store: Store, *, check_index: bool = True, progress: bool = False
) -> Verified:
    """`verify`, also handing back the object scan and every journal's lines."""
    problems = _check_store_json(store)
    bar = _progress(store, progress)
    scan = scan_objects(store, tick=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    problems += scan.problems
    problems += store.keyring().check()
    problems += _check_envelopes(store, scan)
    journal_lines: dict[str, list[bytes]] = {}
    for journal in store.journals():
        lines = journal.lines()[0]
        journal_lines[journal.host] = lines
        problems += journal.verify(lines)
        problems += _check_events(journal, lines, scan)
    problems += _check_references(scan)
    problems += check_anchors(store, journal_lines, scan.of_kind("anchor"))
    if check_index and index_path(store).exists() and not index_stale(store):
        try:
            if index_digest(store) != fresh_digest(store, scan):
                problems.append(Problem("index.duckdb", "index does not match a rebuild from "
                                                        "objects and journals: run "
                                                        "`ledger reindex`"))
        except LedgerError as exc:
            problems.append(Problem("index.duckdb", str(exc)))
    return Verified(problems, scan, journal_lines)


def _check_store_json(store: Store) -> list[Problem]:
    try:
        meta = json.loads((store.root / "store.json").read_bytes())
    except (OSError, ValueError):
        return [Problem("store.json", "missing or not valid JSON")]
    if meta != STORE_FORMAT:
        return [Problem("store.json", f"does not describe a version-1 store: {meta!r}")]
    return []


def _check_envelopes(store: Store, scan: Scan) -> list[Problem]:
    problems = []
    keyring = store.keyring()
    for oid, obj in scan.objects.items():
        kind = obj.get("kind")
        if set(obj) - ENVELOPE_FIELDS:
            problems.append(Problem(oid, f"unexpected fields {sorted(set(obj) - ENVELOPE_FIELDS)}"))
        if kind not in KNOWN_KINDS:
            problems.append(Problem(oid, f"unknown object kind {kind!r}"))
            continue
        if not isinstance(obj.get("body"), dict):
            problems.append(Problem(oid, f"{kind} body is not an object"))
            continue
        if "signature" in obj or kind in SIGNED_KINDS:
            if "signature" not in obj:
                problems.append(Problem(oid, f"{kind} is not signed"))
                continue
            data = scan.signed_bytes.get(oid)
            payload = stored_payload(data, obj) if data is not None else None
            try:
                verify_signature(obj, keyring, payload)
            except LedgerError as exc:
                problems.append(Problem(oid, f"{kind} {exc}"))
    return problems


def _check_events(journal: Journal, lines: list[bytes], scan: Scan) -> list[Problem]:
    """Events must cite objects that exist, of the kind the event says."""
    problems = []
    where = f"parts/{journal.host}/journal.jsonl"
    present = scan.ids | scan.bad
    for i, line in enumerate(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind, oid, manifest = event.get("kind"), event.get("object"), event.get("manifest")
        if isinstance(oid, str):
            if oid not in present:
                problems.append(Problem(where, f"line {i + 1} ({kind}) cites missing object {oid}"))
            elif oid in scan.objects and kind in EVENT_OBJECT_KIND:
                actual = scan.objects[oid].get("kind")
                if actual != EVENT_OBJECT_KIND[kind]:
                    problems.append(Problem(where, f"line {i + 1} ({kind}) cites {oid}, a "
                                                   f"{actual!r}"))
        if isinstance(manifest, str) and manifest not in present:
            problems.append(Problem(where, f"line {i + 1} ({kind}) cites missing manifest "
                                           f"{manifest}"))
    return problems


def _ref(scan: Scan, oid: Any, kind: str | None) -> str | None:
    """Why `oid` is not a valid reference to a `kind` object (None if it is)."""
    if not isinstance(oid, str):
        return f"is {oid!r}, not an object id"
    if oid in scan.bad:
        return None  # reported already as corrupted
    if kind is None:
        return None if oid in scan.objects or oid in scan.raw else "is missing"
    obj = scan.objects.get(oid)
    if obj is None:
        return "is missing" if oid not in scan.raw else f"is not a {kind}"
    if obj.get("kind") != kind:
        return f"is a {obj.get('kind')!r}, not a {kind}"
    return None


def _check_references(scan: Scan) -> list[Problem]:
    problems: list[Problem] = []
    declared: dict[str, set[str]] = {}
    runs_by_key: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for oid, obj in sorted(scan.objects.items()):
        kind, body = obj.get("kind"), obj.get("body")
        if not isinstance(body, dict):
            continue
        if kind == "manifest":
            for field, target in (("parent", "decision"), ("amends", "manifest")):
                value = body.get(field)
                why = None if value is None else _ref(scan, value, target)
                if why:
                    problems.append(Problem(oid, f"{field} {value} {why}"))
            sig = obj.get("signature")
            signer = sig.get("key_id") if isinstance(sig, dict) else None
            if signer and body.get("freezer") != signer:
                problems.append(Problem(oid, f"freezer {body.get('freezer')} did not sign it "
                                             f"(signed by {signer})"))
        elif kind == "run":
            why = _ref(scan, body.get("raw_log"), None)
            if why:
                problems.append(Problem(oid, f"raw log {body.get('raw_log')} {why}"))
            manifest = body.get("manifest")
            if manifest is None:
                continue
            why = _ref(scan, manifest, "manifest")
            if why:
                problems.append(Problem(oid, f"manifest {manifest} {why}"))
                continue
            if manifest not in scan.objects:
                continue  # corrupted manifest: reported by the scan
            if manifest not in declared:
                declared[manifest] = declared_run_keys(scan.objects[manifest]["body"])
            key = f"{body.get('condition')}/{body.get('seed')}/{body.get('host')}"
            if body.get("run") not in (None, key):
                problems.append(Problem(oid, f"run key {body.get('run')} does not match "
                                             f"its condition/seed/host {key}"))
            if key not in declared[manifest]:
                problems.append(Problem(oid, f"run {key} is not declared in manifest {manifest}"))
            runs_by_key[(manifest, key)].append((str(body.get("recorded_at")), oid))
        elif kind == "decision":
            manifest = body.get("manifest")
            why = _ref(scan, manifest, "manifest")
            if why:
                problems.append(Problem(oid, f"manifest {manifest} {why}"))
            runs = body.get("runs", [])
            if not isinstance(runs, list):
                problems.append(Problem(oid, "runs is not a list"))
                continue
            for rid in runs:
                why = _ref(scan, rid, "run")
                if why:
                    problems.append(Problem(oid, f"run record {rid} {why}"))
    for (manifest, key), records in sorted(runs_by_key.items()):
        records.sort()
        for _, rid in records[1:]:
            problems.append(Problem(rid, f"run {key} of manifest {manifest} recorded twice "
                                         f"(first: {records[0][1]})"))
    return problems
