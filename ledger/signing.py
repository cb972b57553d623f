"""Signed and unsigned object envelopes: `{"kind", "body", "signature"?}`.

Why: the signature covers the canonical bytes of `{"kind", "body"}` only, so the envelope
is self-describing and a verifier needs nothing but the keyring.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson
from pydantic import ValidationError

from ledger.canonical import canonical_bytes
from ledger.document import one_line
from ledger.documents import Envelope, Signature
from ledger.errors import IntegrityError, LedgerError
from ledger.keys import Keyring, SigningKey

SIGNED_KINDS = frozenset({"manifest", "decision", "anchor", "revocation"})
# Kinds that may be signed (and then must verify): run records, signed at ingest by the
# orchestrator since records were signed; older stores hold them unsigned.
MAY_SIGN_KINDS = frozenset({"run", "interruption"})
# The body field naming who signed: it must be the key that did.
SIGNER_FIELDS = {
    "manifest": "freezer",
    "decision": "decider",
    "revocation": "revoker",
    "run": "recorder",
    "interruption": "recorder",
}


def _check_kind(kind: str, body: Any) -> None:
    if not isinstance(kind, str) or not kind:
        raise LedgerError(f"object kind must be a non-empty string, not {kind!r}")
    if not isinstance(body, dict):
        raise LedgerError(f"body of a {kind} must be a JSON object")


def signing_payload(kind: str, body: dict[str, Any]) -> bytes:
    """The exact bytes a signature covers."""
    return canonical_bytes({"kind": kind, "body": body})


def sign_object(kind: str, body: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """Envelope `body` as `kind`, signed by `key`."""
    _check_kind(kind, body)
    sig = key.sign(signing_payload(kind, body))
    return {
        "kind": kind,
        "body": body,
        "signature": {
            "alg": "ed25519",
            "key_id": key.key_id,
            "sig": base64.b64encode(sig).decode("ascii"),
        },
    }


def unsigned_object(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Envelope `body` as `kind` without a signature (run records, campaign copies)."""
    _check_kind(kind, body)
    if kind in SIGNED_KINDS:
        raise LedgerError(f"a {kind} must be signed")
    return {"kind": kind, "body": body}


def stored_payload(data: bytes, obj: dict[str, Any], *, canonical: bool = False) -> bytes | None:
    """The signed payload cut from an envelope's stored canonical bytes, if it is exactly
    `{"body":...,"kind":...}` (the signature member sorts last): saves re-encoding big
    manifests when verifying a whole store. None when the cut does not parse back to it.
    `obj` is a scanned envelope (`kind` and `body` present, `ledger.scan`).

    `canonical`: `data` was checked to be the RFC 8785 bytes of `obj` already (the scan
    does, before checking signatures); then the cut is the payload exactly when what
    follows it is the signature member's own bytes, which is checked instead of parsing
    the whole payload again (at 100k run records, that parse was half a verify's
    signature cost)."""
    cut = data.rfind(b',"signature":')
    if cut < 0:
        return None
    payload = data[:cut] + b"}"
    if canonical:
        sig = obj.get("signature")
        try:
            tail = orjson.dumps(sig, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            return None
        ascii_only = isinstance(sig, dict) and all(
            isinstance(v, str) and v.isascii() for v in sig.values()
        )
        if ascii_only and data[cut + len(b',"signature":') : -1] == tail:
            return payload
    try:
        parsed = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if parsed != {"kind": obj["kind"], "body": obj["body"]}:
        return None
    return payload


def verify_signature(
    obj: Any, keyring: Keyring, payload: bytes | None = None, trust: Any = None
) -> None:
    """Raise IntegrityError naming the key unless `obj` (a stored envelope, as parsed) is
    signed by an accepted key.

    Accepted: a key in `keyring`, or with `trust` (a `ledger.trust.Trust`) only the keys it
    names. `payload`, when given, must be the canonical bytes of `{"kind","body"}` (see
    `stored_payload`); otherwise they are re-encoded from `obj`'s JSON (never a model).
    """
    if not isinstance(obj, dict) or "signature" not in obj:
        raise IntegrityError("object is not signed")  # (any stored JSON may come here)
    try:  # (the signature alone: at 100k records, a copy of each body would cost seconds)
        signature = Signature.model_validate(obj["signature"])
    except ValidationError as exc:
        raise IntegrityError(one_line("its signature", exc)) from None
    if payload is None:
        try:
            envelope = Envelope.model_validate(obj)
            payload = signing_payload(envelope.kind, envelope.body)
        except (ValidationError, LedgerError):
            raise IntegrityError("object cannot be encoded to check its signature") from None
    verify_detached(signature, payload, keyring, trust)


def verify_detached(sig: Signature, payload: bytes, keyring: Keyring, trust: Any = None) -> None:
    """Raise IntegrityError naming the key unless `sig` is an accepted key's Ed25519
    signature of `payload` (a journal head, an object's payload)."""
    key_id = sig.key_id
    if sig.alg != "ed25519":
        raise IntegrityError(f"unsupported signature algorithm {sig.alg!r}")
    if trust is not None:
        why = trust.why_not(key_id, keyring)
        if why:
            raise IntegrityError(why)
    elif not keyring.has(key_id):
        raise IntegrityError(f"signed by unknown key {key_id}")
    try:
        raw = base64.b64decode(sig.sig.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise IntegrityError(f"bad signature by key {key_id} (not base64)") from None
    try:
        if trust is not None:
            good = trust.verify(key_id, payload, raw, keyring)
        else:
            good = keyring.verify(key_id, payload, raw)
    except IntegrityError as exc:
        raise IntegrityError(f"signed by key {key_id} whose key file is damaged: {exc}") from None
    except LedgerError:
        raise IntegrityError(f"signed by unknown key {key_id}") from None
    if not good:
        raise IntegrityError(f"bad signature by key {key_id}")
