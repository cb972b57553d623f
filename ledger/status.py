"""What a store holds, counted: objects by kind, runs by status, journal heads, keys.

Why a pass of its own: `ledger status` answers "what is in here" without verifying anything
(a reviewer's question is `ledger verify`), so it reads each object once and trusts nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

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
            obj = json.loads(data)
        except (ValueError, RecursionError):
            kinds["raw"] += 1
            continue
        kind = str(obj.get("kind"))
        kinds[kind] += 1
        if kind == "run":
            statuses[str(obj.get("body", {}).get("status"))] += 1
    return StoreCounts(
        store=str(store.root),
        host=store.host,
        objects=total,
        by_kind=dict(sorted(kinds.items())),
        runs_by_status=dict(sorted(statuses.items())),
        journals=[
            j.head() or {"host": j.host, "seq": None, "hash": None} for j in store.journals()
        ],
        keys=[{"key_id": r.key_id, "name": r.name} for r in store.keyring().records()],
        leftover_temp_files=len(store.leftovers()),
    )
