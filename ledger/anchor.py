"""Anchors: signed snapshots of every journal head, meant to be published.

Why: a journal chain proves its own internal order, but someone with write access could
rewrite a whole journal and re-chain it. Once a signed head is published (git tag, paper
appendix), `verify` checks each journal still contains that exact event at that seq.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.canonical import canonical_bytes, is_object_id, sha256_hex
from ledger.document import one_line
from ledger.documents import Anchor, JournalEvent, JournalHead, Stored
from ledger.errors import InputError, LedgerError, NothingToDo
from ledger.fsutil import TMP_PREFIX, atomic_write
from ledger.jsonsafe import loads_strict
from ledger.keys import SigningKey
from ledger.problems import Problem
from ledger.signing import sign_object, verify_signature
from ledger.store import Store

MAX_ANCHOR_BYTES = 1 << 20


def make_anchor(store: Store, key: SigningKey) -> tuple[str, dict[str, Any]]:
    """Sign the current heads, store them, copy to `anchors/<id>.json`, journal `anchor`."""
    heads = [h.to_dict() for h in (j.head() for j in store.journals()) if h is not None]
    if not heads:
        raise NothingToDo("nothing to anchor: every journal is empty")
    body = {"heads": heads, "at": datetime.now(UTC).isoformat(timespec="microseconds")}
    obj = sign_object("anchor", body, key)
    anchor_id = store.put_signed("anchor", body, key)
    atomic_write(store.root / "anchors" / f"{anchor_id}.json", canonical_bytes(obj))
    store.journal().append("anchor", object=anchor_id, key=key)
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


@dataclass
class AnchorReport:
    """What the anchor checks found: problems, and the events no given anchor covers."""

    problems: list[Problem] = field(default_factory=list)
    given: list[str] = field(default_factory=list)  # ids of the anchors a reviewer passed
    unanchored: dict[str, dict[str, int]] = field(default_factory=dict)  # host -> kind -> n

    def tail_note(self) -> str | None:
        """One line on the events after the newest given anchor (None if there are none)."""
        if not self.given:
            return None
        total = sum(sum(k.values()) for k in self.unanchored.values())
        if not total:
            return "every journal event is covered by the given anchor(s)"
        kinds: Counter[str] = Counter()
        for per_host in self.unanchored.values():
            kinds.update(per_host)
        detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return f"{total} event(s) after the newest given anchor, not covered by it: {detail}"


def read_anchor_file(path: Path) -> tuple[str, dict[str, Any]]:
    """A published anchor (its `anchors/<id>.json` file or `ledger anchor --json` output):
    (anchor id, envelope). LedgerError naming the file when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--anchor {path}: cannot read: {exc.strerror or exc}") from None
    doc = loads_strict(data, f"--anchor {path}", max_bytes=MAX_ANCHOR_BYTES)
    # (what `ledger anchor --json` prints holds the envelope's keys among others)
    envelope = (
        {k: doc[k] for k in ("kind", "body", "signature") if k in doc}
        if isinstance(doc, dict)
        else {}
    )
    if isinstance(_anchor_of(envelope), str):
        raise InputError(f"--anchor {path}: not a signed anchor (`ledger anchor --json`)")
    anchor_id = sha256_hex(canonical_bytes(envelope))
    if "anchor" in doc and doc["anchor"] != anchor_id:
        raise InputError(
            f"--anchor {path}: its id {doc['anchor']!r} is not the hash of its "
            f"content ({anchor_id})"
        )
    return anchor_id, envelope


