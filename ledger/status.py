"""What a store holds, counted: objects by kind, runs by status, journal heads, keys.

Why a pass of its own: `ledger status` answers "what is in here" without verifying anything
(a reviewer's question is `ledger verify`), so it reads each object once and trusts nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from ledger.documents import Envelope, RunRecord
from ledger.journal import Journal
from ledger.scan import looks_like_envelope
from ledger.store import Store


@dataclass(frozen=True)
class StoreCounts:
    """What a store holds: objects by kind (`raw` for raw logs), runs by status, each
    journal's head (`{"host", "seq", "hash"}`), the keyring (id and name), temp files."""

    store: str
    host: str
    objects: int
    by_kind: dict[str, int]
    runs_by_status: dict[str, int]
    journals: list[dict[str, Any]]
    keys: list[dict[str, Any]]
    leftover_temp_files: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_status(store: Store) -> StoreCounts:
    """Counts of objects by kind, runs by status, journals and heads, keys, temp files."""
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    total = 0
    for copy in store.copies():
        total += 1
        data = copy.read()
        if not looks_like_envelope(data):
            kinds["raw"] += 1
            continue
        try:
            envelope = Envelope.model_validate_json(data)
        except ValidationError:
            kinds["raw"] += 1  # not JSON, or no envelope: bytes like any raw object
            continue
        kinds[envelope.kind] += 1
        if envelope.kind == "run":
            statuses[_status(envelope.body)] += 1
    return StoreCounts(
        store=str(store.root),
        host=store.host,
        objects=total,
        by_kind=dict(sorted(kinds.items())),
        runs_by_status=dict(sorted(statuses.items())),
        journals=[_head(j) for j in store.journals()],
        keys=[{"key_id": r.key_id, "name": r.name} for r in store.keyring().records()],
        leftover_temp_files=len(store.leftovers()),
    )


def _status(body: dict[str, Any]) -> str:
    """A run record's status; `unfit` for a body that is no run record (`verify` names it)."""
    try:
        return RunRecord.model_validate(body).status
    except ValidationError:
        return "unfit"


def _head(journal: Journal) -> dict[str, Any]:
    """A journal's head as `--json` prints it (seq and hash null for an empty journal)."""
    head = journal.head()
    return head.to_dict() if head is not None else {"host": journal.host, "seq": None, "hash": None}
