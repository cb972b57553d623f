"""Anchors: signed snapshots of every journal head, meant to be published.

Why: a journal chain proves its own internal order, but someone with write access could
rewrite a whole journal and re-chain it. Once a signed head is published (git tag, paper
appendix), `verify` checks each journal still contains that exact event at that seq.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes, is_object_id, sha256_hex
from ledger.errors import LedgerError
from ledger.fsutil import TMP_PREFIX, atomic_write
from ledger.keys import SigningKey
from ledger.problems import Problem
from ledger.signing import sign_object, verify_signature
from ledger.store import Store


def make_anchor(store: Store, key: SigningKey) -> tuple[str, dict[str, Any]]:
    """Sign the current heads, store them, copy to `anchors/<id>.json`, journal `anchor`."""
    heads = [h for h in (j.head() for j in store.journals()) if h is not None]
    if not heads:
        raise LedgerError("nothing to anchor: every journal is empty")
    body = {"heads": heads, "at": datetime.now(UTC).isoformat(timespec="microseconds")}
    obj = sign_object("anchor", body, key)
    anchor_id = store.put_signed("anchor", body, key)
    atomic_write(store.root / "anchors" / f"{anchor_id}.json", canonical_bytes(obj))
    store.journal().append("anchor", object=anchor_id)
    return anchor_id, obj


def _anchor_files(store: Store) -> dict[str, bytes | Exception]:
    out: dict[str, bytes | Exception] = {}
    folder = store.root / "anchors"
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.name.startswith(TMP_PREFIX) or not path.is_file():
            continue
        try:
            out[path.name] = path.read_bytes()
        except OSError as exc:
            out[path.name] = exc
    return out


def check_anchors(
    store: Store,
    journal_lines: dict[str, list[bytes]] | None = None,
    stored_anchors: dict[str, dict[str, Any]] | None = None,
) -> list[Problem]:
    """Every published anchor (anchors/ files and anchor objects) must still be extended."""
    if journal_lines is None:
        journal_lines = {j.host: j.lines()[0] for j in store.journals()}
    anchors: dict[str, dict[str, Any]] = dict(stored_anchors or {})
    problems: list[Problem] = []
    for name, data in _anchor_files(store).items():
        where = f"anchors/{name}"
        oid = name.removesuffix(".json")
        if isinstance(data, Exception):
            problems.append(Problem(where, f"cannot read: {data}"))
            continue
        if not name.endswith(".json") or not is_object_id(oid):
            problems.append(Problem(where, "not named <anchor id>.json"))
            continue
        if sha256_hex(data) != oid:
            problems.append(Problem(where, "bytes no longer hash to the anchor id in its name"))
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            problems.append(Problem(where, "not valid JSON"))
            continue
        anchors.setdefault(oid, obj)
    keyring = store.keyring()
    for oid, obj in sorted(anchors.items()):
        try:
            verify_signature(obj, keyring)
        except LedgerError as exc:
            problems.append(Problem(oid, f"anchor {exc}"))
        body = obj.get("body") if isinstance(obj, dict) else None
        heads = body.get("heads") if isinstance(body, dict) else None
        if not isinstance(heads, list):
            problems.append(Problem(oid, "anchor has no list of heads"))
            continue
        for head in heads:
            if not isinstance(head, dict):
                problems.append(Problem(oid, "anchor head is not an object"))
                continue
            host, seq, digest = head.get("host"), head.get("seq"), head.get("hash")
            lines = journal_lines.get(host) if isinstance(host, str) else None
            ok = (lines is not None and isinstance(seq, int) and 0 <= seq < len(lines)
                  and sha256_hex(lines[seq]) == digest)
            if not ok:
                problems.append(Problem(oid, f"journal {host} no longer extends anchor {oid} "
                                             f"(seq {seq})"))
    return problems