def check_anchors(
    store: Store,
    journal_lines: dict[str, list[bytes]] | None = None,
    stored_anchors: dict[str, dict[str, Any]] | None = None,
    *,
    given: dict[str, dict[str, Any]] | None = None,
    trust: Any = None,
) -> AnchorReport:
    """Every anchor (anchors/ files, anchor objects, and those a reviewer `given`) must be
    signed by an accepted key and still be extended by the journals."""
    if journal_lines is None:
        journal_lines = {j.host: j.lines()[0] for j in store.journals()}
    report = AnchorReport(given=sorted(given or {}))
    anchors: dict[str, dict[str, Any]] = dict(stored_anchors or {})
    for oid, obj in _stored_files(store, report.problems).items():
        anchors.setdefault(oid, obj)
    for oid, obj in (given or {}).items():
        anchors.setdefault(oid, obj)
    keyring = store.keyring()
    for oid, obj in sorted(anchors.items()):
        try:
            verify_signature(obj, keyring, trust=trust)
        except LedgerError as exc:
            report.problems.append(Problem(oid, f"anchor {exc}"))
        anchor = _anchor_of(obj)
        if isinstance(anchor, str):
            report.problems.append(Problem(oid, anchor))
        else:
            report.problems += _check_heads(oid, anchor, journal_lines)
    if given:
        report.unanchored = _tail(given, journal_lines)
    return report


def _anchor_of(obj: Any) -> Anchor | str:
    """A signed anchor's body as its model, or why it is none (one line, every bad key)."""
    if not isinstance(obj, dict) or obj.keys() - {"signature"} != {"kind", "body"}:
        return "anchor is not an envelope of kind, body and signature"
    try:
        stored = Stored[Anchor].model_validate(obj)
    except ValidationError as exc:
        return one_line("anchor does not fit its schema", exc)
    return stored.body if stored.kind == "anchor" else f"anchor is a {stored.kind!r}"


def _stored_files(store: Store, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
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
            out[oid] = loads_strict(data, where)
        except LedgerError:
            problems.append(Problem(where, "not valid JSON"))
    return out


def _check_heads(oid: str, anchor: Anchor, journal_lines: dict[str, list[bytes]]) -> list[Problem]:
    out = []
    for head in anchor.heads:
        why = _head_mismatch(head, journal_lines)
        if why:
            out.append(Problem(oid, why, check="anchors", host=head.host))
    return out


def _head_mismatch(head: JournalHead, journal_lines: dict[str, list[bytes]]) -> str | None:
    """Why the journals do not extend one head of an anchor, in words (None: they do).

    Why three cases: a journal the store does not hold at all is an anchor of another store
    (or a part left out of a bundle); a journal shorter than the head was cut; a line that
    hashes otherwise was rewritten. A reviewer acts differently on each.
    """
    host, seq, digest = head.host, head.seq, head.hash
    lines = journal_lines.get(host)  # an anchor may name any journal
    if lines is None:
        return (
            f"this anchor names journal {host!r}, which this store does not hold "
            f"(journals here: {', '.join(sorted(journal_lines)) or 'none'}): an anchor of "
            f"another store, or a part left out"
        )
    if seq < 0:
        return f"this anchor's head of journal {host!r} has no line number"
    if seq >= len(lines):
        return (
            f"journal {host!r} no longer extends this anchor: the anchor names line "
            f"{seq + 1}, the journal has {len(lines)} line(s) (cut short)"
        )
    if sha256_hex(lines[seq]) != digest:
        return (
            f"journal {host!r} no longer extends this anchor: its line {seq + 1} is not "
            f"the line the anchor signed (rewritten, or an anchor of another store)"
        )
    return None


def _tail(
    given: dict[str, dict[str, Any]], journal_lines: dict[str, list[bytes]]
) -> dict[str, dict[str, int]]:
    """Per host and event kind, the events after the newest given anchor's head. `given`:
    envelopes as `read_anchor_file` returns them (one that is no anchor covers nothing)."""
    anchors = [a for a in map(_anchor_of, given.values()) if isinstance(a, Anchor)]
    newest = max(anchors, key=lambda a: a.at, default=None)
    covered = {h.host: h.seq for h in newest.heads} if newest is not None else {}
    out: dict[str, dict[str, int]] = {}
    for host, lines in journal_lines.items():
        start = covered[host] + 1 if host in covered else 0
        kinds: Counter[str] = Counter()
        for line in lines[start:]:
            try:
                kind = JournalEvent.model_validate_json(line).kind
            except ValidationError:
                kind = "?"  # any damage (the chain check names it)
            kinds[kind] += 1
        if kinds:
            out[host] = dict(kinds)
    return out
