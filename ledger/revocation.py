"""Revoking a signing key: a signed `revocation` object, journaled as `key_revoked`.

Why: a private key can leak. Its owner (or another key of the team) signs a revocation;
from then on the store refuses to sign with it, and `verify` reports anything the key
signed after the revocation event.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.errors import AlreadyRevoked, UnknownKey
from ledger.keys import SigningKey
from ledger.store import Store


def revoke_key(store: Store, key_id: str, signer: SigningKey, reason: str = "") -> str:
    """Sign and journal the revocation of `key_id` by `signer`; return its object id.

    Raises LedgerError when the key is not in the store's keyring or is already revoked.
    """
    if not store.keyring().has(key_id):
        raise UnknownKey(f"key {key_id} is not in this store's keyring (`ledger keys`)")
    if store.revoked(key_id) is not None:
        raise AlreadyRevoked(f"key {key_id} is already revoked (at {store.revoked(key_id)})")
    body = {
        "key_id": key_id,
        "reason": str(reason),
        "revoked_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "revoker": signer.key_id,
    }
    oid = store.put_signed("revocation", body, signer)
    store.journal().append("key_revoked", object=oid, key=signer)
    return oid


__all__ = ["revoke_key"]
