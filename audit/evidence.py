"""The evidence an audit works from, loaded once: accepted objects, parsed logs, journal index.

Built on the verify pass (`ledger.verify.verify_with_evidence`), so each object's bytes are
read and hashed once. Only objects the journals cite and whose signatures are accepted are
evidence; each raw log a run record cites is read once more (without re-hashing: the scan
just checked it) and parsed once; a run's timing comes from its journal events.

The bodies the checks read are typed: `manifests`, `decisions`, `runs`, `anchors` and
`interruptions` hold each accepted body as its model (`Manifest`, `Decision`, `RunRecord`,
`Anchor`, `Interruption`), as the scan validated them once (`ledger.scan.Scan.stored`). A
body that fits no model is a `schema` problem of verify and never evidence, so no check
reads a missing key through a default.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.decision_model import Decision
from ledger.document import Document
from ledger.documents import Anchor, Interruption, JournalEvent, RunRecord, TimestampToken
from ledger.errors import InvalidId, LedgerError
from ledger.pack import ObjectCopy
from ledger.plan_model import Manifest
from ledger.rawlog import ParsedLog, parse_raw_log
from ledger.store import Store
from ledger.verify import Event, Verified, seconds_between
from ledger.witness_seed import SeedWitness, find_witness

T = TypeVar("T", bound=Document)


@dataclass(frozen=True)
class RunTiming:
    """A run's journaled start (the latest before its record) and its record."""

    started: Event | None
    recorded: Event

    @property
    def interval_s(self) -> float | None:
        if self.started is None:
            return None
        return seconds_between(self.started.at, self.recorded.at)


class Evidence:
    """Accepted objects by kind, parsed raw logs, and journal events indexed for the checks."""

    def __init__(self, store: Store, verified: Verified) -> None:
        self.store = store
        self.verified = verified
        scan = verified.scan
        self._paths = _object_paths(store)
        self.objects = {oid: obj for oid, obj in scan.objects.items() if oid in verified.evidence}
        self.by_kind: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for oid, obj in self.objects.items():
            self.by_kind[str(obj.get("kind"))][oid] = obj["body"]
        self.events = verified.events
        self._witnesses: dict[str, str | None] = {}
        self._index_events()
        self.manifests: dict[str, Manifest] = self._typed(Manifest)
        self.decisions: dict[str, Decision] = self._typed(Decision)
        self.runs: dict[str, RunRecord] = self._typed(RunRecord)
        self.anchors: dict[str, Anchor] = self._typed(Anchor)
        self.interruptions: dict[str, Interruption] = self._typed(Interruption)

    def _typed(self, model: type[T]) -> dict[str, T]:
        """Every accepted body that is a `model`, as the scan validated it (once: a body
        that fits no model was reported by verify and is no evidence)."""
        scan = self.verified.scan
        out: dict[str, T] = {}
        for oid in self.objects:
            body = scan.body(oid, model)
            if body is not None:
                out[oid] = body
        return out

    # -- journal index ---------------------------------------------------------------------

    def _index_events(self) -> None:
        self.first: dict[tuple[str, str], Event] = {}  # (kind, object) -> first event
        self.by_manifest: dict[tuple[str, str], list[Event]] = defaultdict(list)
        self.timing: dict[str, RunTiming] = {}
        starts: dict[tuple[str, str, str], Event] = {}
        for event in self.events:
            kind, oid, manifest = event.kind, event.object, event.manifest
            if isinstance(oid, str):
                self.first.setdefault((kind, oid), event)
            if isinstance(manifest, str):
                self.by_manifest[(kind, manifest)].append(event)
            run = event.run
            if kind == "run_started" and isinstance(manifest, str) and isinstance(run, str):
                starts[(event.host, manifest, run)] = event
            elif kind == "run_recorded" and isinstance(oid, str) and oid not in self.timing:
                start = starts.get((event.host, str(manifest), str(run)))
                self.timing[oid] = RunTiming(start, event)

    def event(self, kind: str, oid: str) -> Event | None:
        return self.first.get((kind, oid))

    def for_manifest(self, kind: str, manifest: str) -> list[Event]:
        return self.by_manifest[(kind, manifest)]

    # -- objects ---------------------------------------------------------------------------

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.by_kind[kind]

    def raw_bytes(self, oid: Any) -> bytes:
        """An intact raw object's bytes (LedgerError when it is missing or damaged)."""
        if not isinstance(oid, str):
            raise InvalidId(f"{oid!r} is not an object id")
        scan = self.verified.scan
        copy = self._paths.get(oid)
        if oid in scan.raw and oid not in scan.bad and copy is not None:
            try:
                return copy.read()  # the scan just hashed every copy of it
            except (OSError, LedgerError):
                pass
        return self.store.get_bytes(oid)

    def damaged_bytes(self, oid: Any) -> bytes | None:
        """The bytes of an object the scan found altered (they no longer hash to its id), to
        say what changed; None when it is not such an object or cannot be read. Never
        evidence: nothing re-derived may use them."""
        if not isinstance(oid, str) or oid not in self.verified.scan.bad:
            return None
        copy = self._paths.get(oid)
        try:
            return copy.read() if copy is not None else None
        except (OSError, LedgerError):
            return None

    def parse_log(self, raw_log: str, fmt: str) -> ParsedLog:
        """A run's raw log, parsed in `fmt` (its manifest's; LedgerError when unreadable)."""
        return parse_raw_log(self.raw_bytes(raw_log), fmt)

    def seed_witness(self, manifest_id: str) -> str | None:
        """The digest of the token a witness-bound seed rule takes for this manifest (the
        first journaled after its freeze, when it is accepted and checks out), or None."""
        if manifest_id not in self._witnesses:
            found = self.witness_token(manifest_id)
            self._witnesses[manifest_id] = found.digest if found else None
        return self._witnesses[manifest_id]

    def witness_token(self, manifest_id: str) -> SeedWitness | None:
        """The token `seed_witness` takes, with its TSA and time (None: none usable)."""
        tokens = self.verified.timestamps.tokens
        found = find_witness(manifest_id, self._journals(), self._timestamp_body)
        if found is None or found.token not in tokens or not tokens[found.token].usable:
            return None
        return found

    def _journals(self) -> list[tuple[str, list[JournalEvent]]]:
        by_host: dict[str, list[JournalEvent]] = defaultdict(list)
        for event in self.events:
            by_host[event.host].append(event.record)
        return sorted(by_host.items())

    def _timestamp_body(self, oid: str) -> TimestampToken | None:
        accepted = oid in self.of_kind("timestamp")
        return self.verified.scan.body(oid, TimestampToken) if accepted else None


def _object_paths(store: Store) -> dict[str, ObjectCopy]:
    """id -> where it is read from (as `Store.copy_of` looks), for every object at once."""
    return store.locations()


__all__ = ["Evidence", "RunTiming"]
