"""`verify`: every byte, signature, key, journal chain, cross-reference and anchor.

Why one pass: each file is read once and each JSON object parsed once (see `scan`), so a
store of 100k runs verifies in seconds. Every finding is a `Problem` naming the object.

What counts as evidence is decided here too: an object is evidence only when a journal
event cites it (or an event-cited object cites it) and, for signed kinds, its signature is
by an accepted key (`ledger.trust`). Objects nothing cites are orphans, reported as notes
(a crash between writing an object and journaling it leaves one) and never used.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ledger.anchor import AnchorReport, check_anchors
from ledger.decision_model import Decision
from ledger.documents import (
    Anchor,
    Interruption,
    JournalEvent,
    Revocation,
    RunRecord,
    TimestampToken,
)
from ledger.errors import LedgerError
from ledger.index import fresh_digest, index_digest, index_path, index_stale
from ledger.journal import MAX_LINE_BYTES, head_payload, parse_event
from ledger.keys import Keyring
from ledger.manifest import declared_run_keys, signs_records
from ledger.parallel import without_gc_pauses
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.scan import KNOWN_KINDS, Scan, scan_objects
from ledger.signing import (
    SIGNED_KINDS,
    stored_payload,
    verify_detached,
    verify_signature,
)
from ledger.store import PACKED_FORMAT, STORE_FORMAT, Store
from ledger.timestamp import TimestampReport, check_tokens
from ledger.trust import Trust

EVENT_OBJECT_KIND = {
    "manifest_frozen": "manifest",
    "amended": "manifest",
    "run_recorded": "run",
    "run_interrupted": "interruption",
    "decision_made": "decision",
    "anchor": "anchor",
    "key_revoked": "revocation",
    "timestamped": "timestamp",
}
MAX_JOURNAL_LAG_S = 300.0  # a journal lock may be held for up to a minute; far more is a replay
CLOCK_SLACK_S = 1.0

__all__ = ["Event", "Problem", "Verified", "verify", "verify_with_evidence"]


@dataclass(frozen=True)
class Event:
    """One journal event and where it lies: host, line index (= seq), the event itself."""

    host: str
    index: int
    record: JournalEvent

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def object(self) -> str | None:
        return self.record.object

    @property
    def run(self) -> str | None:
        return self.record.run

    @property
    def manifest(self) -> str | None:
        return self.record.manifest

    @property
    def at(self) -> str:
        return self.record.at


@dataclass
class Verified:
    """What one verify pass found and read: the audit reuses it so every byte is read and
    hashed once."""

    problems: list[Problem]
    scan: Scan
    journal_lines: dict[str, list[bytes]]
    events: list[Event] = field(default_factory=list)
    evidence: set[str] = field(default_factory=set)  # cited by the journals, and accepted
    untrusted: set[str] = field(default_factory=set)  # signed objects not accepted
    orphans: list[str] = field(default_factory=list)
    trust: Trust = field(default_factory=Trust)
    anchors: AnchorReport = field(default_factory=AnchorReport)
    revoked: dict[str, Event] = field(default_factory=dict)  # key id -> its revocation event
    timestamps: TimestampReport = field(default_factory=TimestampReport)
    keyring: Keyring | None = None  # the store's, to name the keys a reviewer trusts

    def notes(self) -> list[str]:
        """Information that is not a failure: orphans, the unanchored tail, trust, timestamps."""
        out = [self.trust.describe(self.keyring)]
        stamped = self.timestamps.note()
        if stamped:
            out.append(stamped)
        if self.orphans:
            out.append(
                f"{len(self.orphans)} orphan object(s) that no journal event cites "
                f"(left by an interrupted write; never used as evidence)"
            )
        tail = self.anchors.tail_note()
        if tail:
            out.append(tail)
        return out


def _progress(store: Store, enabled: bool) -> Any:
    """A tqdm bar on stderr when asked, stderr is a terminal and the store is big."""
    if not enabled or not sys.stderr.isatty():
        return None
    total = sum(1 for _ in store.iter_objects())
    if total < 5000:
        return None
    from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

    return tqdm(total=total, unit="obj", desc="verify", file=sys.stderr, leave=False)


def verify(
    store: Store,
    *,
    check_index: bool = True,
    progress: bool = False,
    trust: Trust | None = None,
    anchors: dict[str, dict[str, Any]] | None = None,
    tsa_roots: list[Any] | None = None,
) -> list[Problem]:
    """All integrity problems of the store (empty list = clean)."""
    return verify_with_evidence(
        store,
        check_index=check_index,
        progress=progress,
        trust=trust,
        anchors=anchors,
        tsa_roots=tsa_roots,
    ).problems


@without_gc_pauses
def verify_with_evidence(
    store: Store,
    *,
    check_index: bool = True,
    progress: bool = False,
    trust: Trust | None = None,
    anchors: dict[str, dict[str, Any]] | None = None,
    tsa_roots: list[Any] | None = None,
) -> Verified:
    """`verify`, also handing back what it read and which objects are evidence.

    `trust` names the keys a reviewer accepts (default: those in the store's `keys/`);
    `anchors` are published anchors a reviewer passes (id -> envelope), each of which the
    journals must still extend; `tsa_roots` are the certificates (`cryptography.x509`) of
    the timestamp authorities the reviewer trusts: every timestamp token's signature and
    chain is checked against them (`ledger.timestamp.check_tokens`), and without them only
    that each token parses and stamps the object it names.
    """
    trust = trust or Trust()
    problems = _checked("store format", _check_store_json(store))
    problems += _checked("linked host part", _check_parts(store))
    keyring = store.keyring()
    bar = _progress(store, progress)
    journals = _Journals()
    scan = scan_objects(
        store,
        tick=bar.update if bar is not None else None,
        signatures=SignatureChecker(keyring, trust),
        meanwhile=lambda: journals.read(store),  # (while the scan's workers hash)
    )
    if bar is not None:
        bar.close()
    problems += _checked("object bytes", scan.problems)
    problems += _checked("key files", keyring.check())
    envelope_problems, untrusted = _check_envelopes(keyring, scan, trust)
    problems += _checked("signature", envelope_problems)
    journal_lines, events = journals.lines, journals.events
    problems += _checked("journal chain", journals.problems)
    problems += _check_heads(store, events, scan, keyring, trust)
    problems += _checked("journal events", _check_events(events, scan))
    revoked = _revocations(events, scan, untrusted)
    problems += _checked("revocation", _signed_after_revocation(events, scan, revoked))
    evidence, orphans = _evidence(store, events, scan, untrusted)
    problems += _checked("references", _check_references(scan, evidence))
    timestamps = check_tokens(scan, evidence, tsa_roots)
    problems += _checked("timestamps", timestamps.problems)
    report = check_anchors(store, journal_lines, scan.of_kind("anchor"), given=anchors, trust=trust)
    problems += _checked("anchors", report.problems)
    if check_index and index_path(store).exists() and not index_stale(store):
        try:
            if index_digest(store) != fresh_digest(store, scan):
                problems.append(
                    Problem(
                        "index.duckdb",
                        "index does not match a rebuild from "
                        "objects and journals: run "
                        "`ledger reindex`",
                        check="index",
                    )
                )
        except LedgerError as exc:
            problems.append(Problem("index.duckdb", str(exc), check="index"))
    return Verified(
        problems,
        scan,
        journal_lines,
        events,
        evidence,
        untrusted,
        orphans,
        trust,
        report,
        revoked,
        timestamps,
        keyring,
    )


@dataclass
class _Journals:
    """Every journal's lines, chain problems and well-formed events: read apart from the
    objects, so that this process reads them while the scan's workers hash."""

    lines: dict[str, list[bytes]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def read(self, store: Store) -> None:
        for journal in store.journals():
            lines = journal.lines()[0]
            self.lines[journal.host] = lines
            self.problems += journal.verify(lines)
            self.events += _parse_events(journal.host, lines)


def _checked(check: str, problems: list[Problem]) -> list[Problem]:
    """The problems with `check` naming the pass that found them (kept where a site named
    its own), so `--json` readers can select by check."""
    return [p if p.check else replace(p, check=check) for p in problems]


def _check_store_json(store: Store) -> list[Problem]:
    try:
        meta = json.loads((store.root / "store.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return [Problem("store.json", "missing or not valid JSON")]
    if meta not in (STORE_FORMAT, PACKED_FORMAT):
        return [Problem("store.json", f"does not describe a version-1 or -2 store: {meta!r}")]
    if meta == STORE_FORMAT and store.pack_files():
        return [Problem("store.json", "says version 1, but the store holds packs (version 2)")]
    return []


class SignatureChecker:
    """One envelope's signature against the accepted keys, run inside the scan's forked
    workers (`ledger.scan.scan_objects`): at 100k signed run records a serial pass of
    Ed25519 checks would be most of a verify."""

    def __init__(self, keyring: Keyring, trust: Trust) -> None:
        self.keyring, self.trust = keyring, trust

    def __call__(self, obj: dict[str, Any], data: bytes) -> str | None:
        try:
            payload = stored_payload(data, obj, canonical=True)  # the scan checked the bytes
            verify_signature(obj, self.keyring, payload, trust=self.trust)
        except LedgerError as exc:
            return str(exc)
        return None


def _check_parts(store: Store) -> list[Problem]:
    """A host part that is a symbolic link is never read (`Store.parts` skips it), nor
    bundled, nor tracked by DVC: say so instead of auditing the store without it."""
    out = []
    for name in store.linked_parts():
        out.append(
            Problem(
                f"parts/{name}",
                "host part is a symbolic link: the store does not read it (nor do export, "
                "bundles or DVC); replace the link with the folder itself",
            )
        )
    return out


def _check_envelopes(keyring: Keyring, scan: Scan, trust: Trust) -> tuple[list[Problem], set[str]]:
    """Every envelope of a known kind; every signed kind signed by an accepted key, and by
    the key its body names as signer; every body of its kind's shape (`Scan.unfit`); a run
    record of a manifest whose records are signed must be signed."""
    problems, untrusted = [], set(scan.noncanonical)
    for oid, obj in scan.objects.items():
        why = _envelope_problem(oid, obj, scan, keyring, trust)
        if why is not None:
            problems.append(why)
            untrusted.add(oid)
            continue
        stored = scan.stored[oid]
        body, signature = stored.body, stored.signature
        if stored.kind not in KNOWN_KINDS:
            problems.append(Problem(oid, f"unknown object kind {stored.kind!r}"))
            continue
        if signature is None:
            if isinstance(body, RunRecord | Interruption) and _record_must_be_signed(scan, body):
                problems.append(
                    Problem(
                        oid,
                        f"run record is not signed, but manifest {str(body.manifest)[:12]} "
                        f"signs its records: written without the key, not used",
                        check="signed records",
                        **_located(body),
                    )
                )
                untrusted.add(oid)
            continue
        named = _named_signer(body)
        if named is not None and named[1] != signature.key_id:
            problems.append(
                Problem(
                    oid,
                    f"{named[0]} {named[1]} did not sign it (signed by {signature.key_id}): "
                    f"not used",
                )
            )
            untrusted.add(oid)
    return problems, untrusted


def _envelope_problem(
    oid: str, obj: dict[str, Any], scan: Scan, keyring: Keyring, trust: Trust
) -> Problem | None:
    """Why an object is not used whatever it says: its envelope fits no model, a kind that
    must be signed is not, a signature does not verify, or its body does not fit its kind's
    model (checked after the signature, which says more of a forged object)."""
    unfit = scan.unfit.get(oid)  # (most objects fit)
    envelope = scan.stored[oid] if unfit is None else unfit.envelope
    if envelope is None:  # (not even an envelope: then `unfit` says why)
        return Problem(oid, f"{scan.unfit[oid].why}: not used", check="schema")
    kind = envelope.kind
    if envelope.signature is None and kind in SIGNED_KINDS:
        return Problem(oid, f"{kind} is not signed: not used")
    if envelope.signature is not None and kind in KNOWN_KINDS:
        why = _signature_problem(oid, obj, scan, keyring, trust)
        if why:
            return Problem(oid, f"{kind} {why}: not used")
    if unfit is not None:
        return Problem(oid, f"{unfit.why}: not used", check="schema")
    return None


def _named_signer(body: Any) -> tuple[str, str | None] | None:
    """(field, key id) of the key a body names as its signer; None for a kind that names
    none (an anchor, a timestamp). `ledger.signing.SIGNER_FIELDS` lists the fields."""
    if isinstance(body, Manifest):
        return "freezer", body.freezer
    if isinstance(body, Decision):
        return "decider", body.decider
    if isinstance(body, Revocation):
        return "revoker", body.revoker
    if isinstance(body, RunRecord | Interruption):
        return "recorder", body.recorder
    return None


def _signature_problem(
    oid: str, obj: dict[str, Any], scan: Scan, keyring: Keyring, trust: Trust
) -> str | None:
    """Why an envelope's signature does not verify: the scan workers' answer when they
    checked it, else checked here."""
    if oid in scan.signatures:
        return scan.signatures[oid]
    data = scan.signed_bytes.get(oid)  # every signed envelope's bytes, unless scanned elsewhere
    payload = stored_payload(data, obj) if data is not None else None
    try:
        verify_signature(obj, keyring, payload, trust=trust)
    except LedgerError as exc:
        return str(exc)
    return None


def _located(body: RunRecord | Interruption) -> dict[str, Any]:
    """Stage, condition, seed and host of a run record or interruption."""
    return {
        "stage": body.stage,
        "condition": body.condition,
        "seed": body.seed if isinstance(body.seed, int) else None,
        "host": body.host,
    }


def _record_must_be_signed(scan: Scan, body: RunRecord | Interruption) -> bool:
    manifest = scan.body(body.manifest, Manifest) if body.manifest is not None else None
    return manifest is not None and signs_records(manifest)


def _check_heads(
    store: Store, events: list[Event], scan: Scan, keyring: Keyring, trust: Trust
) -> list[Problem]:
    """A signed journal head must verify; a journal that holds evidence of manifests whose
    records are signed must have a signed head (a keyless writer who re-chained the
    journal could not sign the new head)."""
    signing = {e.host for e in events if _cites_signing_manifest(e, scan)}
    out = []
    for journal in store.journals():
        head = journal.recorded_head()
        if head is None:
            continue  # missing or damaged: the chain check reports it
        where = f"parts/{journal.host}/journal.head"
        if head.signature is None:
            if journal.host in signing:
                out.append(
                    Problem(
                        where,
                        "journal head is not signed, but the journal records evidence whose "
                        "records are signed: written without the store's key",
                        check="signed journal head",
                        host=journal.host,
                    )
                )
            continue
        try:
            verify_detached(head.signature, head_payload(head), keyring, trust)
        except LedgerError as exc:
            out.append(
                Problem(
                    where,
                    f"journal head signature: {exc}",
                    check="signed journal head",
                    host=journal.host,
                )
            )
    return out


def _cites_signing_manifest(event: Event, scan: Scan) -> bool:
    for ref in (event.object, event.manifest):
        manifest = scan.body(ref, Manifest) if ref is not None else None
        if manifest is not None and signs_records(manifest):
            return True
    return False


def _parse_events(host: str, lines: list[bytes]) -> list[Event]:
    """The well-formed events (a malformed line is reported by the chain check, not used)."""
    out = []
    for i, line in enumerate(lines):
        event = parse_event(line) if len(line) <= MAX_LINE_BYTES else None
        if event is not None:
            out.append(Event(host, i, event))
    return out


def _where(event: Event) -> str:
    return f"parts/{event.host}/journal.jsonl"


def _check_events(events: list[Event], scan: Scan) -> list[Problem]:
    """Events cite objects that exist, of the kind the event says, that agree with the
    event (manifest, run), journaled once, soon after they were made."""
    problems = []
    present = scan.ids | scan.bad | scan.noncanonical
    seen: dict[tuple[str, str], Event] = {}
    for event in events:
        kind, oid, where = event.kind, event.object, _where(event)
        label = f"line {event.index + 1} ({kind})"
        if event.manifest is not None and event.manifest not in present:
            problems.append(Problem(where, f"{label} cites missing manifest {event.manifest}"))
        if oid is None:
            continue
        if oid not in present:
            problems.append(Problem(where, f"{label} cites missing object {oid}"))
            continue
        if oid not in scan.objects or kind not in EVENT_OBJECT_KIND:
            continue  # a raw object or a damaged one: said elsewhere
        found = scan.objects[oid]["kind"]  # (an envelope, whether its body fits or not)
        if found != EVENT_OBJECT_KIND[kind]:
            problems.append(Problem(where, f"{label} cites {oid}, a {found!r}"))
            continue
        stored = scan.stored.get(oid)  # None: its body fits no model (a finding of its own)
        body = stored.body if stored is not None else None
        problems += [Problem(oid, f"{m} ({where} {label})") for m in _disagreements(event, body)]
        if (kind, oid) in seen:
            first = seen[(kind, oid)]
            problems.append(
                Problem(
                    oid,
                    f"journaled twice as {kind} (parts/{event.host} line "
                    f"{event.index + 1}; first: parts/{first.host} line "
                    f"{first.index + 1}): a replay",
                )
            )
            continue
        seen[(kind, oid)] = event
        lag = _lag(event, _made_at(body))
        if lag is not None:
            problems.append(Problem(oid, f"{lag} ({where} {label}): replayed or grafted"))
    return problems


def _disagreements(event: Event, body: Any) -> list[str]:
    """Where an event and the object it cites (of the kind the event names) tell different
    stories."""
    out = []
    if isinstance(body, RunRecord | Interruption):
        if event.manifest != body.manifest:
            out.append(
                f"journaled for manifest {event.manifest} but the record cites {body.manifest}"
            )
        if event.run != body.run:
            out.append(f"journaled as run {event.run} but the record is run {body.run}")
    elif isinstance(body, Decision) and event.manifest != body.manifest:
        out.append(
            f"journaled as the decision of manifest {event.manifest} but it decides {body.manifest}"
        )
    elif isinstance(body, Manifest) and event.kind == "amended" and event.manifest != body.amends:
        out.append(f"journaled as amending {event.manifest} but it amends {body.amends}")
    elif isinstance(body, Manifest) and event.kind == "manifest_frozen" and body.amends:
        out.append("journaled as a first freeze but it amends another manifest")
    return out


def _made_at(body: Any) -> str | None:
    """When an object was made, by its own body: its journal event follows within seconds."""
    if isinstance(body, Manifest):
        return body.frozen_at
    if isinstance(body, Decision):
        return body.decided_at
    if isinstance(body, RunRecord):
        return body.recorded_at
    if isinstance(body, Interruption):
        return body.interrupted_at
    if isinstance(body, Anchor):
        return body.at
    if isinstance(body, Revocation):
        return body.revoked_at
    if isinstance(body, TimestampToken):
        return body.received_at
    return None


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from one ISO-8601 timestamp to another (None if either does not parse)."""
    try:
        return (
            datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
        ).total_seconds()
    except (TypeError, ValueError):
        return None


def _lag(event: Event, made: str | None) -> str | None:
    """Why an event's time does not follow its object's own time (`made`) within seconds."""
    if made is None:
        return None
    lag = seconds_between(made, event.at)
    if lag is None:
        return f"its time {made!r} or its event's {event.at!r} is not an ISO-8601 time"
    if lag < -CLOCK_SLACK_S:
        return f"journaled {-lag:.1f} s before it was made"
    if lag > MAX_JOURNAL_LAG_S:
        return f"journaled {lag:.0f} s after it was made"
    return None


def _revocations(events: list[Event], scan: Scan, untrusted: set[str]) -> dict[str, Event]:
    """key id -> the (first) journal event of its accepted revocation."""
    revoked: dict[str, Event] = {}
    for event in events:
        if event.kind != "key_revoked" or event.object is None or event.object in untrusted:
            continue
        revocation = scan.body(event.object, Revocation)
        if revocation is not None:
            revoked.setdefault(revocation.key_id, event)
    return revoked


def before(a: Event, b: Event) -> bool:
    """Whether event a happened before event b (same host: by seq; else by timestamp)."""
    if a.host == b.host:
        return a.index < b.index
    return a.at <= b.at


def _signed_after_revocation(
    events: list[Event], scan: Scan, revoked: dict[str, Event]
) -> list[Problem]:
    if not revoked:
        return []
    problems = []
    for event in events:
        if event.object is None:
            continue
        stored = scan.stored.get(event.object)  # raw, damaged or unfit: not signed
        signature = stored.signature if stored is not None else None
        if signature is None or signature.key_id not in revoked:
            continue
        revocation = revoked[signature.key_id]
        if event.kind == "key_revoked" or before(event, revocation):
            continue
        problems.append(
            Problem(
                event.object,
                f"signed by key {signature.key_id} after its revocation "
                f"(journaled {revocation.at})",
            )
        )
    return problems


def _evidence(
    store: Store, events: list[Event], scan: Scan, untrusted: set[str]
) -> tuple[set[str], list[str]]:
    """Objects the journals cite (and what those cite), minus rejected ones; and orphans."""
    cited = {event.object for event in events if event.object is not None}
    for oid in list(cited):
        stored = scan.stored.get(oid)  # a raw or damaged object cites nothing
        refs = _cites(stored.body) if stored is not None else []
        cited.update(ref for ref in refs if ref is not None)
    present = scan.ids | scan.bad | scan.noncanonical
    orphans = sorted(present - cited)
    return cited - untrusted - scan.bad, orphans


def _cites(body: Any) -> list[str | None]:
    """The objects a body cites besides its manifest: a run's raw log and stderr (an
    interruption's too), a manifest's parent decision and the manifest it amends."""
    if isinstance(body, RunRecord | Interruption):
        return [body.raw_log, body.stderr]
    if isinstance(body, Manifest):
        return [body.parent, body.amends]
    return []


def _ref(scan: Scan, oid: str, kind: str | None) -> str | None:
    """Why `oid` is not a valid reference to a `kind` object (None if it is)."""
    if oid in scan.bad:
        return None  # reported already as corrupted
    if kind is None:
        return None if oid in scan.objects or oid in scan.raw else "is missing"
    if oid not in scan.objects:
        return "is missing" if oid not in scan.raw else f"is not a {kind}"
    found = scan.objects[oid]["kind"]  # (an envelope, whether its body fits or not)
    if found != kind:
        return f"is a {found!r}, not a {kind}"
    return None


def _check_references(scan: Scan, evidence: set[str]) -> list[Problem]:
    """What evidence cites must exist; each declared run is recorded once."""
    problems: list[Problem] = []
    declared: dict[str, set[str]] = {}
    runs_by_key: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for oid in sorted(evidence):
        stored = scan.stored.get(oid)  # evidence holds raw logs too
        body = stored.body if stored is not None else None
        if isinstance(body, Manifest):
            problems += _manifest_refs(scan, oid, body)
        elif isinstance(body, RunRecord):
            problems += _run_refs(scan, oid, body, declared, runs_by_key)
        elif isinstance(body, Decision):
            problems += _decision_refs(scan, oid, body)
    for (manifest, key), records in sorted(runs_by_key.items()):
        records.sort()
        for _, rid in records[1:]:
            problems.append(
                Problem(
                    rid, f"run {key} of manifest {manifest} recorded twice (first: {records[0][1]})"
                )
            )
    return problems


def _manifest_refs(scan: Scan, oid: str, body: Manifest) -> list[Problem]:
    out = []
    for field_name, value, target in (
        ("parent", body.parent, "decision"),
        ("amends", body.amends, "manifest"),
    ):
        why = None if value is None else _ref(scan, value, target)
        if why:
            out.append(Problem(oid, f"{field_name} {value} {why}"))
    return out


def _run_refs(
    scan: Scan,
    oid: str,
    body: RunRecord,
    declared: dict[str, set[str]],
    runs_by_key: dict[tuple[str, str], list[tuple[str, str]]],
) -> list[Problem]:
    out = []
    why = _ref(scan, body.raw_log, None)
    if why:
        out.append(Problem(oid, f"raw log {body.raw_log} {why}"))
    if body.stderr is not None:
        why = _ref(scan, body.stderr, None)
        if why:
            out.append(Problem(oid, f"stderr {body.stderr} {why}"))
    manifest = body.manifest
    if manifest is None:
        return out
    why = _ref(scan, manifest, "manifest")
    if why:
        return out + [Problem(oid, f"manifest {manifest} {why}")]
    plan = scan.body(manifest, Manifest)
    if plan is None:
        return out  # a corrupted or unfit manifest: reported by the scan
    if manifest not in declared:
        declared[manifest] = declared_run_keys(plan)
    key = f"{body.condition}/{body.seed}/{body.host}"
    if body.run not in (None, key):
        out.append(Problem(oid, f"run key {body.run} does not match its condition/seed/host {key}"))
    if key not in declared[manifest]:
        out.append(Problem(oid, f"run {key} is not declared in manifest {manifest}"))
    runs_by_key[(manifest, key)].append((body.recorded_at, oid))
    return out


def _decision_refs(scan: Scan, oid: str, body: Decision) -> list[Problem]:
    out = []
    why = _ref(scan, body.manifest, "manifest")
    if why:
        out.append(Problem(oid, f"manifest {body.manifest} {why}"))
    for rid in body.runs:
        why = _ref(scan, rid, "run")
        if why:
            out.append(Problem(oid, f"run record {rid} {why}"))
    return out
