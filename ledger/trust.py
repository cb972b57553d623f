"""Which keys a verifier accepts: the ones the store asserts, or the ones a reviewer names.

Why: `keys/` is part of the store, so anyone who can write the store can add a key and sign
with it. A reviewer who names the keys they trust (`--trust KEYID`, `--trust-file FILE`)
turns every signature by any other key into a problem, whatever `keys/` or a bundle holds.
Without them the verdict says that trust is store-asserted.

Revocation: a `revocation` object (signed by the revoked key or by another accepted key,
journaled as `key_revoked`) ends a key's validity; what it signed after the revocation is a
problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import IntegrityError, LedgerError, TrustError
from ledger.jsonsafe import loads_strict
from ledger.keys import Keyring, check_public_record

MAX_TRUST_FILE_BYTES = 1 << 20
_KEY_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Trust:
    """The keys signatures are checked against and where that list came from."""

    mode: str = "store"  # "store": every key in keys/; "reviewer": only the named ones
    named: dict[str, Ed25519PublicKey | None] = field(default_factory=dict)
    # key id -> the name its (self-signed) record in the reviewer's file gives; a key named
    # by --trust KEYID alone has none here (the store's keyring names it)
    names: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"trust": self.mode, "trusted_keys": sorted(self.named)}

    def key_names(self, keyring: Keyring | None = None) -> dict[str, str]:
        """Each trusted key id -> its name: the reviewer's record's, else the keyring's."""
        out = {}
        for key_id in sorted(self.named):
            name = self.names.get(key_id)
            if name is None and keyring is not None:
                name = keyring.name_of(key_id)
            out[key_id] = name or "unnamed"
        return out

    def describe(self, keyring: Keyring | None = None) -> str:
        if self.mode == "store":
            return (
                "trust: store-asserted (signatures checked against the keys the store "
                "itself holds; name yours with --trust or --trust-file)"
            )
        keys = "; ".join(f"{name} [{kid}]" for kid, name in self.key_names(keyring).items())
        return f"trust: signatures checked against the reviewer's keys only: {keys}"

    def why_not(self, key_id: Any, keyring: Keyring) -> str | None:
        """Why a signature by `key_id` is not accepted (None: accepted, if it verifies)."""
        if self.mode == "reviewer" and key_id not in self.named:
            return f"signed by key {key_id}, which the reviewer does not trust"
        if self.mode == "store" and not (isinstance(key_id, str) and keyring.has(key_id)):
            return f"signed by unknown key {key_id}"
        return None

    def verify(self, key_id: str, payload: bytes, sig: bytes, keyring: Keyring) -> bool:
        """Ed25519 check with the reviewer's copy of the key when they gave one."""
        public = self.named.get(key_id)
        if public is None:
            return keyring.verify(key_id, payload, sig)
        try:
            public.verify(sig, payload)
        except (InvalidSignature, ValueError):
            return False
        return True


def trust_from(
    keys: list[str] | tuple[str, ...] = (), files: list[str] | tuple[str, ...] = ()
) -> Trust:
    """A reviewer's trust roots: key ids (found in the store's keyring) and key files.

    Raises TrustError naming the id or file that cannot be used.
    """
    if not keys and not files:
        return Trust()
    named: dict[str, Ed25519PublicKey | None] = {}
    names: dict[str, str] = {}
    for key_id in keys:
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise TrustError(
                f"--trust {key_id!r}: not a key id (32 hex characters, as "
                f"`ledger keys` prints them)"
            )
        # the key's bytes come from the store's keyring: its id is their fingerprint, so the
        # store cannot put other bytes behind a name the reviewer chose
        named[key_id] = None
    for path in files:
        for record in _records(Path(path)):
            try:
                checked, public = check_public_record(record, str(path))
            except IntegrityError as exc:
                raise TrustError(str(exc)) from None
            named[checked.key_id] = public
            names[checked.key_id] = checked.name
    return Trust("reviewer", named, names)


def _records(path: Path) -> list[dict[str, Any]]:
    """Public key records in a file: one record, a list of them, or one per line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"--trust-file {path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_TRUST_FILE_BYTES:
        raise TrustError(f"--trust-file {path}: larger than {MAX_TRUST_FILE_BYTES} bytes")
    lines = [ln for ln in data.splitlines() if ln.strip()]
    try:
        if len(lines) > 1 and all(ln.lstrip().startswith(b"{") for ln in lines):
            docs = [loads_strict(ln, f"--trust-file {path}") for ln in lines]
        else:
            value = loads_strict(data, f"--trust-file {path}")
            docs = value if isinstance(value, list) else [value]
    except LedgerError as exc:
        raise TrustError(str(exc)) from None
    if len(docs) == 1 and isinstance(docs[0], dict) and "store_keys" in docs[0]:
        raise TrustError(
            f"--trust-file {path}: this is the listing `ledger keys --json` prints, not key "
            f"records: write them with `ledger keys --export FILE`"
        )
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise TrustError(
            f"--trust-file {path}: expected public key records (`ledger keys --export FILE`)"
        )
    return docs


__all__ = ["Trust", "TrustError", "trust_from"]
