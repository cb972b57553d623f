"""`ledger export --in-toto DIR`: every manifest and decision as an in-toto Statement (v1) in a
DSSE envelope, signed with the same Ed25519 key that signed it.

Why: supply-chain tooling (in-toto verifiers, policy engines, attestation stores) speaks
in-toto, not our envelope. A Statement's subject is the object id (its SHA-256 is the digest
of the stored canonical bytes, so `sha256sum` of the object file matches), its predicate the
manifest or decision body; the DSSE signature covers the pre-authentication encoding (PAE)
of the payload, as the DSSE spec defines, so any DSSE verifier with the public key checks it.

Files written: `<kind>-<id>.intoto.json` (one DSSE envelope each), `attestations.intoto.jsonl`
(all envelopes, one per line: the in-toto bundle form), and `<key id>.pub.pem` (the public
key, for verifiers that take PEM). Only accepted evidence is exported (journaled, canonical,
signed by an accepted key), and only what the given key signed: a DSSE signature by another
key would say something our signature does not.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.rederive import audit_store
from ledger.canonical import canonical_bytes
from ledger.decision_model import Decision
from ledger.document import parse
from ledger.documents import Envelope
from ledger.errors import IntegrityError, NothingToDo
from ledger.fsutil import atomic_write, ensure_dir
from ledger.keys import SigningKey
from ledger.plan_model import Manifest
from ledger.store import Store
from ledger.trust import Trust
from ledger.verify import verify_with_evidence

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# Our own predicate types (URIs naming what the predicate is, per the in-toto spec); the
# bodies are documented in docs/ledger.md.
PREDICATE_TYPES = {
    "manifest": "https://gateledger.dev/attestation/manifest/v1",
    "decision": "https://gateledger.dev/attestation/decision/v1",
}
BUNDLE = "attestations.intoto.jsonl"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def statement(
    kind: str, object_id: str, signed: Manifest | Decision, body: dict[str, Any]
) -> dict[str, Any]:
    """The in-toto Statement v1 of one manifest or decision: named by its campaign and
    stage, its predicate the body as stored (`signed` is that body's model)."""
    name = f"gateledger/{kind}/{signed.campaign}/{signed.stage}"
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": object_id}}],
        "predicateType": PREDICATE_TYPES[kind],
        "predicate": body,
    }


def envelope(stmt: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope of `stmt` (RFC 8785 bytes as the payload), signed by `key`."""
    payload = canonical_bytes(stmt)
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


@dataclass
class Export:
    """What `export_in_toto` wrote and what it left out (and why)."""

    folder: Path
    written: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    public_key: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "written": self.written,
            "skipped": self.skipped,
            "public_key": str(self.public_key) if self.public_key else None,
            "bundle": str(self.folder / BUNDLE),
        }


def export_in_toto(
    store: Store,
    folder: Path,
    key: SigningKey,
    *,
    trust: Trust | None = None,
    allow_undecided: bool = False,
) -> Export:
    """Write the DSSE-enveloped Statements of every accepted manifest and decision `key` signed.

    Args:
        store: the store to export from (audited first: nothing leaves while the audit
            finds a problem, then only accepted evidence).
        folder: created if needed; files are written atomically.
        key: the private key that signed the objects (its signatures are re-made over PAE).
        trust: which keys count as accepted (default: the store's).
        allow_undecided: a campaign in progress (plans not yet decided) may be exported.

    Raises:
        IntegrityError: the audit finds a problem (exit 1).
        LedgerError: the folder cannot be written, or nothing in the store was signed by `key`.
    """
    result = audit_store(store, trust=trust, allow_undecided=allow_undecided)
    if result.verdict == "problems":
        raise IntegrityError(
            f"not exported: the audit finds {len(result.problems)} problem(s) (first: "
            f"{result.problems[0]}); an attestation would vouch for what the audit rejects"
        )
    verified = verify_with_evidence(store, check_index=False, trust=trust)
    accepted: dict[str, Manifest | Decision] = {**result.manifests, **result.decisions}
    out = Export(folder)
    envelopes = []
    for oid, obj in sorted(verified.scan.objects.items()):
        stored = parse(Envelope, obj, f"object {oid}", IntegrityError)  # the audit read it
        kind = stored.kind
        if kind not in PREDICATE_TYPES:
            continue
        if oid not in verified.evidence or oid not in accepted:
            out.skipped.append({"object": oid, "kind": kind, "why": "not accepted evidence"})
            continue
        signer = stored.signature.key_id if stored.signature is not None else None
        if signer != key.key_id:
            out.skipped.append(
                {"object": oid, "kind": kind, "why": f"signed by key {signer}, not {key.key_id}"}
            )
            continue
        env = envelope(statement(kind, oid, accepted[oid], stored.body), key)
        envelopes.append(env)
        out.written.append({"object": oid, "kind": kind, "file": f"{kind}-{oid}.intoto.json"})
    if not envelopes:
        raise NothingToDo(
            f"nothing to export: no accepted manifest or decision of this store "
            f"is signed by key {key.name} ({key.key_id})"
        )
    ensure_dir(folder)
    for row, env in zip(out.written, envelopes, strict=True):
        atomic_write(folder / row["file"], json.dumps(env, indent=2).encode() + b"\n")
    atomic_write(
        folder / BUNDLE,
        b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in envelopes),
    )
    pem_bytes = Ed25519PublicKey.from_public_bytes(key.public_bytes).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    out.public_key = folder / f"{key.key_id}.pub.pem"
    atomic_write(out.public_key, pem_bytes)
    return out


__all__ = [
    "BUNDLE",
    "Export",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPES",
    "STATEMENT_TYPE",
    "envelope",
    "export_in_toto",
    "pae",
    "statement",
]
