"""Find a stage's manifests, decisions and run records from the journals (the truth).

Why journals and not the index: the index is a cache that may be stale or absent (a reviewer's
fresh clone); journals name every object in the order it was written on each host. Each
object is read here once, checked (canonical, signed by the key its body names) and parsed
into its document model, so every caller reads typed attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from ledger.canonical import is_canonical
from ledger.decision_model import Decision
from ledger.document import Document, one_line
from ledger.documents import Envelope, JournalEvent, RunRecord
from ledger.errors import IntegrityError, WrongKind
from ledger.manifest import signs_records
from ledger.plan_model import Manifest
from ledger.signing import MAY_SIGN_KINDS, SIGNED_KINDS, SIGNER_FIELDS, verify_signature
from ledger.store import Store, read_document

B = TypeVar("B", bound=Document)
MODELS: dict[str, type[Document]] = {"manifest": Manifest, "decision": Decision, "run": RunRecord}


@dataclass(frozen=True)
class Entry(Generic[B]):
    """An object found through a journal event, with where and when it was journaled."""

    id: str
    body: B
    host: str
    seq: int
    at: str


def _signature(store: Store) -> tuple[Any, ...]:
    """Size, mtime and inode of every journal: any append, cut or replacement changes it."""
    sig = []
    for journal in store.journals():
        try:
            st = journal.path.stat()
        except FileNotFoundError:
            continue
        sig.append((str(journal.path), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sig)


def _events(store: Store, kinds: set[str]) -> list[tuple[str, JournalEvent]]:
    """(host, event) for events of these kinds naming an object, in journal time order.

    Kept on the store while no journal file changes (reports look up every stage's runs;
    re-parsing every journal per lookup made a 10k-run report take 12 s).
    """
    key = frozenset(kinds)
    sig = _signature(store)
    cached = store.journal_events.get(key)
    if cached is not None and cached[0] == sig:
        return cached[1]
    found = [
        (journal.host, event)
        for journal in store.journals()
        for event in journal.events()
        if event.kind in kinds and event.object
    ]
    found.sort(key=lambda he: (he[1].at, he[0], he[1].seq))
    store.journal_events[key] = (sig, found)
    return found


def _signer(body: Document) -> str | None:
    """The key a body says signed it (the field `ledger.signing.SIGNER_FIELDS` names)."""
    if isinstance(body, Manifest):
        return body.freezer
    if isinstance(body, Decision):
        return body.decider
    if isinstance(body, RunRecord):
        return body.recorder
    return None


def _load(store: Store, host: str, event: JournalEvent, kind: str) -> Entry[Any]:
    """The object an event cites; a signed kind (and a run record that carries a signature)
    must be canonical and validly signed, by the key its body names, and every kind must be
    a document of its kind's shape, or it is not used (IntegrityError naming it)."""
    oid = str(event.object)  # `_events` keeps events that name one
    data = store.get_bytes(oid)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise IntegrityError(f"object {oid} is not a JSON object") from None
    try:
        envelope = Envelope.model_validate(obj)
    except ValidationError:
        raise WrongKind(
            f"object {oid} is not a stored object's envelope, expected {kind}"
        ) from None
    if envelope.kind != kind:
        raise WrongKind(f"object {oid} is a {envelope.kind!r}, expected {kind}")
    signed = kind in SIGNED_KINDS or (kind in MAY_SIGN_KINDS and envelope.signature is not None)
    if signed:
        if not is_canonical(obj, data):
            raise IntegrityError(
                f"{kind} {oid} is not stored as canonical JSON: not used (run `ledger verify`)"
            )
        try:
            verify_signature(obj, store.keyring())
        except IntegrityError as exc:
            raise IntegrityError(f"{kind} {oid}: {exc}: not used (run `ledger verify`)") from None
    try:
        body = MODELS[kind].model_validate(envelope.body)
    except ValidationError as exc:
        raise IntegrityError(one_line(f"{kind} {oid}", exc) + ": not used") from None
    # the signature verified, so it names its key
    if signed and envelope.signature is not None and _signer(body) != envelope.signature.key_id:
        raise IntegrityError(
            f"{kind} {oid}: {SIGNER_FIELDS[kind]} is not the key that signed it: not used"
        )
    return Entry(oid, body, host, event.seq, event.at)


def stage_manifests(store: Store, campaign: str, stage: str) -> list[Entry[Manifest]]:
    """Every manifest frozen for this campaign stage, oldest first (amendments last)."""
    out, seen = [], set()
    for host, event in _events(store, {"manifest_frozen", "amended"}):
        if event.object in seen:
            continue
        seen.add(event.object)
        entry = _load(store, host, event, "manifest")
        if entry.body.campaign == campaign and entry.body.stage == stage:
            out.append(entry)
    return out


def current_manifest(store: Store, campaign: str, stage: str) -> Entry[Manifest] | None:
    """The manifest in force: the latest amendment, or the only freeze."""
    manifests = stage_manifests(store, campaign, stage)
    if not manifests:
        return None
    superseded = {m.body.amends for m in manifests}
    live = [m for m in manifests if m.id not in superseded]
    return live[-1] if live else manifests[-1]


def manifest_decision(store: Store, manifest_id: str) -> Entry[Decision] | None:
    """The decision made at this manifest's gate, if any: the first journaled decision whose
    own body decides this manifest (an event that names another manifest's decision, a
    replay, does not count; the audit reports it)."""
    for host, event in _events(store, {"decision_made"}):
        if event.manifest == manifest_id:
            entry = _load(store, host, event, "decision")
            if entry.body.manifest == manifest_id:
                return entry
    return None


def manifest_runs(store: Store, manifest_id: str) -> list[Entry[RunRecord]]:
    """Run records journaled for this manifest, oldest first, across every host.

    Raises IntegrityError for an unsigned record of a manifest whose records are signed
    (written by someone without the store's key: never decided on)."""
    signed = signs_records(read_document(store, manifest_id, "manifest", Manifest))
    out, seen = [], set()
    for host, event in _events(store, {"run_recorded"}):
        if event.manifest == manifest_id and event.object not in seen:
            seen.add(event.object)
            entry = _load(store, host, event, "run")
            if signed and entry.body.recorder is None:
                raise IntegrityError(
                    f"run record {entry.id} is not signed, but manifest {manifest_id[:12]} "
                    f"signs its records: not used (run `ledger verify`)"
                )
            out.append(entry)
    return out


def all_manifests(store: Store) -> list[Entry[Manifest]]:
    """Every journaled manifest (amended ones too), in journal time order."""
    out, seen = [], set()
    for host, event in _events(store, {"manifest_frozen", "amended"}):
        if event.object not in seen:
            seen.add(event.object)
            out.append(_load(store, host, event, "manifest"))
    return out


def all_decisions(store: Store) -> list[Entry[Decision]]:
    """Every journaled decision whose body decides the manifest its event names."""
    out, seen = [], set()
    for host, event in _events(store, {"decision_made"}):
        if event.object in seen:
            continue
        seen.add(event.object)
        entry = _load(store, host, event, "decision")
        if entry.body.manifest == event.manifest:
            out.append(entry)
    return out


def all_runs(store: Store) -> list[Entry[RunRecord]]:
    """Every journaled run record (planned or not), in journal time order, once each."""
    out, seen = [], set()
    for host, event in _events(store, {"run_recorded"}):
        if event.object not in seen:
            seen.add(event.object)
            out.append(_load(store, host, event, "run"))
    return out
