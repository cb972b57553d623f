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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.errors import LedgerError
from ledger.store import Store

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


def token_digest(body: Mapping[str, Any]) -> str | None:
    """SHA-256 of a timestamp body's DER response (None when it is not base64)."""
    try:
        der = base64.b64decode(str(body.get("response", "")).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None


def find_witness(
    manifest_id: str,
    journals: Iterable[tuple[str, Sequence[Mapping[str, Any]]]],
    body_of: Callable[[str], Mapping[str, Any] | None],
) -> SeedWitness | None:
    """The first token journaled after `manifest_id`'s freeze in the journal that froze it.

    `journals` are (host, events in journal order); `body_of(oid)` is a timestamp object's
    body, or None when it is not one (or not evidence).
    """
    for _host, events in journals:
        frozen = next(
            (
                i
                for i, e in enumerate(events)
                if e.get("kind") in FREEZE_KINDS and e.get("object") == manifest_id
            ),
            None,
        )
        if frozen is None:
            continue
        for event in events[frozen + 1 :]:
            oid = event.get("object")
            if event.get("kind") != "timestamped" or not isinstance(oid, str):
                continue
            body = body_of(oid)
            if body is None or body.get("object") != manifest_id:
                continue
            digest = token_digest(body)
            if digest is None:
                return None
            gen = body.get("gen_time")
            tsa = body.get("tsa")
            return SeedWitness(
                oid,
                digest,
                tsa if isinstance(tsa, str) else None,
                gen if isinstance(gen, str) else None,
            )
        return None
    return None


def store_witness(store: Store, manifest_id: str) -> SeedWitness | None:
    """`find_witness` over a store's journals and objects."""

    def body_of(oid: str) -> Mapping[str, Any] | None:
        try:
            obj = store.get_json(oid)
        except LedgerError:
            return None
        body = obj.get("body")
        return body if obj.get("kind") == "timestamp" and isinstance(body, dict) else None

    return find_witness(manifest_id, ((j.host, j.events()) for j in store.journals()), body_of)


__all__ = ["SeedWitness", "find_witness", "store_witness", "token_digest"]
