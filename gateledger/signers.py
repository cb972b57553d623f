"""Signing keys as a user meets them: make one, list them, choose the one that signs.

Why here: "which key signs" is answered the same way for every command and script (the name
given, else LEDGER_KEY, else the store's default, else the only key in the store's keyring,
else the only key), and a private key never lives in the store.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ledger.documents import PublicKeyRecord
from ledger.errors import SigningKeyError, UnknownKey
from ledger.fsutil import atomic_write
from ledger.keys import (
    DEMO_KEY_NAME,
    SigningKey,
    default_key_for,
    generate_key,
    key_dir,
    load_signing_key,
    private_key_ids,
    set_default_key,
)
from ledger.revocation import revoke_key
from ledger.store import Store, resolve_prefix

KeyLike = SigningKey | str | None


@dataclass(frozen=True)
class KeyInfo:
    """One public key of the store's keyring, and when it was revoked (None: it was not)."""

    key_id: str
    name: str
    created_at: str
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KeyListing:
    """What `keys` shows: the store's keyring, the private keys on this machine (names),
    their folder, and the key that signs for the store by default (None: not set)."""

    store_keys: list[KeyInfo]
    private_keys: list[str]
    key_dir: str
    default: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "store_keys": [k.to_dict() for k in self.store_keys]}


@dataclass(frozen=True)
class Revoked:
    """A revocation just signed and journaled: the key it retires and its own id."""

    key_id: str
    revocation: str


@dataclass(frozen=True)
class DemoKey:
    """The demo signing key, and whether this call made it."""

    key: SigningKey
    made: bool


def keygen(
    name: str,
    *,
    passphrase: str | None = None,
    store: Store | str | Path | None = None,
    host: str | None = None,
) -> SigningKey:
    """Make an Ed25519 signing key NAME in the key folder (LEDGER_KEY_DIR), mode 0600.

    With `store` (a Store, or the root of one that exists), its public half joins the
    store's keyring and it becomes the key that signs for that store by default.

    Raises:
        ConfigError: a bad name; KeyExists: a key of that name exists already.
    """
    key = generate_key(name, passphrase=passphrase)
    if store is not None and not isinstance(store, Store):
        store = Store.open(store, host=host) if (Path(store) / "store.json").exists() else None
    if store is not None:
        store.keyring().add(key.public_record())
        set_default_key(store.root, name)
    return key


def default_key_name(store: Store | str | Path | None = None) -> str:
    """The key name that signs when none is given: the store's default, else the only
    private key whose public half is in the store's keyring, else the only key; the demo
    key only as a store's default (set by a `--demo-key` walk or `ledger keys --default`).

    Raises:
        SigningKeyError: no private key at all, or several and none chosen.
    """
    root = store.root if isinstance(store, Store) else store
    if root is not None:
        remembered = default_key_for(root)
        if remembered:
            return remembered
    keys = {n: kid for n, kid in private_key_ids().items() if n != DEMO_KEY_NAME}
    directory = key_dir()
    if not keys:
        # the demo key (unencrypted, made by anyone running the demo) signs only where it
        # was chosen: a store a `--demo-key` walk set it up for, --key, LEDGER_KEY
        demo = (key_dir() / f"{DEMO_KEY_NAME}.pem").exists()
        raise SigningKeyError(
            f"no signing key in {directory}"
            + (" but the demo key, which signs only when asked for" if demo else "")
            + ": run `ledger keygen --name NAME` first"
            + (" (or pass --demo-key to `ledger campaign` for a preview)" if demo else "")
        )
    if len(keys) == 1:
        return next(iter(keys))
    if root is not None and (Path(root) / "keys").is_dir():
        in_store = [
            n for n, kid in keys.items() if kid and (Path(root) / "keys" / f"{kid}.json").is_file()
        ]
        if len(in_store) == 1:
            return in_store[0]
    raise SigningKeyError(
        f"several keys in {directory} ({', '.join(keys)}): pass --key NAME, "
        f"or choose this store's signer once with `ledger keys --default "
        f"NAME`"
    )


def signing_key(key: KeyLike = None, store: Store | str | Path | None = None) -> SigningKey:
    """The key that signs: `key` itself, the key of that name, else LEDGER_KEY, else
    `default_key_name(store)` (the passphrase, if any, from LEDGER_PASSPHRASE or a prompt).

    Raises:
        SigningKeyError: none can be chosen, or the named key cannot be loaded.
    """
    if isinstance(key, SigningKey):
        return key
    name = key or os.environ.get("LEDGER_KEY") or default_key_name(store)
    return load_signing_key(name)


def demo_key(store: Store | None = None) -> DemoKey:
    """The demo signing key (`DEMO_KEY_NAME`, unencrypted), and whether it was made now.

    With `store` and no signer chosen for it yet, the demo key becomes that store's default
    (the store is a demo); it is never picked by default anywhere else (`default_key_name`).
    """
    if (key_dir() / f"{DEMO_KEY_NAME}.pem").exists():
        key, made = load_signing_key(DEMO_KEY_NAME, passphrase=""), False
    else:
        key, made = generate_key(DEMO_KEY_NAME, passphrase=None), True
    if store is not None and not default_key_for(store.root):
        set_default_key(store.root, DEMO_KEY_NAME)
    return DemoKey(key, made)


def key_id(store: Store, text: str) -> str:
    """A key of the store's keyring by its 32-hex id or a 12+ hex prefix of it."""
    ids = store.keyring().ids()
    return resolve_prefix(
        text,
        lambda p: sorted(k for k in ids if k.startswith(p)),
        "key in this store's keyring",
        length=32,
        missing=UnknownKey,
    )


def keys(store: Store, key_ids: tuple[str, ...] = ()) -> KeyListing:
    """The store's public keys (all, or those named by id or prefix), the private keys on
    this machine, their folder, and the key that signs for this store by default.

    Raises:
        UnknownKey: a key id that is not in the store's keyring; AmbiguousId: a prefix of
        several.
    """
    full = store.keyring().records()
    if key_ids:
        wanted = {key_id(store, k) for k in key_ids}
        full = [r for r in full if r.key_id in wanted]
    folder = key_dir()
    return KeyListing(
        store_keys=[KeyInfo(r.key_id, r.name, r.created_at, store.revoked(r.key_id)) for r in full],
        private_keys=sorted(p.stem for p in folder.glob("*.pem")) if folder.is_dir() else [],
        key_dir=str(folder),
        default=default_key_for(store.root),
    )


def export_keys(
    store: Store, path: str | Path, key_ids: tuple[str, ...] = ()
) -> list[PublicKeyRecord]:
    """Write the store's public key records (all, or those named by id or prefix) to `path`,
    what a reviewer passes as a trust file; return the records written.

    Raises:
        UnknownKey: a key id or prefix names no key of the store; AmbiguousId: several.
    """
    records = store.keyring().records()
    if key_ids:
        wanted = {key_id(store, k) for k in key_ids}
        records = [r for r in records if r.key_id in wanted]
    text = json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), text.encode())
    return records


def revoke(store: Store, key: str, *, signer: KeyLike = None, reason: str = "") -> Revoked:
    """Sign and journal the revocation of key `key` (id or prefix).

    Raises:
        SigningKeyError: no signer can be chosen; UnknownKey: an unknown key id;
        AlreadyRevoked: the key was revoked before.
    """
    revoked = key_id(store, key)
    return Revoked(revoked, revoke_key(store, revoked, signing_key(signer), reason))


def set_default(store: Store, name: str) -> Path:
    """Remember private key `name` as the one that signs for `store`; the file it is kept in."""
    return set_default_key(store.root, name)
