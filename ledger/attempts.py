"""Every attempt on record: a `run_started` event gets an outcome, recorded or interrupted.

Why: with wall-clock budgets, killing a run and starting it again until it looks lucky
leaves no trace when a start may simply have no outcome. Each attempt is closed by one of
two journal events: `run_recorded` (its run record) or `run_interrupted`, citing an
`interruption` object that says why (killed, lost host, refused log) and keeps the
attempt's partial log and stderr as raw objects where they exist. The interruption is
signed with the store's key like a run record. The frozen plan bounds the attempts per
cell (`max_attempts`); the audit counts them from the journals (`count_attempts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.documents import JournalEvent
from ledger.keys import SigningKey
from ledger.manifest import load_manifest
from ledger.store import Store

STDERR_TAIL_BYTES = 64 * 1024
REASON_CHARS = 500


def record_interruption(
    store: Store,
    manifest: str,
    run: str,
    *,
    reason: str,
    raw: bytes | None = None,
    stderr: bytes | None = None,
    key: SigningKey | None = None,
) -> str:
    """Close one open attempt of `run` (a `condition/seed/host` key of `manifest`) as
    interrupted: store its partial log and stderr, sign and journal the interruption."""
    body_manifest = load_manifest(store, manifest)
    condition, _, rest = run.partition("/")
    seed_text, _, host = rest.partition("/")
    body: dict[str, Any] = {
        "manifest": manifest,
        "stage": body_manifest.stage,
        "run": run,
        "condition": condition,
        "seed": int(seed_text) if seed_text.lstrip("-").isdigit() else seed_text,
        "host": host,
        "reason": reason[:REASON_CHARS],
        "raw_log": None,
        "interrupted_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    if key is not None:
        body["recorder"] = key.key_id
    canonical_bytes(body)
    if raw:
        body["raw_log"] = store.put_bytes(bytes(raw))
    if stderr:
        body["stderr"] = store.put_bytes(bytes(stderr[-STDERR_TAIL_BYTES:]))
    oid = (
        store.put_signed("interruption", body, key)
        if key is not None
        else store.put_unsigned("interruption", body)
    )
    store.journal().append("run_interrupted", object=oid, run=run, manifest=manifest, key=key)
    return oid


@dataclass
class CellAttempts:
    """One cell's attempts, counted from the journals."""

    started: int = 0
    recorded: int = 0
    interrupted: int = 0
    starts: list[str] = field(default_factory=list)  # `at` of each start
    hosts: set[str] = field(default_factory=set)

    @property
    def open(self) -> int:
        """Starts with no outcome yet: in flight, or dead and not yet closed."""
        return max(0, self.started - self.recorded - self.interrupted)


def count_attempts(
    events: Iterable[tuple[str, JournalEvent]], manifest: str
) -> dict[str, CellAttempts]:
    """run key -> its attempts under `manifest`, from (host, event) pairs of every journal."""
    out: dict[str, CellAttempts] = {}
    for host, event in events:
        if event.manifest != manifest or event.run is None:
            continue
        kind = event.kind
        if kind not in ("run_started", "run_recorded", "run_interrupted"):
            continue
        cell = out.setdefault(event.run, CellAttempts())
        cell.hosts.add(host)
        if kind == "run_started":
            cell.started += 1
            cell.starts.append(event.at)
        elif kind == "run_recorded":
            cell.recorded += 1
        else:
            cell.interrupted += 1
    return out


__all__ = [
    "CellAttempts",
    "count_attempts",
    "record_interruption",
]
