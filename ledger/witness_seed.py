"""The timestamp token a witness-bound seed rule derives seeds from, found the same way by
`ledger run`, `ingest` and the audit.

Which token: the first `timestamped` event after the manifest's freeze in the journal that
froze it, whose token stamps the manifest. Why the first: a later token could be one of many
fetched until the seeds suited; the first journaled is fixed once written (the journal is a
hash chain with a signed head), and the audit reports how long after the freeze the TSA
signed it. The witness is the SHA-256 of the token's DER bytes (which hold the TSA's
signature), so `jq -r .body.response TOKEN | base64 -d | sha256sum` recomputes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.documents import JournalEvent, TimestampToken
from ledger.errors import LedgerError
from ledger.store import Store, read_document

FREEZE_KINDS = ("manifest_frozen", "amended")


@dataclass(frozen=True)
class SeedWitness:
    """The token a manifest's seeds are bound to."""

    token: str  # the timestamp object's id
    digest: str  # SHA-256 (hex) of the TSA's DER response: the seed rule's input
    tsa: str | None
    gen_time: str | None  # the token's own time (copied; the audit checks it)

    def lag_s(self, frozen_at: Any) -> float | None:
        """Seconds from the manifest's `frozen_at` to the TSA's time (None: unreadable)."""
        try:
            end = datetime.fromisoformat(str(self.gen_time).replace("Z", "+00:00"))
            start = datetime.fromisoformat(str(frozen_at).replace("Z", "+00:00"))
        except ValueError:
            return None
        return (end - start).total_seconds()


def token_digest(token: TimestampToken) -> str | None:
    """SHA-256 of a timestamp token's DER response (None when it is not base64)."""
    try:
        der = base64.b64decode(token.response.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None


def find_witness(
    manifest_id: str,
    journals: Iterable[tuple[str, Sequence[JournalEvent]]],
    token_of: Callable[[str], TimestampToken | None],
) -> SeedWitness | None:
    """The first token journaled after `manifest_id`'s freeze in the journal that froze it.

    `journals` are (host, events in journal order); `token_of(oid)` is a timestamp object's
    body, or None when it is not one (or not evidence).
    """
    for _host, events in journals:
        frozen = next(
            (i for i, e in enumerate(events) if e.kind in FREEZE_KINDS and e.object == manifest_id),
            None,
        )
        if frozen is None:
            continue
        for event in events[frozen + 1 :]:
            if event.kind != "timestamped" or event.object is None:
                continue
            token = token_of(event.object)
            if token is None or token.object != manifest_id:
                continue
            digest = token_digest(token)
            if digest is None:
                return None
            return SeedWitness(event.object, digest, token.tsa, token.gen_time)
        return None
    return None


def store_witness(store: Store, manifest_id: str) -> SeedWitness | None:
    """`find_witness` over a store's journals and objects."""

    def token_of(oid: str) -> TimestampToken | None:
        try:
            return read_document(store, oid, "timestamp", TimestampToken)
        except LedgerError:
            return None  # not a token (or damaged): none to bind seeds to

    return find_witness(manifest_id, ((j.host, j.events()) for j in store.journals()), token_of)


__all__ = ["SeedWitness", "find_witness", "store_witness", "token_digest"]
